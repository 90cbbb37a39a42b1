"""Offline verification of an evidence bundle (pure: no storage, no network).

Trust comes only from the trust file: the checkpoint must be signed by a ledger key it lists
(fails closed). Then, streaming the entries: each inclusion proof against the checkpoint (or,
for an `all` bundle, the whole log: verify_log's chain and root, `ledger.log_verify.LogChain`, fed
by windows of lines parsed and checked in worker processes, `bundle_windows`); every entry's
signature with the signer's keys valid at that log position (registry replay); the custody
rules of `ledger.custody` replayed over the events; anchors replayed with `ledger.anchors`.
In a closure bundle, lots and items outside the closure are projected out of the events that
also touch it (those entries are counted, not fully replayed), and the subject's upstream must
reach extraction inside the bundle. Last, the credentials: proof, schema, validity at the log
position of the first event about their subject, anchor digest and revocation, status lists,
accreditation path to a governance root of the trust file.

Failures go into the Report (record, reason, code); malformed bundles raise BundleFormatError.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from batterytrace.credentials.canonical import canonicalize, compact_is_canonical
from batterytrace.credentials.data_integrity import parse_date_time, verify_proofs
from batterytrace.credentials.errors import (
    BatterytraceError,
    VerificationError,
)
from batterytrace.credentials.secured_bytes import compact as _compact
from batterytrace.ledger import merkle
from batterytrace.ledger.anchors import AnchorBook, AnchorRecord, IssuerResolver
from batterytrace.ledger.bundle_format import (
    BUNDLE_VERSION,
    CREDENTIAL,
    DID_DOCUMENT,
    ENTRY,
    ENTRY_LINE_END,
    ENTRY_LINE_START,
    PRESENTATION,
    REDACTED,
    STATUS_LIST,
    credential_subject_ids,
    entry_of_line,
    event_subjects,
)
from batterytrace.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteVerifier,
    open_checkpoint,
)
from batterytrace.ledger.collector import automatic_collection_paused
from batterytrace.ledger.custody import CustodyState, apply_credential
from batterytrace.ledger.custody_errors import MassBalanceError
from batterytrace.ledger.engine import (
    EventCheck,
    Replay,
    digest,
    verified_event,
)
from batterytrace.ledger.entry import Entry, document_slice
from batterytrace.ledger.errors import LogEntryError
from batterytrace.ledger.event_precheck import precheck_all
from batterytrace.ledger.events import DteCredential, TraceEvent
from batterytrace.ledger.log_verify import (
    EntryInput,
    LogChain,
    check_genesis,
    parse_entry,
    verify_log,
)
from batterytrace.ledger.registry import Registry
from batterytrace.ledger.switch_interval import quick_thread_switches

from .bundle import (
    BundleFormatError,
    BundleReader,
    Header,
    Record,
    Trailer,
    decode_hashes,
    read_bundle,
)
from .bundle_windows import LineCheck, WindowChecks
from .errors import (
    BundleClosureError,
    BundleConsistencyError,
    BundleEntryOrderError,
    BundleInclusionError,
    BundleUntrustedLedgerError,
    CredentialAnchorError,
    CredentialSubjectMismatchError,
    PresentationError,
)
from .report import Report
from .trust import TrustConfig, TrustedLedger

BUNDLE_DIGEST = "bundleDigest"
# Entries replayed together: with more than one process, their event schemas and signatures
# are checked in one run of the precheck pool. Bounds the documents held (~1.5 KB each).
REPLAY_WINDOW = 1024


@dataclass(frozen=True)
class CredentialContext:
    """What the log says about a credential's use: the first entry about its subject."""

    position: int
    at: datetime
    registry: Registry
    anchors: AnchorBook
    trust: TrustConfig
    status_lists: Mapping[str, Mapping[str, Any]]
    did_documents: Mapping[str, Mapping[str, Any]]
    accreditations: tuple[Mapping[str, Any], ...]
    notes: list[str] = field(default_factory=list)  # warnings for the report


CredentialCheck = Callable[[Mapping[str, Any], CredentialContext], list[str]]


