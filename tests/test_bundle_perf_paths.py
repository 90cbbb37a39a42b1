"""The fast paths of bundle and log verification give the answers of the slow ones: document
digests cut out of entry bytes, entries handed in parsed, verify_log handing entries back,
and event signatures checked in the precheck pool (several processes) instead of in order."""

from __future__ import annotations

import io
import json

import pytest
from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger import event_precheck
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.custody_store import digest, validators_for
from batterytrace.ledger.entry import GENESIS_PREV, Entry
from batterytrace.ledger.errors import EntryFormatError, LogChainError, LogEntryError
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.log_verify import parse_entry, verify_log
from batterytrace.verifier import bundle_verify
from batterytrace.verifier.bundle_verify import document_digest, verify_bundle, verify_entries
from batterytrace.verifier.trust import TrustConfig, TrustedLedger
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    lifecycle,
    signed_credential,
    standard_registry_docs,
)
from hypothesis import given
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=12,
)


@given(document=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
       seq=st.integers(1, 2**53 - 1))
def test_document_digest_is_the_digest_of_the_document(document, seq):
    entry = Entry.build(seq, "ab" * 32, "event", document)
    assert document_digest(entry) == digest(document)
    parsed = Entry.parse(entry.canonical)
    assert document_digest(parsed) == digest(document)


def test_document_digest_falls_back_without_canonical_bytes():
    entry = Entry(3, "ab" * 32, "event", "2026-01-01T00:00:00Z", {"a": 1}, b"not canonical")
    assert document_digest(entry) == digest({"a": 1})


def test_parse_entry_from_object_equals_parse_from_bytes():
    data = Entry.build(0, GENESIS_PREV, "genesis", {"type": "LedgerGenesis"}).canonical
    obj = json.loads(data)
    assert parse_entry((obj, data)) == Entry.parse(data)
    assert parse_entry((obj, data)).canonical == data
    for bad in ({**obj, "extra": 1}, {**obj, "v": 2}, {**obj, "seq": 1}, [obj]):
        with pytest.raises(EntryFormatError):
            parse_entry((bad, data))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("perf") / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, None, "ledger.example/perf", PUBLIC_URL)
    led.validators.update(validators_for(led))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    for _, issuer, event in lifecycle():
        led.append([Submission("event", signed_credential(issuer, [event]))])
    led.sign_checkpoint()
    trust = TrustConfig(ledgers=(TrustedLedger(led.origin, led.verifier.vkey),))
    buffer = io.BytesIO()
    export_bundle(led, buffer, all_entries=True)
    yield led, trust, buffer.getvalue().splitlines(keepends=True)
    led.close()


def test_verify_log_hands_back_each_entry_once_in_order(world):
    led, _, _ = world
    stored = list(led.iter_entry_bytes())
    seen: list[Entry] = []
    items = [(json.loads(d), d) if i % 2 else d for i, d in enumerate(stored)]
    summary = verify_log(items, [led.latest_checkpoint()[1]], [led.verifier],
                         led.origin, on_entry=seen.append)
    assert summary.size == len(stored) == len(seen)
    assert [e.seq for e in seen] == list(range(len(stored)))
    assert [e.canonical for e in seen] == stored


def test_verify_log_checks_objects_like_bytes(world):
    led, _, _ = world
    stored = list(led.iter_entry_bytes())
    notes = [led.latest_checkpoint()[1]]
    obj = json.loads(stored[5])
    obj["received"] = "2020-01-01T00:00:00Z"  # changed content, bytes recomputed honestly
    items = [(json.loads(d), d) for d in stored]
    items[5] = (obj, canonicalize(obj))
    with pytest.raises(LogChainError) as raised:
        verify_log(items, notes, [led.verifier], led.origin)
    assert raised.value.details["seq"] == 5
    items[5] = ({**obj, "v": 9}, canonicalize(obj))
    with pytest.raises(LogEntryError):
        verify_log(items, notes, [led.verifier], led.origin)


@pytest.fixture
def small_pool(monkeypatch):
    """The pool engages on a handful of events, over several windows."""
    monkeypatch.setattr(event_precheck, "POOL_THRESHOLD", 2)
    monkeypatch.setattr(bundle_verify, "REPLAY_WINDOW", 8)


def _failures(report):
    return [(f.code, f.seq, f.record) for f in report.failures]


def _tamper(lines, seq, change):
    out = list(lines)
    record = json.loads(out[seq + 1])  # the header is line 1, entry 0 line 2
    change(record["entry"]["document"])
    out[seq + 1] = json.dumps(record).encode() + b"\n"
    return out


def _event_seq(lines):
    return next(i for i, line in enumerate(lines[1:]) if b'"kind":"event"' in line) + 3


def _sign_other(doc):
    doc["proof"]["proofValue"] = "z" + "1" * 86


def _bad_schema(doc):
    doc["credentialSubject"][0]["eventTime"] = 17


