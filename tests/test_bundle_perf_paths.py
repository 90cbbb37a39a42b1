"""The fast paths of bundle and log verification give the answers of the slow ones: document
digests cut out of entry bytes, entries handed in parsed, verify_log handing entries back,
and event signatures checked in the precheck pool (several processes) instead of in order."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from batterytrace.credentials.canonical import canonicalize, compact_is_canonical
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.keys import decode_public_multibase, write_key_file
from batterytrace.credentials.secured_bytes import compact_bytes
from batterytrace.ledger import event_precheck, merkle, pool
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.bundle_format import ENTRY_LINE_START
from batterytrace.ledger.engine import digest
from batterytrace.ledger.entry import GENESIS_PREV, Entry
from batterytrace.ledger.errors import EntryFormatError, LogChainError, LogEntryError
from batterytrace.ledger.events import parse_credential
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.log_verify import LogChain, parse_entry, verify_log
from batterytrace.ledger.validators import validators_for
from batterytrace.verifier import bundle_replay, bundle_windows
from batterytrace.verifier.bundle import BundleFormatError
from batterytrace.verifier.bundle_replay import document_digest
from batterytrace.verifier.bundle_verify import verify_bundle, verify_entries
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
    monkeypatch.setattr(bundle_windows, "WINDOW", 8)


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
    from batterytrace.credentials.secured_bytes import unsecured_canonical

    secured = {**document, "proof": proof}
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    found = unsecured_canonical(secured, canonicalize(secured))
    assert found in (None, canonicalize(unsecured))
    # None only where the C encoder's guess is not JCS (names sorted by code point, not
    # UTF-16 unit, beyond the BMP): the caller then canonicalizes.
    if compact_bytes(secured) == canonicalize(secured):
        assert found == canonicalize(unsecured)
    assert unsecured_canonical(unsecured, canonicalize(unsecured)) is None


def test_unsecured_canonical_refuses_bytes_not_laid_out_as_jcs():
    from batterytrace.credentials.secured_bytes import unsecured_canonical

    doc = {"a": 1, "proof": {"x": 1}, "type": ["T"]}
    assert unsecured_canonical(doc, b'{"a":1,"proof":{"x":1},"type":["T"]}') == (
        b'{"a":1,"type":["T"]}')
    assert unsecured_canonical(doc, b'{"a":1,"proof":{"x":2},"type":["T"]}') is None
    assert unsecured_canonical(doc, b'{"proof":{"x":1},"type":["T"]}') == b'{"type":["T"]}'
    assert unsecured_canonical(doc, b'"a":1,"proof":{"x":1},"type":["T"]}') is None


def _entry_record(line: bytes) -> bundle_replay.Record:
    return bundle_replay.Record(2, "entry", json.loads(line), line)


def test_entry_bytes_slices_the_exported_line_and_canonicalizes_any_other():
    data = Entry.build(4, "ab" * 32, "event", {"b": [1, "é"], "a": {"z": None}}).canonical
    exported = b'{"type":"entry","entry":' + data + b"}\n"
    assert bundle_replay.entry_bytes(_entry_record(exported)) == data
    # Re-serialized with spaces and escapes: the slice is not taken, JCS repairs it.
    spaced = json.dumps({"type": "entry", "entry": json.loads(data)}).encode() + b"\n"
    assert bundle_replay.entry_bytes(_entry_record(spaced)) == data
    reordered = b'{"entry":' + data + b',"type":"entry"}\n'
    assert bundle_replay.entry_bytes(_entry_record(reordered)) == data
    # Compact but keys out of order: not the encoding of its parse, so canonicalized.
    obj = json.loads(data)
    unsorted = json.dumps(dict(reversed(obj.items())), separators=(",", ":"),
                          ensure_ascii=False).encode()
    assert unsorted != data
    line = b'{"type":"entry","entry":' + unsorted + b"}\n"
    assert bundle_replay.entry_bytes(_entry_record(line)) == data


def test_the_collector_is_left_as_found_and_untouched_off_the_main_thread(world, monkeypatch):
    import gc
    import threading

    _, trust, lines = world
    seen: list[bool] = []
    real_apply = bundle_replay.BundleReplay.apply

    def spying_apply(self, *args, **kwargs):
        seen.append(gc.isenabled())
        return real_apply(self, *args, **kwargs)

    monkeypatch.setattr(bundle_replay.BundleReplay, "apply", spying_apply)
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


# --- an `all` bundle's lines checked in windows (bundle_windows), linked by LogChain ------


def _compact_line(record) -> bytes:
    """A record written as the exporter writes it (the windows' fast path takes it)."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _edit(lines, seq, change, *, compact=True):
    out = list(lines)
    record = json.loads(out[seq + 1])  # the header is line 1, entry 0 line 2
    change(record["entry"])
    out[seq + 1] = _compact_line(record) if compact else json.dumps(record).encode() + b"\n"
    return out


def _drop_last_entry(lines):
    """The last entry left out and the end record's count fixed: a log shorter than the
    signed checkpoint."""
    last = max(i for i, line in enumerate(lines) if line.startswith(b'{"type":"entry"'))
    out = lines[:last] + lines[last + 1:]
    end = next(i for i, line in enumerate(out) if json.loads(line)["type"] == "end")
    out[end] = _compact_line({"type": "end", "records": end})
    return out


@pytest.fixture
def tiny_windows(monkeypatch):
    """Windows of three lines, four ahead: a small bundle crosses many, and the workers and
    this process both take some (stealing)."""
    monkeypatch.setattr(bundle_windows, "WINDOW", 3)
    monkeypatch.setattr(bundle_windows, "AHEAD", 4)


def _set(path, value):
    def change(entry):
        target = entry
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _other_signature(entry):
    """The last base58 digit of the proof value changed: 64 bytes still, not the signature."""
    proof = entry["document"]["proof"]
    value = proof["proofValue"]
    proof["proofValue"] = value[:-1] + ("2" if value[-1] != "2" else "3")


_TAMPERS = {
    "signature": lambda lines, seq: _edit(lines, seq, _other_signature),
    "schema": lambda lines, seq: _edit(lines, seq, _set(
        ("document", "credentialSubject", 0, "eventTime"), 17)),
    "chain": lambda lines, seq: _edit(lines, seq, _set(("prev",), "ab" * 32)),
    "received": lambda lines, seq: _edit(lines, seq, _set(("received",),
                                                          "2020-01-01T00:00:00Z")),
    "seq": lambda lines, seq: _edit(lines, seq, _set(("seq",), seq + 1)),
    "entry field": lambda lines, seq: _edit(lines, seq, _set(("v",), 2)),
    "root": lambda lines, seq: _drop_last_entry(lines),
    "spaces": lambda lines, seq: _edit(lines, seq, lambda entry: None, compact=False),
}


@pytest.mark.parametrize("tamper", sorted(_TAMPERS))
def test_windows_report_the_first_failure_of_one_process(world, tiny_windows, tamper):
    _, trust, lines = world
    seq = _event_seq(lines)
    edited = _TAMPERS[tamper](lines, seq)
    one = verify_bundle(edited, trust, processes=1)
    two = verify_bundle(edited, trust, processes=2)
    assert _failures(two) == _failures(one)
    assert [f.line for f in two.failures] == [f.line for f in one.failures]
    assert (two.entries, two.replayed, two.signatures_verified, two.kinds, two.checks) == (
        one.entries, one.replayed, one.signatures_verified, one.kinds, one.checks)
    expected = {"signature": "PROOF_VERIFICATION_ERROR", "schema": "SCHEMA_VALIDATION_ERROR",
                "chain": "LOG_CHAIN_BROKEN", "received": "LOG_CHAIN_BROKEN",
                "seq": "LOG_ENTRY_INVALID", "entry field": "LOG_ENTRY_INVALID",
                "root": "LOG_ROOT_MISMATCH", "spaces": None}[tamper]
    assert one.ok is (expected is None), _failures(one)
    if expected is not None:
        assert expected in {f.code for f in one.failures}, _failures(one)


def test_windows_and_the_reference_path_agree_on_a_whole_bundle(world, tiny_windows):
    """Every entry re-serialized with spaces goes through the in-order reference code; the
    exported lines through the windows: the same report."""
    _, trust, lines = world
    spaced = [json.dumps(json.loads(line)).encode() + b"\n" for line in lines]
    reference = verify_bundle(spaced, trust, processes=1)
    for processes in (1, 2):
        fast = verify_bundle(lines, trust, processes=processes)
        assert fast.ok and reference.ok
        assert (fast.entries, fast.replayed, fast.signatures_verified, fast.kinds,
                fast.checks, fast.credentials_verified) == (
            reference.entries, reference.replayed, reference.signatures_verified,
            reference.kinds, reference.checks, reference.credentials_verified)


@pytest.mark.parametrize("processes", [1, 2])
def test_a_malformed_line_among_entries_is_unusable_either_way(world, tiny_windows, processes):
    _, trust, lines = world
    seq = _event_seq(lines)
    for bad, error in ((b'{"type":"entry","entry":{"document":\n', BundleFormatError),
                       (b'{"type":"entry","entry":[]}\n', BundleFormatError),
                       (b'{"type":"entry","entry":{},"proof":[]}\n', BundleFormatError),
                       (lines[seq + 1][:-1], BundleFormatError)):
        edited = [*lines[: seq + 1], bad, *lines[seq + 2:]]
        with pytest.raises(error) as raised:
            verify_bundle(edited, trust, processes=processes)
        assert raised.value.line == seq + 2


def test_check_line_vouches_only_for_exported_entry_lines(world):
    _, _, lines = world
    seq = _event_seq(lines)
    line = lines[seq + 1]
    data = line[len(ENTRY_LINE_START):-2]
    check = bundle_windows.check_line(line)
    assert check is not None
    found_seq, prev, kind, received, entry_hash, leaf, event_check = check
    credential, method, sha = (event_check.credential, event_check.verification_method,
                               event_check.digest)
    key = decode_public_multibase(event_check.public_multibase)
    entry = json.loads(data)
    assert (found_seq, prev, kind, received) == (seq, entry["prev"], "event", entry["received"])
    assert entry_hash == hashlib.sha256(data).digest() and leaf == merkle.leaf_hash(data)
    assert sha == digest(entry["document"])
    assert credential == parse_credential(entry["document"])
    assert method == entry["document"]["proof"]["verificationMethod"]
    assert key == decode_public_multibase(method.partition("#")[2])
    genesis = bundle_windows.check_line(lines[1])
    assert genesis is not None and genesis[2] == "genesis" and genesis[6] == json.loads(
        lines[1])["entry"]["document"]
    record = json.loads(line)
    unsorted = dict(reversed(record["entry"].items()))
    for other in (
        json.dumps(record).encode() + b"\n",  # spaces
        _compact_line({"type": "entry", "entry": unsorted}),  # keys out of order
        _compact_line({"entry": record["entry"], "type": "entry"}),  # members reordered
        line[:-1],  # no newline
        line.replace(b'"v":1}', b'"v":1 }'),
        _TAMPERS["signature"](lines, seq)[seq + 1],
        _TAMPERS["schema"](lines, seq)[seq + 1],
        _TAMPERS["entry field"](lines, seq)[seq + 1],
        b'{"type":"entry","entry":{"a":1}}\n',
    ):
        assert bundle_windows.check_line(other) is None, other[:80]


def test_a_window_judges_each_line_as_alone(world):
    # check_lines runs each step over the whole window: a line that fails one step (bad
    # JSON, not canonical, a bad signature, a schema error) must not shift or spoil the
    # verdicts of the lines around it.
    _, _, lines = world
    seq = _event_seq(lines)
    good = [line for line in lines if line.startswith(ENTRY_LINE_START)]
    bad = [
        b'{"type":"entry","entry":{"document":\n',
        b'{"type":"entry","entry":[]}\n',
        _TAMPERS["signature"](lines, seq)[seq + 1],
        _TAMPERS["schema"](lines, seq)[seq + 1],
        _TAMPERS["entry field"](lines, seq)[seq + 1],
        lines[seq + 1].replace(b'"v":1}', b'"v":1 }'),
        b'{"type":"entry","entry":{"document":"\xff"}}\n',  # not UTF-8
        b'{"type":"entry","entry":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",  # too deep
    ]
    window = [line for pair in zip(good, bad * len(good), strict=False) for line in pair]
    verdicts = bundle_windows.check_lines(window)
    assert verdicts == [bundle_windows.check_line(line) for line in window]
    assert [verdict is None for verdict in verdicts] == [i % 2 == 1 for i in range(len(window))]


def test_window_results_cross_processes_intact(world):
    _, _, lines = world
    entries = [line for line in lines if line.startswith(ENTRY_LINE_START)]
    here = [bundle_windows.check_line(line) for line in entries]
    assert list(pool.ordered_map(bundle_windows.check_lines, entries, 2, chunk=3)) == here
    assert sum(check is not None for check in here) == len(entries)


def _chain_outcome(items, notes, led):
    """(error class, seq) or the size, from LogChain fed what the windows compute."""
    try:
        chain = LogChain(notes, [led.verifier], led.origin)
        for position, data in enumerate(items):
            try:
                entry = Entry.parse(data)
            except EntryFormatError as exc:
                raise LogEntryError(position, f"malformed entry: {exc.message}") from exc
            chain.link(entry.seq, entry.prev, hashlib.sha256(data).digest(),
                       merkle.leaf_hash(data), entry)
        chain.end()
        return chain.count
    except BatterytraceError as error:
        return type(error), error.details.get("seq")


def _log_outcome(items, notes, led):
    try:
        return verify_log(items, notes, [led.verifier], led.origin).size
    except BatterytraceError as error:
        return type(error), error.details.get("seq")


@given(data=st.data())
def test_hash_chain_decides_as_verify_log(world, data):
    led, _, _ = world
    stored = list(led.iter_entry_bytes())
    notes = [led.latest_checkpoint()[1]]
    items = list(stored)
    for _ in range(data.draw(st.integers(0, 2), label="edits")):
        i = data.draw(st.integers(0, len(items) - 1), label="at")
        edit = data.draw(st.sampled_from(["drop", "swap", "prev", "received", "dup"]))
        if edit == "drop":
            del items[i]
        elif edit == "dup":
            items.insert(i, items[i])
        elif edit == "swap" and i + 1 < len(items):
            items[i], items[i + 1] = items[i + 1], items[i]
        elif edit in ("prev", "received") and i > 0:
            obj = json.loads(items[i])
            obj[edit] = "ab" * 32 if edit == "prev" else "2020-01-01T00:00:00Z"
            items[i] = canonicalize(obj)
    assert _chain_outcome(items, notes, led) == _log_outcome(items, notes, led)


class _LostJob:
    """A job whose worker died: nothing will come, the window is checked here."""

    def __init__(self, fn, items) -> None:
        self.fn, self.items = fn, items

    def done(self, index):
        return True

    def steal(self):
        return False

    def take(self, index, idle=None):
        return self.fn(self.items)

    def close(self):
        pass


class _DoneJob(_LostJob):
    """A job a worker did (synchronously, through the real task function)."""

    def __init__(self, fn, items) -> None:
        super().__init__(fn, items)
        self.results = fn(items)

    def take(self, index, idle=None):
        return self.results


class _FlakyPool:
    """A pool whose workers die now and then: a job refused at submission, a job lost, a
    job done."""

    def __init__(self) -> None:
        self.calls = 0

    def submit(self, fn, items, chunk, args=()):
        self.calls += 1
        if self.calls % 3 == 1:
            return None
        return (_LostJob if self.calls % 3 == 2 else _DoneJob)(fn, items)


def test_windows_survive_dying_workers(world, tiny_windows, monkeypatch):
    _, trust, lines = world
    flaky = _FlakyPool()
    monkeypatch.setattr(pool, "has_pool", lambda workers: True)
    monkeypatch.setattr(pool, "get_pool", lambda workers: flaky)
    one = verify_bundle(lines, trust, processes=1)
    two = verify_bundle(lines, trust, processes=2)
    assert flaky.calls >= 6
    assert two.ok and (two.entries, two.replayed, two.signatures_verified) == (
        one.entries, one.replayed, one.signatures_verified)


def test_windows_on_a_pool_whose_workers_were_killed(world, tiny_windows):
    _, trust, lines = world
    one = verify_bundle(lines, trust, processes=1)
    assert verify_bundle(lines, trust, processes=2).ok
    workers = pool.get_pool(1)
    for process in workers.processes:
        process.kill()
        process.join()
    for _ in range(2):  # on the dead pool, then on a new one
        two = verify_bundle(lines, trust, processes=2)
        assert two.ok and (two.entries, two.replayed, two.signatures_verified) == (
            one.entries, one.replayed, one.signatures_verified)
    assert pool.get_pool(1) is not workers


_risky_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=10,
)


