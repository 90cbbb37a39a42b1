"""Fast custody appends: prefetch, registry cache, process pool, in-order positions, replay."""

from __future__ import annotations

import pytest
from batterytrace.credentials.errors import BatterytraceError, ProofVerificationError
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger import custody_store
from batterytrace.ledger.custody_store import (
    StoredRegistry,
    StoredState,
    dump_state,
)
from batterytrace.ledger.event_precheck import POOL_THRESHOLD, precheck_all
from batterytrace.ledger.log import Ledger, Submission, validate_runs
from batterytrace.ledger.replay import replay_verify
from batterytrace.ledger.validators import validators_for
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    extraction,
    facility_doc,
    sign_admin,
    signed_credential,
    standard_registry_docs,
)


def _ledger(tmp_path, processes, database_url=None):
    home = tmp_path / f"home{processes}"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, database_url, "ledger.example/test", PUBLIC_URL)
    led.validators.update(validators_for(led, processes=processes))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    return led


@pytest.fixture
def ledger(tmp_path, database_url):
    led = _ledger(tmp_path, 1, database_url)
    yield led
    led.close()


def _extractions(n, tag="lot"):
    return [
        Submission("event", signed_credential(
            "miner", [extraction("kolwezi-mine", f"{tag}-{i}", 10, {"Co": 0.1})]))
        for i in range(n)
    ]


@pytest.fixture
def loads(monkeypatch):
    """Counts the single-row lookups of the stored registry and state."""
    counts = {"registry": 0, "state": 0}

    def counting(name, original):
        def _load(self, table, key):
            counts[name] += 1
            return original(self, table, key)
        return _load

    monkeypatch.setattr(StoredRegistry, "_load", counting("registry", StoredRegistry._load))
    monkeypatch.setattr(StoredState, "_load", counting("state", StoredState._load))
    return counts


def test_batch_reads_its_rows_by_prefetch_not_one_lookup_per_key(ledger, loads):
    ledger.append(_extractions(20))
    assert loads["state"] == 0
    assert loads["registry"] == 0


def test_registry_kept_between_batches_until_a_registry_entry(ledger, loads, monkeypatch):
    prefetched = []
    original = StoredRegistry.prefetch

    def spy(self, wanted):
        read = original(self, wanted)
        prefetched.append(read)
        return read

    monkeypatch.setattr(StoredRegistry, "prefetch", spy)
    ledger.append(_extractions(3, "a"))
    ledger.append(_extractions(3, "b"))
    assert prefetched[0] > 0 and prefetched[1] == 0  # the second batch reads no registry row
    # A new facility: the cache must not hide it.
    ledger.append([Submission("registry", sign_admin(facility_doc("likasi-2", "miner", "mine",
                                                                  "CD")))])
    event = signed_credential("miner", [extraction(
        "likasi-2", "new-site-ore", 5, {"Co": 0.1})])
    ledger.append([Submission("event", event)])
    assert prefetched[-1] > 0


def test_pool_and_in_process_give_the_same_state(tmp_path):
    docs = _extractions(POOL_THRESHOLD + 5)
    states = []
    for processes in (1, 2):
        led = _ledger(tmp_path, processes)
        led.append(docs)
        with led.storage.engine.connect() as conn:
            states.append(dump_state(conn))
        led.close()
    assert states[0] == states[1] and len(states[0]) > POOL_THRESHOLD


def test_pool_reports_the_first_bad_signature_and_writes_nothing(tmp_path, database_url):
    led = _ledger(tmp_path, 2, database_url)
    docs = _extractions(POOL_THRESHOLD + 10)
    docs[40].document["credentialSubject"][0]["quantityList"][0]["quantity"] = 11
    size = led.size
    with pytest.raises(ProofVerificationError):
        led.append(docs)
    assert led.size == size
    led.close()


def test_precheck_all_keeps_order_with_work_stealing():
    subs = _extractions(POOL_THRESHOLD * 3)
    docs = [s.document for s in subs]
    docs[7]["id"] = "urn:uuid:tampered"
    inline = list(precheck_all(docs, 1))
    pooled = list(precheck_all(docs, 2))
    assert [type(r) for r in inline] == [type(r) for r in pooled]
    assert isinstance(pooled[7], ProofVerificationError)
    assert [r.digest for r in pooled if not isinstance(r, BatterytraceError)] == [
        r.digest for r in inline if not isinstance(r, BatterytraceError)
    ]


def test_mixed_batch_positions_are_exact_when_validated_in_order(ledger):
    """[settings-like entry, event]: the event's recorded seq is the one it will get."""
    event = _extractions(1)[0]
    other = Submission("note", {"type": "Note"})  # a kind without a validator
    batch = [other, event, other, event]  # the second event is a duplicate of the first
    with ledger.storage.write() as (session, head):
        decisions = validate_runs(ledger.validators, session, head.size, batch)
        credential_id = event.document["id"]
        row = session.connection().execute(
            custody_store._SELECT_VALUE, {"tbl": "credential", "key": credential_id}
        ).scalar()
        session.rollback()
    assert decisions == [None, None, None, head.size + 1]
    assert f'"seq":{head.size + 1}' in row


def test_replay_verify_with_one_and_two_processes(tmp_path):
    led = _ledger(tmp_path, 1)
    led.append(_extractions(POOL_THRESHOLD + 3))
    reports = [replay_verify(led.iter_entries(), processes) for processes in (1, 2)]
    assert reports[0].to_json() | {"processes": 0} == reports[1].to_json() | {"processes": 0}
    assert reports[0].events == POOL_THRESHOLD + 3 and reports[0].lots == POOL_THRESHOLD + 3
    entries = [(e.seq, e.kind, e.document) for e in led.iter_entries()]
    led.close()
    entries[-5][2]["credentialSubject"][0]["quantityList"][0]["quantity"] = 99
    with pytest.raises(ProofVerificationError) as caught:
        replay_verify(entries, 2)
    assert caught.value.details["seq"] == entries[-5][0]
