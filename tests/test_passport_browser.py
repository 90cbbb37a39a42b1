"""The demo battery's passport page in a real browser (Debian's chromium through Playwright).

Runs the demo network into a temporary home, serves the app with uvicorn on a free loopback
port, loads the page of the item the demo exported its bundle for, checks the visible facts
(the custody timeline by stage with repeated rows folded, lifecycle coverage in words and
dates, the link to the JSON twin, the QR code's title, data-url and caption), decodes the QR
code from a screenshot with zxing-cpp, saves the page as docs/passport.png, checks that a
390 px wide phone shows it without horizontal scrolling, that an unknown item gets an HTML 404
page, and that /docs and /redoc render with every non-loopback request blocked.
Never downloads a browser: without playwright or chromium the test skips with a reason.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from transparency_support import served_app

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BATTERYTRACE_TEST_CHROMIUM") or "/usr/bin/chromium"


def _requirements() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
        import zxingcpp  # noqa: F401
    except ImportError as exc:
        return f"browser test needs playwright and zxing-cpp ({exc.name} missing)"
    if not Path(CHROMIUM).exists():
        return f"browser test needs chromium at {CHROMIUM} (set BATTERYTRACE_TEST_CHROMIUM)"
    return None


def png_gray(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and 8-bit grey pixels of a non-interlaced 8-bit PNG (what chromium
    writes), without PIL: inflate the IDAT stream and undo the per-row filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, "only 8-bit non-interlaced PNG"
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    previous = bytearray(stride)
    grey = bytearray()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                corner = previous[i - channels] if i >= channels else 0
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc
                                      else corner)) & 255
        grey.extend(line[0:stride:channels] if channels < 3 else (
            (line[i] * 299 + line[i + 1] * 587 + line[i + 2] * 114) // 1000
            for i in range(0, stride, channels)))
        previous = line
    return width, height, bytes(grey)


def decode_qr(png: bytes) -> str:
    import zxingcpp

    width, height, grey = png_gray(png)
    found = zxingcpp.read_barcodes(memoryview(grey).cast("B", (height, width)))
    assert found, "no QR code in the screenshot"
    return found[0].text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    from batterytrace.api.app import create_app
    from batterytrace.api.demo import run_demo
    from rich.console import Console

    home = tmp_path_factory.mktemp("passport-browser") / "home"
    run_demo(home, Console(file=io.StringIO()))
    bundle = (home / "bundle.jsonl").read_bytes()
    item = json.loads(bundle.splitlines()[0])["scope"]["id"]
    if b"BatteryPassportCredential" not in bundle:  # a demo without the battery's credentials
        from batterytrace.api.demo_builders import key_for
        from test_passport import issue_item_credentials

        issue_item_credentials(home, item, key_for)
    with served_app(create_app(home, checkpoint_interval=3600)) as base:
        yield {"home": home, "item": item, "base": base}


def test_demo_battery_page_in_chromium(served: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    item = served["item"]
    path = "/passports/" + quote(item, safe="")
    import httpx

    facts = httpx.get(served["base"] + "/api/passports/" + quote(item, safe=""),
                      timeout=60).json()
    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            response = page.goto(served["base"] + path)
            assert response is not None and response.status == 200
            text = page.inner_text("body")
            assert page.inner_text("#fact-chemistry").startswith(
                facts["identity"]["chemistry"] or "not declared")
            assert page.inner_text("#fact-model") == (facts["model"] or "not declared")
            for country in facts["provenance"]["countries"]:
                assert country in page.inner_text("#fact-countries")
            assert page.inner_text("#verification h2").endswith("verified")
            statuses = page.eval_on_selector_all(
                "#credentials [data-status]", "els => els.map(e => e.dataset.status)")
            assert facts["verification"]["status"] == "verified"
            assert statuses == [c["status"] for c in facts["credentials"]]
            assert "verified" in statuses
            assert item in text
            qr = page.locator("#qr")
            assert qr.get_attribute("title") == facts["pageUrl"]
            assert qr.get_attribute("data-url") == facts["pageUrl"]
            caption = page.inner_text("#qr-caption")
            assert facts["pageUrl"] in caption and "opens this passport" in caption
            _check_custody_and_lifecycle(page, facts)
            twin = page.locator("#json-twin")
            assert twin.get_attribute("href") == facts["jsonPath"]
            with page.expect_response(lambda r: r.url.endswith(facts["jsonPath"])) as answer:
                twin.click()
            assert answer.value.status == 200 and answer.value.json()["item"] == item
            page.goto(served["base"] + path)
            qr_png = qr.screenshot()
            page.screenshot(path=str(ROOT / "docs" / "passport.png"), full_page=True)
        finally:
            browser.close()
    # The QR code encodes the item's label identifier on the public URL (entry 0's
    # publicUrl), not the test's port; the resolver redirects it to the page.
    public = facts["pageUrl"][: -len(path)]
    assert decode_qr(qr_png) == public + "/id/" + quote(item, safe="")
    assert facts["pageUrl"].endswith(path)


def _check_custody_and_lifecycle(page: Any, facts: dict[str, Any]) -> None:
    """The timeline is grouped by stage (one heading each, in the JSON twin's order) and
    repeated rows are folded (fewer rows than events, a `× n` count on folded rows); the
    lifecycle coverage reads as words and dates, not log positions."""
    stages = page.eval_on_selector_all("#custody h3.stage", "els => els.map(e => e.dataset.stage)")
    assert stages == [g["stage"] for g in facts["custodyStages"]] and len(stages) >= 4
    counts = page.eval_on_selector_all("#custody tr.custody-row",
                                       "els => els.map(e => Number(e.dataset.count))")
    assert sum(counts) == len(facts["custody"]) > len(counts)
    folded = page.locator("#custody tr.custody-row[data-count]:not([data-count='1'])").first
    assert re.search(r"× \d+", folded.inner_text())
    lifecycle = page.inner_text("#fact-lifecycle")
    for stage in facts["lifecycle"]:
        assert stage["label"] in lifecycle
        if stage["covered"] and stage["date"]:
            assert f'{stage["label"]}: recorded on {stage["date"]}' in lifecycle
    assert re.search(r"\d{4}-\d{2}-\d{2}", lifecycle)
    assert not re.search(r"\b(True|False|None)\b", lifecycle)
    assert not re.search(r":\s*\d+\s*$", lifecycle, re.M)  # no bare log positions


def _launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


def test_phone_width_unknown_item_and_offline_docs(served: dict[str, Any],
                                                   tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    item, base = served["item"], served["base"]
    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            # A phone scanning the label: 390 px wide, nothing wider than the screen.
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            assert phone.goto(base + "/passports/" + quote(item, safe="")).status == 200
            phone.screenshot(path=str(tmp_path / "passport-390.png"), full_page=True)
            widths = phone.evaluate("() => [document.documentElement.scrollWidth, "
                                    "document.body.scrollWidth, window.innerWidth]")
            assert max(widths[:2]) <= widths[2] == 390, widths
            # An unknown item: an HTML page that says so, with a 404.
            unknown = "https://id.example.com/items/<b>no-such-pack</b>"
            answer = phone.goto(base + "/passports/" + quote(unknown, safe=""))
            assert answer is not None and answer.status == 404
            assert answer.headers["content-type"].startswith("text/html")
            assert phone.inner_text("h1") == "No battery passport for this item"
            assert phone.inner_text("#item-id") == unknown
            # /docs and /redoc with the network cut off: only loopback requests go through.
            blocked: list[str] = []
            docs = browser.new_page(viewport={"width": 1100, "height": 900})

            def only_loopback(route: Any) -> None:
                if route.request.url.startswith(base + "/"):
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            docs.route("**/*", only_loopback)
            assert docs.goto(base + "/docs").status == 200
            docs.wait_for_selector(".swagger-ui .info .title", timeout=30000)
            assert "batterytrace ledger service" in docs.inner_text(".swagger-ui .info .title")
            docs.wait_for_selector(".opblock-tag", timeout=30000)
            assert docs.locator(".opblock-summary-path", has_text="/passports/").count() >= 1
            assert docs.goto(base + "/redoc").status == 200
            docs.wait_for_selector("h1", timeout=30000)
            assert "batterytrace ledger service" in docs.inner_text("h1")
            assert docs.get_by_text("Battery passport page").count() >= 1  # the operations
            assert not [u for u in blocked if not u.startswith("data:")], blocked
        finally:
            browser.close()
