"""Integration: registry and events append through the Ledger, reject atomically, rebuild."""

from __future__ import annotations

import pytest
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.ledger.custody_store import (
    dump_state,
    open_state,
    rebuild,
    rows_with_prefix,
)
from batterytrace.ledger.log import Submission
from batterytrace.ledger.replay import replay_entries
from custody_factory import (
    did_for,
    extraction,
    key_for,
    lot_id,
    receiving,
    registered_ledger,
    shipping,
    sign_admin,
    sign_as,
    signed_credential,
)


@pytest.fixture
def ledger(tmp_path, database_url):
    led = registered_ledger(tmp_path / "home", database_url)
    yield led
    led.close()


def events(*docs):
    return [Submission("event", d) for d in docs]


def holding(led, lot, who):
    with led.storage.engine.connect() as conn:
        _, state = open_state(conn, led)
        return state.holding(lot_id(lot), did_for(who))


def test_events_append_and_duplicates_return_existing_entry(ledger):
    doc = signed_credential("miner", [extraction("kolwezi-mine", "ore", 1000, {"Co": 0.3})])
    [first] = ledger.append(events(doc))
    assert not first.duplicate and holding(ledger, "ore", "miner") == 1000
    [again] = ledger.append(events(doc))
    assert again.duplicate and again.seq == first.seq
    assert holding(ledger, "ore", "miner") == 1000


def test_rejected_batch_writes_nothing(ledger):
    ok = signed_credential("miner", [extraction("kolwezi-mine", "ore", 10, {"Co": 0.3})])
    bad = signed_credential("coop", [extraction("kolwezi-mine", "ore2", 10, {"Co": 0.3})])
    size = ledger.size
    with ledger.storage.engine.connect() as conn:
        before = dump_state(conn)
    with pytest.raises(BatterytraceError) as info:
        ledger.append(events(ok, bad))
    assert info.value.code == "FACILITY_NOT_OPERATED"
    assert ledger.size == size
    with ledger.storage.engine.connect() as conn:
        assert dump_state(conn) == before


def test_signature_must_be_a_valid_key_of_the_issuer(ledger):
    doc = signed_credential("miner", [extraction("kolwezi-mine", "ore", 10, {})])
    doc["credentialSubject"][0]["quantityList"][0]["quantity"] = 11
    with pytest.raises(BatterytraceError) as info:
        ledger.append(events(doc))
    assert info.value.code == "PROOF_VERIFICATION_ERROR"
    stolen = signed_credential("miner", [extraction("kolwezi-mine", "o", 1, {})],
                               key=key_for("coop"))
    with pytest.raises(BatterytraceError) as info:
        ledger.append(events(stolen))
    assert info.value.code == "KEY_NOT_VALID"


def test_schema_invalid_credential_rejected(ledger):
    doc = signed_credential("miner", [extraction("kolwezi-mine", "ore", 10, {})])
    doc["issuer"]["extra"] = True
    with pytest.raises(BatterytraceError) as info:
        ledger.append(events(doc))
    assert info.value.code == "SCHEMA_VALIDATION_ERROR"


