"""The HTTP API end to end: create_app on a temp home, SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import time
import uuid

import pytest
from batterytrace.ledger import merkle
from custody_factory import (
    did_for,
    extraction,
    facility_doc,
    item_id,
    key_for,
    lot_id,
    participant_doc,
    receiving,
    shipping,
    sign_as,
    signed_credential,
    transformation,
)
from test_api_support import (
    admin_request,
    api_client,
    assert_problem,
    db_state,
    expires_in,
    make_home,
)


@pytest.fixture
def api(tmp_path, database_url):
    home = make_home(tmp_path, database_url)
    with api_client(home, database_url) as client:
        client.home = home
        client.url = database_url
        client.state = lambda: db_state(home, database_url)
        yield client


def mine(client, lot="ore-1", kg=1000):
    doc = signed_credential("miner", [extraction("kolwezi-mine", lot, kg, {"Co": 0.3})])
    response = client.post("/events", json=doc)
    assert response.status_code == 201, response.text
    return doc, response.json()


def test_openapi_docs_and_log(api):
    spec = api.get("/openapi.json").json()
    for path in ("/participants", "/participants/{name}/did.json", "/events", "/lots/{lot_id}",
                 "/credentials", "/checkpoint", "/proofs/inclusion", "/bundles",
                 "/verify/bundle", "/settings"):
        assert path in spec["paths"], path
    assert api.get("/docs").status_code == 200
    assert api.get("/log").json()["origin"] == "ledger.example/test"


def test_register_participant_did_document_and_keys(api):
    new = key_for("newcomer")
    body = admin_request(participant_doc("newcomer", "Newcomer Ltd", ["recycler"], "FR", [new]))
    response = api.post("/participants", json=body)
    assert response.status_code == 201, response.text
    did = did_for("newcomer")
    assert response.json()["id"] == did
    shown = api.get("/participants/newcomer").json()
    assert shown["legalName"] == "Newcomer Ltd" and shown["keys"][0]["validUntil"] is None
    document = api.get("/participants/newcomer/did.json").json()
    assert document["id"] == did
    assert document["verificationMethod"][0]["publicKeyMultibase"] == new.public_multibase
    assert did in [p["id"] for p in api.get("/participants").json()]
    # Rotation: the admin AND the participant's current key.
    newer = key_for("newcomer-2")
    rotation = admin_request({"type": "KeyRotation", "participant": did,
                              "newKey": newer.public_multibase})
    before = api.state()
    assert_problem(api.post("/participants/newcomer/keys", json=rotation), 422,
                   "REGISTRY_UNAUTHORIZED")
    assert api.state() == before
    both = sign_as(rotation, "newcomer", new)
    assert api.post("/participants/newcomer/keys", json=both).status_code == 201
    document = api.get("/participants/newcomer/did.json").json()
    # Every key of the registry with its validity (issue 21); only the current one asserts.
    keys = document["verificationMethod"]
    assert keys[-1]["publicKeyMultibase"] == newer.public_multibase
    assert all("validUntil" in k["keyValidity"] for k in keys[:-1])
    assert document["assertionMethod"] == [f"{did}#{newer.public_multibase}"]


def test_facilities_and_settings(api):
    body = admin_request(facility_doc("new-depot", "trader", "depot", "CD"))
    assert api.post("/facilities", json=body).status_code == 201
    fid = body["id"]
    assert api.get(f"/facilities/{fid}").json()["operator"] == did_for("trader")
    assert fid in [f["id"] for f in api.get("/facilities").json()]
    assert_problem(api.get("/facilities/https://nowhere.example/x"), 404, "UNKNOWN_FACILITY")
    settings = admin_request({"type": "LedgerSettings",
                              "settings": {"massBalanceTolerance": "0.01"}})
    assert api.post("/settings", json=settings).status_code == 201
    assert api.get("/settings").json()["massBalanceTolerance"] == "0.01"
    # Admin-signed, but not a setting, or out of range: refused, nothing appended.
    for values in ({"evil": 1}, {"massBalanceTolerance": 1000}):
        before = api.state()
        refused = api.post("/settings", json=admin_request({"type": "LedgerSettings",
                                                            "settings": values}))
        assert_problem(refused, 400, "SETTINGS_INVALID")
        assert api.state() == before
    # Settings signed by a participant instead of the admin key.
    forged = sign_as({"type": "LedgerSettings", "settings": {"x": 1},
                      "nonce": uuid.uuid4().hex, "expires": expires_in(60)}, "miner")
    before = api.state()
    assert_problem(api.post("/settings", json=forged), 403, "ADMIN_SIGNATURE_REQUIRED")
    assert api.state() == before


def test_admin_requests_replayed_expired_unsigned_or_tampered_change_nothing(api):
    doc = participant_doc("latecomer", "Late Ltd", ["trader"], "BE")
    body = admin_request(doc)
    assert api.post("/participants", json=body).status_code == 201
    before = api.state()
    assert_problem(api.post("/participants", json=body), 409, "ADMIN_REQUEST_REPLAYED")
    # Same nonce, another document: still a replay.
    other = admin_request(participant_doc("other", "O", ["trader"], "BE"), nonce=body["nonce"])
    assert_problem(api.post("/participants", json=other), 409, "ADMIN_REQUEST_REPLAYED")
    expired = admin_request(participant_doc("expired", "E", ["trader"], "BE"),
                            expires=expires_in(-1))
    assert_problem(api.post("/participants", json=expired), 401, "ADMIN_REQUEST_EXPIRED")
    unsigned = {**participant_doc("nobody", "N", ["trader"], "BE"),
                "nonce": uuid.uuid4().hex, "expires": expires_in(60)}
    assert_problem(api.post("/participants", json=unsigned), 422, "MALFORMED_PROOF_ERROR")
    by_participant = sign_as(unsigned, "miner")
    assert_problem(api.post("/participants", json=by_participant), 422,
                   "REGISTRY_UNAUTHORIZED")
    tampered = {**admin_request(participant_doc("tamper", "T", ["trader"], "BE")),
                "legalName": "Someone Else"}
    assert_problem(api.post("/participants", json=tampered), 422, "PROOF_VERIFICATION_ERROR")
    no_nonce = admin_request(participant_doc("nonce", "N", ["trader"], "BE"))
    del no_nonce["nonce"]
    assert_problem(api.post("/participants", json=no_nonce), 400, "ADMIN_REQUEST_MALFORMED")
    wrong_type = admin_request(facility_doc("x-depot", "trader", "depot", "CD"))
    assert_problem(api.post("/participants", json=wrong_type), 400, "ADMIN_REQUEST_MALFORMED")
    assert api.state() == before


def test_events_lots_items_and_custody(api):
    doc, first = mine(api)
    assert first["duplicate"] is False
    again = api.post("/events", json=doc)
    assert again.status_code == 200 and again.json()["duplicate"] and \
        again.json()["seq"] == first["seq"]
    entry = api.get(f"/entries/{first['seq']}").json()
    assert entry["entry"]["document"]["id"] == doc["id"]
    event = doc["credentialSubject"][0]["id"]
    assert api.get(f"/events/{event}").json()["seq"] == first["seq"]
    lot = lot_id("ore-1")
    assert [e["seq"] for e in api.get("/events", params={"lot": lot}).json()] == [first["seq"]]
    assert api.get(f"/lots/{lot}/holders").json() == [{"holder": did_for("miner"),
                                                       "kg": "1000"}]
    # A batch: ship to the refiner, receipt, refine into cells-worth of sulphate.
    ship = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery", [("ore-1", 1000)])
    batch = [signed_credential("miner", [ship]),
             signed_credential("refiner", [receiving(ship, "nantong-refinery")]),
             signed_credential("refiner", [transformation(
                 "nantong-refinery", [("ore-1", 1000)], [("coso4-1", 1500, {"Co": 0.2})],
                 output_items=[])])]
    results = api.post("/events", json=batch)
    assert results.status_code == 201, results.text
    assert [r["seq"] for r in results.json()] == [first["seq"] + i for i in (1, 2, 3)]
    trace = api.get(f"/lots/{lot_id('coso4-1')}/trace").json()
    assert lot in trace["upstream"]
    assert len(api.get(f"/lots/{lot}/history").json()) == 4
    assert_problem(api.get(f"/lots/{lot_id('missing')}"), 404, "UNKNOWN_LOT")
    assert_problem(api.get(f"/items/{item_id('missing')}/trace"), 404, "UNKNOWN_ITEM")
    assert_problem(api.get("/events/urn:uuid:missing"), 404, "EVENT_NOT_FOUND")
    assert_problem(api.get("/entries/99999"), 404, "ENTRY_NOT_FOUND")


def test_items_view(api):
    mine(api, "ore-2", 100)
    cells = signed_credential("miner", [transformation(
        "kolwezi-mine", [("ore-2", 10)],
        output_items=[("cell-x", "cell", 0.9, {"Co": 0.06})])])
    response = api.post("/events", json=cells)
    assert response.status_code == 201, response.text
    item = item_id("cell-x")
    assert api.get(f"/items/{item}").json()["holder"] == did_for("miner")
    assert api.get(f"/items/{item}/holders").json()[0]["holder"] == did_for("miner")
    assert len(api.get(f"/items/{item}/history").json()) == 1


def test_custody_violations_and_bad_events_change_nothing(api):
    mine(api)
    before = api.state()
    # Shipping a lot the trader does not hold.
    ship = shipping("likasi-depot", "trader", "refiner", "nantong-refinery", [("ore-1", 10)])
    assert_problem(api.post("/events", json=signed_credential("trader", [ship])), 422,
                   "INSUFFICIENT_HOLDING")
    # More than held, in a batch whose first credential is valid: all or nothing.
    good = signed_credential("miner", [extraction("kolwezi-mine", "ore-9", 5, {"Co": 0.1})])
    over = signed_credential("miner", [shipping("kolwezi-mine", "miner", "refiner",
                                                "nantong-refinery", [("ore-1", 5000)])])
    response = api.post("/events", json=[good, over])
    assert response.status_code == 422 and response.json()["code"] in (
        "INSUFFICIENT_HOLDING", "NOT_HOLDER")
    # Appending as another participant: the miner's credential signed by the trader's key.
    doc = signed_credential("miner", [extraction("kolwezi-mine", "ore-7", 1, {"Co": 0.1})],
                            key=key_for("trader"))
    assert api.post("/events", json=doc).status_code in (400, 422)
    # Bad signature: changed after signing.
    tampered = signed_credential("miner", [extraction("kolwezi-mine", "ore-8", 1, {"Co": 0.1})])
    tampered["credentialSubject"][0]["quantityList"][0]["quantity"] = 2
    assert_problem(api.post("/events", json=tampered), 422, "PROOF_VERIFICATION_ERROR")
    # Unknown participant.
    ghost = sign_as(_ghost_credential(), "ghost")
    response = api.post("/events", json=ghost)
    assert response.status_code in (400, 422)
    assert response.json()["code"] in ("KEY_NOT_VALID", "UNKNOWN_PARTICIPANT",
                                       "SCHEMA_VALIDATION_ERROR")
    assert api.state() == before


def _ghost_credential():
    from custody_factory import credential

    return credential("ghost", [extraction("kolwezi-mine", "ore-g", 1, {"Co": 0.1})])


POSTS = ["/participants", "/facilities", "/settings", "/events", "/credentials",
         "/participants/miner/keys", f"/credentials/{'urn:uuid:x'}/status",
         "/verify/credential"]


@pytest.mark.parametrize("path", POSTS)
def test_bad_input_of_each_kind_on_every_post(api, path):
    before = api.state()
    headers = {"content-type": "application/json"}
    assert_problem(api.post(path, content=b'{"type": ', headers=headers), 400, "PARSING_ERROR")
    assert_problem(api.post(path, content=b"[1, 2", headers=headers), 400, "PARSING_ERROR")
    wrong = api.post(path, json="a string")
    assert_problem(wrong, 400, "REQUEST_VALIDATION_ERROR")
    deep = b"[" * 200 + b"]" * 200
    assert_problem(api.post(path, content=deep, headers=headers), 400, "JSON_TOO_DEEP")
    huge = b'{"a": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    assert_problem(api.post(path, content=huge, headers=headers), 413, "REQUEST_TOO_LARGE")
    assert api.state() == before


def test_routes_methods_and_internal_errors_are_problems(api, monkeypatch):
    assert_problem(api.get("/no/such/route"), 404, "NOT_FOUND")
    assert_problem(api.delete("/participants"), 405, "METHOD_NOT_ALLOWED")
    assert_problem(api.get("/entries/not-a-number"), 400, "REQUEST_VALIDATION_ERROR")
    ledger = api.app.state.ledger
    monkeypatch.setattr(type(ledger), "info", lambda self: 1 / 0)
    problem = assert_problem(api.get("/log"), 500, "INTERNAL_ERROR")
    assert "ZeroDivision" not in str(problem)


def wait_for_checkpoint(client, size):
    for _ in range(200):  # the background task signs every 0.05 s
        latest = client.get("/checkpoints/latest").json()
        if latest["size"] >= size:
            return latest
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of size {size} was signed")


def test_checkpoints_and_proofs(api):
    _, first = mine(api)
    size = first["seq"] + 1
    latest = wait_for_checkpoint(api, size)
    text = api.get("/checkpoint")
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == latest["note"] and latest["note"].startswith("ledger.example/test\n")
    assert api.get(f"/checkpoints/{latest['size']}").json()["root"] == latest["root"]
    assert api.get(f"/checkpoints/{latest['size']}/note").text == latest["note"]
    proof = api.get("/proofs/inclusion", params={"seq": first["seq"]}).json()
    merkle.verify_inclusion(
        bytes.fromhex(proof["leafHash"]), proof["index"], proof["size"],
        [base64.b64decode(h) for h in proof["hashes"]], bytes.fromhex(proof["root"]))
    consistency = api.get("/proofs/consistency", params={"old": 1, "new": size}).json()
    merkle.verify_consistency(1, size, bytes.fromhex(consistency["oldRoot"]),
                              bytes.fromhex(consistency["newRoot"]),
                              [base64.b64decode(h) for h in consistency["proof"]])
    tlog = api.get(f"/proofs/tlog/{first['seq']}")
    assert tlog.text.startswith("c2sp.org/tlog-proof@v1") and latest["note"] in tlog.text
    assert_problem(api.get("/checkpoints/3"), 404, "LEDGER_CHECKPOINT_NOT_SIGNED")
    assert_problem(api.get("/proofs/inclusion", params={"seq": 10**6}), 404, "ENTRY_NOT_FOUND")


@pytest.mark.parametrize("path", [
    "/entries/{n}", "/checkpoints/{n}", "/checkpoints/{n}/note", "/proofs/tlog/{n}",
    "/proofs/inclusion?seq={n}", "/proofs/consistency?old=1&new={n}",
])
def test_sequence_numbers_beyond_bigint_are_refused_as_problems(api, path):
    # Found by schemathesis: 2**63 reached SQLite and raised OverflowError (a 500).
    for n in (2**63, -1):
        response = api.get(path.format(n=n))
        assert_problem(response, 400, "REQUEST_VALIDATION_ERROR")