def verify_bundle(
    lines: Iterable[bytes],
    trust: TrustConfig,
    *,
    since: bytes | None = None,
    challenge: str | None = None,
    credential_check: CredentialCheck | None = None,
    processes: int = 1,
) -> Report:
    """Verify a bundle (its raw lines) against the trust configuration. Returns the report;
    raises BundleFormatError (exit 2) when the bundle cannot be read. `processes` (this one
    included) read, parse and check the entry lines of an `all` bundle (`bundle_windows`);
    the chain and the replay run here, in log order."""
    reader = BundleReader()
    line_iter = iter(lines)
    first = next(line_iter, None)
    if first is None:
        reader.finish()  # raises: the bundle is empty
    header = reader.feed(first)  # type: ignore[arg-type]
    assert isinstance(header, Header)
    report = Report(origin=header.origin, scope=header.scope, subject=header.subject)
    checkpoint = _open_checkpoint(header, trust, since, report)
    if checkpoint is None:
        return report
    report.checkpoint_size = checkpoint.size
    ledger = trust.ledger(header.origin)
    assert ledger is not None  # _open_checkpoint required it
    replay = _Replay(header, checkpoint, report, ledger.verifier_key, processes)
    tail: list[Record] = []
    trailer: Trailer | None = None
    presentation: Record | None = None
    # The replay's state only grows, and the collector's full passes over it (each time it
    # grew by a quarter) find no garbage there: ~12 % of the time at 10^5 entries. Its
    # automatic passes are paused (main thread only) and `_Replay.apply` collects the young
    # generations every REPLAY_WINDOW entries instead. With worker processes, the threads
    # that feed them get the GIL promptly (ledger/switch_interval.py).
    feeding = quick_thread_switches() if processes > 1 else nullcontext()
    with automatic_collection_paused(), feeding:
        if header.scope == "all":
            stash, line_iter = replay.verify_lines(reader, line_iter, ledger.note_verifier)
            entries = _EntryStream(_records(reader, line_iter, stash), True)
        else:
            entries = _EntryStream(_records(reader, line_iter), False)
            for record in entries:
                replay.closure_entry(record)
    for item in entries.rest():
        if isinstance(item, Trailer):
            trailer = item
        elif item.type == PRESENTATION:
            presentation = item
        else:
            tail.append(item)
    replay.finish()
    _check_credentials(tail, replay, trust, credential_check or default_credential_check)
    assert trailer is not None  # read_bundle raises when the end record is missing
    _check_presentation(presentation, trailer, challenge, replay, report)
    return report


def _records(
    reader: BundleReader, lines: Iterator[bytes], first: Record | Trailer | None = None
) -> Iterator[Record | Trailer]:
    """`first` (a record already read), then the records of the remaining lines."""
    if first is not None:
        yield first
    for raw in lines:
        yield reader.feed(raw)  # type: ignore[misc]  # the header was the first line
    reader.finish()


def verify_entries(
    entries: Iterable[bytes],
    ledger: TrustedLedger,
    checkpoints: Iterable[bytes],
    *,
    progress: Callable[[int], None] | None = None,
    processes: int = 1,
) -> Report:
    """Verify a whole log from its entries' canonical bytes (entry 0 first) with the code of
    an `all` bundle: hash chain and the root of every signed checkpoint note (`checkpoints`,
    increasing sizes, signed by `ledger`'s key), every signature with the key valid at its
    position, the registry, settings, anchors and custody rules replayed.

    `batterytrace ledger verify` feeds it the database. Event signatures are checked on
    `processes` processes (this one included). Returns the report (failures with their typed
    errors in `report.errors`); never raises for a bad entry."""
    origin = ledger.origin
    report = Report(origin=origin, scope="all")
    header = Header(BUNDLE_VERSION, origin, "all", None, b"")
    replay = _Replay(header, None, report, ledger.verifier_key, processes)
    replay.verify_bytes(((data, None) for data in entries), checkpoints, ledger.note_verifier,
                        progress)
    replay.finish()
    return report


# --- checkpoint ---------------------------------------------------------------------------


def _open_checkpoint(
    header: Header, trust: TrustConfig, since: bytes | None, report: Report
) -> Checkpoint | None:
    ledger = trust.ledger(header.origin)
    if ledger is None:
        report.fail("header", BundleUntrustedLedgerError(
            f"no [[ledger]] with origin {header.origin!r} in the trust file"), line=1)
        return None
    verifier = ledger.note_verifier
    try:
        checkpoint = open_checkpoint(header.checkpoint, [verifier], header.origin)
    except CheckpointError as error:
        report.fail("header.checkpoint", error, line=1)
        return None
    report.checks.append("checkpoint signature")
    if since is not None:
        try:
            old = open_checkpoint(since, [verifier], header.origin)
            _check_consistency(old, checkpoint, header)
            report.checks.append(f"consistency from size {old.size}")
        except VerificationError as error:
            report.fail("header.consistency", error, line=1)
    return checkpoint