def test_rotation_and_revocation_end_keys_at_their_position(ledger):
    miner = did_for("miner")
    old_vm = f"{miner}#{key_for('miner').public_multibase}"
    new = key_for("miner-2")
    rotation = {"type": "KeyRotation", "participant": miner, "newKey": new.public_multibase}
    # Needs both the admin key and the participant's current key.
    with pytest.raises(BatterytraceError) as info:
        ledger.append([Submission("registry", sign_admin(dict(rotation)))])
    assert info.value.code == "REGISTRY_UNAUTHORIZED"
    both = sign_as(sign_admin(dict(rotation)), "miner")
    [r] = ledger.append([Submission("registry", both)])
    old = signed_credential("miner", [extraction("kolwezi-mine", "ore", 1, {})])
    with pytest.raises(BatterytraceError) as info:
        ledger.append(events(old))
    assert info.value.code == "KEY_NOT_VALID"
    ledger.append(events(signed_credential("miner", [extraction("kolwezi-mine", "ore", 1, {})],
                                           key=new)))
    with ledger.storage.engine.connect() as conn:
        registry, _ = open_state(conn, ledger)
        assert registry.key(old_vm).valid_until == r.seq
        assert [m["publicKeyMultibase"] for m in
                registry.did_document(miner, r.seq)["verificationMethod"]] == \
            [new.public_multibase]
        assert registry.did_document(miner, r.seq - 1)["assertionMethod"] == [old_vm]
    revoke = sign_admin({"type": "KeyRevocation", "participant": miner,
                         "key": f"{miner}#{new.public_multibase}"})
    ledger.append([Submission("registry", revoke)])
    with pytest.raises(BatterytraceError) as info:
        ledger.append(events(signed_credential(
            "miner", [extraction("kolwezi-mine", "ore9", 1, {})], key=new)))
    assert info.value.code == "KEY_NOT_VALID"


def test_admin_recovery_is_marked(ledger):
    fleet = did_for("fleet")
    fresh = key_for("fleet-recovered")
    doc = sign_admin({"type": "KeyRecovery", "participant": fleet,
                      "newKey": fresh.public_multibase, "reason": "key lost"})
    ledger.append([Submission("registry", doc)])
    with ledger.storage.engine.connect() as conn:
        registry, _ = open_state(conn, ledger)
        current = [k for k in registry.keys_of(fleet) if k.valid_until is None]
        assert [k.recovery for k in current] == [True]


def test_rebuild_matches_live_state_and_replay(ledger):
    s = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery", lots=[("ore", 400)])
    ledger.append(events(
        signed_credential("miner", [extraction("kolwezi-mine", "ore", 1000, {"Co": 0.3})]),
        signed_credential("miner", [s]),
    ))
    ledger.append(events(signed_credential("refiner", [receiving(s, "nantong-refinery")])))
    with ledger.storage.engine.connect() as conn:
        live = dump_state(conn)
        holders = rows_with_prefix(conn, "holding", lot_id("ore"))
    assert sorted(v for _, v in holders) == [400, 600]
    assert rebuild(ledger) > 0
    with ledger.storage.engine.connect() as conn:
        assert dump_state(conn) == live
    entries = ((e.seq, e.kind, e.document) for e in ledger.iter_entries())
    _, state = replay_entries(entries).started()
    assert state.holding(lot_id("ore"), did_for("refiner")) == 400


def doc_examples() -> list[tuple[str, dict]]:
    """(issuer, event) of every example in docs/events.md, in order."""
    import json
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "events.md").read_text("utf-8")
    blocks = re.findall(r"<!-- issuer: (\w+) -->\n```json\n(.*?)\n```", text, re.S)
    return [(who, json.loads(body)) for who, body in blocks]


def test_documented_lifecycle_appends_and_replays(ledger):
    from batterytrace.ledger.event_schema import validate_dte_schema

    examples = doc_examples()
    assert len(examples) >= 25
    docs = [signed_credential(who, [event]) for who, event in examples]
    for doc in docs:
        validate_dte_schema(doc)
    results = ledger.append(events(*docs))
    assert not any(r.duplicate for r in results)
    entries = ((e.seq, e.kind, e.document) for e in ledger.iter_entries())
    _, state = replay_entries(entries).started()
    assert state.holding(lot_id("recovered-co-2031-001"), did_for("recycler")) > 0


def test_a_batch_holding_the_same_credential_twice_answers_the_repeat_with_its_entry(ledger):
    doc = signed_credential("miner", [extraction("kolwezi-mine", "twice", 10, {"Co": 0.1})])
    first, repeat = ledger.append(events(doc, doc))
    assert not first.duplicate and repeat.duplicate
    assert (repeat.seq, repeat.entry_hash) == (first.seq, first.entry_hash)
    assert ledger.size == first.seq + 1
