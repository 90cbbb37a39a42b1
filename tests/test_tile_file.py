"""The recomputed tree's tiles kept in bounded memory (`ledger/tile_file.py`): complete tiles
go to a temporary file, and the tiles read back are those packed all in memory, for any log
size (several strata, complete and open tiles)."""

from __future__ import annotations

import hashlib

from batterytrace.ledger import merkle
from batterytrace.ledger.derived_check import TreeBuilder
from batterytrace.ledger.storage import LEVEL_SHIFT, pack_tiles
from batterytrace.ledger.tile_file import tile_end
from batterytrace.ledger.tree_store import extend
from hypothesis import given, settings
from hypothesis import strategies as st


def _in_memory(bodies: list[bytes]) -> tuple[dict[int, bytes], bytes]:
    """Every tile packed in one dict, as `recompute_tree` did before the file."""
    tiles: dict = {}
    frontier: list = []
    root = merkle.EMPTY_ROOT
    for seq, body in enumerate(bodies):
        leaf = merkle.leaf_hash(body)
        created, frontier, root = extend(frontier, [leaf])
        pack_tiles(tiles, [(0, seq, leaf), *created])
    return {k: bytes(v) for k, v in tiles.items()}, root


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=1300) | st.sampled_from([255, 256, 257, 512, 1024]))
def test_tiles_from_the_file_are_the_tiles_packed_in_memory(size):
    bodies = [hashlib.sha256(str(n).encode()).digest() for n in range(size)]
    builder = TreeBuilder([size])
    for seq, body in enumerate(bodies):
        builder.add(seq, body)
    tree = builder.finish()
    try:
        want, root = _in_memory(bodies)
        assert list(tree.tiles) == sorted(want)  # keys in increasing order
        assert len(tree.tiles) == len(want)
        assert dict(tree.tiles.items()) == want
        assert tree.root == root and (size == 0 or tree.roots[size] == root)
        # Only the tiles a longer log would still change stay in memory.
        assert all(tile_end(key) > size for key in tree.tiles.open)
        assert len(tree.tiles.open) <= 2
    finally:
        tree.close()


def test_a_tile_is_complete_when_the_log_holds_its_last_leaf():
    assert tile_end(0) == 256 and tile_end(3) == 1024
    assert tile_end(1 << LEVEL_SHIFT) == 65536  # stratum 1, index 0: 256 x 256 leaves
    assert tile_end((2 << LEVEL_SHIFT) | 1) == 2 * 256 ** 3