def _check_consistency(old: Checkpoint, new: Checkpoint, header: Header) -> None:
    if old.size > new.size:
        raise BundleConsistencyError(f"the bundle's checkpoint ({new.size}) is older than the "
                                     f"auditor's ({old.size})")
    if old.size == new.size:
        if old.root != new.root:
            raise BundleConsistencyError(f"two different roots for size {old.size}")
        return
    if header.consistency_from != old.size:
        raise BundleConsistencyError(f"the bundle holds no consistency proof from size "
                                     f"{old.size} (export with --consistency-from {old.size})")
    try:
        merkle.verify_consistency(old.size, new.size, old.root, new.root,
                                  list(header.consistency_proof))
    except merkle.ProofError as error:
        raise BundleConsistencyError(f"history rewritten: {error.message}") from error


# --- entries ------------------------------------------------------------------------------


class _EntryStream:
    """The entry records of the bundle, then (through `rest`) whatever follows them."""

    def __init__(self, records: Iterator[Header | Record | Trailer], with_proofs: bool) -> None:
        self.records = records
        self.all = with_proofs
        self.stash: Record | Trailer | None = None
        self.done = False

    def __iter__(self) -> Iterator[Record]:
        if self.done:
            return
        for item in self.records:
            if isinstance(item, Record) and item.type == ENTRY:
                if ("proof" in item.data) == self.all:
                    raise BundleFormatError(item.line, "an entry of an `all` bundle has no "
                                            "proof; every other entry has one")
                yield item
            else:
                self.stash = item  # type: ignore[assignment]
                break
        self.done = True

    def rest(self) -> Iterator[Record | Trailer]:
        for _ in self:  # entries not consumed (verification stopped early)
            pass
        if self.stash is not None:
            yield self.stash
        yield from self.records  # type: ignore[misc]


def entry_bytes(record: Record) -> bytes:
    """The canonical bytes of an entry record (what the inclusion proof covers).

    The exporter embeds them verbatim in an `all` bundle's entry line: the slice is taken
    when the parsed entry encodes back to exactly it (sorted keys, no spaces) and holds none
    of the values where that encoding and JCS differ (`compact_is_canonical`), which costs one
    C encoding instead of a canonicalization; otherwise the entry is canonicalized."""
    sliced = entry_of_line(record.raw)  # None for a closure entry (its proof follows)
    if sliced is not None:
        try:
            entry = record.data["entry"]
            if compact_is_canonical(entry) and _compact(entry).encode() == sliced:
                return sliced
        except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
            pass  # canonicalize reports it
    try:
        return canonicalize(record.data["entry"])
    except BatterytraceError as error:
        raise BundleInclusionError(f"entry cannot be canonicalized: {error.message}") from error


def document_bytes(entry: Entry) -> bytes | None:
    """The canonical bytes of the entry's document, a slice of the entry's."""
    return document_slice(entry.canonical, entry.seq, entry.prev, entry.kind, entry.received)


def document_digest(entry: Entry) -> str:
    """`custody_store.digest(entry.document)` without canonicalizing the document again."""
    data = document_bytes(entry)
    if data is None:
        return digest(entry.document)  # the slow way
    return hashlib.sha256(data).hexdigest()


