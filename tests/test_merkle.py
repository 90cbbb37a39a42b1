"""RFC 6962 Merkle trees: known answers, a naive reference straight from RFC 6962 2.1, proofs
for every size up to a few hundred, every mutation rejected with a ProofError."""

from __future__ import annotations

import hashlib
import itertools
from functools import cache

import pytest
from batterytrace.credentials.errors import InputError, VerificationError
from batterytrace.ledger.merkle import (
    EMPTY_ROOT,
    HashFormatError,
    MerkleInputError,
    ProofError,
    ProofLengthError,
    RootMismatchError,
    TreeRangeError,
    TreeSizeError,
    aligned_subtrees,
    consistency_proof,
    consistency_proof_ranges,
    fold_right,
    inclusion_proof,
    inclusion_proof_ranges,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from hypothesis import given
from hypothesis import strategies as st

# --- the naive reference: RFC 6962 section 2.1, recursion on [start, end) of LEAVES -------

N = 300
LEAVES = [leaf_hash(b"entry %d" % i) for i in range(N)]


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def mth(start: int, end: int) -> bytes:
    n = end - start
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return LEAVES[start]
    k = _k(n)
    return hashlib.sha256(b"\x01" + mth(start, start + k) + mth(start + k, end)).digest()


def path(m: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, start, start + k), mth(start + k, end)]
    return [*path(m - k, start + k, end), mth(start, start + k)]


def subproof(m: int, start: int, end: int, b: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if b else [mth(start, end)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, start, start + k, b), mth(start + k, end)]
    return [*subproof(m - k, start + k, end, False), mth(start, start + k)]


def from_ranges(ranges: list[tuple[int, int]]) -> list[bytes]:
    """A proof built the way a subtree store builds it: aligned subtrees, folded."""
    return [
        fold_right([mth(i << lvl, (i + 1) << lvl) for lvl, i in aligned_subtrees(s, e)])
        for s, e in ranges
    ]


# --- known answers (RFC 6962 test vectors, as in transparency-dev/merkle) ----------------

