"""Tree tiles recomputed from a whole log, in bounded memory.

A tile (`storage.tile_slot`) of stratum s covers 256^(s+1) leaves; once the log holds its
last leaf, no later entry changes it. `TileSet` keeps the open tiles (the tree's right edge:
at most one per stratum, plus those packed since the last `close_complete`) in memory and
moves the complete ones to a private temporary SQLite file (stdlib `sqlite3`, as
`spill.py`: deleted when closed, no journal, no fsync). 64 bytes a leaf (64 MB at 10^6
entries) then stay out of memory while `ledger repair` replays the log.

It is read as a Mapping of tile key to its bytes, keys in increasing order.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterator, Mapping

from .spill import CACHE_KB
from .storage import LEVEL_SHIFT, TILE_HEIGHT


def tile_end(key: int) -> int:
    """The number of leaves a log needs for the tile `key` to be complete."""
    stratum, index = key >> LEVEL_SHIFT, key & ((1 << LEVEL_SHIFT) - 1)
    return (index + 1) << (TILE_HEIGHT * (stratum + 1))


class TileSet(Mapping[int, bytes]):
    """Tile key -> packed hashes: `open` in memory (written by `storage.pack_tiles`), the
    complete ones in a temporary file (`close_complete`). `close` deletes the file."""

    def __init__(self) -> None:
        self.open: dict[int, bytearray] = {}
        self._file: sqlite3.Connection | None = None
        self._stored = 0

    def close_complete(self, size: int) -> None:
        """Move the open tiles a log of `size` leaves completes to the file."""
        done = [key for key in self.open if tile_end(key) <= size]
        if not done:
            return
        if self._file is None:
            self._file = sqlite3.connect("", isolation_level=None, check_same_thread=False)
            self._file.execute("PRAGMA journal_mode=OFF")
            self._file.execute("PRAGMA synchronous=OFF")
            self._file.execute(f"PRAGMA cache_size=-{CACHE_KB}")
            self._file.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
        self._file.execute("BEGIN")
        self._file.executemany("INSERT INTO t (k, v) VALUES (?, ?)",
                               ((key, bytes(self.open.pop(key))) for key in done))
        self._file.execute("COMMIT")
        self._stored += len(done)

    def __getitem__(self, key: int) -> bytes:
        tile = self.open.get(key)
        if tile is not None:
            return bytes(tile)
        if self._file is not None:
            row = self._file.execute("SELECT v FROM t WHERE k = ?", (key,)).fetchone()
            if row is not None:
                return bytes(row[0])
        raise KeyError(key)

    def __iter__(self) -> Iterator[int]:
        stored: Iterator[int] = iter(())
        if self._file is not None:
            # A cursor of its own: the caller may read tiles while iterating.
            stored = (k for (k,) in self._file.execute("SELECT k FROM t ORDER BY k"))
        return heapq.merge(stored, sorted(self.open))

    def __len__(self) -> int:
        return self._stored + len(self.open)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