class _Replay:
    """Registry, settings, custody and anchors replayed entry by entry."""

    def __init__(
        self, header: Header, checkpoint: Checkpoint | None, report: Report, vkey: str,
        processes: int = 1,
    ) -> None:
        self.header = header
        self.processes = processes
        # A window submitted to the precheck pool, applied after the next one is submitted.
        self.pending: tuple[list[tuple[Entry, int | None]],
                            Iterator[EventCheck | BatterytraceError]] | None = None
        self.vkey = vkey
        self.checkpoint = checkpoint
        self.report = report
        self.engine = Replay()
        self.last_seq = -1
        self.last_received = ""
        self.closure_mode = header.scope != "all"
        # After an entry failed its proof or order, replaying would only report consequences
        # of the gap: later entries get their inclusion proofs checked, nothing more.
        self.broken = False
        self.first_use: dict[str, tuple[int, str]] = {}  # subject -> (seq, received)
        self.foreign_sources: dict[str, set[str]] = {}

    @property
    def registry(self) -> Registry | None:
        return self.engine.registry

    @property
    def state(self) -> CustodyState | None:
        return self.engine.state

    @property
    def anchors(self) -> AnchorBook:
        return self.engine.anchors

    # --- closure bundles: one inclusion proof per entry

    def closure_entry(self, record: Record) -> None:
        where = f"entry line {record.line}"
        seq = record.data["entry"].get("seq")
        proof = decode_hashes(record.data["proof"], record.line, "proof")
        assert self.checkpoint is not None  # a closure bundle is read against its checkpoint
        try:
            data = entry_bytes(record)
            if type(seq) is not int or seq < 0:
                raise BundleInclusionError("entry has no valid seq")
            merkle.verify_inclusion(merkle.leaf_hash(data), seq, self.checkpoint.size,
                                    list(proof), self.checkpoint.root)
        except merkle.ProofError as error:
            self.broken = True
            self.report.fail(where, BundleInclusionError(error.message), record.line, seq)
            return
        except BundleInclusionError as error:
            self.broken = True
            self.report.fail(where, error, record.line)
            return
        if not self.broken and (seq <= self.last_seq or (self.last_seq < 0 and seq != 0)):
            self.broken = True
            self.report.fail(where, BundleEntryOrderError(
                f"entry {seq} after entry {self.last_seq} (log order, entry 0 first)"),
                record.line, seq)
            return
        entry = parse_entry((record.data["entry"], data))  # included: written by the ledger
        if seq == 0:
            try:
                check_genesis(entry, self.header.origin, {self.vkey})
            except VerificationError as error:
                self.report.fail(where, error, record.line, 0)
                return
        self.apply(entry, record.line)

    # --- all bundles: the whole log through verify_log

    def verify_lines(
        self, reader: BundleReader, lines: Iterator[bytes], verifier: NoteVerifier
    ) -> tuple[Record | Trailer | None, Iterator[bytes]]:
        """An `all` bundle's entry lines: checked a window at a time (`bundle_windows`, in
        `processes` processes), then linked (`LogChain`: verify_log's decisions) and replayed
        here in log order. A line not laid out as the ledger exports it, or one the windows
        did not vouch for, is read and checked here, in its turn.

        Returns the record that ended the entries, if read, and the lines not read yet. The
        first fault of the chain stops the entries (reported after the replay of those
        before it); the lines after it are still read, for the bundle's structure."""
        checks = WindowChecks(self.processes)
        rest: list[bytes] = []  # the lines after where the replay of a window stopped
        window: list[bytes] = []  # not submitted yet
        unread: list[bytes] = []  # a line waiting for those before it
        stash: Record | Trailer | None = None
        try:
            chain = LogChain([self.header.checkpoint], [verifier], self.header.origin)
            for raw in lines:
                if raw.startswith(ENTRY_LINE_START):
                    window.append(raw)
                    if len(window) < checks.size:
                        continue
                    checks.submit(window)
                    window = []
                    while stash is None and (ready := checks.ready()) is not None:
                        stash = self._replay_window(reader, chain, ready, rest)
                else:
                    unread.append(raw)
                    if window:
                        checks.submit(window)
                        window = []
                    while checks and stash is None:
                        stash = self._replay_window(reader, chain, checks.take(), rest)
                    if stash is None:
                        unread.clear()
                        stash = self._entry_here(reader, chain, raw)
                if stash is not None:
                    break
            else:
                if window:
                    checks.submit(window)
                    window = []
                while checks and stash is None:
                    stash = self._replay_window(reader, chain, checks.take(), rest)
            if stash is not None:  # the entries ended (else the bundle is truncated)
                chain.end()
                self.report.checks.append("hash chain and root of every entry")
        except (VerificationError, BundleInclusionError) as error:
            self.report.fail(f"entry {error.details.get('seq', '?')}", error,
                             seq=error.details.get("seq"))
        finally:
            left = rest + checks.drain() + window + unread
        return stash, itertools.chain(left, lines)

    def _replay_window(self, reader: BundleReader, chain: LogChain,
                       window: tuple[list[bytes], list[LineCheck | None]],
                       rest: list[bytes]) -> Record | Trailer | None:
        """Link and replay a window's entries. Returns the record that ended the entries,
        if one of its lines was one; the lines after where it stopped go to `rest`."""
        lines, results = window
        for i, (raw, check) in enumerate(zip(lines, results, strict=True)):
            try:
                if check is None:
                    stash = self._entry_here(reader, chain, raw)
                    if stash is not None:
                        rest[:] = lines[i + 1:]
                        return stash
                    continue
                reader.accept_entry(raw)
                seq, prev, kind, received, entry_hash, leaf, payload = check
                if kind == "event":
                    chain.link(seq, prev, entry_hash, leaf)
                    self.apply_event(seq, received, payload, reader.number)
                else:
                    entry = Entry(seq, prev, kind, received, payload,
                                  raw[len(ENTRY_LINE_START):-len(ENTRY_LINE_END)])
                    chain.link(seq, prev, entry_hash, leaf, entry)
                    self.apply(entry, reader.number)
            except BaseException:
                rest[:] = lines[i + 1:]
                raise
        return None

    def _entry_here(self, reader: BundleReader, chain: LogChain,
                    raw: bytes) -> Record | Trailer | None:
        """A line the windows did not vouch for, read and checked here as `read_bundle` and
        verify_log do. Returns the record when it is not an entry (the entries end)."""
        item = reader.feed(raw)
        if not (isinstance(item, Record) and item.type == ENTRY):
            return item  # type: ignore[return-value]  # the header was the first line
        if "proof" in item.data:
            raise BundleFormatError(item.line, "an entry of an `all` bundle has no proof; "
                                    "every other entry has one")
        data = entry_bytes(item)
        try:
            entry = parse_entry((item.data["entry"], data))
        except BatterytraceError as exc:
            raise LogEntryError(chain.count, f"malformed entry: {exc.message}") from exc
        chain.link(entry.seq, entry.prev, hashlib.sha256(data).digest(), merkle.leaf_hash(data),
                   entry)
        self.apply(entry, item.line)
        return None

    def verify_bytes(
        self, entries: Iterable[tuple[EntryInput, int | None]], checkpoints: Iterable[bytes],
        verifier: NoteVerifier, progress: Callable[[int], None] | None = None,
    ) -> None:
        """Every entry's bytes (chain, leaves, the signed checkpoints) and meaning (replay),
        a window of entries at a time once verify_log has parsed and linked them."""
        line: list[int | None] = [None]  # the bundle line of the entry verify_log is on
        window: list[tuple[Entry, int | None]] = []

        def stream() -> Iterator[EntryInput]:
            for item, line[0] in entries:
                yield item

        def accepted(entry: Entry) -> None:
            window.append((entry, line[0]))
            if len(window) >= REPLAY_WINDOW:
                self.apply_window(window)
                window.clear()

        failure: BatterytraceError | None = None
        try:
            verify_log(stream(), checkpoints, [verifier], self.header.origin,
                       progress=progress, on_entry=accepted)
        except (VerificationError, BundleInclusionError) as error:
            failure = error
        self.apply_window(window)  # the entries before the failure, as they were linked
        self.flush()
        if failure is None:
            self.report.checks.append("hash chain and root of every entry")
        else:
            self.report.fail(f"entry {failure.details.get('seq', '?')}", failure,
                             seq=failure.details.get("seq"))

    def apply_window(self, window: list[tuple[Entry, int | None]]) -> None:
        """Apply entries in order; with several processes, their event schemas and
        signatures are checked first, together, in the precheck pool. The window is submitted
        to the pool before the previous one is applied, so the workers check it while this
        process replays the previous one and reads the next (`flush` applies the last)."""
        if self.processes <= 1:
            for entry, line in window:
                self.apply(entry, line)
            return
        if not window:
            return
        checks = precheck_all([e.document for e, _ in window if e.kind == "event"],
                              self.processes, canonical=False)
        self.flush()
        self.pending = (list(window), checks)

    def flush(self) -> None:
        """Apply the window submitted last (several processes), if any."""
        if self.pending is None:
            return
        window, checks = self.pending
        self.pending = None
        for entry, line in window:
            self.apply(entry, line, next(checks) if entry.kind == "event" else None)

    # --- one entry

    def apply(
        self, entry: Entry, line: int | None,
        check: EventCheck | BatterytraceError | None = None,
    ) -> None:
        """Replay one entry (`check`: its event's precheck, when made beforehand)."""
        if self._count(entry.seq, entry.received, entry.kind):
            return
        try:
            self._apply(entry, check)
        except BatterytraceError as error:
            self.report.fail(f"entry {entry.seq}", error, line, entry.seq)
        self._clear_journals()

    def apply_event(self, seq: int, received: str, check: EventCheck, line: int) -> None:
        """Replay an event entry whose line a window checked (`bundle_windows.check_line`):
        its schema, fields and signature by the key its method names. The rest of the
        engine's check, in order here: that key is its issuer's, valid at this position."""
        if self._count(seq, received, "event"):
            return
        try:
            registry, _ = self.engine.started()
            credential, sha = verified_event(registry, None, seq, check)
            self._replay_credential(credential, seq, received, sha)
        except BatterytraceError as error:
            self.report.fail(f"entry {seq}", error, line, seq)
        self._clear_journals()

    def _count(self, seq: int, received: str, kind: str) -> bool:
        """Count an entry; True when it is not to be replayed (after a bad entry)."""
        self.last_seq, self.last_received = seq, received
        report = self.report
        report.entries += 1
        if report.entries % REPLAY_WINDOW == 0 and not gc.isenabled():
            gc.collect(1)  # the young garbage (see verify_bundle)
        report.kinds[kind] = report.kinds.get(kind, 0) + 1
        return self.broken  # proofs only: a gap would make every rule after it fail

    def _clear_journals(self) -> None:
        self.engine.forget_undo()

    def _apply(self, entry: Entry, check: EventCheck | BatterytraceError | None) -> None:
        doc, seq, kind = entry.document, entry.seq, entry.kind
        if self.registry is None and kind != "genesis":
            if self.broken:
                return  # entry 0 itself failed: already reported
            raise BundleClosureError("the bundle does not start with entry 0")
        if kind == "event":
            assert self.registry is not None
            credential, sha = verified_event(self.registry, doc, seq, check,
                                             document_bytes(entry))
            self._replay_credential(credential, seq, entry.received, sha)
            return
        if kind not in ("genesis", "settings", "registry", "anchor"):
            self.report.notes.append(f"entry {seq}: kind {kind} not checked")
            return
        self.engine.apply(seq, kind, doc)
        self.report.signatures_verified += 1

    def _replay_credential(self, credential: DteCredential, seq: int, received: str,
                           sha: str) -> None:
        """An event credential whose signature is its issuer's: the rules replayed."""
        assert self.registry is not None and self.state is not None
        self.registry.participant(credential.issuer)
        self.report.signatures_verified += 1
        for event in credential.events:
            for subject in (*event_subjects(event), event.biz_location):
                self.first_use.setdefault(subject, (seq, received))
        if self.broken:
            return
        projected, partial = self._project(credential) if self.closure_mode else (credential,
                                                                                  False)
        if projected is None:
            self.report.outside_closure += 1
            return
        if not partial:
            apply_credential(self.state, projected, credential.issuer, seq, sha)
            self.report.replayed += 1
            return
        # Inputs outside the closure were left out: the mass balance cannot hold here.
        saved = self.state.tolerance
        self.state.tolerance = Decimal("1e30")
        try:
            apply_credential(self.state, projected, credential.issuer, seq, sha)
        except MassBalanceError:
            pass  # an element only the left-out inputs carried; its products stay outside
        finally:
            self.state.tolerance = saved
        self.report.outside_closure += 1

    def _project(self, credential: DteCredential) -> tuple[DteCredential | None, bool]:
        """The credential without lots and items unknown to the replay (outside the closure),
        and whether anything was left out. None when nothing of it is in the closure."""
        assert self.state is not None
        state = self.state
        created = {q.lot for e in credential.events for q in e.output_quantities}
        created |= {q.lot for e in credential.events if e.action == "add" and
                    e.kind == "ObjectEvent" for q in e.quantities}
        created |= {i for e in credential.events for i in e.output_items}

        def lot_in(lot: str) -> bool:
            return lot in created or state.lot(lot) is not None

        def item_in(item: str) -> bool:
            return item in created or state.item(item) is not None

        events: list[TraceEvent] = []
        partial = False
        for event in credential.events:
            if event.parent is not None and not item_in(event.parent):
                partial = True
                continue
            kept = replace(
                event,
                quantities=tuple(q for q in event.quantities if lot_in(q.lot)),
                epcs=tuple(i for i in event.epcs if item_in(i)),
                input_quantities=tuple(q for q in event.input_quantities if lot_in(q.lot)),
                input_items=tuple(i for i in event.input_items if item_in(i)),
                children=tuple(i for i in event.children if item_in(i)),
            )
            if kept != event:
                partial = True
                dropped = {q.lot for q in event.input_quantities if not lot_in(q.lot)} | {
                    i for i in event.input_items if not item_in(i)}
                for product in [q.lot for q in event.output_quantities] + list(
                        event.output_items):
                    if dropped:
                        self.foreign_sources.setdefault(product, set()).update(dropped)
            if not (event_subjects(kept) or event.kind == "TransformationEvent"):
                continue
            if event.children and not kept.children:
                continue  # an assembly of items all outside the closure
            if event.kind == "TransformationEvent" and not (kept.input_quantities or
                                                            kept.input_items):
                if event.input_quantities or event.input_items:
                    continue  # every input outside: its products stay outside too
            events.append(kept)
        if not events:
            return None, True
        return replace(credential, events=tuple(events)), partial

    def finish(self) -> None:
        """After the entries: the closure subject is known and its upstream is complete."""
        if self.state is None or self.report.failures:
            if self.broken:
                self.report.notes.append("custody not replayed after the first bad entry")
            return
        self.report.checks.append("entry signatures and key validity at each position")
        self.report.checks.append("custody rules replayed")
        subject = self.header.subject
        if subject is None:
            return
        state = self.state
        known = state.lot(subject) if self.header.scope == "lot" else state.item(subject)
        if known is None:
            self.report.fail("header.scope", BundleClosureError(
                f"the bundle's events never create the {self.header.scope} {subject}"), line=1)
            return
        sources: dict[str, list[str]] = {}
        for product, source in state.tables["source"]:
            sources.setdefault(product, []).append(source)
        seen: set[str] = set()
        stack = [subject]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node in self.foreign_sources:
                self.report.fail(node, BundleClosureError(
                    f"{node} was made from {sorted(self.foreign_sources[node])}, which the "
                    "bundle does not trace"))
            stack.extend(sources.get(node, ()))
            item = state.item(node)
            if item is not None:
                stack.extend(item.children)
        self.report.checks.append(f"upstream of {subject} traced to extraction")


