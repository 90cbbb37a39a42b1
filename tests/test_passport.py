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


def _keys(value: Any) -> set[str]:
    """Every mapping key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


DISMANTLING_URL = "xh-lfp-280-dismantling.pdf"  # the documented passport's dismantling manual
TEST_REPORT = {"type": ["Link"], "linkName": "UN 38.3 and IEC 62660 test report",
               "linkURL": "https://lab.example/reports/pack-p1-un383.pdf"}


def test_public_passport_has_no_state_of_health_or_dismantling_document(
        client: Any, network: dict[str, Any]) -> None:
    item = network["item"]
    body = client.get(api_path(item)).json()
    page = client.get(page_path(item)).text
    assert body["tier"] == "public" and body["tierBasis"] == "Annex XIII(1)"
    keys = _keys(body)
    assert not {k for k in keys if "stateofhealth" in k.lower().replace("_", "")}
    assert "dismantlingAndRemovalInformation" not in keys and "safetyMeasures" not in keys
    assert DISMANTLING_URL not in json.dumps(body) and DISMANTLING_URL not in page
    facts = page_facts(page)
    assert "fact-soh" not in facts.by_id and "soh-readings" not in facts.by_id
    assert "Annex XIII(4)" in facts.by_id["health"]
    withheld = {w["name"]: w for w in body["withheld"]}
    assert withheld["stateOfHealth"]["tier"] == "legitimate-interest"
    assert withheld["dismantlingAndRemovalInformation"]["basis"] == "Annex XIII(2) and (4)"
    assert "dismantling and removal information" in facts.by_id["withheld"]
    # public attributes of the passport credential are shown
    assert body["attributes"]["batteryChemistry"]["shortName"] == "NMC811"


def test_legitimate_interest_sees_state_of_health_and_dismantling(
        client: Any, network: dict[str, Any]) -> None:
    item = network["item"]
    grant = encode_grant(grant_for(item, holder_of(client, item)))
    body = client.get(api_path(item), headers=granted(grant, api_path(item))).json()
    assert body["tier"] == "legitimate-interest"
    assert body["stateOfHealth"]["value"] == 78  # the lifecycle's BMS reading
    assert [r["value"] for r in body["stateOfHealthReadings"]] == [78]
    assert DISMANTLING_URL in json.dumps(body["attributes"]["dismantlingAndRemovalInformation"])
    assert "safetyMeasures" in body["attributes"]
    assert body["withheld"] == []  # the documented passport has no authority-only member
    page = client.get(page_path(item), headers=granted(grant, page_path(item))).text
    facts = page_facts(page)
    assert float(facts.by_id["fact-soh"].strip().removesuffix(" %")) == 78
    assert DISMANTLING_URL in facts.by_id["attr-dismantlingAndRemovalInformation"]


def test_a_stored_passport_with_test_reports_shows_them_to_authorities_only(
        network: dict[str, Any], tmp_path: Path) -> None:
    """The passport credential's schema carries `resultOfTestReport` (Annex XIII(3)): a
    stored, signed passport holding it shows the reports to the authority tier only."""
    from batterytrace.credentials.credential_types import build_credential
    from batterytrace.ledger.credential_store import CredentialStore
    from batterytrace.ledger.service import open_ledger

    home = tmp_path / "home"
    shutil.copytree(network["home"], home)
    ledger = open_ledger(home, None)
    try:
        subject = example_subject("BatteryPassportCredential")
        subject.pop("gbt34014Code", None)
        subject["id"] = subject["product"]["id"] = network["item"]
        subject["resultOfTestReport"] = [TEST_REPORT]
        document = build_credential("BatteryPassportCredential", subject,
                                    issuer=network["maker"], issuer_name="Pack maker",
                                    valid_from="2026-01-01T00:00:00Z")
        CredentialStore(ledger).issue(document, participant_key(network["maker"], key_for),
                                      purposes=())
        clear_cache()
        for tier, shown in (("public", False), ("legitimate-interest", False),
                            ("authority", True)):
            passport = build_passport(ledger, network["item"], tier=tier)
            assert ("resultOfTestReport" in passport.to_json()["attributes"]) is shown, tier
            assert (TEST_REPORT["linkURL"] in render_passport(passport)) is shown, tier
    finally:
        ledger.close()
        clear_cache()


def test_test_reports_are_for_authorities_only(client: Any, network: dict[str, Any]) -> None:
    """Annex XIII(3): a passport whose credential carries test reports shows them to the
    authority tier only (the attribute table, whatever credential carries the member)."""
    full = build_passport(client.app.state.ledger, network["item"], tier="authority")
    full = replace(full, attributes={**full.attributes, "resultOfTestReport": [TEST_REPORT]})
    for tier, shown in (("public", False), ("legitimate-interest", False), ("authority", True)):
        passport = full.for_tier(tier)  # type: ignore[arg-type]
        body, html = passport.to_json(), render_passport(passport)
        assert ("resultOfTestReport" in body["attributes"]) is shown, tier
        assert (TEST_REPORT["linkURL"] in html) is shown, tier
        assert ("resultOfTestReport" in {w["name"] for w in body["withheld"]}) is not shown
    assert "test reports proving compliance" in page_facts(
        render_passport(full.for_tier("legitimate-interest"))).by_id["withheld"]


AUTHORITY_KEY = Ed25519Key.from_seed(hashlib.sha256(b"passport-test-authority").digest())


def _did_key_grant(doc: dict[str, Any], key: Ed25519Key) -> str:
    method = f"{key.did_key}#{key.did_key.removeprefix('did:key:')}"
    return encode_grant(sign(doc, key, verification_method=method))


def test_an_authority_grant_opens_the_authority_tier(client: Any,
                                                      network: dict[str, Any]) -> None:
    item = network["item"]
    holder = holder_of(client, item)
    authorities = network["home"] / "passport-authorities.toml"
    authorities.write_text(f'''[[authority]]
id = "{AUTHORITY_KEY.did_key}"
name = "Market surveillance authority (test)"
kind = "market-surveillance"
''', encoding="utf-8")
    until = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        # the authority's own grant (the law gives it access: no holder's consent needed)
        own = _did_key_grant(build_grant(item, AUTHORITY_KEY.did_key, AUTHORITY_KEY.did_key,
                                         until, tier="authority"), AUTHORITY_KEY)
        body = client.get(api_path(item), headers=granted(own, api_path(item),
                                                          AUTHORITY_KEY)).json()
        assert body["tier"] == "authority" and body["tierBasis"] == "Annex XIII(3)"
        assert body["withheld"] == [] and body["stateOfHealth"]["value"] == 78
        assert "dismantlingAndRemovalInformation" in body["attributes"]
        bundle = client.get(bundle_path(item), headers=granted(own, bundle_path(item),
                                                               AUTHORITY_KEY))
        assert bundle.status_code == 200
        page = client.get(page_path(item), headers=granted(own, page_path(item), AUTHORITY_KEY))
        assert page_facts(page.text).by_id["tier"].startswith("authority access")
        # the holder may grant the authority tier to a configured authority too
        by_holder = encode_grant(sign(
            build_grant(item, AUTHORITY_KEY.did_key, holder, until, tier="authority"),
            participant_key(holder),
            verification_method=f"{holder}#{participant_key(holder).public_multibase}"))
        assert client.get(api_path(item), headers=granted(
            by_holder, api_path(item), AUTHORITY_KEY)).json()["tier"] == "authority"
        # nobody else: an authority-tier grant to a grantee the server does not name ...
        other = encode_grant(grant_for(item, holder) | {"tier": "authority"})
        refused = client.get(api_path(item), headers=granted(other, api_path(item)))
        assert refused.status_code == 403  # altered after signing, or:
        forged = encode_grant(sign(
            build_grant(item, AUDITOR.did_key, holder, until, tier="authority"),
            participant_key(holder),
            verification_method=f"{holder}#{participant_key(holder).public_multibase}"))
        refused = client.get(api_path(item), headers=granted(forged, api_path(item)))
        assert refused.status_code == 403
        assert refused.json()["code"] == "PASSPORT_GRANT_NOT_AUTHORITY"
        # ... nor a self-issued one by a did:key that is no authority
        self_made = _did_key_grant(build_grant(item, AUDITOR.did_key, AUDITOR.did_key, until,
                                               tier="authority"), AUDITOR)
        refused = client.get(api_path(item), headers=granted(self_made, api_path(item)))
        assert refused.json()["code"] == "PASSPORT_GRANT_NOT_AUTHORITY"
        # a self-issued legitimate-interest grant is not the holder's
        self_li = _did_key_grant(build_grant(item, AUDITOR.did_key, AUDITOR.did_key, until),
                                 AUDITOR)
        refused = client.get(api_path(item), headers=granted(self_li, api_path(item)))
        assert refused.json()["code"] == "PASSPORT_GRANT_NOT_HOLDER"
    finally:
        authorities.unlink()
    # without the server's authority file, the authority's own grant opens nothing
    refused = client.get(api_path(item), headers=granted(own, api_path(item), AUTHORITY_KEY))
    assert refused.json()["code"] == "PASSPORT_GRANT_NOT_AUTHORITY"


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
    assert "stateOfHealth" not in body  # Annex XIII(4): legitimate interest only
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


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_unknown_item_is_an_html_page_unless_json_is_asked_for(client: Any) -> None:
    unknown = "https://id.example.com/items/no-such-pack"
    for accept in (BROWSER_ACCEPT, "*/*", None):
        headers = {"Accept": accept} if accept else {}
        page = client.get(page_path(unknown), headers=headers)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert page_facts(page.text).by_id["item-id"].strip() == unknown
    for path, accept in ((page_path(unknown), "application/json"),
                         (page_path(unknown), "application/problem+json"),
                         (api_path(unknown), BROWSER_ACCEPT), (api_path(unknown), None)):
        response = client.get(path, headers={"Accept": accept} if accept else {})
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "PASSPORT_NOT_FOUND"


HOSTILE = ('<script>alert("x")</script>', "ACME [ledger] Mining [/] Ltd [/red]",
           "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07link", "abc\u202egnp.exe",
           '" onmouseover="alert(1)', "line\nbreak & <b>bold</b>")


def test_hostile_names_on_the_page_are_text(client: Any, network: dict[str, Any]) -> None:
    """Participant text (names, ids, attributes, notes) is shown literally on the page:
    markup inert (autoescape), control characters (ANSI, bidi overrides) shown escaped."""
    full = build_passport(client.app.state.ledger, network["item"], tier="authority")
    for evil in HOSTILE:
        party = {"id": evil, "name": evil, "country": evil}
        custody = tuple({**row, "actor": party, "facility": party, "country": evil}
                        for row in full.custody)
        credentials = tuple({**c, "issuerName": evil, "type": evil} for c in full.credentials)
        passport = replace(full, item=evil, model=evil, manufacturer=party, plant=party,
                           identity={**full.identity, "chemistry": evil}, custody=custody,
                           credentials=credentials, notes=(evil,),
                           attributes={**full.attributes, "safetyMeasures": evil},
                           links={"originals": [{"item": evil, "step": evil, "time": evil,
                                                 "seq": 1}], "successors": []})
        for tier in ("public", "legitimate-interest", "authority"):
            html = render_passport(passport.for_tier(tier))  # type: ignore[arg-type]
            facts = page_facts(html)
            assert facts.scripts == 0, (evil, tier)
            assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]", html)
            assert "<b>" not in html and "onmouseover=" not in html.replace(
                "&#34; onmouseover=", "")
            shown = evil.encode("unicode_escape").decode() if re.search(
                r"[\x1b\u202e]", evil) else evil
            if "\n" in evil:
                shown = evil.replace("\n", "\\n")
            assert facts.by_id["item-id"].strip() == shown.strip(), (evil, tier)
            assert facts.by_id["model"].strip() == shown.strip()


def test_problem_details_carry_hostile_text_exactly_and_inertly(client: Any) -> None:
    for evil in HOSTILE:
        item = "https://id.example.com/items/" + evil
        response = client.get(api_path(item))
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["x-content-type-options"] == "nosniff"
        raw = response.content
        assert raw.isascii() and b"<" not in raw and b">" not in raw and b"\x1b" not in raw
        body = json.loads(raw)
        if "\n" in evil:  # Starlette's path parameters stop at a newline: no such route
            assert body["code"] == "NOT_FOUND" and "<b>bold</b>" in body["detail"]
            continue
        assert body["detail"] == f"no item {item} in the ledger"  # exactly, after parsing
        page = client.get(page_path(item))
        assert page.status_code == 404 and page_facts(page.text).scripts == 0
        assert "<b>" not in page.text and "\x1b" not in page.text


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
        k: full[k] for k in ("tier", "tierBasis", "provenance", "custody", "custodyStages",
                             "credentials", "verification", "attributes", "withheld")}


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


# --- repurposed and remanufactured batteries (Art. 77(6)) ---------------------------------


def test_a_repurposed_battery_has_a_new_passport_linked_to_the_original(
        tmp_path: Path) -> None:
    """The fleet repurposes pack-p1 into a new battery (a TransformationEvent, step
    repurposing): the new battery's page links to the original, and the original's page says
    it is an original with a successor, in the JSON twin and on the page."""
    from batterytrace.api.app import create_app
    from batterytrace.ledger.events import BizStep
    from batterytrace.ledger.log import Submission
    from batterytrace.ledger.service import open_ledger
    from custody_factory import lifecycle, signed_credential, transformation
    from fastapi.testclient import TestClient
    from test_api_support import make_home

    home = make_home(tmp_path, None)
    steps = lifecycle()
    upto = next(i for i, (stage, _, _) in enumerate(steps) if stage.startswith("Repurposing"))
    repurposed = transformation("rotterdam-depot", input_items=["pack-p1"],
                                output_items=[("pack-p1-2nd-life", "pack", 30, {})],
                                biz_step=BizStep.REPURPOSING)
    ledger = open_ledger(home, None)
    try:
        ledger.append([Submission("event", signed_credential(issuer, [event]))
                       for _, issuer, event in steps[:upto]])
        ledger.append([Submission("event", signed_credential("fleet", [repurposed]))])
    finally:
        ledger.close()
    original, successor = item_id("pack-p1"), item_id("pack-p1-2nd-life")
    clear_cache()
    with TestClient(create_app(home, None, checkpoint_interval=3600)) as api:
        api.app.state.ledger.sign_checkpoint()
        old = api.get(api_path(original)).json()
        new = api.get(api_path(successor)).json()
        old_page = page_facts(api.get(page_path(original)).text)
        new_page = page_facts(api.get(page_path(successor)).text)
    assert [link["item"] for link in old["links"]["successors"]] == [successor]
    assert old["links"]["originals"] == []
    assert [link["item"] for link in new["links"]["originals"]] == [original]
    assert new["links"]["originals"][0]["pagePath"] == page_path(original)
    assert new["links"]["originals"][0]["step"] == "repurposing"
    assert "original battery" in old_page.by_id["passport-links"]
    assert successor in old_page.by_id["passport-links"]
    assert original in new_page.by_id["passport-links"]


# --- the timeline by stage ----------------------------------------------------------------

STEPS = ("extraction", "refining", "commissioning", "assembling", "shipping", "receiving",
         "retail_selling", "sensor_reporting", "repurposing", "recycling", "destroying")


def _rows(draw_steps: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    return [{"seq": seq, "time": f"2026-01-{1 + day:02d}T00:00:00Z", "step": step,
             "country": country} for seq, (step, country, day) in enumerate(draw_steps)]


def test_custody_stages_fold_without_losing_an_event() -> None:
    from batterytrace.api.passport_facts import STAGES, custody_stages
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(STEPS), st.sampled_from(("CD", "CN", "DE")),
                              st.integers(0, 27)), max_size=40))
    def check(drawn: list[tuple[str, str, int]]) -> None:
        rows = _rows(drawn)
        stages = custody_stages(rows)
        assert sum(g["events"] for g in stages) == len(rows)
        assert [g["stage"] for g in stages] == [s for s in STAGES
                                                if s in {g["stage"] for g in stages}]
        for group in stages:
            keys = [(r["step"], r["country"]) for r in group["rows"]]
            assert len(keys) == len(set(keys))  # every repeat folded
            assert sum(r["count"] for r in group["rows"]) == group["events"]
            for r in group["rows"]:
                assert r["from"] <= r["to"]

    check()


def test_logistics_rows_belong_to_the_stage_before_them() -> None:
    from batterytrace.api.passport_facts import custody_stages, lifecycle_coverage

    rows = _rows([("extraction", "CD", 0), ("shipping", "CD", 1), ("receiving", "CN", 2),
                  ("refining", "CN", 3), ("shipping", "CN", 4), ("shipping", "CN", 5)])
    stages = custody_stages(rows)
    assert [(g["stage"], g["events"]) for g in stages] == [
        ("Extraction", 3), ("Refining and processing", 3)]
    assert stages[1]["rows"][1] | {} == {
        "step": "shipping", "country": "CN", "count": 2, "from": "2026-01-05",
        "to": "2026-01-06", "firstSeq": 4, "lastSeq": 5}
    words = lifecycle_coverage({"production": 3, "sale": False}, rows)
    assert words == [
        {"stage": "production", "label": "Production", "covered": True, "date": "2026-01-04"},
        {"stage": "sale", "label": "Placing on the market", "covered": False, "date": None}]
