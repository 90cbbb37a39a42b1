"""Label resolution: resolvable identifiers (GS1 Digital Link or the ledger's resolver path,
GB/T 34014 codes), the QR codes that encode them (decoded with zxing-cpp), and the resolver
followed over plain HTTP (uvicorn on loopback, httpx) as a phone browser and as a machine
client would, with the RFC 9264 linkset checked for its JSON shape."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from batterytrace.ledger import resolver_links as rl
from custody_factory import item_id, lot_id
from transparency_support import served_app

GTIN = "09506000134352"  # a valid GTIN-14 (GS1's example)
SERIAL = "PK-0001"
CODE = "XHEPA01C240315R3F0000421"  # a GB/T 34014 code
DL_ITEM = f"https://id.gs1.org/01/{GTIN}/21/SN-42"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
           "User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile"}
MACHINE = {"Accept": "application/json"}


# --- identifiers (pure) --------------------------------------------------------------------


@pytest.mark.parametrize(("gtin", "ok"), [
    (GTIN, True), ("9506000134352", True), ("4006381333931", True), ("96385074", True),
    ("09506000134353", False), ("0950600013435", False), ("abcdefghijklmn", False),
    ("٠٩٥٠٦٠٠٠١٣٤٣٥٢", False)])
def test_gtin_check_digit(gtin: str, ok: bool) -> None:
    assert rl.gtin_is_valid(gtin) is ok


def test_digital_link_keys() -> None:
    assert rl.digital_link_of(DL_ITEM) == rl.DigitalLink(GTIN, "21", "SN-42")
    assert rl.digital_link_of("https://other.example/x/01/9506000134352/10/L%2F7") == (
        rl.DigitalLink(GTIN, "10", "L/7"))
    assert rl.digital_link_of(f"https://id.gs1.org/01/{GTIN}") == rl.DigitalLink(GTIN)
    assert rl.digital_link_of("https://id.gs1.org/01/09506000134353/21/1") is None
    assert rl.digital_link_of("https://id.example.com/items/pack-p1") is None
    assert rl.digital_link_of(f"https://id.gs1.org/01/{GTIN}/21/{'x' * 21}") is None


def test_label_identifier_prefers_a_digital_link() -> None:
    base = "https://ledger.example/"
    assert rl.label_identifier(base, "item", DL_ITEM, {}) == (
        f"https://ledger.example/01/{GTIN}/21/SN-42")
    declared = {"gtin": GTIN, "serialNumber": SERIAL}
    assert rl.label_identifier(base, "item", item_id("x"), declared) == (
        f"https://ledger.example/01/{GTIN}/21/{SERIAL}")
    assert rl.label_identifier(base, "lot", lot_id("l"), {"gtin": GTIN, "lotNumber": "L1"}) == (
        f"https://ledger.example/01/{GTIN}/10/L1")
    # A lot key on an item (or a bad GTIN) falls back to the ledger's resolver path.
    for kind, details in (("item", {"gtin": GTIN, "lotNumber": "L1"}),
                          ("item", {"gtin": "123", "serialNumber": "1"})):
        assert rl.label_identifier(base, kind, item_id("x"), details) == (
            "https://ledger.example/id/" + quote(item_id("x"), safe=""))


def test_linkset_shape_checker() -> None:
    good = rl.linkset("https://l.example/id/x", [
        rl.Link(rl.LINK_DPP, "https://l.example/a", "application/json", "t", access=("x",))])
    assert rl.check_linkset_shape(good) == []
    assert good["linkset"][0][rl.LINK_DPP][0]["accessTier"] == ["x"]
    bad = [
        {"links": []}, {"linkset": {}}, {"linkset": []}, {"linkset": [{"anchor": 1}]},
        {"linkset": [{"anchor": "a", "rel": {"href": "x"}}]},
        {"linkset": [{"anchor": "a", "rel": [{"title": "no href"}]}]},
        {"linkset": [{"anchor": "a", "rel": [{"href": "x", "hreflang": "en"}]}]},
        {"linkset": [{"anchor": "a", "rel": [{"href": "x", "title*": "t"}]}]},
    ]
    for document in bad:
        assert rl.check_linkset_shape(document), document


# --- a served ledger ----------------------------------------------------------------------


def _build(home_parent: Path) -> Path:
    from batterytrace.ledger.log import Submission
    from batterytrace.ledger.service import open_ledger
    from custody_factory import BUILDERS, lifecycle, signed_credential
    from test_api_support import make_home

    home = make_home(home_parent, None)
    production = BUILDERS.transformation(
        "wroclaw-plant", [("coso4-2026-0042", 1)],
        output_items=[("pack-gs1", "pack", 30, {}), ("pack-dl", "pack", 30, {})])
    production["itemDeclarations"][0].update(gtin=GTIN, serialNumber=SERIAL, batteryCode=CODE)
    production["itemDeclarations"][1]["id"] = DL_ITEM
    production["outputEPCList"][1] = {"id": DL_ITEM, "name": "pack-dl"}
    ledger = open_ledger(home, None)
    try:
        ledger.append([Submission("event", signed_credential(issuer, [event]))
                       for _, issuer, event in lifecycle()])
        ledger.append([Submission("event", signed_credential("cellmaker", [production]))])
        ledger.sign_checkpoint()
    finally:
        ledger.close()
    return home


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from batterytrace.api.app import create_app

    home = _build(tmp_path_factory.mktemp("resolver"))
    with served_app(create_app(home, checkpoint_interval=3600)) as base:
        yield {"home": home, "base": base}


def _local(identifier: str, base: str) -> str:
    """The identifier on the test server (labels carry the ledger's public URL)."""
    assert identifier.startswith("https://ledger.example/")
    return base + identifier[len("https://ledger.example"):]


def _png_modules(data: bytes) -> tuple[bytes, int, int]:
    """Greyscale pixels of a segno PNG (8-bit or fewer, grey or palette, filters 0 and 2)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, palette = 8, b"", None
    width = height = depth = colour = 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = (width * depth + 7) // 8
    pixels, prior = bytearray(), bytes(stride)
    for row in range(height):
        line = raw[row * (stride + 1):(row + 1) * (stride + 1)]
        assert line[0] in (0, 2), "segno writes filter types None and Up"
        current = bytes(line[1:]) if line[0] == 0 else bytes(
            (b + p) & 0xFF for b, p in zip(line[1:], prior, strict=True))
        prior = current
        bits = "".join(f"{b:08b}" for b in current)
        for x in range(width):
            value = int(bits[x * depth:(x + 1) * depth], 2)
            if colour == 3:
                assert palette is not None
                value = palette[value * 3]
            else:
                value = value * 255 // ((1 << depth) - 1)
            pixels.append(value)
    return bytes(pixels), width, height


def _decode(pixels: bytes, width: int, height: int) -> str:
    import zxingcpp

    found = zxingcpp.read_barcodes(memoryview(pixels).cast("B", (height, width)))
    assert found, "no QR code found"
    return str(found[0].text)


def test_cli_label_encodes_the_identifier(served: dict[str, Any], tmp_path: Path) -> None:
    from batterytrace.api.cli import app
    from test_passport import svg_modules
    from typer.testing import CliRunner

    runner = CliRunner()
    cases = {item_id("pack-gs1"): f"https://ledger.example/01/{GTIN}/21/{SERIAL}",
             DL_ITEM: f"https://ledger.example/01/{GTIN}/21/SN-42",
             item_id("pack-p1"): "https://ledger.example/id/" + quote(item_id("pack-p1"),
                                                                         safe="")}
    for item, expected in cases.items():
        png, svg = tmp_path / "label.png", tmp_path / "label.svg"
        for out in (png, svg):
            result = runner.invoke(app, ["--home", str(served["home"]), "item", "label", item,
                                         "--out", str(out), "--json"])
            assert result.exit_code == 0, result.output
            assert expected in result.output
        assert _decode(*_png_modules(png.read_bytes())) == expected
        grid = svg_modules(svg.read_text())
        scale = 4
        pixels = bytes(0 if grid[r // scale][c // scale] else 255
                       for r in range(len(grid) * scale) for c in range(len(grid) * scale))
        assert _decode(pixels, len(grid) * scale, len(grid) * scale) == expected
    result = runner.invoke(app, ["--home", str(served["home"]), "lot", "label",
                                 lot_id("coso4-2026-0042"), "--out", str(tmp_path / "l.gif")])
    assert result.exception.code == "LABEL_FORMAT" and result.exception.exit_code == 2
    result = runner.invoke(app, ["--home", str(served["home"]), "item", "label",
                                 item_id("nope"), "--out", str(tmp_path / "l.png")])
    assert result.exception.code == "IDENTIFIER_NOT_FOUND"
    assert result.exception.exit_code == 2


def test_passport_qr_encodes_the_label_identifier(served: dict[str, Any]) -> None:
    import httpx
    from test_passport import decode_modules, svg_modules

    item = item_id("pack-gs1")
    page = httpx.get(served["base"] + "/passports/" + quote(item, safe=""), timeout=60).text
    svg = re.search(r'<div id="qr"[^>]*>(.*?)</div>', page, re.S)
    assert svg is not None
    assert decode_modules(svg_modules(svg.group(1))) == (
        f"https://ledger.example/01/{GTIN}/21/{SERIAL}")


@pytest.mark.parametrize("item", [item_id("pack-gs1"), DL_ITEM, item_id("pack-p1")])
def test_phone_and_machine_follow_the_resolver(served: dict[str, Any], item: str) -> None:
    import httpx
    from batterytrace.api.routers.resolver import label_url
    from batterytrace.ledger.service import open_ledger

    base = served["base"]
    ledger = open_ledger(served["home"], None)
    try:
        label = label_url(ledger, item)
    finally:
        ledger.close()
    url = _local(label, base)
    with httpx.Client(timeout=60) as client:
        phone = client.get(url, headers=BROWSER, follow_redirects=False)
        assert phone.status_code == 307
        assert phone.headers["location"] == f"{base}/passports/{quote(item, safe='')}"
        assert 'rel="linkset"' in phone.headers["link"]
        page = client.get(url, headers=BROWSER, follow_redirects=True)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        machine = client.get(url, headers=MACHINE, follow_redirects=True)
        assert machine.status_code == 200 and machine.json()["item"] == item
        assert machine.history[0].headers["location"].startswith(base + "/api/passports/")
        # The linkset, by query and by Accept, the same; every link answers (or needs a grant).
        by_query = client.get(url, params={"linkType": "linkset"})
        by_accept = client.get(url, headers={"Accept": rl.LINKSET_MEDIA})
        for answer in (by_query, by_accept):
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith(rl.LINKSET_MEDIA)
            assert rl.check_linkset_shape(answer.json()) == []
        assert by_query.json() == by_accept.json()
        [context] = by_query.json()["linkset"]
        assert context["anchor"] == _local(label, base)
        for rel in (rl.LINK_DEFAULT, rl.LINK_PIP, rl.LINK_DPP, rl.LINK_DTE, rl.LINK_DCC,
                    rl.LINK_DFR, rl.LINK_CERTIFICATION, rl.LINK_TRACEABILITY):
            assert rel in context, rel
        for rel, targets in context.items():
            for target in [] if rel == "anchor" else targets:
                answer = client.get(target["href"])
                if rel == rl.LINK_EPCIS:  # the events as EPCIS 2.0, valid for GS1's schema
                    from batterytrace.ledger.epcis_schema import schema_errors

                    assert answer.status_code == 200
                    assert schema_errors(answer.json()) == []
                    assert answer.json()["epcisBody"]["eventList"]
                if not target.get("accessTier"):
                    assert answer.status_code == 200, (rel, target["href"])
                elif answer.status_code == 200:  # without a grant: the public tier only
                    assert answer.json()["tier"] == "public", target["href"]
                else:
                    assert answer.status_code == 403, (rel, target["href"])
        # A link type by name redirects to that link.
        chosen = client.get(url, params={"linkType": "untp:dfr"}, follow_redirects=False)
        assert chosen.status_code == 307
        assert chosen.headers["location"] == context[rl.LINK_DFR][0]["href"]
        missing = client.get(url, params={"linkType": "gs1:recallStatus"})
        assert missing.status_code == 404 and missing.json()["code"] == "LINK_TYPE_NOT_FOUND"


def test_battery_code_lots_and_unknown_identifiers(served: dict[str, Any]) -> None:
    import httpx

    base = served["base"]
    with httpx.Client(timeout=60) as client:
        coded = client.get(f"{base}/gbt34014/{CODE}", headers=MACHINE, follow_redirects=True)
        assert coded.status_code == 200 and coded.json()["item"] == item_id("pack-gs1")
        lot = lot_id("coso4-2026-0042")
        lot_url = base + rl.resolver_path(lot)
        record = client.get(lot_url, headers=BROWSER, follow_redirects=True)
        assert record.status_code == 200 and record.json()["id"] == lot
        links = client.get(lot_url, params={"linkType": "linkset"}).json()
        assert rl.check_linkset_shape(links) == []
        for url in (f"{base}/01/{GTIN}/21/unknown", f"{base}/01/09506000134353/21/x",
                    f"{base}/gbt34014/{CODE[:-1]}0", base + rl.resolver_path(item_id("nope"))):
            answer = client.get(url)
            assert answer.status_code == 404, url
            assert answer.json()["code"] == "IDENTIFIER_NOT_FOUND"
