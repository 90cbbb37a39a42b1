"""RFC 6962 / RFC 9162 Merkle tree hashes, proofs and their verification.

MTH({}) = SHA-256(""), leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); a
range of n > 1 leaves splits at k, the largest power of two smaller than n. Builders take the
leaf hashes; verifiers follow RFC 9162 2.1.3.2 (inclusion) and 2.1.4.2 (consistency) and raise a
`ProofError` subclass on every failure, never another exception type.

For a storage layer that persists complete subtrees: `inclusion_proof_ranges` and
`consistency_proof_ranges` name the [start, end) leaf ranges whose MTH make up a proof, in proof
order; `aligned_subtrees` splits such a range into stored (level, index) subtrees and
`fold_right` combines their hashes into the MTH of the range.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from batterytrace.credentials.errors import InputError, VerificationError

HASH_SIZE = 32
_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()
# RFC 9162 tree sizes and indexes are uint64.
MAX_TREE_SIZE = 2**64 - 1


class ProofError(VerificationError):
    """A Merkle inclusion or consistency proof does not verify."""

    code = "MERKLE_PROOF_ERROR"
    title = "Merkle proof does not verify"


class HashFormatError(ProofError):
    """A leaf hash, root or proof element is not a 32-byte hash (or the proof not a list)."""

    code = "MERKLE_HASH_FORMAT_ERROR"
    title = "Malformed Merkle hash"


class TreeSizeError(ProofError):
    """Index or tree sizes out of range: index >= size, old size 0, old size > new size."""

    code = "MERKLE_TREE_SIZE_ERROR"
    title = "Tree size or index out of range"


class ProofLengthError(ProofError):
    """The proof has more or fewer hashes than the sizes call for."""

    code = "MERKLE_PROOF_LENGTH_ERROR"
    title = "Merkle proof has the wrong length"


class RootMismatchError(ProofError):
    """The root computed from the proof differs from the expected root."""

    code = "MERKLE_ROOT_MISMATCH_ERROR"
    title = "Merkle root does not match"


class MerkleInputError(InputError):
    """A builder got unusable input: leaf data that is not bytes, a leaf hash not 32 bytes."""

    code = "MERKLE_INPUT_ERROR"
    title = "Unusable input to a Merkle tree builder"


class TreeRangeError(MerkleInputError):
    """A proof was requested for an index or size the tree does not have (builders only)."""

    code = "MERKLE_RANGE_ERROR"
    title = "No such proof in this tree"


# --- hashes ------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    if not isinstance(data, (bytes, bytearray)):
        raise MerkleInputError(f"leaf data must be bytes, got {type(data).__name__}")
    return hashlib.sha256(b"\x00" + data).digest()


def leaf_hash_state(head: bytes) -> Any:
    """The SHA-256 state of a leaf hash fed with the first bytes `head` of the leaf data:
    `.update(rest)` then `.digest()` gives `leaf_hash(head + rest)`."""
    state = _LEAF_START.copy()
    state.update(head)
    return state


_LEAF_START = hashlib.sha256(b"\x00")  # copied, never updated


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right) of two 32-byte hashes."""
    for h in (left, right):
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise MerkleInputError(f"node children must be {HASH_SIZE}-byte hashes")
    return hash_children(left, right)


