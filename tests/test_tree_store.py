"""Stored-subtree proofs agree with the in-memory RFC 6962 ones, in one query per proof."""

from batterytrace.ledger import merkle
from batterytrace.ledger.storage import node_key
from batterytrace.ledger.tree_store import TreeStore, extend
from hypothesis import given
from hypothesis import strategies as st


class DictStorage:
    """The two-method slice of SqlStorage that TreeStore reads, over dicts."""

    def __init__(self):
        self.leaves: dict[int, bytes] = {}
        self.nodes: dict[int, bytes] = {}
        self.calls = 0

    def hashes(self, leaf_seqs, node_keys):
        self.calls += 1
        out = {s: self.leaves[s] for s in leaf_seqs if s in self.leaves}
        out.update({k: self.nodes[k] for k in node_keys if k in self.nodes})
        return out


def _leaves(n):
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _build(leaves, batches):
    """Append `leaves` in the given batch sizes the way Ledger.append does."""
    storage, tree = DictStorage(), None
    tree = TreeStore(storage, cache_size=0)
    done = 0
    roots = {}
    for batch in batches:
        chunk = leaves[done:done + batch]
        if not chunk:
            break
        created, frontier, root = extend(tree.frontier(done), chunk)
        for j, h in enumerate(chunk):
            storage.leaves[done + j] = h
        for level, index, h in created:
            storage.nodes[node_key(level, index)] = h
        done += len(chunk)
        roots[done] = root
        assert [(lv, i) for lv, i, _ in frontier] == merkle.aligned_subtrees(0, done)
    return storage, tree, roots


@given(st.integers(1, 300), st.lists(st.integers(1, 40), min_size=1, max_size=30), st.data())
def test_proofs_match_merkle(n, batches, data):
    leaves = _leaves(n)
    storage, tree, roots = _build(leaves, [*batches, n])
    for size, root in roots.items():
        assert root == merkle.root_hash(leaves[:size])
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    calls = storage.calls
    assert tree.inclusion_proof(index, size) == merkle.inclusion_proof(leaves[:size], index)
    assert storage.calls == calls + (size > 1)  # one query per proof
    assert tree.consistency_proof(old, size) == merkle.consistency_proof(leaves[:size], old)
    assert storage.calls <= calls + 2
    assert tree.root(size) == merkle.root_hash(leaves[:size])


def test_every_proof_for_small_trees():
    leaves = _leaves(33)
    _, tree, _ = _build(leaves, [1, 2, 3, 5, 8, 14])
    for size in range(1, 34):
        for i in range(size):
            proof = tree.inclusion_proof(i, size)
            merkle.verify_inclusion(leaves[i], i, size, proof, merkle.root_hash(leaves[:size]))
        for old in range(1, size + 1):
            assert tree.consistency_proof(old, size) == merkle.consistency_proof(
                leaves[:size], old)


def test_cache_is_bounded_and_saves_queries():
    leaves = _leaves(200)
    storage, _, _ = _build(leaves, [200])
    tree = TreeStore(storage, cache_size=16)
    tree.inclusion_proof(5, 200)
    calls = storage.calls
    tree.inclusion_proof(5, 200)
    assert storage.calls == calls  # all from the cache
    for i in range(200):
        tree.inclusion_proof(i, 200)
    info = tree.cache_info()
    assert info["entries"] == 16 and info["max_entries"] == 16


def test_missing_node_is_a_typed_error():
    import pytest
    from batterytrace.ledger.errors import LedgerForkError

    storage, tree, _ = _build(_leaves(8), [8])
    storage.nodes.clear()
    with pytest.raises(LedgerForkError):
        tree.inclusion_proof(0, 8)


def test_overlay_hashes_are_used_but_not_cached():
    leaves = _leaves(4)
    storage, tree, _ = _build(leaves, [2])
    created, _, _ = extend(tree.frontier(2), leaves[2:])
    overlay = {(0, 2): leaves[2], (0, 3): leaves[3]}
    overlay.update(((lv, i), h) for lv, i, h in created)
    tree = TreeStore(storage, cache_size=100)
    assert tree.consistency_proof(2, 4, overlay) == merkle.consistency_proof(leaves, 2)
    assert (0, 3) not in tree._cache
