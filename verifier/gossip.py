"""Gossip: are two checkpoints of one log views of the same history, or a split view?

`read_checkpoint_file` takes a signed checkpoint note or an evidence bundle (its header's
checkpoint). `compare_checkpoints` opens both with the log key the trust file names, then:
same size and root, consistent; same size, two roots, a split view (the two signed notes
are the evidence); different sizes, the consistency proof from the smaller to the larger,
from tiles (a mirror, never trusted: the tiles must rebuild the larger checkpoint's root).
Pure: the tiles come through a fetch callable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from batterytrace.credentials.errors import InputError, VerificationError
from batterytrace.ledger import merkle
from batterytrace.ledger.checkpoint import Checkpoint, open_checkpoint
from batterytrace.ledger.tiles import Fetch, TileReader

from .bundle import parse_header
from .trust import TrustConfig, TrustedLedger


class SplitViewError(VerificationError):
    """Two checkpoints signed by one log's key are not views of one append-only history."""

    code = "SPLIT_VIEW"
    title = "Split view: two inconsistent checkpoints of one log"


class ComparisonUnprovableError(InputError):
    """Two checkpoints of different sizes and no source of a consistency proof."""

    code = "COMPARE_NEEDS_PROOF"
    title = "Consistency cannot be proved without tiles"


def read_checkpoint_file(data: bytes) -> bytes:
    """The checkpoint note of a file holding a signed note or an evidence bundle."""
    first = data.split(b"\n", 1)[0]
    if first.startswith(b"{"):
        try:
            obj = json.loads(first)
        except json.JSONDecodeError as exc:
            raise InputError(f"not a bundle header: {exc}") from None
        return parse_header(obj).checkpoint
    return data


@dataclass(frozen=True)
class Comparison:
    """The outcome: both checkpoints, and how their consistency was shown."""

    a: Checkpoint
    b: Checkpoint
    how: str

    def to_json(self) -> dict[str, object]:
        return {"consistent": True, "a": {"size": self.a.size, "root": self.a.root.hex()},
                "b": {"size": self.b.size, "root": self.b.root.hex()}, "how": self.how}


def trusted_ledger_of(note: bytes, trust: TrustConfig) -> TrustedLedger:
    """The trust file's [[ledger]] for the note's origin line (InputError when none)."""
    origin = note.split(b"\n", 1)[0].decode("utf-8", "replace")
    ledger = trust.ledger(origin)
    if ledger is None:
        raise InputError(f"no [[ledger]] with origin {origin!r:.80} in the trust file")
    return ledger


def compare_checkpoints(note_a: bytes, note_b: bytes, ledger: TrustedLedger,
                        tiles: Callable[[], Fetch] | None = None) -> Comparison:
    """Prove two signed checkpoints of `ledger` consistent, or raise SplitViewError."""
    verifier = ledger.note_verifier
    a = open_checkpoint(note_a, [verifier], ledger.origin)
    b = open_checkpoint(note_b, [verifier], ledger.origin)
    small, large = (a, b) if a.size <= b.size else (b, a)
    if small.size == large.size:
        if small.root != large.root:
            raise SplitViewError(
                f"two roots signed for size {small.size}: {a.root.hex()} and {b.root.hex()}",
                size=small.size, roots=[a.root.hex(), b.root.hex()])
        return Comparison(a, b, "same size and root")
    if small.size == 0:
        return Comparison(a, b, "the empty tree is consistent with any tree")
    if tiles is None:
        raise ComparisonUnprovableError(
            f"sizes {a.size} and {b.size} differ: give --mirror to read the consistency proof")
    reader = TileReader(tiles(), large.size)
    if reader.root() != large.root:
        raise VerificationError(
            f"the mirror's tiles do not rebuild the root of size {large.size}: the mirror is "
            "stale or lies (this proves nothing about the log)")
    proof = reader.consistency_proof(small.size)
    try:
        merkle.verify_consistency(small.size, large.size, small.root, large.root, proof)
    except merkle.ProofError as exc:
        raise SplitViewError(
            f"size {small.size} (root {small.root.hex()}) is not a prefix of size "
            f"{large.size} (root {large.root.hex()}): {exc.message}",
            sizes=[small.size, large.size]) from None
    return Comparison(a, b, f"consistency proof from size {small.size} to {large.size}")


__all__ = ["Comparison", "ComparisonUnprovableError", "SplitViewError",
           "compare_checkpoints", "read_checkpoint_file", "trusted_ledger_of"]
