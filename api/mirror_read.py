"""The read-side commands against a mirror (`batterytrace --mirror URL --trust FILE ...`):
`ledger prove`, `ledger consistency`, `ledger verify`, `bundle export`, and the monitor,
reading C2SP tiles.

A mirror is never trusted: its checkpoint must be signed by the log key the trust file names
and carry the trust file's witness quorum, and its tiles must rebuild that checkpoint's root
before any proof or entry read from them is used (`MirrorMismatchError` otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from batterytrace.credentials.errors import InputError, VerificationError
from batterytrace.ledger import merkle
from batterytrace.ledger.checkpoint import Checkpoint
from batterytrace.ledger.entry import Entry
from batterytrace.ledger.tiles import TileReader
from batterytrace.ledger.tlog_proof import format_proof
from batterytrace.verifier.gossip import trusted_ledger_of
from batterytrace.verifier.report import Report
from batterytrace.verifier.trust import TrustedLedger, load_trust

from .mirror import fetch_checkpoint, mirror_fetch


class MirrorMismatchError(VerificationError):
    """The mirror's tiles or entries do not match the checkpoint it serves."""

    code = "MIRROR_MISMATCH"
    title = "Mirror does not match its checkpoint"


@dataclass
class MirrorView:
    """A mirror's verified checkpoint and a tile reader tied to its root."""

    ledger: TrustedLedger
    checkpoint: Checkpoint
    note: bytes
    cosigned: list[str]
    reader: TileReader
    fetch: Callable[[str], bytes]


def open_mirror(source: str, trust_file: Path | None, cache_dir: Path | None = None,
                note: bytes | None = None) -> MirrorView:
    """Read the mirror's checkpoint (or check `note` instead), verify it with the trust file,
    and tie its tiles to its root."""
    if trust_file is None:
        raise InputError("reading a mirror needs --trust FILE (the log key and witnesses)")
    trust = load_trust(trust_file)
    fetch = mirror_fetch(source, cache_dir)
    note = fetch_checkpoint(fetch) if note is None else note
    ledger = trusted_ledger_of(note, trust)
    cp, cosigned = ledger.open_note(note)
    reader = TileReader(fetch, cp.size)
    if reader.root() != cp.root:
        raise MirrorMismatchError(
            f"the tiles of {source} do not rebuild the root of its checkpoint (size {cp.size})")
    return MirrorView(ledger, cp, note, cosigned, reader, fetch)


def mirror_prove(view: MirrorView, seq: int) -> tuple[bytes, bytes]:
    """(tlog-proof, leaf hash) of entry `seq` against the mirror's checkpoint; the entry
    itself is read and checked against its leaf."""
    size = view.checkpoint.size
    if not 0 <= seq < size:
        raise InputError(f"no entry {seq} in a tree of size {size}")
    entry = next(view.reader.entries(seq, seq + 1))[1]
    leaf = merkle.leaf_hash(entry)
    proof = view.reader.inclusion_proof(seq)
    merkle.verify_inclusion(leaf, seq, size, proof, view.checkpoint.root)
    return format_proof(seq, proof, view.note), leaf


def mirror_consistency(view: MirrorView, old: int, new: int) -> tuple[list[bytes], bytes,
                                                                     bytes]:
    """(proof, old root, new root) between two sizes up to the mirror's checkpoint."""
    if not 1 <= old <= new <= view.checkpoint.size:
        raise InputError(f"no consistency proof from size {old} to {new} (mirror size "
                         f"{view.checkpoint.size})")
    proof = view.reader.consistency_proof(old, new)
    old_root, new_root = view.reader.root_at(old), view.reader.root_at(new)
    merkle.verify_consistency(old, new, old_root, new_root, proof)
    return proof, old_root, new_root


def mirror_verify(view: MirrorView, processes: int = 1) -> Report:
    """Every entry of the mirror (each against its leaf, the leaves against the root), then
    the chain, signatures and custody rules replayed as an `all` bundle."""
    from batterytrace.verifier.bundle_verify import verify_entries

    entries = (entry for _, entry in view.reader.entries())
    return verify_entries(entries, view.ledger, [view.note], processes=processes)


