"""Inclusion and consistency proofs from persisted complete subtrees, in O(log n) reads.

Every complete aligned subtree (level, index) (leaves [index * 2**level, (index + 1) * 2**level))
is hashed once, when its last leaf is appended, and stored: level 0 as the entries' leaf
column, higher levels in `ledger_tree_nodes`. Any proof range is a handful of such subtrees
(`merkle.aligned_subtrees`), so a proof is: compute the (level, index) keys it needs, fetch the
ones not in the bounded cache with ONE query, fold each range (`merkle.fold_right`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from . import merkle
from .errors import LedgerForkError
from .storage import SqlStorage, node_key

Subtree = tuple[int, int]  # (level, index)
Overlay = Mapping[Subtree, bytes]


class TreeStore:
    """Proofs and roots of the stored tree, with an LRU cache of subtree hashes.

    Subtree hashes never change once written, so the cache needs no invalidation; it is
    bounded by `cache_size` entries (about 150 bytes each) and reports itself in `cache_info`.
    """

    def __init__(self, storage: SqlStorage, cache_size: int = 100_000) -> None:
        self.storage = storage
        self.cache_size = cache_size
        self._cache: OrderedDict[Subtree, bytes] = OrderedDict()
        self.queries = 0

    def cache_info(self) -> dict[str, int]:
        """Entries held and the bound, plus database queries made so far."""
        return {
            "entries": len(self._cache),
            "max_entries": self.cache_size,
            "queries": self.queries,
        }

    def remember(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        """Put committed subtree hashes in the cache (the appender calls this after commit)."""
        for level, index, h in nodes:
            self._put((level, index), h)

    def _put(self, key: Subtree, value: bytes) -> None:
        self._cache[key] = value
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def subtrees(
        self, keys: Iterable[Subtree], overlay: Overlay | None = None
    ) -> dict[Subtree, bytes]:
        """Hashes of the given complete subtrees: `overlay` (hashes of a batch not yet
        committed, never cached), the cache, then one query for the rest."""
        found: dict[Subtree, bytes] = {}
        missing: list[Subtree] = []
        for key in keys:
            h = overlay.get(key) if overlay else None
            if h is not None:
                found[key] = h
                continue
            h = self._cache.get(key)
            if h is None:
                missing.append(key)
            else:
                self._cache.move_to_end(key)
                found[key] = h
        if missing:
            self.queries += 1
            rows = self.storage.hashes(
                (i for lvl, i in missing if lvl == 0),
                (node_key(lvl, i) for lvl, i in missing if lvl > 0),
            )
            for lvl, i in missing:
                h = rows.get(i if lvl == 0 else node_key(lvl, i))
                if h is None:
                    raise LedgerForkError(
                        f"the database lacks the hash of subtree level {lvl} index {i}",
                        level=lvl,
                        index=i,
                    )
                found[(lvl, i)] = h
                self._put((lvl, i), h)
        return found

    def range_hashes(
        self, ranges: Sequence[tuple[int, int]], overlay: Overlay | None = None
    ) -> list[bytes]:
        """MTH of each [start, end) range (each of the shape proofs use), fetched together."""
        parts = [_cover(s, e) for s, e in ranges]
        hashes = self.subtrees((k for part in parts for k in part), overlay)
        return [
            hashes[part[0]] if len(part) == 1 else merkle.fold_right([hashes[k] for k in part])
            for part in parts
        ]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]) (RFC 6962 2.1.1) from the stored subtrees."""
        return self.range_hashes(merkle.inclusion_proof_ranges(index, size))

    def consistency_proof(
        self, old_size: int, new_size: int, overlay: Overlay | None = None
    ) -> list[bytes]:
        """PROOF(old_size, D[new_size]) (RFC 6962 2.1.2) from the stored subtrees."""
        return self.range_hashes(merkle.consistency_proof_ranges(old_size, new_size), overlay)

    def root(self, size: int) -> bytes:
        """MTH(D[0:size]); the empty root for size 0."""
        return self.range_hashes([(0, size)])[0] if size else merkle.EMPTY_ROOT

    def frontier(self, size: int) -> list[tuple[int, int, bytes]]:
        """(level, index, hash) of the complete subtrees covering [0, size), left to right."""
        keys = merkle.aligned_subtrees(0, size)
        hashes = self.subtrees(keys)
        return [(lvl, i, hashes[(lvl, i)]) for lvl, i in keys]


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
    stack = list(frontier)
    size = sum(1 << lvl for lvl, _, _ in stack)
    created: list[tuple[int, int, bytes]] = []
    for offset, h in enumerate(leaves):
        level, index = 0, size + offset
        while stack and stack[-1][0] == level:
            h = merkle.node_hash(stack.pop()[2], h)
            level, index = level + 1, index >> 1
            created.append((level, index, h))
        stack.append((level, index, h))
    root = merkle.fold_right([h for _, _, h in stack]) if stack else merkle.EMPTY_ROOT
    return created, stack, root