# --- credentials --------------------------------------------------------------------------


class _AnchorRecords(Mapping[str, AnchorRecord]):
    """The replayed anchor book as the mapping `check_credential` reads (by credential id)."""

    def __init__(self, book: AnchorBook) -> None:
        self.book = book

    def __getitem__(self, key: str) -> AnchorRecord:
        record = self.book.record(key)
        if record is None:
            raise KeyError(key)
        return record

    def __iter__(self) -> Iterator[str]:
        return (k for k, v in self.book.tables["record"].items() if v is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _documents_for(issuer: str, ctx: CredentialContext) -> list[Mapping[str, Any]]:
    """The bundle's DID documents that may count: the issuer's (its pin is then checked) and
    those the trust file pins (accreditors outside the ledger)."""
    return [doc for did, doc in ctx.did_documents.items()
            if did == issuer or ctx.trust.pinned(str(did)) is not None]


def default_credential_check(credential: Mapping[str, Any], ctx: CredentialContext) -> list[str]:
    """The full credential decision of `verifier.credential_check` judged at the relying
    entry's position: proof, structure and schema, validity at its `received` time, anchor
    digest, status (lists and anchors at that position), and, when the trust file names
    governance roots, an accreditation path to one of them (required). Warnings go to
    `ctx.notes`. Returns the checks made; raises the first failure."""
    from batterytrace.credentials.vc import issuer_id

    from .accreditation import ACCREDITATION_TYPE
    from .credential_check import check_credential

    doc = dict(credential)
    issuer = issuer_id(doc) or ""
    base = IssuerResolver(ctx.registry, ctx.position)
    documents = _documents_for(issuer, ctx)
    if ACCREDITATION_TYPE in (doc.get("type") or []):
        return _check_accreditation(doc, ctx, base, documents)
    result = check_credential(
        doc, base, trust=ctx.trust, accreditations=ctx.accreditations,
        status_lists=ctx.status_lists, did_documents=documents,
        anchors=_AnchorRecords(ctx.anchors), at=ctx.at, position=ctx.position,
        require_trust=bool(ctx.trust.governance_roots), require_status=True,
    )
    ctx.notes.extend(result.warnings)
    record = ctx.anchors.record(str(doc.get("id")))
    later = record.revoked_at() if record is not None else None
    if later is not None and later > ctx.position:
        ctx.notes.append(f"revoked at log position {later}, after its use at {ctx.position}")
    return list(result.checks)


def _check_accreditation(doc: dict[str, Any], ctx: CredentialContext, base: Any,
                         documents: list[Mapping[str, Any]]) -> list[str]:
    """An accreditation alone: well formed and signed by its issuer. Its validity, scope and
    revocation are judged in the trust path of each credential relying on it, at that
    credential's position."""
    from batterytrace.credentials.errors import VerificationMethodError
    from batterytrace.credentials.vc import controlled_by

    from .accreditation import Accreditation
    from .credential_check import TrustResolver

    link = Accreditation.from_credential(doc)
    resolver = TrustResolver(ctx.trust, documents, base)
    if not controlled_by(link.issuer, verify_proofs(doc, resolver)):
        raise VerificationMethodError(f"accreditation {link.id} is not signed by {link.issuer}")
    return ["structure", "proof"]


def _check_credentials(
    tail: list[Record], replay: _Replay, trust: TrustConfig, check: CredentialCheck
) -> None:
    report = replay.report
    if replay.registry is None:
        return
    status_lists = {r.data["credential"].get("id"): r.data["credential"]
                    for r in tail if r.type == STATUS_LIST}
    did_documents = {r.data["document"].get("id"): r.data["document"]
                     for r in tail if r.type == DID_DOCUMENT}
    credentials = [r for r in tail if r.type == CREDENTIAL]
    accreditations = tuple(r.data["credential"] for r in credentials
                           if "AccreditationCredential" in (r.data["credential"].get("type")
                                                            or []))
    for record in tail:
        if record.type == REDACTED:
            data = record.data
            report.not_shown.append(f"{data['credentialType']} {data['id']} (digest "
                                    f"{data['digest']})")
            anchored = replay.anchors.record(str(data["id"]))
            if anchored is None or anchored.digest != data["digest"]:
                report.fail(f"credential {data['id']}", CredentialAnchorError(
                    "a redacted credential must match an anchor in the bundle"), record.line)
    for record in credentials:
        credential = record.data["credential"]
        where = f"credential {credential.get('id')}"
        try:
            subjects = credential_subject_ids(credential)
            uses = [replay.first_use[s] for s in subjects if s in replay.first_use]
            is_accreditation = credential in accreditations
            if not uses and not is_accreditation:
                raise CredentialSubjectMismatchError(
                    f"its subject {sorted(subjects)} is no facility, lot or item of the events")
            # An accreditation is judged with the events it vouches for; alone, at the end.
            seq, received = min(uses) if uses else (replay.last_seq, replay.last_received)
            ctx = CredentialContext(
                position=seq, at=parse_date_time(received), registry=replay.registry,
                anchors=replay.anchors, trust=trust, status_lists=status_lists,
                did_documents=did_documents, accreditations=accreditations,
            )
            check(credential, ctx)
            report.notes.extend(f"{where}: {note}" for note in ctx.notes)
            report.credentials_verified += 1
        except BatterytraceError as error:
            report.fail(where, error, record.line)
    if credentials:
        report.checks.append("credentials at the position of the entry relying on them")


# --- presentation -------------------------------------------------------------------------


def bundle_digest_hex(digest_bytes: bytes) -> str:
    return "sha256:" + digest_bytes.hex()


def _check_presentation(
    record: Record | None, trailer: Trailer, challenge: str | None, replay: _Replay,
    report: Report,
) -> None:
    if record is None:
        if challenge is not None:
            report.fail("presentation", PresentationError(
                "a challenge was given but the bundle is not presented (bundle present)"))
        return
    vp = record.data["presentation"]
    where = "presentation"
    try:
        if not isinstance(vp, dict) or vp.get(BUNDLE_DIGEST) != bundle_digest_hex(
                trailer.digest):
            raise PresentationError("the presentation does not bind this bundle's digest")
        if challenge is None:
            report.notes.append("presentation challenge not checked (no --challenge)")
        registry = replay.registry or Registry("did:key:z6Mk", "http://invalid")
        results = verify_proofs(vp, IssuerResolver(registry, replay.last_seq + 1),
                                expected_purpose="authentication", challenge=challenge)
        holder = vp.get("holder")
        if not any(r.controller == holder for r in results):
            raise PresentationError(f"the presentation is not signed by its holder {holder}")
        report.presented_by = str(holder)
        report.checks.append("presentation")
    except BatterytraceError as error:
        report.fail(where, error, record.line)


def present_bundle(
    lines: list[bytes], key: Any, *, challenge: str, domain: str | None = None,
    holder: str | None = None,
) -> bytes:
    """The bundle with a holder-signed presentation appended: a VP (proof purpose
    authentication, the verifier's challenge) whose `bundleDigest` is the SHA-256 of every
    line up to and including `end`. Raises BundleFormatError for a bundle already presented."""

    from batterytrace.credentials.data_integrity import sign
    from batterytrace.credentials.did import did_key_from_public_key
    from batterytrace.credentials.vc import VC_V2_CONTEXT, VERIFIABLE_PRESENTATION

    trailer = None
    for item in read_bundle(lines):
        if isinstance(item, Trailer):
            trailer = item
        elif isinstance(item, Record) and item.type == PRESENTATION:
            raise BundleFormatError(item.line, "the bundle is already presented")
    assert trailer is not None
    vp = {
        "@context": [VC_V2_CONTEXT],
        "type": [VERIFIABLE_PRESENTATION],
        "holder": holder or key.controller or did_key_from_public_key(key.public_key),
        BUNDLE_DIGEST: bundle_digest_hex(trailer.digest),
    }
    signed = sign(vp, key, proof_purpose="authentication", challenge=challenge, domain=domain)
    record = json.dumps({"type": PRESENTATION, "presentation": signed}, separators=(",", ":"))
    return b"".join(lines) + record.encode() + b"\n"
