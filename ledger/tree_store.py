"""Inclusion and consistency proofs from persisted complete subtrees, in O(log n) reads.

Every complete aligned subtree (level, index) (leaves [index * 2**level, (index + 1) * 2**level))
is hashed once, when its last leaf is appended, and stored in its tile (`storage.tile_slot`:
8 levels per tile, 510 hashes per row). Any proof range is a handful of such subtrees
(`merkle.aligned_subtrees`), and a proof path crosses one tile per 8 levels, so a proof is:
compute the (level, index) keys it needs, fetch the tiles not in the bounded cache with ONE
query (3 rows at most at 10^6 entries, usually 1), fold each range (`merkle.fold_right`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence

from . import merkle
from .errors import LedgerForkError
from .storage import (
    LEVEL_SHIFT,
    TILE_BYTES,
    TILE_HASHES,
    TILE_HEIGHT,
    TILE_LEVEL_OFFSETS,
    ZERO_HASH,
    SqlStorage,
    tile_slot,
)

Subtree = tuple[int, int]  # (level, index)
Overlay = Mapping[Subtree, bytes]
_HEIGHT, _SHIFT = TILE_HEIGHT, LEVEL_SHIFT
_OFFSETS = {TILE_HEIGHT - r: off for r, off in enumerate(TILE_LEVEL_OFFSETS)}  # by shift


class TreeStore:
    """Proofs and roots of the stored tree, with a bounded cache of tiles (least recently
    read out first) and of right-edge range hashes (4,096 at most).

    A stored hash never changes, so a cached tile is never wrong; it may only lack nodes
    completed since it was read (all-zero slots), which are then read again. `cache_size`
    bounds the subtree hashes held (rounded up to whole tiles of 510 hashes, 16 KB each);
    `cache_info` reports entries, bytes and queries.
    """

    def __init__(self, storage: SqlStorage, cache_size: int = 100_000) -> None:
        self.storage = storage
        self.cache_size = cache_size
        self.max_tiles = -(-cache_size // TILE_HASHES)
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        # Hashes of right-edge ranges [start, size) (not complete subtrees, so in no tile):
        # the same few per tree size recur in every proof. Immutable once committed.
        self._edges: dict[tuple[int, int], bytes] = {}
        self.queries = 0

    def cache_info(self) -> dict[str, int]:
        """Hashes (tiles x 510) and tiles held, their bounds and bytes, and queries made."""
        tiles = len(self._cache)
        return {
            "entries": tiles * TILE_HASHES,
            "max_entries": self.max_tiles * TILE_HASHES,
            "tiles": tiles,
            "max_tiles": self.max_tiles,
            "bytes": tiles * TILE_BYTES,
            "max_bytes": self.max_tiles * TILE_BYTES,
            "queries": self.queries,
        }

    def forget_tiles(self, keys: Iterable[int]) -> None:
        """Called by the appender after commit with the tiles it wrote: cached copies are
        dropped (cheaper than patching 16 KB copies)."""
        with self._lock:
            for key in keys:
                self._cache.pop(key, None)

    def subtrees(
        self, keys: Iterable[Subtree], overlay: Overlay | None = None
    ) -> dict[Subtree, bytes]:
        """Hashes of the given complete subtrees: `overlay` (hashes of a batch not yet
        committed, never cached), the cached tiles, then one query for the rest."""
        found: dict[Subtree, bytes] = {}
        missing: list[tuple[Subtree, int, int]] = []
        cache = self._cache
        for key in keys:
            if overlay:
                h = overlay.get(key)
                if h is not None:
                    found[key] = h
                    continue
            # tile_slot, inlined: this loop is the hot path of every proof.
            level, index = key
            shift = _HEIGHT - level % _HEIGHT
            tk = (level // _HEIGHT) << _SHIFT | index >> shift
            off = (_OFFSETS[shift] + (index & ((1 << shift) - 1))) << 5
            tile = cache.get(tk)
            if tile is not None:
                h = tile[off:off + 32]
                if h != ZERO_HASH:
                    found[key] = h
                    continue
            missing.append((key, tk, off))
        if missing:
            self.queries += 1
            tiles = self.storage.tiles({tk for _, tk, _ in missing})
            for (lvl, i), tk, off in missing:
                h = tiles.get(tk, b"")[off:off + 32]
                if not h or h == ZERO_HASH:
                    raise LedgerForkError(
                        f"the database lacks the hash of subtree level {lvl} index {i}",
                        level=lvl,
                        index=i,
                    )
                found[(lvl, i)] = h
            self._keep(tiles)
        return found

    def _keep(self, tiles: Mapping[int, bytes]) -> None:
        if not self.max_tiles:
            return
        with self._lock:
            for tk, tile in tiles.items():
                self._cache[tk] = tile
                self._cache.move_to_end(tk)
            while len(self._cache) > self.max_tiles:
                self._cache.popitem(last=False)

    def range_hashes(
        self, ranges: Sequence[tuple[int, int]], overlay: Overlay | None = None
    ) -> list[bytes]:
        """MTH of each [start, end) range (each of the shape proofs use), fetched together.

        Ranges that are not one complete subtree (the tree's right edge) are folded once and
        memoized, unless an overlay (an uncommitted batch) is involved."""
        memo: dict[int, bytes] = {}  # position in `ranges` -> memoized edge hash
        parts = []
        for n, (s, e) in enumerate(ranges):
            part = _cover(s, e)
            h = self._edges.get((s, e)) if len(part) > 1 and overlay is None else None
            if h is not None:
                memo[n], part = h, []
            parts.append(part)
        hashes = self.subtrees((k for part in parts for k in part), overlay)
        out = []
        for n, part in enumerate(parts):
            if n in memo:
                out.append(memo[n])
            elif len(part) == 1:
                out.append(hashes[part[0]])
            else:
                h = merkle.fold_right([hashes[k] for k in part])
                if overlay is None:
                    self._memo_edge(ranges[n], h)
                out.append(h)
        return out

    def _memo_edge(self, key: Subtree, h: bytes) -> None:
        self._edges[key] = h
        if len(self._edges) > _MAX_EDGES:
            self._edges.pop(next(iter(self._edges)), None)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]) (RFC 6962 2.1.1) from the stored subtrees."""
        if not 0 <= index < size:
            return self.range_hashes(merkle.inclusion_proof_ranges(index, size))  # it raises
        parts = _inclusion_parts(index, size)
        edges = self._edges
        keys = [part for part in parts if part[0] != EDGE]
        known: dict[Subtree, bytes] = {}
        covers = {}  # right edges [start, size) not memoized yet: fetched in the same query
        for level, start in parts:
            if level == EDGE:
                h = edges.get((start, size))
                if h is None:
                    covers[(start, size)] = merkle.aligned_subtrees(start, size)
                    keys += covers[(start, size)]
                else:
                    known[(start, size)] = h
        hashes = self.subtrees(keys)
        for key, cover in covers.items():
            known[key] = merkle.fold_right([hashes[k] for k in cover])
            self._memo_edge(key, known[key])
        return [known[(part[1], size)] if part[0] == EDGE else hashes[part] for part in parts]

    def consistency_proof(
        self, old_size: int, new_size: int, overlay: Overlay | None = None
    ) -> list[bytes]:
        """PROOF(old_size, D[new_size]) (RFC 6962 2.1.2) from the stored subtrees."""
        return self.range_hashes(merkle.consistency_proof_ranges(old_size, new_size), overlay)

    def root(self, size: int) -> bytes:
        """MTH(D[0:size]); the empty root for size 0."""
        return self.range_hashes([(0, size)])[0] if size else merkle.EMPTY_ROOT

    def frontier(self, size: int, overlay: Overlay | None = None) -> list[tuple[int, int, bytes]]:
        """(level, index, hash) of the complete subtrees covering [0, size), left to right."""
        keys = merkle.aligned_subtrees(0, size)
        hashes = self.subtrees(keys, overlay)
        return [(lvl, i, hashes[(lvl, i)]) for lvl, i in keys]


EDGE = -1
_MAX_EDGES = 4096


def _inclusion_parts(index: int, size: int) -> list[Subtree]:
    """The elements of PATH(index, D[size]), bottom up (0 <= index < size): (level, index)
    of a complete subtree, or (EDGE, start) for the tree's incomplete right edge [start, size).

    Below level `inner` (the highest bit where index and size - 1 differ, plus one) the path
    takes the sibling at each level, the last of which may be the incomplete right edge;
    above it, the left siblings where index has a 1 bit."""
    inner = (index ^ (size - 1)).bit_length()
    parts: list[Subtree] = []
    for level in range(inner):
        sibling = (index >> level) ^ 1
        start = sibling << level
        if start + (1 << level) <= size:
            parts.append((level, sibling))
        else:
            parts.append((EDGE, start))
    for level in range(inner, size.bit_length()):
        if (index >> level) & 1:
            parts.append((level, (index >> level) ^ 1))
    return parts


def _cover(start: int, end: int) -> list[Subtree]:
    """`merkle.aligned_subtrees`, with the common case (one aligned power-of-two range, as
    most proof ranges are) answered without the general loop."""
    width = end - start
    if width > 0 and width & (width - 1) == 0 and start % width == 0:
        level = width.bit_length() - 1
        return [(level, start >> level)]
    return merkle.aligned_subtrees(start, end)


def extend(
    frontier: Sequence[tuple[int, int, bytes]], leaves: Sequence[bytes]
) -> tuple[list[tuple[int, int, bytes]], list[tuple[int, int, bytes]], bytes]:
    """Append leaf hashes to a tree given by its frontier (see `TreeStore.frontier`).

    Returns the new complete subtrees of level >= 1 to store, the new frontier and the new
    root. Pure: the appender computes everything before it touches the database.
    """
    created, stack = grow(frontier, leaves)
    return created, stack, frontier_root(stack)


def grow(
    frontier: Sequence[tuple[int, int, bytes]], leaves: Sequence[bytes]
) -> tuple[list[tuple[int, int, bytes]], list[tuple[int, int, bytes]]]:
    """`extend` without the root (a pass over many entries wants it at a few sizes only)."""
    stack = list(frontier)
    size = sum(1 << lvl for lvl, _, _ in stack)
    created: list[tuple[int, int, bytes]] = []
    for offset, h in enumerate(leaves):
        level, index = 0, size + offset
        while stack and stack[-1][0] == level:
            h = merkle.hash_children(stack.pop()[2], h)
            level, index = level + 1, index >> 1
            created.append((level, index, h))
        stack.append((level, index, h))
    return created, stack


def frontier_root(frontier: Sequence[tuple[int, int, bytes]]) -> bytes:
    """The root of the tree whose frontier this is."""
    return merkle.fold_right([h for _, _, h in frontier]) if frontier else merkle.EMPTY_ROOT


def frontier_tiles(size: int) -> set[int]:
    """Keys of the tiles holding the frontier of a tree of `size` (`TreeStore.frontier`)."""
    return {tile_slot(level, index)[0] for level, index in merkle.aligned_subtrees(0, size)}


class TileOverlay(Mapping[Subtree, bytes]):
    """The subtree hashes held in tiles read in the write transaction (`SqlStorage.tiles_in`):
    an overlay for `TreeStore.subtrees`, so the frontier and the consistency proof of an
    append need no query of their own. A slot not filled is absent."""

    def __init__(self, tiles: Mapping[int, bytes]) -> None:
        self.tiles = tiles

    def __getitem__(self, key: Subtree) -> bytes:
        tk, off = tile_slot(*key)
        h = self.tiles.get(tk, b"")[off:off + 32]
        if not h or h == ZERO_HASH:
            raise KeyError(key)
        return h

    def __iter__(self) -> Iterator[Subtree]:
        raise TypeError("a TileOverlay is looked up, not listed")

    def __len__(self) -> int:
        return len(self.tiles)


class BatchOverlay(Mapping[tuple[int, int], bytes]):
    """The subtree hashes of a batch not yet committed, for the consistency proof that
    precedes signing: leaves by position, the new complete subtrees on first use, then
    `below` (the tiles read in the transaction) for the older ones."""

    def __init__(self, first: int, leaves: list[bytes], created: list[tuple[int, int, bytes]],
                 below: Overlay | None = None):
        self.first, self.leaves, self.created = first, leaves, created
        self.below = below
        self._nodes: dict[tuple[int, int], bytes] | None = None

    def __getitem__(self, key: tuple[int, int]) -> bytes:
        level, index = key
        if level == 0 and self.first <= index < self.first + len(self.leaves):
            return self.leaves[index - self.first]
        if level:
            if self._nodes is None:
                self._nodes = {(lv, i): h for lv, i, h in self.created}
            h = self._nodes.get(key)
            if h is not None:
                return h
        if self.below is None:
            raise KeyError(key)
        return self.below[key]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        yield from ((0, self.first + j) for j in range(len(self.leaves)))
        yield from ((lv, i) for lv, i, _ in self.created)

    def __len__(self) -> int:
        return len(self.leaves) + len(self.created)