def hash_children(left: bytes, right: bytes) -> bytes:
    """`node_hash` without its input checks, for hashes this module's own functions made
    (the hot loops that extend a tree while appending or verifying a log)."""
    return _sha256(b"\x01" + left + right).digest()


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """node(h0, node(h1, ... node(h[-2], h[-1]))): the MTH of [start, end) from the hashes of
    `aligned_subtrees(start, end)` whenever start is a multiple of the smallest power of two
    >= end - start (true of every range `*_proof_ranges` returns, and of [0, n)).
    The empty sequence folds to the empty root."""
    _check_leaves(hashes)
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = hash_children(h, acc)
    return acc


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the whole sequence of leaf hashes (RFC 6962 2.1)."""
    _check_leaves(leaf_hashes)
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def _mth(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    tree = CompactRange()
    for i in range(start, end):
        tree.append(leaf_hashes[i])
    return tree.root()


class CompactRange:
    """The tree of a stream of leaf hashes in O(log n) memory: equal-sized perfect subtrees
    are merged as leaves arrive, and what is left folds to the root (the same tree as the
    RFC's recursive split, in O(n) hashes). For leaf hashes this module made (unchecked)."""

    __slots__ = ("size", "stack")

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []  # (level, hash) of the range [0, size)
        self.size = 0

    def append(self, leaf: bytes) -> None:
        """The next leaf hash."""
        stack = self.stack
        level, h = 0, leaf
        while stack and stack[-1][0] == level:
            h = hash_children(stack.pop()[1], h)
            level += 1
        stack.append((level, h))
        self.size += 1

    def root(self) -> bytes:
        """The root of the leaves appended so far (the empty root when none)."""
        return fold_right([h for _, h in self.stack])


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- proof ranges (for a store of complete subtrees) --------------------------------------


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """[start, end) leaf ranges whose MTH form PATH(index, D[0:size]), leaf sibling first."""
    if not _is_int(index) or not _is_int(size) or not 0 <= index < size <= MAX_TREE_SIZE:
        raise TreeRangeError(f"no leaf {index} in a tree of size {size}", index=index, size=size)
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_proof_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """[start, end) leaf ranges whose MTH form PROOF(old_size, D[0:new_size]) (RFC 6962 2.1.2),
    in proof order; empty when the sizes are equal."""
    if (
        not _is_int(old_size)
        or not _is_int(new_size)
        or not 0 < old_size <= new_size <= MAX_TREE_SIZE
    ):
        raise TreeRangeError(
            f"no consistency proof from size {old_size} to {new_size}",
            old_size=old_size,
            new_size=new_size,
        )
    ranges: list[tuple[int, int]] = []
    start, end, m, whole_old_tree = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, whole_old_tree = start + k, m - k, False
    if not whole_old_tree:
        # SUBPROOF(m, D[m], false) = [MTH(D[m])]: the old subtree the verifier cannot know.
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def aligned_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """(level, index) of the maximal complete aligned subtrees covering [start, end), left to
    right; subtree (level, index) holds leaves [index * 2**level, (index + 1) * 2**level)."""
    if not _is_int(start) or not _is_int(end) or not 0 <= start <= end:
        raise TreeRangeError(f"bad leaf range [{start}, {end})", start=start, end=end)
    out: list[tuple[int, int]] = []
    while start < end:
        # The largest subtree that is aligned at start and still fits before end.
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        out.append((level, start >> level))
        start += 1 << level
    return out


# --- proofs from an in-memory list of leaf hashes ------------------------------------------


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 2.1.1 over the given leaf hashes."""
    _check_leaves(leaf_hashes)
    ranges = inclusion_proof_ranges(index, len(leaf_hashes))
    return [_mth(leaf_hashes, s, e) for s, e in ranges]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) of RFC 6962 2.1.2 over the given leaf hashes."""
    _check_leaves(leaf_hashes)
    ranges = consistency_proof_ranges(old_size, len(leaf_hashes))
    return [_mth(leaf_hashes, s, e) for s, e in ranges]


# --- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ------------------------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`."""
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root hash")
    path = _check_proof(proof)
    if not _is_int(index) or not _is_int(size) or not 0 <= index < size <= MAX_TREE_SIZE:
        raise TreeSizeError(
            f"index {index} is not in a tree of size {size}", index=index, size=size
        )
    fn, sn, r = index, size - 1, bytes(leaf_hash)
    for p in path:
        if sn == 0:
            raise ProofLengthError("inclusion proof is too long", index=index, size=size)
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofLengthError("inclusion proof is too short", index=index, size=size)
    if r != root:
        raise RootMismatchError("inclusion proof does not lead to the root", index=index, size=size)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of `new_size` leaves with `new_root` extends the one of `old_size`
    with `old_root`."""
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    path = _check_proof(proof)
    if (
        not _is_int(old_size)
        or not _is_int(new_size)
        or not 0 < old_size <= new_size <= MAX_TREE_SIZE
    ):
        raise TreeSizeError(
            f"no consistency proof from size {old_size} to {new_size}",
            old_size=old_size,
            new_size=new_size,
        )
    if old_size == new_size:
        if path:
            raise ProofLengthError("equal sizes need an empty proof", size=old_size)
        if old_root != new_root:
            raise RootMismatchError("equal sizes with different roots", size=old_size)
        return
    if not path:
        raise ProofLengthError("consistency proof is empty", old_size=old_size, new_size=new_size)
    if old_size & (old_size - 1) == 0:
        # The old tree is a complete subtree of the new one: the proof leaves its root out.
        path = [bytes(old_root), *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofLengthError(
                "consistency proof is too long", old_size=old_size, new_size=new_size
            )
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofLengthError(
            "consistency proof is too short", old_size=old_size, new_size=new_size
        )
    if fr != old_root:
        raise RootMismatchError(
            "consistency proof does not lead to the old root", old_size=old_size, new_size=new_size
        )
    if sr != new_root:
        raise RootMismatchError(
            "consistency proof does not lead to the new root", old_size=old_size, new_size=new_size
        )


# --- input checks ------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return type(value) is int  # not bool, which is an int too


def _check_hash(value: Any, what: str) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != HASH_SIZE:
        shown = len(value) if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise HashFormatError(f"{what} must be {HASH_SIZE} bytes, got {shown}")


def _check_leaves(leaf_hashes: Any) -> None:
    # Builders: bad input is the caller's (exit 2), not a failed verification.
    if isinstance(leaf_hashes, (str, bytes, bytearray)) or not isinstance(leaf_hashes, Sequence):
        raise MerkleInputError("leaf hashes must be a sequence of 32-byte hashes")
    for h in leaf_hashes:
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise MerkleInputError(f"leaf hashes must be {HASH_SIZE} bytes each")


def _check_proof(proof: Any) -> list[bytes]:
    # bytes and str are Sequences too: a concatenated proof must not pass as a list of ints.
    if isinstance(proof, (str, bytes, bytearray, memoryview)) or not isinstance(proof, Sequence):
        raise HashFormatError(f"proof must be a list of hashes, got {type(proof).__name__}")
    path = list(proof)
    if not all(type(p) is bytes and len(p) == HASH_SIZE for p in path):
        for i, p in enumerate(path):
            _check_hash(p, f"proof hash {i}")
        path = [bytes(p) for p in path]  # bytearrays
    return path


__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "CompactRange",
    "HashFormatError",
    "MerkleInputError",
    "ProofError",
    "ProofLengthError",
    "RootMismatchError",
    "TreeRangeError",
    "TreeSizeError",
    "aligned_subtrees",
    "consistency_proof",
    "consistency_proof_ranges",
    "fold_right",
    "inclusion_proof",
    "inclusion_proof_ranges",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]
