"""Stored-subtree proofs agree with the in-memory RFC 6962 ones, in one query per proof."""

import tempfile

from batterytrace.ledger import merkle
from batterytrace.ledger.storage import (
    LEVEL_SHIFT,
    SqlStorage,
    appended_tiles,
    edge_tiles_query,
    pack_tiles,
    tile_slot,
)
from batterytrace.ledger.tree_store import TileOverlay, TreeStore, extend, frontier_tiles
from hypothesis import given, settings
from hypothesis import strategies as st


class DictStorage:
    """The one-method slice of SqlStorage that TreeStore reads (`tiles`), over a dict."""

    def __init__(self):
        self.tiles_by_key: dict[int, bytearray] = {}
        self.calls = 0

    def store(self, nodes):
        pack_tiles(self.tiles_by_key, nodes)

    def tiles(self, keys):
        self.calls += 1
        return {k: bytes(self.tiles_by_key[k]) for k in keys if k in self.tiles_by_key}


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
        storage.store([(0, done + j, h) for j, h in enumerate(chunk)] + created)
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
    tree = TreeStore(storage, cache_size=1)  # one tile
    tree.inclusion_proof(5, 200)
    calls = storage.calls
    tree.inclusion_proof(5, 200)
    assert storage.calls == calls  # all from the cache
    for i in range(200):
        tree.inclusion_proof(i, 200)
    info = tree.cache_info()
    assert info["tiles"] == info["max_tiles"] == 1
    assert info["bytes"] == info["max_bytes"] == 510 * 32


def test_cache_never_exceeds_its_bound_across_strata():
    leaves = _leaves(300)  # two strata: level-0 tiles 0 and 1, level-8 tile 0
    storage, _, _ = _build(leaves, [300])
    tree = TreeStore(storage, cache_size=2 * 510)
    for i in range(0, 300, 7):
        tree.inclusion_proof(i, 300)
        assert tree.cache_info()["tiles"] <= 2


def test_a_stale_cached_tile_is_read_again():
    leaves = _leaves(6)
    storage, _, _ = _build(leaves[:3], [3])
    tree = TreeStore(storage, cache_size=510)
    tree.inclusion_proof(0, 3)  # caches the tile as it is at size 3
    created, _, _ = extend(tree.frontier(3), leaves[3:])
    storage.store([(0, 3 + j, h) for j, h in enumerate(leaves[3:])] + created)
    assert tree.inclusion_proof(5, 6) == merkle.inclusion_proof(leaves, 5)


def test_missing_node_is_a_typed_error():
    import pytest
    from batterytrace.ledger.errors import LedgerForkError

    storage, tree, _ = _build(_leaves(8), [8])
    for tile in storage.tiles_by_key.values():
        tile[256 * 32:] = bytes(len(tile) - 256 * 32)  # keep the leaves, lose every node
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
    assert tree.cache_info()["tiles"] == 0  # every hash came from the overlay, none cached


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 600), min_size=1, max_size=4))
def test_sql_store_nodes_writes_leaf_runs_across_tiles(batches):
    # SqlStorage.store_nodes writes a batch's leaves as one slice per tile (not one slot
    # each): across tile boundaries the tiles must hold exactly what pack_tiles puts there.
    with tempfile.TemporaryDirectory() as tmp:
        storage = SqlStorage(f"sqlite:///{tmp}/t.sqlite")
        storage.create_schema()
        expected: dict[int, bytearray] = {}
        leaves = _leaves(sum(batches))
        tree = TreeStore(DictStorage(), cache_size=0)
        done = 0
        for batch in batches:
            chunk = leaves[done:done + batch]
            created, _, _ = extend(tree.frontier(done), chunk)
            tree.storage.store([(0, done + j, h) for j, h in enumerate(chunk)] + created)
            with storage.write() as (session, _):
                touched = storage.store_nodes(session, created, chunk, done)
            nodes = [(0, done + j, h) for j, h in enumerate(chunk)] + created
            pack_tiles(expected, nodes)
            assert touched == {tile_slot(lv, i)[0] for lv, i, _ in nodes}
            done += batch
        assert storage.tiles(expected) == {k: bytes(v) for k, v in expected.items()}
        storage.close()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 1 << 20), st.integers(1, 5000))
def test_appended_tiles_are_the_tiles_an_append_writes(first, count):
    # The appender reads `appended_tiles` (with the frontier's tiles) once, before it knows
    # the new subtrees: it must name every tile extend() then writes into, and no other.
    leaves = [bytes(32)] * count
    frontier = [(lv, i, bytes(32)) for lv, i in merkle.aligned_subtrees(0, first)]
    created, _, _ = extend(frontier, leaves)
    nodes = [(0, first + j) for j in range(count)] + [(lv, i) for lv, i, _ in created]
    assert appended_tiles(first, count) == {tile_slot(lv, i)[0] for lv, i in nodes}
    # every tile the frontier lies in is one the overlay of the read tiles can answer from
    tiles = pack_tiles({}, [(lv, i, b"\x01" * 32) for lv, i, _ in frontier])
    assert set(tiles) == frontier_tiles(first)
    overlay = TileOverlay(tiles)
    assert all(overlay[(lv, i)] == b"\x01" * 32 for lv, i, _ in frontier)


def _last_two_per_stratum(keys: set[int]) -> set[int]:
    """What `edge_tiles_query` returns of a tile table holding `keys`."""
    by_stratum: dict[int, list[int]] = {}
    for key in keys:
        by_stratum.setdefault(key >> LEVEL_SHIFT, []).append(key)
    return {k for ks in by_stratum.values() for k in sorted(ks)[-2:]}


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(0, 1 << 18),
                 st.sampled_from([256, 257, 511, 512, 65535, 65536, 65537, 65536 + 256])),
       st.integers(1, 3000))
def test_edge_tiles_hold_what_an_append_reads(size, count):
    # The appender reads the last two tiles of every stratum with the lock, before it knows
    # the size: they must include every existing tile the append writes, and the tiles its
    # frontier lies in.
    existing = appended_tiles(0, size)  # every tile a tree of `size` leaves has
    needed = (appended_tiles(size, count) & existing) | frontier_tiles(size)
    assert needed <= _last_two_per_stratum(existing)


def test_edge_tiles_query_reads_the_last_two_tiles_of_each_stratum(tmp_path):
    storage = SqlStorage(f"sqlite:///{tmp_path}/t.sqlite")
    storage.create_schema()
    keys = {0, 1, 2, 7, 1 << LEVEL_SHIFT, (2 << LEVEL_SHIFT) | 3, (2 << LEVEL_SHIFT) | 4,
            (2 << LEVEL_SHIFT) | 9}
    with storage.write() as (session, _):
        session.connection().exec_driver_sql(
            "INSERT INTO ledger_tree_tiles (key, hashes) VALUES (?, ?)",
            [(k, k.to_bytes(8, "big")) for k in keys])
    with storage.engine.connect() as conn:
        got = dict(conn.exec_driver_sql(edge_tiles_query("ledger_tree_tiles")).all())
    assert set(got) == _last_two_per_stratum(keys) == {
        2, 7, 1 << LEVEL_SHIFT, (2 << LEVEL_SHIFT) | 4, (2 << LEVEL_SHIFT) | 9}
    assert all(bytes(h) == k.to_bytes(8, "big") for k, h in got.items())
    storage.close()