class RollbackError(VerificationError):
    """The mirror serves a checkpoint older than one already verified."""

    code = "LOG_ROLLBACK"
    title = "Log rolled back"


class BadEntryError(VerificationError):
    """The monitor found an entry that does not verify (its seq and the check's code)."""

    code = "MONITOR_BAD_ENTRY"
    title = "Log holds an entry that does not verify"


@dataclass(frozen=True)
class MonitorResult:
    """One monitor run: the sizes verified and who cosigned the new checkpoint."""

    previous_size: int
    size: int
    entries_replayed: int
    cosigned: list[str]

    def to_json(self) -> dict[str, object]:
        return {"ok": True, "previousSize": self.previous_size, "size": self.size,
                "newEntries": self.size - self.previous_size,
                "entriesReplayed": self.entries_replayed, "cosignedBy": self.cosigned}


def monitor(source: str, trust_file: Path | None, since: Path | None, state: Path,
            processes: int = 1, cache_dir: Path | None = None) -> MonitorResult:
    """Follow a mirror: its checkpoint (log key, quorum) must be consistent with the last
    checkpoint verified (`state`, else `since`); every entry is replayed (signatures,
    custody rules); then `state` holds the new checkpoint. Raises the first fault."""
    from batterytrace.verifier.gossip import compare_checkpoints

    if trust_file is None:
        raise InputError("reading a mirror needs --trust FILE (the log key and witnesses)")
    served = fetch_checkpoint(mirror_fetch(source, cache_dir))
    ledger = trusted_ledger_of(served, load_trust(trust_file))
    current = ledger.open_note(served)[0]
    previous: list[bytes] = [p.read_bytes() for p in (since, state) if p and p.exists()]
    for note in previous:  # before any tile is read: a rolled-back mirror lacks them
        old = ledger.open_note(note)[0]
        if old.size > current.size:
            raise RollbackError(
                f"the mirror serves size {current.size}, older than the size {old.size} "
                "verified before: a rollback (or a stale mirror)",
                size=current.size, verified_size=old.size)
    view = open_mirror(source, trust_file, cache_dir, note=served)
    previous_size = 0
    for note in previous:
        old = compare_checkpoints(note, view.note, view.ledger, lambda: view.fetch).a
        previous_size = max(previous_size, old.size)
    report = mirror_verify(view, processes)
    if not report.ok:
        first = report.failures[0]
        where = f"entry {first.seq}" if first.seq is not None else first.record
        raise BadEntryError(f"{where}: {first.code}: {first.reason}", seq=first.seq,
                            cause=first.code)
    tmp = state.with_name(f".{state.name}.tmp")
    state.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(view.note)
    tmp.replace(state)
    return MonitorResult(previous_size, view.checkpoint.size, report.replayed, view.cosigned)


class MirrorLog:
    """What `ledger.bundle_export.export_bundle` reads of a ledger, answered from a verified
    mirror: entries (each checked against its leaf), proofs from tiles, the mirror's
    checkpoint. Credentials, status lists and DID documents are not in the tiles: a bundle
    exported from a mirror carries the entries (events, anchors, registry) and proofs."""

    def __init__(self, view: MirrorView) -> None:
        self.view = view
        self.origin = view.ledger.origin
        self.verifier = view.ledger.note_verifier

    def latest_checkpoint(self) -> tuple[Checkpoint, bytes]:
        return self.view.checkpoint, self.view.note

    def iter_entries(self, start: int = 0, end: int | None = None) -> Iterator[Entry]:
        for _, data in self.view.reader.entries(start, end):
            yield Entry.parse(data)

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[bytes]:
        if size not in (None, self.view.checkpoint.size):
            raise InputError("a mirror proves against its checkpoint's size only")
        return self.view.reader.inclusion_proof(seq)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        return self.view.reader.consistency_proof(old, new)
