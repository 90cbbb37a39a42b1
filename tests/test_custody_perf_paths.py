"""The fast paths of custody appends and replay give exactly what the plain paths give.

Canonical bytes reused from the signature check for the entry, the state encoder, the
worker pool, pipelined batches (`Ledger.append_batches`) and replay on 2 processes: same
bytes, same state, same first failing seq, nothing written on a refusal.
"""

from __future__ import annotations

import json

import pytest
from batterytrace.credentials.errors import BatterytraceError, ProofVerificationError
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger import event_precheck, pool
from batterytrace.ledger.custody_errors import LotExistsError
from batterytrace.ledger.custody_store import (
    dump_state,
    encode_value,
    plain_json,
)
from batterytrace.ledger.engine import check_event_document as precheck_event
from batterytrace.ledger.entry import Entry
from batterytrace.ledger.event_precheck import POOL_THRESHOLD, precheck_all
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.replay import replay_entries, replay_verify
from batterytrace.ledger.validators import validators_for
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    extraction,
    lifecycle,
    signed_credential,
    standard_registry_docs,
)


def _ledger(tmp_path, processes, name="home", database_url=None):
    home = tmp_path / f"{name}{processes}"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, database_url, "ledger.example/test", PUBLIC_URL)
    led.validators.update(validators_for(led, processes=processes))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    return led


def _extractions(n, tag="lot"):
    return [
        Submission("event", signed_credential(
            "miner", [extraction("kolwezi-mine", f"{tag}-{i}", 10, {"Co": 0.1})]))
        for i in range(n)
    ]


def _state(led):
    with led.storage.engine.connect() as conn:
        return dump_state(conn)


def _bodies(led):
    return [e.canonical for e in led.iter_entries()]


def test_entries_built_from_reused_bytes_equal_entry_build(tmp_path):
    led = _ledger(tmp_path, 2)
    led.append(_extractions(POOL_THRESHOLD + 4))
    events = [e for e in led.iter_entries() if e.kind == "event"]
    validator = led.validators["event"]
    assert validator.canonical(events[0].document) is None  # not a document it checked
    for entry in events:
        rebuilt = Entry.build(entry.seq, entry.prev, entry.kind, entry.document, entry.received)
        assert entry.canonical == rebuilt.canonical
    led.close()


def test_precheck_returns_the_documents_canonical_bytes():
    doc = _extractions(1)[0].document
    check = precheck_event(doc)
    assert json.loads(check.canonical) == doc
    assert Entry.build(1, "a" * 64, "event", doc).canonical.startswith(
        b'{"document":' + check.canonical + b',"kind":"event"'
    )


def test_state_encoder_writes_what_plain_json_wrote():
    stages = lifecycle()
    registry, state = replay_entries(
        [(0, "genesis", {"adminKey": ADMIN_KEY.did_key, "publicUrl": PUBLIC_URL})]
        + [(i + 1, "registry", d) for i, d in enumerate(standard_registry_docs())]
        + [(1000 + i, "event", signed_credential(issuer, [event]))
           for i, (_, issuer, event) in enumerate(stages)],
    ).started()
    values = [v for t in (registry, state) for rows in t.tables.values() for v in rows.values()
              if v is not None]
    assert len(values) > 50
    for value in values:
        old = json.dumps(plain_json(value), sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False)
        assert encode_value(value) == old


def test_state_encoder_spelled_out_values_match_the_encoder():
    """The directly spelled values (positions, holdings, used ids) and their look-alikes
    (bools, odd Decimals, a digest needing escapes, a non-int seq) read as plain_json wrote."""
    from decimal import Decimal

    from batterytrace.ledger.custody import UsedId

    values = [0, -7, 2**60, True, False, None, Decimal("10"), Decimal("-0.000"),
              Decimal("1E+3"), Decimal("0.1000"), UsedId("ab" * 32, 5),
              UsedId('q"\\\u00e9\x01', 0), UsedId("x", True), UsedId("x", Decimal(1))]
    for value in values:
        old = json.dumps(plain_json(value), sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False)
        assert encode_value(value) == old, value


def test_append_batches_equals_one_append_per_batch(tmp_path):
    batches = [_extractions(POOL_THRESHOLD + 8, f"b{b}") for b in range(3)]
    piped = _ledger(tmp_path, 2, "piped")
    results = list(piped.append_batches(batches))
    plain = _ledger(tmp_path, 2, "plain")
    for batch in batches:
        plain.append(batch)
    assert [len(r) for r in results] == [len(b) for b in batches]
    assert _state(piped) == _state(plain)
    assert [json.loads(b)["document"] for b in _bodies(piped)[1:]] == [
        json.loads(b)["document"] for b in _bodies(plain)[1:]
    ]  # (the genesis entries differ: each home has its own log key)
    piped.close()
    plain.close()