@given(_risky_values)
def test_compact_is_canonical_never_vouches_for_compact_json_that_is_not_jcs(value):
    # Floats like 10.0 or 1e-05, integers beyond 2^53, astral keys: the C encoder's compact
    # form differs from JCS (or JCS refuses the value); compact_is_canonical must say so.
    encoded = compact_bytes(value)
    if encoded is None or not compact_is_canonical(value):
        return
    assert canonicalize(value) == encoded


@pytest.mark.parametrize("spelling", [b"10.0", b"1e-05", b"12345678901234567"])
def test_a_non_jcs_number_in_an_exported_line_is_not_taken_as_is(spelling):
    # A compact line whose numbers are not JCS (re-serialized by some tool): its bytes are
    # not the ledger's, so neither path may hash them as they stand.
    data = Entry.build(4, "ab" * 32, "event", {"n": 7}).canonical
    line = b'{"type":"entry","entry":' + data.replace(b'"n":7', b'"n":' + spelling) + b"}\n"
    assert bundle_windows.check_line(line) is None
    record = _entry_record(line)
    try:
        assert bundle_replay.entry_bytes(record) != line[len(b'{"type":"entry","entry":'):-2]
    except BatterytraceError:
        pass  # beyond 2^53: JCS refuses the number (reported as an inclusion failure)
