"""Credentials, status changes, bundles and verification through the HTTP API."""

from __future__ import annotations

import json
import uuid

import pytest
from batterytrace.credentials.data_integrity import sign
from batterytrace.ledger.anchors import build_anchor, sign_anchor
from batterytrace.verifier.trust import TrustConfig, TrustedLedger, write_trust
from custody_factory import did_for, extraction, key_for, lot_id, signed_credential
from test_api_support import api_client, assert_problem, db_state, make_home


@pytest.fixture
def api(tmp_path, database_url):
    home = make_home(tmp_path, database_url)
    with api_client(home, database_url) as client:
        client.home = home
        client.state = lambda: db_state(home, database_url)
        yield client


def lot_credential(issuer: str, subject: str) -> dict:
    doc = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential"],
        "issuer": did_for(issuer),
        "validFrom": "2026-02-01T00:00:00Z",
        "credentialSubject": {"id": subject, "note": "assay"},
    }
    key = key_for(issuer)
    return sign(doc, key, verification_method=f"{did_for(issuer)}#{key.public_multibase}")


def publish(api, issuer="miner", public=True, signer=None):
    credential = lot_credential(issuer, lot_id("ore-1"))
    anchor = sign_anchor(build_anchor(credential), key_for(signer or issuer))
    return credential, api.post("/credentials", json={"credential": credential,
                                                       "anchor": anchor, "public": public})


def test_publish_fetch_anchors_and_status(api):
    credential, response = publish(api)
    assert response.status_code == 201, response.text
    cid = credential["id"]
    assert api.get(f"/credentials/{cid}").json() == credential
    found = api.get("/credentials", params={"subject": lot_id("ore-1")}).json()
    assert [c["id"] for c in found] == [cid]
    record = api.get(f"/credentials/{cid}/anchors").json()
    assert record["record"]["issued_at"] == response.json()["seq"]
    private, response = publish(api, public=False)
    assert response.status_code == 201
    assert_problem(api.get(f"/credentials/{private['id']}"), 403, "CREDENTIAL_NOT_PUBLIC")
    assert api.get("/credentials", params={"subject": lot_id("ore-1")}).json() == found
    assert_problem(api.get("/credentials/urn:uuid:none"), 404, "CREDENTIAL_NOT_FOUND")
    # Revocation by another participant is refused; by the issuer accepted.
    before = api.state()
    forged = sign_anchor(build_anchor(credential, "revocation"), key_for("trader"))
    forged["issuer"] = credential["issuer"]
    response = api.post(f"/credentials/{cid}/status", json=forged)
    assert response.status_code in (400, 422) and api.state() == before
    revoke = sign_anchor(build_anchor(credential, "revocation"), key_for("miner"))
    assert api.post(f"/credentials/{cid}/status", json=revoke).status_code == 201
    history = api.get(f"/credentials/{cid}/anchors").json()["record"]["history"]
    assert [action for _, action in history] == ["issuance", "revocation"]


def test_publish_in_another_name_changes_nothing(api):
    before = api.state()
    _, response = publish(api, issuer="miner", signer="trader")
    assert response.status_code == 422
    assert response.json()["code"] in ("ANCHOR_SIGNER_ERROR", "PROOF_VERIFICATION_ERROR")
    assert api.state() == before


def test_bundle_export_and_verification_with_the_server_trust(api):
    doc = signed_credential("miner", [extraction("kolwezi-mine", "ore-b", 10, {"Co": 0.3})])
    assert api.post("/events", json=doc).status_code == 201
    api.app.state.ledger.sign_checkpoint()
    response = api.get("/bundles", params={"lot": lot_id("ore-b")})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jsonl")
    lines = response.content.splitlines()
    assert json.loads(lines[0])["type"] == "header" and json.loads(lines[-1])["type"] == "end"
    assert_problem(api.get("/bundles", params={"lot": lot_id("nothing")}), 400,
                   "BUNDLE_EXPORT_ERROR")
    headers = {"content-type": "application/jsonl"}
    assert_problem(api.post("/verify/bundle", content=response.content, headers=headers), 503,
                   "TRUST_NOT_CONFIGURED")
    ledger = api.app.state.ledger
    write_trust(TrustConfig().with_ledger(TrustedLedger(ledger.origin, ledger.verifier.vkey)),
                api.home / "trust.toml")
    report = api.post("/verify/bundle", content=response.content, headers=headers).json()
    assert report["ok"] is True, report
    tampered = response.content.replace(b"ore-b", b"ore-c", 1)
    assert api.post("/verify/bundle", content=tampered, headers=headers).json()["ok"] is False
    credential = lot_credential("miner", lot_id("ore-b"))
    result = api.post("/verify/credential", json=credential)
    assert result.status_code in (200, 422), result.text
