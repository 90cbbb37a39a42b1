"""The sequential half of `ledger.log_verify.verify_log`, fed hashes computed elsewhere.

An `all` bundle's entries are parsed and hashed in worker processes (`bundle_windows`); what
must run in log order stays here: each entry's `prev` against the hash of the one before, the
compact range of the Merkle tree, and the root of the signed checkpoint. The decisions and the
errors are verify_log's, step for step (tests/test_bundle_perf_paths.py compares the two on
tampered logs): a broken link between j-1 and j is decided at entry j+1, a root mismatch names
the first entry after the last checkpoint that matched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from batterytrace.ledger import merkle
from batterytrace.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from batterytrace.ledger.entry import GENESIS_PREV, Entry
from batterytrace.ledger.errors import (
    CheckpointNotSignedError,
    LogChainError,
    LogEntryError,
    LogGenesisError,
    LogRootMismatchError,
)
from batterytrace.ledger.log_verify import _check_genesis


class HashChain:
    """Links entries in log order: `link` each one (its fields already checked), then `end`.
    Raises LogVerificationError subclasses, or a checkpoint error for a note that does not
    verify, exactly where `verify_log` would."""

    def __init__(self, checkpoints: Iterable[bytes], verifiers: Sequence[NoteVerifier],
                 origin: str) -> None:
        self.notes: Iterator[bytes] = iter(checkpoints)
        self.verifiers = verifiers
        self.origin = origin
        self.trusted_vkeys = {v.vkey for v in verifiers}
        self.stack: list[tuple[int, bytes]] = []  # (level, hash) of the range [0, count)
        self.count = 0
        self.matched = 0  # size of the last checkpoint that matched
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
            _check_genesis(genesis, self.origin, self.trusted_vkeys)
        self.prev_hex = entry_hash.hex()
        stack = self.stack
        level, h = 0, leaf
        while stack and stack[-1][0] == level:
            h = merkle.node_hash(stack.pop()[1], h)
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
            self.matched = count
            self.pending = self._next_checkpoint(count)

    def end(self) -> None:
        """After the last entry: a link left undecided, or a checkpoint beyond the log."""
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