def _other_issuer(doc):
    doc["issuer"]["id"] = doc["issuer"]["id"] + "x"


@pytest.mark.parametrize("change", [None, _sign_other, _bad_schema, _other_issuer])
def test_pool_and_in_order_paths_report_the_same(world, small_pool, change):
    _, trust, lines = world
    seq = _event_seq(lines)
    if change is not None:
        lines = _tamper(lines, seq, change)
    one = verify_bundle(lines, trust, processes=1)
    two = verify_bundle(lines, trust, processes=2)
    assert _failures(two) == _failures(one)
    assert (two.entries, two.replayed, two.signatures_verified, two.kinds) == (
        one.entries, one.replayed, one.signatures_verified, one.kinds)
    assert one.ok is (change is None)
    if change is not None:  # the edited event fails its own check first, then the chain
        assert one.failures[0].seq == seq
        assert one.failures[0].code != "LOG_CHAIN_BROKEN"
        assert one.failures[-1].code == "LOG_CHAIN_BROKEN"


def test_verify_entries_with_processes(world, small_pool):
    led, _, _ = world
    ledger = TrustedLedger(led.origin, led.verifier.vkey)
    notes = [led.latest_checkpoint()[1]]
    one = verify_entries(led.iter_entry_bytes(), ledger, notes)
    two = verify_entries(led.iter_entry_bytes(), ledger, notes, processes=2)
    assert one.ok and two.ok, (one.failures, two.failures)
    assert one.replayed == two.replayed > 20
    assert one.signatures_verified == two.signatures_verified == one.entries


@given(document=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
       proof=json_values)
def test_unsecured_canonical_is_the_document_without_its_proof(document, proof):
    from batterytrace.verifier.bundle_verify import unsecured_canonical

    secured = {**document, "proof": proof}
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    assert unsecured_canonical(secured, canonicalize(secured)) == canonicalize(unsecured)
    assert unsecured_canonical(unsecured, canonicalize(unsecured)) is None


def test_unsecured_canonical_refuses_bytes_not_laid_out_as_jcs():
    from batterytrace.verifier.bundle_verify import unsecured_canonical

    doc = {"a": 1, "proof": {"x": 1}, "type": ["T"]}
    assert unsecured_canonical(doc, b'{"a":1,"proof":{"x":1},"type":["T"]}') == (
        b'{"a":1,"type":["T"]}')
    assert unsecured_canonical(doc, b'{"a":1,"proof":{"x":2},"type":["T"]}') is None
    assert unsecured_canonical(doc, b'{"proof":{"x":1},"type":["T"]}') == b'{"type":["T"]}'
    assert unsecured_canonical(doc, b'"a":1,"proof":{"x":1},"type":["T"]}') is None


def _entry_record(line: bytes) -> bundle_verify.Record:
    return bundle_verify.Record(2, "entry", json.loads(line), line)


def test_entry_bytes_slices_the_exported_line_and_canonicalizes_any_other():
    data = Entry.build(4, "ab" * 32, "event", {"b": [1, "é"], "a": {"z": None}}).canonical
    exported = b'{"type":"entry","entry":' + data + b"}\n"
    assert bundle_verify.entry_bytes(_entry_record(exported)) == data
    # Re-serialized with spaces and escapes: the slice is not taken, JCS repairs it.
    spaced = json.dumps({"type": "entry", "entry": json.loads(data)}).encode() + b"\n"
    assert bundle_verify.entry_bytes(_entry_record(spaced)) == data
    reordered = b'{"entry":' + data + b',"type":"entry"}\n'
    assert bundle_verify.entry_bytes(_entry_record(reordered)) == data
    # Compact but keys out of order: not the encoding of its parse, so canonicalized.
    obj = json.loads(data)
    unsorted = json.dumps(dict(reversed(obj.items())), separators=(",", ":"),
                          ensure_ascii=False).encode()
    assert unsorted != data
    line = b'{"type":"entry","entry":' + unsorted + b"}\n"
    assert bundle_verify.entry_bytes(_entry_record(line)) == data


def test_the_collector_is_left_as_found_and_untouched_off_the_main_thread(world, monkeypatch):
    import gc
    import threading

    _, trust, lines = world
    seen: list[bool] = []
    real_apply = bundle_verify._Replay.apply

    def spying_apply(self, *args, **kwargs):
        seen.append(gc.isenabled())
        return real_apply(self, *args, **kwargs)

    monkeypatch.setattr(bundle_verify._Replay, "apply", spying_apply)
    assert gc.isenabled()
    assert verify_bundle(lines, trust).ok
    assert gc.isenabled() and seen and not any(seen)  # off while replaying, then restored
    gc.disable()
    try:
        assert verify_bundle(lines, trust).ok
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
    seen.clear()
    worker = threading.Thread(target=lambda: verify_bundle(lines, trust))
    worker.start()
    worker.join()
    assert seen and all(seen) and gc.isenabled()  # a server thread never switches it off
