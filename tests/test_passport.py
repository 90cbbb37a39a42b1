"""The battery passport page and its JSON twin: tiers, grants, access proofs, escaping, the QR
code."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from batterytrace.api.passport import (
    EU_MINIMUMS_2031,
    build_passport,
    bundle_path,
    clear_cache,
    page_path,
)
from batterytrace.api.passport_access import (
    PROOF_FUTURE_SKEW,
    PROOF_WINDOW,
    build_access_proof,
    build_grant,
    encode_grant,
)
from batterytrace.api.routers.passports import qr_svg, render_passport
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.keys import Ed25519Key
from custody_factory import item_id, key_for

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_TYPES = {"BatteryPassportCredential", "CarbonFootprintCredential",
                "RecycledContentCredential"}


def example_subject(type_name: str) -> dict[str, Any]:
    """The credentialSubject of the documented example of `type_name` (docs/credentials.md)."""
    text = (ROOT / "docs" / "credentials.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {type_name}\n.*?```json\n(.*?)\n```", text, re.S | re.M)
    assert match is not None, type_name
    return json.loads(match.group(1))["credentialSubject"]


AUDITOR = Ed25519Key.from_seed(hashlib.sha256(b"passport-test-auditor").digest())
MODEL = "Nordwagen NMC811 pack P1 (passport test)"
KeyFor = Callable[[str], Ed25519Key]


def participant_key(did: str, keys: KeyFor = key_for) -> Ed25519Key:
    """The test key of a participant DID (test keys derive from participant names)."""
    return keys(did.rsplit(":", 1)[-1])


def issue_item_credentials(home: Path, item: str, keys: KeyFor,
                           database_url: str | None = None) -> dict[str, Any]:
    """The maker's passport, carbon footprint and recycled content credentials for `item`, and
    an auditor's IRMA audit of the first mine of its bundle, anchored in the ledger. Returns
    what the tests need to know about the network (maker, mine, actors)."""
    from batterytrace.credentials.credential_types import build_credential
    from batterytrace.ledger.credential_store import CredentialStore
    from batterytrace.ledger.service import open_ledger

    ledger = open_ledger(home, database_url)
    try:
        before = build_passport(ledger, item, tier="legitimate-interest")
        maker = before.manufacturer["id"]  # the signer of the item's production event
        mine = before.provenance["mines"][0]["mine"]
        passport = example_subject("BatteryPassportCredential")
        passport.pop("gbt34014Code", None)
        passport["id"] = passport["product"]["id"] = item
        passport["product"]["name"] = MODEL
        passport["batteryChemistry"] = {"shortName": "NMC811",
                                        "clearName": "Lithium nickel manganese cobalt oxide"}
        carbon = example_subject("CarbonFootprintCredential") | {"id": item}
        recycled = example_subject("RecycledContentCredential") | {"id": item}
        documents = [build_credential(name, subject, issuer=maker, issuer_name="Pack maker",
                                      valid_from="2026-01-01T00:00:00Z")
                     for name, subject in (("BatteryPassportCredential", passport),
                                           ("CarbonFootprintCredential", carbon),
                                           ("RecycledContentCredential", recycled))]
        store = CredentialStore(ledger)
        store.issue_many(documents, participant_key(maker, keys), purposes=())
        irma = example_subject("IRMAAuditCredential") | {"id": mine["id"]}
        store.issue(build_credential("IRMAAuditCredential", irma, issuer=AUDITOR.did_key,
                                     issuer_name="Andes Assurance",
                                     valid_from="2026-01-10T00:00:00Z"), AUDITOR, purposes=())
    finally:
        ledger.close()
    clear_cache()
    return {"maker": maker, "mine": mine, "actors": {s["actor"]["id"] for s in before.custody}}


def build_network(home_parent: Path, database_url: str | None) -> dict[str, Any]:
    """A ledger holding the documented lifecycle (mine to recycler), a trust file that trusts
    it, and the battery's credentials; its item is the lifecycle's pack."""
    from batterytrace.ledger.log import Submission
    from batterytrace.ledger.service import open_ledger
    from batterytrace.verifier.trust import TrustConfig, TrustedLedger, write_trust
    from custody_factory import lifecycle, signed_credential
    from test_api_support import make_home

    home = make_home(home_parent, database_url)
    ledger = open_ledger(home, database_url)
    try:
        ledger.append([Submission("event", signed_credential(issuer, [event]))
                       for _, issuer, event in lifecycle()])
        info = ledger.info()
    finally:
        ledger.close()
    write_trust(TrustConfig(ledgers=(TrustedLedger(info["origin"], info["verifierKey"]),)),
                home / "trust.toml")
    item = item_id("pack-p1")
    return {"home": home, "item": item, "database_url": database_url,
            **issue_item_credentials(home, item, key_for, database_url)}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_network(tmp_path_factory.mktemp("passport"), None)


@pytest.fixture(scope="module")
def client(network: dict[str, Any]) -> Any:
    from batterytrace.api.app import create_app
    from fastapi.testclient import TestClient

    clear_cache()
    app = create_app(network["home"], network["database_url"], checkpoint_interval=3600)
    with TestClient(app) as test_client:
        # The app signs checkpoints at an interval: sign now so the bundle covers every entry.
        test_client.app.state.ledger.sign_checkpoint()
        yield test_client


def holder_of(client: Any, item: str) -> str:
    from batterytrace.api.passport_access import item_holder
    from batterytrace.ledger.queries import read_state

    ledger = client.app.state.ledger
    with read_state(ledger) as view:
        holder = item_holder(ledger, view, item)
    assert holder is not None
    return holder


def grant_for(item: str, holder: str, *, signer: str | None = None, grantee: str | None = None,
              valid_until: datetime | None = None) -> dict[str, Any]:
    """A grant by `holder` for `item`, signed with the key of the participant `signer` (a DID,
    default the holder)."""
    signer = signer or holder
    key = participant_key(signer)
    until = valid_until or datetime.now(UTC) + timedelta(hours=1)
    doc = build_grant(item, grantee or AUDITOR.did_key, holder,
                      until.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return sign(doc, key, verification_method=f"{signer}#{key.public_multibase}")


def api_path(item: str) -> str:
    return "/api/passports/" + quote(item, safe="")


GRANTEE = AUDITOR  # the default grantee: a did:key, resolved offline


def proof_by(key: Ed25519Key, grant_text: str, path: str, *, did: str | None = None,
             created: datetime | None = None) -> str:
    """An access proof for `path` with `grant_text`, signed by `key` as a method of `did`
    (default: the key's own did:key)."""
    method = f"{did}#{key.public_multibase}" if did else (
        f"{key.did_key}#{key.did_key.removeprefix('did:key:')}")
    return build_access_proof(grant_text, path, key, method, created=created)


def granted(grant_text: str, path: str, key: Ed25519Key = GRANTEE,
            did: str | None = None) -> dict[str, str]:
    """Headers presenting a grant with the grantee's proof for `path`."""
    return {"X-Passport-Grant": grant_text,
            "X-Passport-Proof": proof_by(key, grant_text, path, did=did)}


# --- tiers --------------------------------------------------------------------------------


def test_public_tier_hides_mine_level_provenance(client: Any, network: dict[str, Any]) -> None:
    response = client.get(api_path(network["item"]))
    assert response.status_code == 200
    body = response.json()
    assert body["tier"] == "public"
    assert body["verification"]["status"] == "verified"
    # country-level provenance is public; the mine is not
    assert network["mine"]["country"] in body["provenance"]["countries"]
    text = json.dumps(body)
    assert network["mine"]["id"] not in text and network["mine"]["name"] not in text
    for hidden in ("mines", "elements", "route"):
        assert hidden not in body["provenance"]
    assert "holder" not in body and "evidenceBundle" not in body
    assert {c["type"] for c in body["credentials"]} == PUBLIC_TYPES
    assert all(c["status"] == "verified" for c in body["credentials"])
    assert set(body["custody"][0]) == {"seq", "time", "step", "country"}


def test_annex_xiii_facts(client: Any, network: dict[str, Any]) -> None:
    body = client.get(api_path(network["item"])).json()
    assert body["model"] == MODEL
    assert body["identity"]["chemistry"] == "NMC811"
    assert body["manufacturer"]["name"] and body["plant"]["name"]
    assert body["carbonFootprint"]["performanceClass"] in "ABCDEFG"
    rows = {r["material"]: r for r in body["recycledContent"]}
    for material, row in rows.items():
        assert row["euMinimum2031"] == EU_MINIMUMS_2031.get(material)
        assert row["meetsMinimum"] == (row["total"] >= row["euMinimum2031"])
    if body["stateOfHealth"] is not None:
        assert 0 < body["stateOfHealth"]["value"] <= 100
    assert body["custody"][0]["step"] == "extraction"  # from the mine ...
    assert [s["seq"] for s in body["custody"]] == sorted(s["seq"] for s in body["custody"])


def test_holder_grant_shows_mine_level_provenance(client: Any, network: dict[str, Any]) -> None:
    item = network["item"]
    grant = encode_grant(grant_for(item, holder_of(client, item)))
    body = client.get(api_path(item), headers=granted(grant, api_path(item))).json()
    assert body["tier"] == "legitimate-interest"
    assert body["holder"] == holder_of(client, item)
    mines = body["provenance"]["mines"]
    audited = [m for m in mines if m["mine"]["id"] == network["mine"]["id"]]
    assert audited and audited[0]["irma"]["status"] == "verified"
    assert audited[0]["irma"]["level"] == "IRMA 75"
    assert "IRMAAuditCredential" in {c["type"] for c in body["credentials"]}
    # the same grant and a proof in the query string; the bundle download needs its own proof
    assert client.get(api_path(item), params={
        "grant": grant, "proof": proof_by(GRANTEE, grant, api_path(item))}).json()[
        "tier"] == body["tier"]
    assert body["evidenceBundle"] == bundle_path(item)
    bundle = client.get(body["evidenceBundle"], params={
        "grant": grant, "proof": proof_by(GRANTEE, grant, bundle_path(item))})
    assert bundle.status_code == 200
    assert json.loads(bundle.content.splitlines()[0])["scope"]["id"] == item
    refused = client.get(body["evidenceBundle"])
    assert refused.status_code == 403 and refused.json()["code"] == "PASSPORT_GRANT_REFUSED"


@pytest.mark.parametrize("case, status, code", [
    ("expired", 403, "PASSPORT_GRANT_EXPIRED"),
    ("non-holder", 403, "PASSPORT_GRANT_NOT_HOLDER"),
    ("non-holder-key", 403, "PASSPORT_GRANT_NOT_HOLDER"),
    ("forged", 403, "PASSPORT_GRANT_SIGNATURE"),
    ("other-item", 403, "PASSPORT_GRANT_WRONG_ITEM"),
    ("garbage", 400, "PASSPORT_GRANT_MALFORMED"),
])
def test_bad_grants_are_refused(client: Any, network: dict[str, Any], case: str, status: int,
                                code: str) -> None:
    item = network["item"]
    holder = holder_of(client, item)
    other = sorted(network["actors"] - {holder})[0]  # another registered participant
    if case == "expired":
        grant = grant_for(item, holder, valid_until=datetime.now(UTC) - timedelta(minutes=1))
    elif case == "non-holder":  # a registered participant granting what it does not hold
        grant = grant_for(item, other, signer=other)
    elif case == "non-holder-key":  # names the holder, signed with another participant's key
        grant = grant_for(item, holder, signer=other)
    elif case == "forged":  # signed by the holder, then the grantee changed
        grant = grant_for(item, holder) | {"grantee": "did:web:intruder.example"}
    elif case == "other-item":
        grant = grant_for(item + "-other", holder)
    else:
        grant = None
    text = "not a grant!" if grant is None else encode_grant(grant)
    for path in (api_path(item), "/passports/" + quote(item, safe="")):
        # a valid proof does not rescue a bad grant: the grant is judged first
        proof = proof_by(GRANTEE, text, path) if grant is not None else "x"
        response = client.get(path, headers={"X-Passport-Grant": text, "X-Passport-Proof": proof})
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == code


def test_a_grant_signed_with_a_key_unknown_to_the_registry_is_forged(
        client: Any, network: dict[str, Any]) -> None:
    item = network["item"]
    holder = holder_of(client, item)
    rogue = key_for("rogue")
    doc = build_grant(item, "did:web:intruder.example", holder, "2099-01-01T00:00:00Z")
    grant = sign(doc, rogue, verification_method=f"{holder}#{rogue.public_multibase}")
    text = encode_grant(grant)
    response = client.get(api_path(item), headers=granted(text, api_path(item)))
    assert response.status_code == 403
    assert response.json()["code"] == "PASSPORT_GRANT_SIGNATURE"


def test_unknown_item_is_a_404_problem(client: Any) -> None:
    unknown = "https://id.example.com/items/no-such-pack"
    for path in (api_path(unknown), "/passports/" + quote(unknown, safe="")):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "PASSPORT_NOT_FOUND"


# --- the page -----------------------------------------------------------------------------


class _Facts(HTMLParser):
    """Text of the elements with an id, and the status badges of the credentials table."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.statuses: list[str] = []
        self.scripts = 0
        self._open: list[str | None] = []
        self._in_credentials = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if a.get("id") == "credentials":
            self._in_credentials = True
        if self._in_credentials and a.get("data-status"):
            self.statuses.append(str(a["data-status"]))
        if tag not in ("br", "meta", "path", "rect"):
            self._open.append(a.get("id"))
            if a.get("id"):
                self.by_id.setdefault(str(a["id"]), "")

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("br", "meta", "path", "rect") and self._open:
            if self._open.pop() == "credentials":
                self._in_credentials = False

    def handle_data(self, data: str) -> None:
        for element_id in filter(None, self._open):
            self.by_id[element_id] += data


def page_facts(html: str) -> _Facts:
    parser = _Facts()
    parser.feed(html)
    return parser


def test_page_shows_the_facts_of_its_json_twin(client: Any, network: dict[str, Any]) -> None:
    item = network["item"]
    body = client.get(api_path(item)).json()
    page = client.get("/passports/" + quote(item, safe=""))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    facts = page_facts(page.text)
    assert facts.by_id["fact-model"].strip() == body["model"]
    assert facts.by_id["fact-chemistry"].strip().startswith(body["identity"]["chemistry"])
    assert [c.split(" ")[0] for c in facts.by_id["fact-countries"].split(", ")] == list(
        body["provenance"]["countries"])
    assert facts.by_id["fact-carbon-class"].strip() == body["carbonFootprint"][
        "performanceClass"]
    assert facts.statuses == [c["status"] for c in body["credentials"]]
    assert facts.by_id["item-id"].strip() == item
    assert "mines" not in facts.by_id  # public tier: no mine table
    # readable offline: no external stylesheet, script, image or font
    assert not re.search(r"<link|<script|<img|src=|url\(|@import", page.text)


def test_html_is_escaped(client: Any, network: dict[str, Any]) -> None:
    passport = build_passport(client.app.state.ledger, network["item"], tier="public")
    evil = '<script>alert("x")</script>'
    html = render_passport(replace(passport, item=evil, model=evil,
                                   identity={**passport.identity, "chemistry": evil}))
    facts = page_facts(html)
    assert facts.scripts == 0
    assert "&lt;script&gt;" in html
    assert facts.by_id["item-id"].strip() == evil  # shown as text, inert


def test_missing_trust_file_says_not_configured(client: Any, network: dict[str, Any]) -> None:
    trust = network["home"] / "trust.toml"
    kept = trust.with_name("trust.toml.kept")
    shutil.move(trust, kept)
    try:
        body = client.get(api_path(network["item"])).json()
    finally:
        shutil.move(kept, trust)
    assert body["verification"]["status"] == "not configured"
    assert {c["status"] for c in body["credentials"]} == {"not checked"}
    assert client.get(api_path(network["item"])).json()["verification"]["status"] == "verified"


# --- the QR code --------------------------------------------------------------------------


def svg_modules(svg: str) -> list[list[bool]]:
    """The dark modules of a segno SVG (one path of horizontal `h` runs at y + 0.5)."""
    size = int(re.search(r'width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    scale = int(re.search(r"scale\((\d+)\)", svg).group(1))  # type: ignore[union-attr]
    n = size // scale
    grid = [[False] * n for _ in range(n)]
    dark = re.search(r'<path[^>]*stroke="[^"]*"[^>]* d="([^"]+)"', svg)  # not the light fill
    assert dark is not None
    path = dark.group(1)
    x = y = 0.0
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            for i in range(int(float(a))):
                grid[int(y)][int(x) + i] = True
            x += float(a)
    return grid


def decode_modules(grid: list[list[bool]], scale: int = 4) -> str:
    import zxingcpp

    n = len(grid)
    pixels = bytes(0 if grid[r // scale][c // scale] else 255
                   for r in range(n * scale) for c in range(n * scale))
    found = zxingcpp.read_barcodes(memoryview(pixels).cast("B", (n * scale, n * scale)))
    assert found, "no QR code found"
    return found[0].text


def test_qr_svg_decodes_to_the_label_identifier(client: Any, network: dict[str, Any]) -> None:
    item = network["item"]
    ledger = client.app.state.ledger
    page = client.get("/passports/" + quote(item, safe="")).text
    svg = re.search(r'<div id="qr"[^>]*>(.*?)</div>', page, re.S).group(1)  # type: ignore
    # The QR encodes the item's label identifier (the resolver redirects to this page).
    expected = ledger.public_url.rstrip("/") + "/id/" + quote(item, safe="")
    assert decode_modules(svg_modules(svg)) == expected
    assert decode_modules(svg_modules(qr_svg("https://example.org/x"))) == (
        "https://example.org/x")


def test_passport_and_grant_on_each_database(tmp_path: Path, database_url: str | None) -> None:
    from batterytrace.api.app import create_app
    from fastapi.testclient import TestClient

    built = build_network(tmp_path, database_url)
    item = built["item"]
    with TestClient(create_app(built["home"], database_url, checkpoint_interval=3600)) as api:
        api.app.state.ledger.sign_checkpoint()
        public = api.get(api_path(item)).json()
        assert public["verification"]["status"] == "verified" and "mines" not in public[
            "provenance"]
        # the holder reaching its own data: a grant naming itself, a proof by its own key
        holder = holder_of(api, item)
        grant = encode_grant(grant_for(item, holder, grantee=holder))
        full = api.get(api_path(item), headers=granted(
            grant, api_path(item), participant_key(holder), did=holder)).json()
    assert full["tier"] == "legitimate-interest"
    assert built["mine"]["id"] in {m["mine"]["id"] for m in full["provenance"]["mines"]}
    assert {k: v for k, v in full.items() if k in public} == public | {
        "tier": full["tier"], "provenance": full["provenance"], "custody": full["custody"],
        "credentials": full["credentials"], "verification": full["verification"]}


# --- access proofs ------------------------------------------------------------------------


def test_the_holder_reaches_its_own_page_and_bundle(client: Any, network: dict[str, Any]) -> None:
    item = network["item"]
    holder = holder_of(client, item)
    key = participant_key(holder)
    grant = encode_grant(grant_for(item, holder, grantee=holder))
    page = client.get(page_path(item), headers=granted(grant, page_path(item), key, holder))
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "mines" in page_facts(page.text).by_id
    bundle = client.get(bundle_path(item), headers=granted(grant, bundle_path(item), key,
                                                            holder))
    assert bundle.status_code == 200
    # a proof by the holder's key does not open a grant naming someone else
    other = encode_grant(grant_for(item, holder))
    refused = client.get(api_path(item), headers=granted(other, api_path(item), key, holder))
    assert refused.status_code == 403 and refused.json()["code"] == "PASSPORT_PROOF_INVALID"


@pytest.mark.parametrize("case, status, code", [
    ("missing", 401, "PASSPORT_PROOF_MISSING"),
    ("other-key", 403, "PASSPORT_PROOF_INVALID"),
    ("other-participant", 403, "PASSPORT_PROOF_INVALID"),
    ("other-path", 403, "PASSPORT_PROOF_INVALID"),
    ("other-grant", 403, "PASSPORT_PROOF_INVALID"),
    ("stale", 403, "PASSPORT_PROOF_STALE"),
    ("future", 403, "PASSPORT_PROOF_STALE"),
    ("forged", 403, "PASSPORT_PROOF_INVALID"),
    ("without-grant", 403, "PASSPORT_PROOF_INVALID"),
    ("garbage", 400, "PASSPORT_PROOF_MALFORMED"),
])
def test_bad_access_proofs_are_refused(client: Any, network: dict[str, Any], case: str,
                                       status: int, code: str) -> None:
    import base64

    item = network["item"]
    holder = holder_of(client, item)
    grant = encode_grant(grant_for(item, holder))
    now = datetime.now(UTC)
    for path in (api_path(item), page_path(item), bundle_path(item)):
        headers = {"X-Passport-Grant": grant}
        if case == "other-key":  # a did:key that is not the grantee
            headers["X-Passport-Proof"] = proof_by(key_for("stranger"), grant, path)
        elif case == "other-participant":  # a registered participant, not the grantee
            headers["X-Passport-Proof"] = proof_by(participant_key(holder), grant, path,
                                                   did=holder)
        elif case == "other-path":
            other = page_path(item) if path != page_path(item) else api_path(item)
            headers["X-Passport-Proof"] = proof_by(GRANTEE, grant, other)
        elif case == "other-grant":  # the grantee's proof for a different (valid) grant
            second = encode_grant(grant_for(item, holder, valid_until=now + timedelta(hours=2)))
            headers["X-Passport-Proof"] = proof_by(GRANTEE, second, path)
        elif case == "stale":
            headers["X-Passport-Proof"] = proof_by(
                GRANTEE, grant, path, created=now - PROOF_WINDOW - timedelta(seconds=5))
        elif case == "future":
            headers["X-Passport-Proof"] = proof_by(
                GRANTEE, grant, path, created=now + PROOF_FUTURE_SKEW + timedelta(seconds=60))
        elif case == "forged":  # signed for the JSON twin, then the path rewritten
            text = proof_by(GRANTEE, grant, "/api/passports/elsewhere")
            doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            headers["X-Passport-Proof"] = json.dumps(doc | {"path": path})
        elif case == "without-grant":
            headers = {"X-Passport-Proof": proof_by(GRANTEE, grant, path)}
        elif case == "garbage":
            headers["X-Passport-Proof"] = "not a proof!"
        response = client.get(path, headers=headers)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == code


def test_a_recent_proof_within_the_skew_opens_the_tier(client: Any,
                                                       network: dict[str, Any]) -> None:
    item = network["item"]
    grant = encode_grant(grant_for(item, holder_of(client, item)))
    now = datetime.now(UTC)
    for created in (now - PROOF_WINDOW + timedelta(seconds=30), now + timedelta(seconds=10)):
        proof = proof_by(GRANTEE, grant, api_path(item), created=created)
        response = client.get(api_path(item), params={"grant": grant, "proof": proof})
        assert response.status_code == 200, response.text
        assert response.json()["tier"] == "legitimate-interest"


def test_a_participant_grantee_proves_with_its_registered_key(
        client: Any, network: dict[str, Any]) -> None:
    item = network["item"]
    holder = holder_of(client, item)
    grantee = sorted(network["actors"] - {holder})[0]  # a did:web participant
    grant = encode_grant(grant_for(item, holder, grantee=grantee))
    ok = client.get(api_path(item), headers=granted(grant, api_path(item),
                                                    participant_key(grantee), grantee))
    assert ok.status_code == 200 and ok.json()["tier"] == "legitimate-interest"
    # a key the registry does not know, claimed as the participant's, proves nothing
    rogue = client.get(api_path(item), headers=granted(grant, api_path(item),
                                                       key_for("rogue"), grantee))
    assert rogue.status_code == 403 and rogue.json()["code"] == "PASSPORT_PROOF_INVALID"


# --- a revocation is never hidden ---------------------------------------------------------


def test_a_revoked_credential_is_struck_out_with_its_date_and_backs_no_fact(
        tmp_path: Path) -> None:
    from batterytrace.api.app import create_app
    from batterytrace.ledger.credential_store import CredentialStore
    from batterytrace.ledger.service import open_ledger
    from fastapi.testclient import TestClient

    built = build_network(tmp_path, None)
    ledger = open_ledger(built["home"], None)
    try:
        store = CredentialStore(ledger)
        before = build_passport(ledger, built["item"], tier="legitimate-interest")
        carbon_id = before.carbon_footprint["credential"]
        assert before.carbon_footprint["value"] is not None
        store.change_status(carbon_id, "revocation", participant_key(built["maker"]))
    finally:
        ledger.close()
    clear_cache()
    app = create_app(built["home"], None, checkpoint_interval=3600)
    with TestClient(app) as test_client:
        test_client.app.state.ledger.sign_checkpoint()
        body = test_client.get(api_path(built["item"])).json()
        page = test_client.get(page_path(built["item"])).text
    clear_cache()
    [row] = [c for c in body["credentials"] if c["id"] == carbon_id]
    assert row["status"] == "revoked" and row["sinceDate"] and row["since"] > 0
    assert body["carbonFootprint"] is None  # its value backs nothing any more
    assert body["verification"]["status"] == "failed"
    assert "<del>CarbonFootprintCredential</del>" in page
    assert f"revoked on {row['sinceDate']}" in page
