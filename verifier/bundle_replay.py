"""The replay of a bundle's entries: inclusion proofs or the whole chain, then the engine.

`BundleReplay` takes the entries of a bundle in log order: for a closure bundle each entry's
inclusion proof against the checkpoint; for an `all` bundle the chain and root of the whole
log (`ledger.log_verify.LogChain`, fed by windows of lines checked in worker processes,
`bundle_windows`). Each entry is then judged by the engine (`ledger.engine`): signatures with
the keys valid at its position, registry, settings, anchors, custody rules. In a closure
bundle, lots and items outside the closure are projected out of the events that also touch it
(those entries are counted, not fully replayed), and the subject's upstream must reach
extraction inside the bundle (`finish`). Failures go into the Report.
"""

from __future__ import annotations

import decimal
import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from decimal import Decimal

from batterytrace.credentials.canonical import canonicalize, compact_is_canonical
from batterytrace.credentials.errors import (
    BatterytraceError,
    VerificationError,
)
from batterytrace.credentials.secured_bytes import compact as _compact
from batterytrace.ledger import merkle, pool
from batterytrace.ledger.anchors import AnchorBook
from batterytrace.ledger.bundle_format import (
    ENTRY,
    ENTRY_LINE_END,
    ENTRY_LINE_START,
    entry_of_line,
    event_subjects,
)
from batterytrace.ledger.checkpoint import (
    Checkpoint,
    NoteVerifier,
)
from batterytrace.ledger.custody import CustodyState, Tables, apply_credential
from batterytrace.ledger.custody_graph import reachable
from batterytrace.ledger.engine import (
    RULED_KINDS,
    EventCheck,
    Replay,
    digest,
    verified_event,
)
from batterytrace.ledger.entry import Entry, document_slice
from batterytrace.ledger.errors import LogEntryError
from batterytrace.ledger.events import DteCredential, TraceEvent
from batterytrace.ledger.log_verify import (
    Linked,
    LogChain,
    Tap,
    check_genesis,
    linked_entry,
    parse_entry,
)
from batterytrace.ledger.registry import Registry
from batterytrace.ledger.spill import SPILL_ROWS, Spilled, SpillFile

from .bundle import (
    BundleFormatError,
    BundleReader,
    Header,
    Record,
    Trailer,
    decode_hashes,
)
from .bundle_windows import LineCheck, WindowChecks, checked_bodies
from .errors import (
    BundleClosureError,
    BundleEntryOrderError,
    BundleInclusionError,
)
from .report import Report

# Entries replayed between two collections of the young garbage (see `_count`).
REPLAY_WINDOW = 1024


def entry_bytes(record: Record) -> bytes:
    """The canonical bytes of an entry record (what the inclusion proof covers).

    The exporter embeds them verbatim in an `all` bundle's entry line: the slice is taken
    when the parsed entry encodes back to exactly it (sorted keys, no spaces) and holds none
    of the values where that encoding and JCS differ (`compact_is_canonical`), which costs one
    C encoding instead of a canonicalization; otherwise the entry is canonicalized."""
    # A closure entry's line goes on with its proof after the entry: never a slice.
    sliced = None if "proof" in record.data else entry_of_line(record.raw)
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


def _linked(check: LineCheck, body: bytes) -> Linked:
    """The link of an entry whose line a window checked (`bundle_windows.check_line`)."""
    seq, prev, kind, received, entry_hash, leaf, payload = check
    entry = None if kind == "event" else Entry(seq, prev, kind, received, payload, body)
    return seq, prev, entry_hash, leaf, entry


def document_bytes(entry: Entry) -> bytes | None:
    """The canonical bytes of the entry's document, a slice of the entry's."""
    return document_slice(entry.canonical, entry.seq, entry.prev, entry.kind, entry.received)


def document_digest(entry: Entry) -> str:
    """`custody_store.digest(entry.document)` without canonicalizing the document again."""
    data = document_bytes(entry)
    if data is None:
        return digest(entry.document)  # the slow way
    return hashlib.sha256(data).hexdigest()


class FirstUses(Tables):
    """The first use of each subject (lot, item, facility): (seq, received) by subject."""

    table_names = ("first_use",)