def test_a_rule_failure_after_the_pool_passed_refuses_the_whole_batch(tmp_path):
    """Every signature verifies in the pool, the serial rules refuse one event: nothing of
    the batch is written, and the next (pipelined) batch still appends."""
    led = _ledger(tmp_path, 2)
    batch = _extractions(POOL_THRESHOLD + 6)
    batch[30] = Submission("event", signed_credential(
        "miner", [extraction("kolwezi-mine", "lot-3", 5, {"Co": 0.1})]))  # lot-3 again
    assert all(not isinstance(c, BatterytraceError)
               for c in precheck_all([s.document for s in batch], 2))
    size, state, bodies = led.size, _state(led), _bodies(led)
    following = _extractions(POOL_THRESHOLD + 2, "next")
    with pytest.raises(LotExistsError) as caught:
        list(led.append_batches([batch, following]))
    assert caught.value.code == "LOT_EXISTS"
    assert led.size == size and _state(led) == state and _bodies(led) == bodies
    led.append(following)
    assert led.size == size + len(following)
    led.close()


def test_a_bad_signature_in_a_prepared_batch_writes_nothing_of_it(tmp_path):
    led = _ledger(tmp_path, 2)
    first = _extractions(POOL_THRESHOLD + 1, "first")
    second = _extractions(POOL_THRESHOLD + 1, "second")
    second[-1].document["credentialSubject"][0]["quantityList"][0]["quantity"] = 11
    with pytest.raises(ProofVerificationError):
        list(led.append_batches([first, second]))
    assert led.size == 1 + len(standard_registry_docs()) + len(first)
    led.close()


def test_a_prepared_run_for_other_documents_is_not_used(tmp_path):
    led = _ledger(tmp_path, 2)
    validator = led.validators["event"]
    validator.prepare(_extractions(POOL_THRESHOLD, "unused"))
    tampered = _extractions(POOL_THRESHOLD, "used")
    tampered[5].document["id"] = "urn:uuid:changed-after-signing"
    with pytest.raises(ProofVerificationError):
        led.append(tampered)
    led.append(_extractions(POOL_THRESHOLD, "used"))
    assert led.size == 1 + len(standard_registry_docs()) + POOL_THRESHOLD
    led.close()


def test_pool_serves_a_new_run_while_one_is_abandoned():
    docs = [s.document for s in _extractions(POOL_THRESHOLD * 4)]
    expected = [c.digest for c in precheck_all(docs, 1)]
    abandoned = precheck_all(docs, 2)
    next(abandoned)  # the caller stops here (a rule failed)
    changed = list(docs)
    changed[9] = dict(docs[9], id="urn:uuid:tampered")
    again = list(precheck_all(changed, 2))
    assert isinstance(again[9], ProofVerificationError)
    assert [c.digest for i, c in enumerate(again) if i != 9] == expected[:9] + expected[10:]
    assert [c.digest for c in abandoned] == expected[1:]


def test_replay_results_carry_no_canonical_bytes():
    docs = [s.document for s in _extractions(POOL_THRESHOLD)]
    for processes in (1, 2):
        with_bytes = list(precheck_all(docs, processes))
        without = list(precheck_all(docs, processes, canonical=False))
        assert all(c.canonical == b"" for c in without)
        assert [c.canonical for c in with_bytes] == [precheck_event(d).canonical for d in docs]
        assert [c.digest for c in without] == [c.digest for c in with_bytes]


@pytest.mark.parametrize("tamper", ["signature", "rule"])
def test_replay_on_two_processes_fails_at_the_same_seq(tmp_path, tamper):
    led = _ledger(tmp_path, 2)
    led.append(_extractions(POOL_THRESHOLD * 3))
    entries = [(e.seq, e.kind, e.document) for e in led.iter_entries()]
    led.close()
    good = [replay_verify(iter(entries), p).to_json() | {"processes": 0} for p in (1, 2)]
    assert good[0] == good[1] and good[0]["events"] == POOL_THRESHOLD * 3
    bad_seq = entries[POOL_THRESHOLD + 7][0]
    if tamper == "signature":
        entries[POOL_THRESHOLD + 7][2]["credentialSubject"][0]["quantityList"][0][
            "quantity"] = 12
        later = entries[-3][2]
        later["credentialSubject"][0]["quantityList"][0]["quantity"] = 13
        expected = ProofVerificationError
    else:  # a validly signed credential replayed twice under another id: same lot again
        doc = signed_credential("miner", [extraction("kolwezi-mine", "lot-2", 1, {"Co": 0.1})])
        entries[POOL_THRESHOLD + 7] = (bad_seq, "event", doc)
        expected = LotExistsError
    failures = []
    for processes in (1, 2):
        with pytest.raises(expected) as caught:
            replay_verify(iter(entries), processes)
        failures.append(caught.value.details["seq"])
    assert failures == [bad_seq, bad_seq]