CT_DATA = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_LEAVES = [leaf_hash(d) for d in CT_DATA]
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CT_CONSISTENCY = {
    (2, 8): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


def ct_root(n: int) -> bytes:
    return bytes.fromhex(CT_ROOTS[n])


def test_known_answers():
    assert EMPTY_ROOT.hex() == CT_ROOTS[0] == root_hash([]).hex()
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert node_hash(CT_LEAVES[0], CT_LEAVES[1]).hex() == CT_ROOTS[2]
    for n in range(len(CT_DATA) + 1):
        assert root_hash(CT_LEAVES[:n]).hex() == CT_ROOTS[n], n


@pytest.mark.parametrize(("index", "size"), sorted(CT_INCLUSION))
def test_known_inclusion_proofs(index, size):
    expected = [bytes.fromhex(h) for h in CT_INCLUSION[(index, size)]]
    assert inclusion_proof(CT_LEAVES[:size], index) == expected
    verify_inclusion(CT_LEAVES[index], index, size, expected, ct_root(size))


@pytest.mark.parametrize(("old", "new"), sorted(CT_CONSISTENCY))
def test_known_consistency_proofs(old, new):
    expected = [bytes.fromhex(h) for h in CT_CONSISTENCY[(old, new)]]
    assert consistency_proof(CT_LEAVES[:new], old) == expected
    verify_consistency(old, new, ct_root(old), ct_root(new), expected)


# --- against the naive reference, every size up to N --------------------------------------


def test_root_every_size():
    for n in range(N + 1):
        assert root_hash(LEAVES[:n]) == mth(0, n), n
        assert fold_right([mth(i << lvl, (i + 1) << lvl) for lvl, i in aligned_subtrees(0, n)]) == (
            mth(0, n)
        )


def test_in_memory_proofs_every_small_tree():
    for n in range(1, 65):
        tree, root = LEAVES[:n], mth(0, n)
        for m in range(n):
            proof = inclusion_proof(tree, m)
            assert proof == path(m, 0, n), (m, n)
            verify_inclusion(LEAVES[m], m, n, proof, root)
        for m in range(1, n + 1):
            proof = consistency_proof(tree, m)
            assert proof == subproof(m, 0, n, True), (m, n)
            verify_consistency(m, n, mth(0, m), root, proof)


def probes(n: int) -> range | set[int]:
    """Every index of trees up to 100 leaves, the edges and a middle stripe beyond."""
    if n <= 100:
        return range(n)
    return {0, 1, n // 3, n // 2, n - 2, n - 1} | set(range(n // 2 + 17, n, 53))


def test_range_proofs_every_size_up_to_n():
    # Every size up to N, built from aligned subtrees as a store does.
    for n in range(1, N + 1):
        root = mth(0, n)
        for m in probes(n):
            proof = from_ranges(inclusion_proof_ranges(m, n))
            assert proof == path(m, 0, n), (m, n)
            verify_inclusion(LEAVES[m], m, n, proof, root)
        for m in probes(n + 1) - {0} if n > 100 else range(1, n + 1):
            proof = from_ranges(consistency_proof_ranges(m, n))
            assert proof == subproof(m, 0, n, True), (m, n)
            verify_consistency(m, n, mth(0, m), root, proof)


@st.composite
def big_tree(draw):
    n, seed = draw(st.integers(1, 5000)), draw(st.binary(max_size=8))
    return n, [leaf_hash(seed + b"%d" % i) for i in range(n)]


@given(big_tree(), st.data())
def test_random_larger_trees(tree, data):
    n, leaves = tree
    m = data.draw(st.integers(0, n - 1))
    old = data.draw(st.integers(1, n))
    root = root_hash(leaves)
    proof = inclusion_proof(leaves, m)
    assert len(proof) <= (n - 1).bit_length()
    verify_inclusion(leaves[m], m, n, proof, root)
    cproof = consistency_proof(leaves, old)
    assert len(cproof) <= (n - 1).bit_length() + 1
    verify_consistency(old, n, root_hash(leaves[:old]), root, cproof)


# --- subtree helpers ------------------------------------------------------------------------


@given(st.integers(0, 2**40), st.integers(0, 2**12))
def test_aligned_subtrees_cover_the_range_maximally(start, length):
    end = start + length
    subtrees = aligned_subtrees(start, end)
    pos = start
    for level, index in subtrees:
        assert index << level == pos  # contiguous, left to right, aligned
        pos += 1 << level
    assert pos == end
    # Maximal: no two neighbours of one level could merge into their aligned parent.
    for (l1, i1), (l2, _) in itertools.pairwise(subtrees):
        assert not (l1 == l2 and i1 % 2 == 0)
    assert len(subtrees) <= 2 * max(1, length.bit_length())


def test_aligned_subtrees_examples():
    assert aligned_subtrees(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert aligned_subtrees(3, 13) == [(0, 3), (2, 1), (2, 2), (0, 12)]
    assert aligned_subtrees(5, 5) == []
    assert fold_right([]) == EMPTY_ROOT
    assert fold_right([LEAVES[0]]) == LEAVES[0]


def test_proof_ranges_examples():
    assert inclusion_proof_ranges(0, 1) == []
    assert inclusion_proof_ranges(5, 8) == [(4, 5), (6, 8), (0, 4)]
    assert consistency_proof_ranges(6, 8) == [(4, 6), (6, 8), (0, 4)]
    assert consistency_proof_ranges(4, 8) == [(4, 8)]
    assert consistency_proof_ranges(7, 7) == []
    # A million leaves: 20 hashes, whatever the index.
    assert len(inclusion_proof_ranges(123_456, 10**6)) == 20


# --- every mutation is rejected --------------------------------------------------------------


def flip(h: bytes, i: int) -> bytes:
    return h[:i] + bytes([h[i] ^ 0x01]) + h[i + 1 :]


def test_inclusion_mutations_small_trees():
    for n in range(1, 20):
        root = mth(0, n)
        for m in range(n):
            proof = path(m, 0, n)
            for i in range(len(proof)):
                for byte in (0, 31):
                    bad = [*proof[:i], flip(proof[i], byte), *proof[i + 1 :]]
                    with pytest.raises(RootMismatchError):
                        verify_inclusion(LEAVES[m], m, n, bad, root)
                with pytest.raises(ProofLengthError):
                    verify_inclusion(LEAVES[m], m, n, proof[:i] + proof[i + 1 :], root)
            for i in range(len(proof) + 1):
                extra = [*proof[:i], LEAVES[0], *proof[i:]]
                with pytest.raises(ProofLengthError):
                    verify_inclusion(LEAVES[m], m, n, extra, root)
            with pytest.raises(RootMismatchError):
                verify_inclusion(flip(LEAVES[m], 7), m, n, proof, root)
            with pytest.raises(RootMismatchError):
                verify_inclusion(LEAVES[m], m, n, proof, flip(root, 0))
            for other in range(n):
                if other != m:
                    with pytest.raises(ProofError):
                        verify_inclusion(LEAVES[m], other, n, proof, root)
                    with pytest.raises(ProofError):
                        verify_inclusion(LEAVES[other], m, n, proof, root)
            with pytest.raises(TreeSizeError):
                verify_inclusion(LEAVES[m], m, m, proof, root)


def test_inclusion_proof_does_not_bind_the_size_alone():
    # RFC 6962 property (why checkpoints sign size AND root): leaf 0 of 3 has the same path
    # shape in a tree of 4, so the size must come from a signed checkpoint, not the proof.
    verify_inclusion(LEAVES[0], 0, 4, path(0, 0, 3), mth(0, 3))
    # A size whose path has another length is rejected.
    with pytest.raises(ProofLengthError):
        verify_inclusion(LEAVES[0], 0, 5, path(0, 0, 3), mth(0, 3))


def test_consistency_mutations_small_trees():
    for n in range(2, 20):
        new_root = mth(0, n)
        for m in range(1, n):
            proof, old_root = subproof(m, 0, n, True), mth(0, m)
            for i in range(len(proof)):
                bad = [*proof[:i], flip(proof[i], i % 32), *proof[i + 1 :]]
                with pytest.raises(RootMismatchError):
                    verify_consistency(m, n, old_root, new_root, bad)
                with pytest.raises(ProofLengthError):
                    verify_consistency(m, n, old_root, new_root, proof[:i] + proof[i + 1 :])
            for i in range(len(proof) + 1):
                for junk in (LEAVES[0], old_root):
                    extra = [*proof[:i], junk, *proof[i:]]
                    with pytest.raises(ProofLengthError):
                        verify_consistency(m, n, old_root, new_root, extra)
            with pytest.raises(ProofError):
                verify_consistency(m, n, new_root, old_root, proof)  # swapped roots
            with pytest.raises(RootMismatchError):
                verify_consistency(m, n, flip(old_root, 3), new_root, proof)
            with pytest.raises(RootMismatchError):
                verify_consistency(m, n, old_root, flip(new_root, 3), proof)
            with pytest.raises(TreeSizeError):
                verify_consistency(n, m, new_root, old_root, proof)


@given(st.integers(2, N), st.data())
def test_mutated_consistency_proofs_raise(n, data):
    m = data.draw(st.integers(1, n - 1))
    proof = subproof(m, 0, n, True)
    i = data.draw(st.integers(0, len(proof) - 1))
    byte = data.draw(st.integers(0, 31))
    bad = [*proof[:i], flip(proof[i], byte), *proof[i + 1 :]]
    with pytest.raises(ProofError):
        verify_consistency(m, n, mth(0, m), mth(0, n), bad)
    other = data.draw(st.integers(1, n).filter(lambda x: x != m))
    with pytest.raises(ProofError):
        verify_consistency(other, n, mth(0, m), mth(0, n), proof)


def test_equal_sizes():
    root = mth(0, 5)
    verify_consistency(5, 5, root, root, [])
    with pytest.raises(ProofLengthError):
        verify_consistency(5, 5, root, root, [root])
    with pytest.raises(RootMismatchError):
        verify_consistency(5, 5, root, mth(0, 4), [])


# --- table-driven rejections: every one is a ProofError, never another exception ---------

R8, P58 = ct_root(8), [bytes.fromhex(h) for h in CT_INCLUSION[(5, 8)]]
R6, C68 = ct_root(6), [bytes.fromhex(h) for h in CT_CONSISTENCY[(6, 8)]]
L5 = CT_LEAVES[5]

INCLUSION_REJECTIONS = [
    ("leaf 31 bytes", (L5[:31], 5, 8, P58, R8), HashFormatError),
    ("leaf 33 bytes", (L5 + b"\x00", 5, 8, P58, R8), HashFormatError),
    ("leaf is str", (L5.hex(), 5, 8, P58, R8), HashFormatError),
    ("leaf is None", (None, 5, 8, P58, R8), HashFormatError),
    ("root 31 bytes", (L5, 5, 8, P58, R8[:31]), HashFormatError),
    ("root is hex", (L5, 5, 8, P58, R8.hex()), HashFormatError),
    ("proof element short", (L5, 5, 8, [P58[0][:31], *P58[1:]], R8), HashFormatError),
    ("proof element int", (L5, 5, 8, [1, *P58[1:]], R8), HashFormatError),
    ("proof concatenated", (L5, 5, 8, b"".join(P58), R8), HashFormatError),
    ("proof is None", (L5, 5, 8, None, R8), HashFormatError),
    ("proof is a set", (L5, 5, 8, set(P58), R8), HashFormatError),
    ("index == size", (L5, 8, 8, P58, R8), TreeSizeError),
    ("index past size", (L5, 9, 8, P58, R8), TreeSizeError),
    ("negative index", (L5, -1, 8, P58, R8), TreeSizeError),
    ("size 0", (L5, 0, 0, [], EMPTY_ROOT), TreeSizeError),
    ("size 2**64", (L5, 5, 2**64, P58, R8), TreeSizeError),
    ("index is str", (L5, "5", 8, P58, R8), TreeSizeError),
    ("size is float", (L5, 5, 8.0, P58, R8), TreeSizeError),
    ("index is bool", (L5, True, 8, P58, R8), TreeSizeError),
    ("garbage before", (L5, 5, 8, [R8, *P58], R8), ProofLengthError),
    ("garbage after", (L5, 5, 8, [*P58, R8], R8), ProofLengthError),
    ("too short", (L5, 5, 8, P58[:2], R8), ProofLengthError),
    ("empty proof", (L5, 5, 8, [], R8), ProofLengthError),
    ("single leaf with proof", (L5, 0, 1, [L5], L5), ProofLengthError),
    ("wrong leaf", (CT_LEAVES[4], 5, 8, P58, R8), RootMismatchError),
    ("wrong root", (L5, 5, 8, P58, R6), RootMismatchError),
    ("siblings swapped", (L5, 5, 8, [P58[1], P58[0], P58[2]], R8), RootMismatchError),
]


@pytest.mark.parametrize(
    ("args", "error"),
    [c[1:] for c in INCLUSION_REJECTIONS],
    ids=[c[0] for c in INCLUSION_REJECTIONS],
)
def test_inclusion_rejections(args, error):
    with pytest.raises(error) as info:
        verify_inclusion(*args)
    assert isinstance(info.value, ProofError) and info.value.exit_code == 1


CONSISTENCY_REJECTIONS = [
    ("old size 0", (0, 8, EMPTY_ROOT, R8, []), TreeSizeError),
    ("0 -> 0", (0, 0, EMPTY_ROOT, EMPTY_ROOT, []), TreeSizeError),
    ("old > new", (8, 6, R8, R6, C68), TreeSizeError),
    ("negative old", (-1, 8, R6, R8, C68), TreeSizeError),
    ("new 2**64", (6, 2**64, R6, R8, C68), TreeSizeError),
    ("size is str", ("6", 8, R6, R8, C68), TreeSizeError),
    ("size is None", (6, None, R6, R8, C68), TreeSizeError),
    ("old root short", (6, 8, R6[:31], R8, C68), HashFormatError),
    ("new root long", (6, 8, R6, R8 + b"\x00", C68), HashFormatError),
    ("roots are str", (6, 8, R6.hex(), R8.hex(), C68), HashFormatError),
    ("proof element short", (6, 8, R6, R8, [C68[0][:16], *C68[1:]]), HashFormatError),
    ("proof concatenated", (6, 8, R6, R8, b"".join(C68)), HashFormatError),
    ("proof is str", (6, 8, R6, R8, "abc"), HashFormatError),
    ("empty proof", (6, 8, R6, R8, []), ProofLengthError),
    ("equal sizes, proof given", (8, 8, R8, R8, C68[:1]), ProofLengthError),
    ("garbage before", (6, 8, R6, R8, [R6, *C68]), ProofLengthError),
    ("garbage after", (6, 8, R6, R8, [*C68, R8]), ProofLengthError),
    ("too short", (6, 8, R6, R8, C68[:2]), ProofLengthError),
    ("swapped roots", (6, 8, R8, R6, C68), RootMismatchError),
    ("wrong old root", (6, 8, ct_root(5), R8, C68), RootMismatchError),
    ("wrong new root", (6, 8, R6, ct_root(7), C68), RootMismatchError),
    ("equal sizes, other root", (8, 8, R8, R6, []), RootMismatchError),
]


@pytest.mark.parametrize(
    ("args", "error"),
    [c[1:] for c in CONSISTENCY_REJECTIONS],
    ids=[c[0] for c in CONSISTENCY_REJECTIONS],
)
def test_consistency_rejections(args, error):
    with pytest.raises(error) as info:
        verify_consistency(*args)
    assert isinstance(info.value, ProofError) and info.value.exit_code == 1


@given(
    st.one_of(st.none(), st.integers(), st.text(max_size=3), st.binary(max_size=40)),
    st.one_of(st.none(), st.integers(-3, 10), st.floats(), st.text(max_size=2)),
    st.one_of(st.none(), st.lists(st.binary(max_size=33), max_size=4), st.binary(max_size=70)),
)
def test_garbage_never_escapes_as_another_exception(h, n, proof):
    for call in (
        lambda: verify_inclusion(h, n, n, proof, h),
        lambda: verify_inclusion(L5, n, 8, proof, R8),
        lambda: verify_consistency(n, 8, h, R8, proof),
        lambda: verify_consistency(6, n, R6, h, proof),
    ):
        with pytest.raises(ProofError):
            call()


# --- builders ---------------------------------------------------------------------------------


def test_builders_reject_bad_input():
    with pytest.raises(TreeRangeError):
        inclusion_proof(LEAVES[:8], 8)
    with pytest.raises(TreeRangeError):
        inclusion_proof([], 0)
    with pytest.raises(TreeRangeError):
        consistency_proof(LEAVES[:8], 0)
    with pytest.raises(TreeRangeError):
        consistency_proof(LEAVES[:8], 9)
    with pytest.raises(TreeRangeError):
        aligned_subtrees(5, 4)
    with pytest.raises(MerkleInputError):
        leaf_hash("text")  # type: ignore[arg-type]
    with pytest.raises(MerkleInputError):
        leaf_hash(5)  # type: ignore[arg-type]  (bytes(5) would be five zero bytes)
    with pytest.raises(MerkleInputError):
        root_hash([LEAVES[0], b"short"])
    with pytest.raises(MerkleInputError):
        node_hash(LEAVES[0], LEAVES[1][:31])
    assert issubclass(TreeRangeError, InputError) and issubclass(ProofError, VerificationError)