class SpilledFirstUses(Spilled, FirstUses):
    def __init__(self, spill: SpillFile, limit: int) -> None:
        super().__init__()
        self.attach(spill, limit)


class BundleReplay:
    """Registry, settings, custody and anchors replayed entry by entry."""

    def __init__(
        self, header: Header, checkpoint: Checkpoint | None, report: Report, vkey: str,
        processes: int = 1, spill_rows: int | None = SPILL_ROWS,
    ) -> None:
        """`spill_rows`: the rows of replayed state kept in memory before they go to a
        temporary SQLite file (`ledger.spill`); None keeps them all in memory."""
        self.header = header
        self.processes = processes
        self.vkey = vkey
        self.checkpoint = checkpoint
        self.report = report
        self.engine = Replay(spill_rows)
        self.anchor_received: dict[int, str] = {}  # anchor entry seq -> its `received`
        self.last_seq = -1
        self.last_received = ""
        self.closure_mode = header.scope != "all"
        # After an entry failed its proof or order, replaying would only report consequences
        # of the gap: later entries get their inclusion proofs checked, nothing more.
        self.broken = False
        # subject -> (seq, received) of the first entry using it
        self.uses = FirstUses() if self.engine.spill is None else SpilledFirstUses(
            self.engine.spill, spill_rows or 0)
        self.foreign_sources: dict[str, set[str]] = {}
        # Items some of whose children were projected out: their element mass here is short.
        self.incomplete: set[str] = set()

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

    # --- all bundles: the whole log through LogChain

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
                    # One window replayed per window submitted: the workers keep AHEAD
                    # windows to check while this process replays.
                    if (ready := checks.ready()) is not None:
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
                linked = _linked(check, raw[len(ENTRY_LINE_START):-len(ENTRY_LINE_END)])
                chain.link(*linked)
                self._apply_linked(linked, check, reader.number)
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

    # --- a log's stored entries: `ledger verify`, `ledger repair`, a mirror

    def verify_bodies(
        self, bodies: Iterable[bytes], checkpoints: Iterable[bytes], verifier: NoteVerifier,
        progress: Callable[[int], None] | None = None, tap: Tap | None = None,
    ) -> bool:
        """Every entry's canonical bytes, entry 0 first, read as the entry lines of an `all`
        bundle: checked a window at a time in `processes` processes (`bundle_windows`),
        linked (`LogChain` against the signed `checkpoints`) and replayed here, in order. A
        body the windows did not vouch for is parsed and judged here by the reference code.

        `tap`, if given, is handed each entry's link (`log_verify.Linked`), or the typed
        error of a malformed entry, in order; it returns False to stop reading. After a
        fault of this chain (reported, and the replay stops there) the bodies are still read
        for the tap, whose own chains judge them. Returns True when every body was read."""
        checks = WindowChecks(self.processes)
        chain: LogChain | None = None
        try:
            chain = LogChain(checkpoints, [verifier], self.header.origin)
        except VerificationError as error:
            self._chain_failed(error)
            if tap is None:
                return False
        position = 0
        try:
            for lines, results in checked_bodies(bodies, checks):
                for raw, check in zip(lines, results, strict=True):
                    body = raw[len(ENTRY_LINE_START):-len(ENTRY_LINE_END)]
                    try:
                        linked = (linked_entry(position, body) if check is None
                                  else _linked(check, body))
                    except LogEntryError as error:
                        if tap is not None:
                            tap(error)
                        if chain is not None:
                            self._chain_failed(error)
                        return False
                    position += 1
                    if tap is not None and not tap(linked):
                        return False
                    if chain is not None:
                        try:
                            chain.link(*linked)
                        except VerificationError as error:
                            self._chain_failed(error)
                            chain = None
                            if tap is None:
                                return False
                            continue
                        self._apply_linked(linked, check, None)
                    if progress is not None and position % 1024 == 0:
                        progress(position)
        finally:
            checks.drain()
        if progress is not None:
            progress(position)
        if chain is not None:
            try:
                chain.end()
            except VerificationError as error:
                self._chain_failed(error)
            else:
                self.report.checks.append("hash chain and root of every entry")
        return True

    def _apply_linked(self, linked: Linked, check: LineCheck | None, line: int | None) -> None:
        """Replay an entry once linked: an event its window checked by that check, any
        other entry (parsed here, or of another kind) by the engine's whole check."""
        entry = linked[4]
        if entry is None:
            assert check is not None  # only a window's check leaves the entry unparsed
            self.apply_event(linked[0], check[3], check[6], line)
        else:
            self.apply(entry, line)

    def _chain_failed(self, error: VerificationError) -> None:
        self.report.fail(f"entry {error.details.get('seq', '?')}", error,
                         seq=error.details.get("seq"))

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

    def apply_event(self, seq: int, received: str, check: EventCheck,
                    line: int | None) -> None:
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
        if report.entries % REPLAY_WINDOW == 0:
            pool.collect_young()  # the young garbage (see verify_bundle)
        report.kinds[kind] = report.kinds.get(kind, 0) + 1
        return self.broken  # proofs only: a gap would make every rule after it fail

    def _clear_journals(self) -> None:
        self.engine.forget_undo()
        self.uses.journal.clear()
        self.uses.settle()

    def first_use(self, subject: str) -> tuple[int, str] | None:
        """(seq, received) of the first entry whose events name `subject`, if any."""
        found: tuple[int, str] | None = self.uses.get("first_use", subject)
        return found

    def close(self) -> None:
        """Delete the temporary file of the spilled state, if any (the state is gone)."""
        self.engine.close()

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
        if kind not in RULED_KINDS:
            self.report.notes.append(f"entry {seq}: kind {kind} not checked")
            return
        self.engine.apply(seq, kind, doc)
        if kind == "anchor":
            self.anchor_received[seq] = entry.received
        self.report.signatures_verified += 1

    def _replay_credential(self, credential: DteCredential, seq: int, received: str,
                           sha: str) -> None:
        """An event credential whose signature is its issuer's: the rules replayed."""
        assert self.registry is not None and self.state is not None
        self.registry.participant(credential.issuer)
        self.report.signatures_verified += 1
        uses = self.uses
        for event in credential.events:
            for subject in (*event_subjects(event), event.biz_location):
                if uses.get("first_use", subject) is None:
                    uses.put("first_use", subject, (seq, received))
        if self.broken:
            return
        self.state.received = received  # bounds the events' eventTime
        projected, partial = self._project(credential) if self.closure_mode else (credential,
                                                                                  False)
        if projected is None:
            self.report.outside_closure += 1
            return
        if not partial:
            apply_credential(self.state, projected, credential.issuer, seq, sha)
            self.report.replayed += 1
            return
        # Inputs outside the closure were left out (or an input item lacks children that
        # were): the mass balance cannot be judged here, so it is not checked at all; the
        # products keep their declared composition, and the events that consume them are
        # balanced against it as the ledger did. (A finite tolerance still failed on an element
        # only the left-out inputs carried, and dropping the products then left the subject's
        # downstream without them: its recycling failed MASS_BALANCE_EXCEEDED.)
        saved = self.state.tolerance
        self.state.tolerance = Decimal("Infinity")
        try:
            with decimal.localcontext() as context:
                context.traps[decimal.InvalidOperation] = False  # 0 kg x inf: no limit
                apply_credential(self.state, projected, credential.issuer, seq, sha)
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
            if kept.children != event.children and event.action == "add":
                self.incomplete.add(event.parent)  # type: ignore[arg-type]  # kept: not None
            if event.kind == "TransformationEvent" and any(
                    self._short(i) for i in kept.input_items):
                partial = True
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

    def _short(self, item_id: str) -> bool:
        """Whether an item, or anything assembled into it, lacks children projected out."""
        assert self.state is not None
        stack = [item_id]
        while stack:
            node = stack.pop()
            if node in self.incomplete:
                return True
            found = self.state.item(node)
            if found is not None:
                stack.extend(found.children)
        return False

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
        for (product, source), _ in state.rows("source"):
            sources.setdefault(product, []).append(source)
        children = {item_id: item.children for item_id, item in state.rows("item")
                    if item.children}
        for node in sorted(reachable([subject], sources, children)):
            if node in self.foreign_sources:
                self.report.fail(node, BundleClosureError(
                    f"{node} was made from {sorted(self.foreign_sources[node])}, which the "
                    "bundle does not trace"))
        self.report.checks.append(f"upstream of {subject} traced to extraction")

