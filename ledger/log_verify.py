"""Verify a whole log from its entry bytes: every link, every leaf, every signed checkpoint.

Pure (no database): the command line feeds it the stored bytes, the offline verifier a bundle.
Streams in O(log n) memory: the Merkle tree is a stack of complete subtree roots (a compact
range), and the signed checkpoints are read in size order alongside the entries.

The first fault is named by sequence number. A broken link between entries j-1 and j means
either entry j-1 was changed (then entry j+1 still links to entry j) or entry j's `prev` was
(then entry j+1 does not link either), so the decision waits one entry. A root mismatch at a
checkpoint of size s names the first entry after the last checkpoint that matched.

An entry comes either as its bytes (parsed strictly here) or as a JSON object already parsed
with its canonical bytes (`canonicalize(obj)`, computed once by the caller): the fields are
checked the same way, without parsing or canonicalizing again. `on_entry` receives each entry
once it is linked and its leaf counted, so a caller replays it without parsing it twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from batterytrace.credentials.data_integrity import verify_proofs
from batterytrace.credentials.did import OfflineResolver
from batterytrace.credentials.errors import BatterytraceError

from . import merkle
from .checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from .entry import GENESIS_PREV, Entry, check_entry_fields
from .errors import (
    CheckpointNotSignedError,
    EntryFormatError,
    LogChainError,
    LogEntryError,
    LogGenesisError,
    LogRootMismatchError,
)

# An entry's bytes, or (its parsed JSON object, the object's canonical bytes), or an Entry
# already parsed from its bytes by `hashed_entry` (one parse feeds several chains).
EntryInput: TypeAlias = bytes | tuple[dict[str, Any], bytes] | Entry


def parse_entry(item: EntryInput) -> Entry:
    """The Entry of stored bytes (strict: canonical JSON of a version 1 entry) or of an object
    with its canonical bytes (fields checked alike; the bytes are trusted to be
    `canonicalize(obj)`); an Entry is returned as it is (it was parsed so). Raises
    EntryFormatError."""
    if isinstance(item, Entry):
        return item
    if isinstance(item, bytes | bytearray | memoryview):
        return Entry.parse(bytes(item))
    obj, canonical = item
    if not isinstance(obj, dict):
        raise EntryFormatError("entry is not a JSON object")
    check_entry_fields(obj)
    return Entry(obj["seq"], obj["prev"], obj["kind"], obj["received"], obj["document"],
                 canonical)


@dataclass(frozen=True)
class LogSummary:
    """What a successful verification established."""

    size: int
    root: bytes
    checkpoint: Checkpoint  # the largest signed checkpoint, now known to match
    checkpoints_checked: int


class LogChain:
    """The sequential checks of a log, fed each entry's hashes in log order: `link` each entry
    (its fields already checked), then `end`. `verify_log` feeds it parsed entries; bundle
    verification feeds it hashes computed in worker processes.

    Raises a LogVerificationError subclass naming the first bad seq, or a checkpoint error
    when a note does not verify: a broken link between j-1 and j is decided at entry j+1 (it
    is entry j's prev or entry j-1's bytes), a root mismatch names the first entry after the
    last checkpoint that matched."""

    def __init__(self, checkpoints: Iterable[bytes], verifiers: Sequence[NoteVerifier],
                 origin: str) -> None:
        self.notes: Iterator[bytes] = iter(checkpoints)
        self.verifiers = verifiers
        self.origin = origin
        self.trusted_vkeys = {v.vkey for v in verifiers}
        self.stack: list[tuple[int, bytes]] = []  # (level, hash) of the range [0, count)
        self.count = 0
        self.matched = 0  # size of the last checkpoint that matched
        self.last_checkpoint: Checkpoint | None = None
        self.checked = 0
        self.prev_hex = GENESIS_PREV
        self.broken_link: int | None = None  # j whose link to j-1 is broken, decided at j+1
        self.pending = self._next_checkpoint(0)
        if self.pending is None:
            raise CheckpointNotSignedError("the log has no signed checkpoint to verify against")

    def _next_checkpoint(self, after: int) -> Checkpoint | None:
        note = next(self.notes, None)
        if note is None:
            return None
        cp = open_checkpoint(note, self.verifiers, self.origin)
        if cp.size <= after:
            raise LogRootMismatchError(after, f"checkpoint of size {cp.size} is out of order")
        return cp

    def link(self, seq: int, prev: str, entry_hash: bytes, leaf: bytes,
             genesis: Entry | None = None) -> None:
        """The next entry: its `seq` and `prev` fields, SHA-256 of its bytes and its Merkle
        leaf hash; `genesis` is the parsed entry when it is entry 0 (its document checked)."""
        position = self.count
        if seq != position:
            raise LogEntryError(position, f"entry in position {position} says seq {seq}")
        links = prev == self.prev_hex
        if self.broken_link is not None:
            j = self.broken_link
            if links:
                raise LogChainError(j - 1, f"entry {j - 1} does not hash to the prev of entry {j}")
            raise LogChainError(j, f"prev does not match the hash of entry {j - 1}")
        if not links:
            self.broken_link = position
        if position == 0:
            if genesis is None:  # cannot happen: entry 0, and only it, is of kind genesis
                raise LogGenesisError(0, "entry 0 is not a LedgerGenesis document")
            check_genesis(genesis, self.origin, self.trusted_vkeys)
        self.prev_hex = entry_hash.hex()
        stack = self.stack
        level, h = 0, leaf
        while stack and stack[-1][0] == level:
            h = merkle.hash_children(stack.pop()[1], h)
            level += 1
        stack.append((level, h))
        self.count = count = position + 1
        while self.pending is not None and self.pending.size == count:
            if merkle.fold_right([x for _, x in stack]) != self.pending.root:
                if self.broken_link is not None:
                    raise LogChainError(self.broken_link, "prev does not match the hash of "
                                        f"entry {self.broken_link - 1}")
                raise LogRootMismatchError(
                    self.matched,
                    f"entries {self.matched}..{count - 1} do not hash to the root of the "
                    f"signed checkpoint of size {count}",
                    checkpoint_size=count,
                )
            self.matched, self.last_checkpoint = count, self.pending
            self.checked += 1
            self.pending = self._next_checkpoint(count)

    def link_entry(self, entry: Entry, entry_hash: bytes, leaf: bytes) -> None:
        """`link` of a parsed entry with its hashes (`hashed_entry`)."""
        self.link(entry.seq, entry.prev, entry_hash, leaf, entry if self.count == 0 else None)

    def end(self) -> LogSummary:
        """After the last entry: a link left undecided, or a checkpoint beyond the log, raise;
        else the summary."""
        if self.broken_link is not None:
            raise LogChainError(self.broken_link,
                                f"prev does not match the hash of entry {self.broken_link - 1}")
        if self.pending is not None:
            raise LogRootMismatchError(
                self.count,
                f"the log ends after {self.count} entries but a checkpoint of size "
                f"{self.pending.size} was signed",
                checkpoint_size=self.pending.size,
            )
        assert self.last_checkpoint is not None  # the first one was either matched or raised
        return LogSummary(self.count, merkle.fold_right([x for _, x in self.stack]),
                          self.last_checkpoint, self.checked)


def verify_log(
    entries: Iterable[EntryInput],
    checkpoints: Iterable[bytes],
    verifiers: Sequence[NoteVerifier],
    origin: str,
    *,
    progress: Callable[[int], None] | None = None,
    on_entry: Callable[[Entry], None] | None = None,
) -> LogSummary:
    """Check the entries (canonical bytes, or objects with them: see `parse_entry`; in order
    from 0) against the signed checkpoint notes (increasing sizes; at least one). Raises a
    LogVerificationError subclass naming the first bad seq, or a checkpoint error when a
    note does not verify (`LogChain`). `on_entry(entry)` is called for each entry after its
    link (as far as it can be decided then) and the checkpoints it completes were checked."""
    return run_chain(LogChain(checkpoints, verifiers, origin), entries, progress=progress,
                     on_entry=on_entry)


def run_chain(
    chain: LogChain,
    entries: Iterable[EntryInput],
    *,
    progress: Callable[[int], None] | None = None,
    on_entry: Callable[[Entry], None] | None = None,
) -> LogSummary:
    """`verify_log` with its chain made by the caller (`ledger.log.stored_log_chain`)."""
    for seq, item in enumerate(entries):
        entry, entry_hash, leaf = hashed_entry(seq, item)
        chain.link_entry(entry, entry_hash, leaf)
        if on_entry is not None:
            on_entry(entry)
        if progress is not None and chain.count % 1024 == 0:
            progress(chain.count)
    summary = chain.end()
    if progress is not None:
        progress(summary.size)
    return summary


def hashed_entry(position: int, item: EntryInput) -> tuple[Entry, bytes, bytes]:
    """The entry in `position` parsed (`parse_entry`), with SHA-256 of its bytes and its
    Merkle leaf hash: what `LogChain.link_entry` takes. One call can feed several chains.
    Raises LogEntryError naming `position` when the entry is malformed."""
    try:
        entry = parse_entry(item)
    except BatterytraceError as exc:
        raise LogEntryError(position, f"malformed entry: {exc.message}") from exc
    data = entry.canonical
    return entry, hashlib.sha256(data).digest(), merkle.leaf_hash(data)


# What `LogChain.link` takes of one entry: its seq and prev, SHA-256 of its bytes, its Merkle
# leaf hash, and the entry parsed (None for an event whose bytes a worker checked: the genesis
# entry, the only one `link` reads, is never an event).
Linked: TypeAlias = tuple[int, str, bytes, bytes, Entry | None]
# Handed each entry's link in log order, or the error of a malformed entry; False: stop.
Tap: TypeAlias = Callable[[Linked | LogEntryError], bool]


def linked_entry(position: int, body: bytes) -> Linked:
    """The link of the entry in `position` from its stored bytes (`hashed_entry`). Raises
    LogEntryError naming `position` when the entry is malformed."""
    entry, entry_hash, leaf = hashed_entry(position, body)
    return entry.seq, entry.prev, entry_hash, leaf, entry


def check_genesis(entry: Entry, origin: str, trusted_vkeys: set[str]) -> None:
    """Entry 0 must be the admin-signed LedgerGenesis of `origin` naming a trusted log key;
    raises LogGenesisError."""
    doc = entry.document
    if doc.get("type") != "LedgerGenesis":
        raise LogGenesisError(0, "entry 0 is not a LedgerGenesis document")
    if doc.get("origin") != origin:
        raise LogGenesisError(0, f"genesis origin {doc.get('origin')!r} is not {origin!r}")
    if doc.get("logKey") not in trusted_vkeys:
        raise LogGenesisError(0, "genesis logKey is not a trusted log key")
    try:
        results = verify_proofs(doc, OfflineResolver())
    except BatterytraceError as exc:
        raise LogGenesisError(0, f"genesis signature: {exc.message}") from exc
    if not results or any(r.controller != doc.get("adminKey") for r in results):
        raise LogGenesisError(0, "genesis is not signed by its adminKey")