def test_state_rows_written_with_driver_executemany(tmp_path, database_url):
    led = _ledger(tmp_path, 2, database_url=database_url)
    led.append(_extractions(POOL_THRESHOLD + 1))
    rows = _state(led)
    registry, state = replay_entries(
        (e.seq, e.kind, e.document) for e in led.iter_entries()).started()
    rebuilt = {(t, k if isinstance(k, str) else "\x1f".join(k)): encode_value(v)
               for tables in (registry, state) for t, rows in tables.tables.items()
               for k, v in rows.items() if v is not None}
    assert rows == rebuilt
    led.close()


def test_a_dead_worker_costs_speed_not_results():
    import os

    docs = [s.document for s in _extractions(POOL_THRESHOLD * 2)]
    expected = [c.digest for c in precheck_all(docs, 1)]
    list(precheck_all(docs, 2))
    workers = pool._POOLS[(1, os.getpid())]
    for process in workers.processes:
        process.kill()
        process.join()
    assert [c.digest for c in precheck_all(docs, 2)] == expected
    assert [c.digest for c in precheck_all(docs, 2)] == expected  # on a new pool
    assert pool._POOLS[(1, os.getpid())] is not workers


def test_append_batches_checks_the_next_batch_before_writing_this_one(tmp_path, monkeypatch):
    from batterytrace.ledger import validators

    led = _ledger(tmp_path, 2)
    batches = [_extractions(POOL_THRESHOLD, f"b{b}") for b in range(3)]
    tags = {id(s.document): f"b{b}" for b, batch in enumerate(batches) for s in batch}
    calls = []
    checks, writes = validators.precheck_all, validators.write_changes

    def spy_checks(documents, processes=None, **kw):
        calls.append("check " + tags.get(id(documents[0]), "?"))
        return checks(documents, processes, **kw)

    def spy_writes(connection, changes, seal=None):
        calls.append("write")
        return writes(connection, changes, seal)

    monkeypatch.setattr(validators, "precheck_all", spy_checks)
    monkeypatch.setattr(validators, "write_changes", spy_writes)
    list(led.append_batches(batches))
    assert calls == ["check b0", "check b1", "write", "check b2", "write", "write"]
    assert led.size == 1 + len(standard_registry_docs()) + 3 * POOL_THRESHOLD
    led.close()


def test_a_run_left_open_past_its_slot_still_gives_every_result():
    """More runs than the shared claim slots start while one run is left open: its slot is
    reused, and the open run does the rest of its chunks in this process, in order."""
    docs = [s.document for s in _extractions(POOL_THRESHOLD * 2)]
    expected = [c.digest for c in precheck_all(docs, 1)]
    left_open = precheck_all(docs, 2)
    first = next(left_open)
    for _ in range(pool._SLOTS + 1):
        assert [c.digest for c in precheck_all(docs[:POOL_THRESHOLD], 2)] == expected[
            :POOL_THRESHOLD]
    assert [first.digest] + [c.digest for c in left_open] == expected


def test_two_workers_and_an_unexpected_worker_failure(monkeypatch):
    """Three processes (two workers claiming from one job) give the in-process results; a
    chunk a worker fails on for another reason than a verdict is redone here, where the same
    failure is raised to the caller."""
    import os

    docs = [s.document for s in _extractions(POOL_THRESHOLD * 3)]
    docs[70] = dict(docs[70], id="urn:uuid:tampered")
    inline = list(precheck_all(docs, 1))
    key = (2, os.getpid())

    def drop_pool():
        workers = pool._POOLS.get(key)
        if workers is not None:
            workers.close()  # ends its workers, forgets it

    drop_pool()
    try:
        pooled = list(precheck_all(docs, 3))
        assert [type(r) for r in pooled] == [type(r) for r in inline]
        assert [r.digest for r in pooled if not isinstance(r, BatterytraceError)] == [
            r.digest for r in inline if not isinstance(r, BatterytraceError)]
        poison = docs[40]
        check = event_precheck.check_event_documents

        def failing_check(pairs, **kwargs):
            if any(d is poison or d == poison for d, _ in pairs):
                raise RuntimeError("not a verdict")
            return check(pairs, **kwargs)

        monkeypatch.setattr(event_precheck, "check_event_documents", failing_check)
        drop_pool()  # new workers, forked with the failing chunk
        with pytest.raises(RuntimeError, match="not a verdict"):
            list(precheck_all(docs, 3))
    finally:
        drop_pool()
