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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

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

# An entry's bytes, or (its parsed JSON object, the object's canonical bytes).
EntryInput: TypeAlias = bytes | tuple[dict[str, Any], bytes]


def parse_entry(item: EntryInput) -> Entry:
    """The Entry of stored bytes (strict: canonical JSON of a version 1 entry) or of an object
    with its canonical bytes (fields checked alike; the bytes are trusted to be
    `canonicalize(obj)`). Raises EntryFormatError."""
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
    note does not verify. `on_entry(entry)` is called for each entry after its link (as far
    as it can be decided then) and the checkpoints it completes were checked."""
    notes = iter(checkpoints)
    trusted_vkeys = {v.vkey for v in verifiers}

    def next_checkpoint(after: int) -> Checkpoint | None:
        note = next(notes, None)
        if note is None:
            return None
        cp = open_checkpoint(note, verifiers, origin)
        if cp.size <= after:
            raise LogRootMismatchError(after, f"checkpoint of size {cp.size} is out of order")
        return cp

    pending_cp = next_checkpoint(0)
    if pending_cp is None:
        raise CheckpointNotSignedError("the log has no signed checkpoint to verify against")
    stack: list[tuple[int, bytes]] = []  # (level, hash) of the compact range [0, count)
    matched = 0  # size of the last checkpoint that matched
    last_cp: Checkpoint | None = None
    checked = 0
    count = 0
    prev_hash = b""
    broken_link: int | None = None  # j whose link to j-1 is broken, decided at j+1

    for seq, item in enumerate(entries):
        try:
            entry = parse_entry(item)
        except BatterytraceError as exc:
            raise LogEntryError(seq, f"malformed entry: {exc.message}") from exc
        if entry.seq != seq:
            raise LogEntryError(seq, f"entry in position {seq} says seq {entry.seq}")
        expected_prev = prev_hash.hex() if seq else GENESIS_PREV
        links = entry.prev == expected_prev
        if broken_link is not None:
            j = broken_link
            if links:
                raise LogChainError(j - 1, f"entry {j - 1} does not hash to the prev of entry {j}")
            raise LogChainError(j, f"prev does not match the hash of entry {j - 1}")
        if not links:
            broken_link = seq
        if seq == 0:
            _check_genesis(entry, origin, trusted_vkeys)
        data = entry.canonical
        prev_hash = hashlib.sha256(data).digest()
        level, h = 0, merkle.leaf_hash(data)
        while stack and stack[-1][0] == level:
            h = merkle.hash_children(stack.pop()[1], h)
            level += 1
        stack.append((level, h))
        count = seq + 1
        while pending_cp is not None and pending_cp.size == count:
            if merkle.fold_right([x for _, x in stack]) != pending_cp.root:
                if broken_link is not None:
                    raise LogChainError(
                        broken_link, f"prev does not match the hash of entry {broken_link - 1}"
                    )
                raise LogRootMismatchError(
                    matched,
                    f"entries {matched}..{count - 1} do not hash to the root of the signed "
                    f"checkpoint of size {count}",
                    checkpoint_size=count,
                )
            matched, last_cp, checked = count, pending_cp, checked + 1
            pending_cp = next_checkpoint(count)
        if on_entry is not None:
            on_entry(entry)
        if progress is not None and count % 1024 == 0:
            progress(count)

    if broken_link is not None:
        raise LogChainError(
            broken_link, f"prev does not match the hash of entry {broken_link - 1}"
        )
    if pending_cp is not None:
        raise LogRootMismatchError(
            count,
            f"the log ends after {count} entries but a checkpoint of size {pending_cp.size} "
            "was signed",
            checkpoint_size=pending_cp.size,
        )
    if progress is not None:
        progress(count)
    assert last_cp is not None  # the first checkpoint was either matched or raised
    return LogSummary(count, merkle.fold_right([x for _, x in stack]), last_cp, checked)


def _check_genesis(entry: Entry, origin: str, trusted_vkeys: set[str]) -> None:
    doc = entry.document
    if doc.get("type") != "LedgerGenesis":
        raise LogGenesisError(0, "entry 0 is not a LedgerGenesis document")
    if doc.get("origin") != origin:
        raise LogGenesisError(0, f"genesis origin {doc.get('origin')!r} is not {origin!r}")
    if doc.get("logKey") not in trusted_vkeys:
        raise LogGenesisError(0, "genesis logKey is not a trusted log key")
    from batterytrace.credentials.data_integrity import verify_proofs
    from batterytrace.credentials.did import OfflineResolver

    try:
        results = verify_proofs(doc, OfflineResolver())
    except BatterytraceError as exc:
        raise LogGenesisError(0, f"genesis signature: {exc.message}") from exc
    if not results or any(r.controller != doc.get("adminKey") for r in results):
        raise LogGenesisError(0, "genesis is not signed by its adminKey")
