"""Replayed state that outgrows memory, kept in a temporary SQLite file.

A replay of a whole log (bundle verification, `ledger verify`) holds the registry, the custody
state and the anchor book of every entry so far: hundreds of bytes per row, several rows per
event, so ~2.5 KB an event in memory. `Spilled` is the one place that changes: a mixin for a
`custody.Tables` subclass (the same tables, read and written by the same rules through `get`
and `put`) that, between entries (`settle`), writes the rows changed since the last spill to a
`SpillFile` and empties its dictionaries once they hold more than `limit` rows. A key not in
memory is then read back from the file (`_load`), and `rows` lists a table from the file.

`SpillFile` is a private, temporary SQLite database (`sqlite3.connect("")`: created in the
temporary directory, deleted when closed), one table per logical table, keys as text
(`key_text`), values pickled by `pool.dumps_each` (written and read by this process only).
Nothing is durable: no journal, no fsync.

Spilling happens only between entries (the undo journal is empty), so a rule that fails
undoes exactly what it did, as in memory.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import zip_longest
from typing import Any

from .anchors import AnchorBook
from .custody import CustodyState, Directory, Tables
from .pool import dumps_each, loads
from .registry import Registry

# Rows a spilled Tables object keeps in memory before it writes them out (~300 bytes each:
# ~15 MB). The file's page cache is bounded too (`CACHE_KB`).
SPILL_ROWS = 50_000
CACHE_KB = 16_384


SEP = "\x1f"  # joins a tuple key's parts, as the derived tables do (`custody_store`)


def key_text(key: Any) -> str:
    """A state key (a string, an int, or a tuple of them) as text, one spelling per key and
    no two keys alike: "s" + a string, "i" + an int, "t" + the parts of a tuple of strings
    joined by U+001F (as the derived tables join them, so a table's keys read back in the
    order of its stored rows), other tuples "j" + their JSON array."""
    kind = type(key)
    if kind is str:
        return "s" + key
    if kind is tuple:
        if key and all(type(part) is str and SEP not in part for part in key):
            return "t" + SEP.join(key)
        return "j" + json.dumps(key, ensure_ascii=False, separators=(",", ":"))
    if kind is int:
        return f"i{key}"
    raise TypeError(f"{kind.__name__} is not a state key")


def text_key(text: str) -> Any:
    """The key `key_text` spelled as `text`."""
    first, rest = text[0], text[1:]
    if first == "s":
        return rest
    if first == "i":
        return int(rest)
    if first == "t":
        return tuple(rest.split(SEP))
    return tuple(json.loads(rest))


class SpillFile:
    """The temporary SQLite database the spilled tables of one replay share."""

    def __init__(self) -> None:
        self._connection: sqlite3.Connection | None = None
        self._names: dict[tuple[int, str], str] = {}
        self._owners = 0
        self.rows_written = 0

    def owner(self) -> int:
        """A number of its own for each Tables object (two may name a table alike)."""
        self._owners += 1
        return self._owners

    @property
    def connection(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect("", isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=OFF")
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute(f"PRAGMA cache_size=-{CACHE_KB}")
            self._connection = connection
        return self._connection

    def table(self, owner: int, name: str) -> str:
        """The SQL table holding one logical table (created on first use)."""
        sql = self._names.get((owner, name))
        if sql is None:
            sql = self._names[(owner, name)] = f"t{len(self._names)}"
            self.connection.execute(f"CREATE TABLE {sql} (k TEXT PRIMARY KEY, v BLOB NOT NULL) "
                                    "WITHOUT ROWID")
        return sql

    def known(self, owner: int, name: str) -> str | None:
        """The SQL table of a logical table, if anything was written to it."""
        return self._names.get((owner, name))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class WrittenKeys:
    """The keys a Spilled object wrote to its file, as a Bloom filter: no false negatives,
    so a key it has not seen is not in the file and its lookup skips the file. A replay
    looks up many keys that exist nowhere yet (every `put` of a new id reads the old value
    for the undo journal: six per event at 10^5, all of them misses). 2^26 bits (8 MB),
    three probes: ~1 % false positives (one wasted read each) at 5 million keys."""

    BITS = 1 << 26

    def __init__(self) -> None:
        self.bits = bytearray(self.BITS >> 3)

    def _probes(self, table: str, key: Any) -> tuple[int, int, int]:
        # hash() is salted per process: the filter never leaves the process that built it.
        h = hash((table, key)) & 0xFFFF_FFFF_FFFF_FFFF
        mask = self.BITS - 1
        return h & mask, (h >> 19) & mask, (h >> 38) & mask

    def add(self, table: str, key: Any) -> None:
        bits = self.bits
        for probe in self._probes(table, key):
            bits[probe >> 3] |= 1 << (probe & 7)

    def may_hold(self, table: str, key: Any) -> bool:
        bits = self.bits
        return all(bits[probe >> 3] >> (probe & 7) & 1 for probe in self._probes(table, key))


class Spilled(Tables):
    """Mixin: the Tables' rows go to `spill` (a SpillFile) when more than `limit` are in
    memory. Put it first in the bases: `class SpilledState(Spilled, CustodyState)`; then call
    `attach` in the constructor."""

    spill: SpillFile
    limit: int
    _owner: int
    _dirty: dict[str, set[Any]]  # table -> keys changed since the last write to the file
    _written: WrittenKeys | None  # the keys in the file (None: nothing written yet)

    def attach(self, spill: SpillFile, limit: int = SPILL_ROWS) -> None:
        self.spill, self.limit = spill, limit
        self._owner = spill.owner()
        self._dirty = {name: set() for name in self.table_names}
        self._written = None

    @property
    def in_file(self) -> bool:
        """True once rows were written out: `rows` then reads them from the file, in order."""
        return self._written is not None

    def _load(self, table: str, key: Any) -> Any:
        written = self._written
        if written is None or not written.may_hold(table, key):
            return None
        sql = self.spill.known(self._owner, table)
        if sql is None:
            return None
        row = self.spill.connection.execute(f"SELECT v FROM {sql} WHERE k = ?",
                                            (key_text(key),)).fetchone()
        return None if row is None else loads(row[0])

    def put(self, table: str, key: Any, value: Any) -> None:
        super().put(table, key, value)
        self._dirty[table].add(key)

    def settle(self) -> None:
        """Between entries: write the changed rows out and empty memory when it holds more
        than `limit` rows."""
        if sum(map(len, self.tables.values())) > self.limit:
            self.write_out()

    def write_out(self) -> None:
        """Write every row changed since the last write to the file, then empty memory."""
        assert not self.journal, "spilled between entries only"
        written = self._written = self._written or WrittenKeys()
        connection = self.spill.connection
        connection.execute("BEGIN")
        for table, dirty in self._dirty.items():
            if not dirty:
                continue
            rows = self.tables[table]
            sql = self.spill.table(self._owner, table)
            kept = [key for key in dirty if rows[key] is not None]
            connection.executemany(f"DELETE FROM {sql} WHERE k = ?", [
                (key_text(key),) for key in dirty if rows[key] is None])
            # Streamed into the statement: no second copy of the values in memory.
            connection.executemany(f"INSERT OR REPLACE INTO {sql} (k, v) VALUES (?, ?)", zip(
                map(key_text, kept), dumps_each(rows[key] for key in kept), strict=True))
            for key in kept:
                written.add(table, key)
            self.spill.rows_written += len(dirty)
            dirty.clear()
        connection.execute("COMMIT")
        for rows in self.tables.values():
            rows.clear()

    def rows(self, table: str) -> Iterator[tuple[Any, Any]]:
        """Every (key, value) of a table, from the file (memory written out first), in the
        order of `key_text`."""
        if not self.in_file:
            yield from super().rows(table)
            return
        if any(self._dirty.values()):
            self.write_out()
        sql = self.spill.known(self._owner, table)
        if sql is None:
            return
        # A cursor of its own: the caller may read other rows while iterating.
        for text, value in self.spill.connection.execute(f"SELECT k, v FROM {sql} ORDER BY k"):
            yield text_key(text), loads(value)


# --- the engine's tables, spilled -------------------------------------------------------------


class SpilledRegistry(Spilled, Registry):
    def __init__(self, admin_did: str, public_url: str, spill: SpillFile, limit: int) -> None:
        super().__init__(admin_did, public_url)
        self.attach(spill, limit)


class SpilledState(Spilled, CustodyState):
    def __init__(self, directory: Directory, spill: SpillFile, limit: int) -> None:
        super().__init__(directory)
        self.attach(spill, limit)


class SpilledAnchorBook(Spilled, AnchorBook):
    def __init__(self, spill: SpillFile, limit: int) -> None:
        super().__init__()
        self.attach(spill, limit)


# --- comparing two large sets of rows ---------------------------------------------------------

Row = tuple[tuple[str, str], str]  # ((table, key), value): text, as the derived tables store it


def first_difference(expected: Callable[[], Iterable[Row]], found: Callable[[], Iterable[Row]]
                     ) -> tuple[tuple[str, str], str | None, str | None] | None:
    """The first (table, key) in sorted order whose value differs between two sets of rows
    (None for a row one side lacks), with both values; None when they are equal. Each side
    is given as a function that reads its rows (each side's keys distinct); memory does not
    depend on how many there are.

    When both sides come in increasing (table, key) order (the stored rows by their primary
    key, a replay's from its file), they are read once, in step. A difference, or a side
    out of order, is settled the general way: both sides read again into a temporary
    SQLite file and joined (keys ordered by code point, as Python orders strings)."""
    sides = (_increasing(expected()), _increasing(found()))
    try:
        if _equal_in_step(*sides):
            return None
    except _OutOfOrder:
        pass
    finally:
        for side in sides:
            side.close()  # and with it the read it was in (a cursor)
    return _first_difference_joined(expected(), found())


def ordered_digest(rows: Iterable[Row]) -> str | None:
    """SHA-256 over rows that come in increasing (table, key) order, each spelled with the
    lengths of its parts (no two sets of rows alike); None when they are out of order. Two
    sets of rows with one digest are the same set: `ledger verify` compares the stored
    rows, digested in a worker process, with the replay's, digested meanwhile here."""
    digest = hashlib.sha256()
    try:
        for (table, key), value in _increasing(rows):
            digest.update(f"{len(table)}:{table}{len(key)}:{key}{len(value)}:{value};"
                          .encode("utf-8", "surrogatepass"))
    except _OutOfOrder:
        return None
    return digest.hexdigest()


class _OutOfOrder(Exception):
    """A side's rows are not in increasing key order: they cannot be read in step."""


def _increasing(rows: Iterable[Row]) -> Generator[Row, None, None]:
    last: tuple[str, str] | None = None
    for row in rows:
        if last is not None and row[0] <= last:
            raise _OutOfOrder
        last = row[0]
        yield row


def _equal_in_step(expected: Iterator[Row], found: Iterator[Row]) -> bool:
    """Two strictly increasing streams hold the same rows iff they agree row by row."""
    end = object()
    return all(a == b for a, b in zip_longest(expected, found, fillvalue=end))


def _first_difference_joined(expected: Iterable[Row], found: Iterable[Row]
                             ) -> tuple[tuple[str, str], str | None, str | None] | None:
    connection = sqlite3.connect("", isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute(f"PRAGMA cache_size=-{CACHE_KB}")
        for side, rows in (("e", expected), ("f", found)):
            connection.execute(f"CREATE TABLE {side} (t TEXT, k TEXT, v TEXT, PRIMARY KEY (t, k))"
                               " WITHOUT ROWID")
            connection.execute("BEGIN")
            connection.executemany(f"INSERT INTO {side} VALUES (?, ?, ?)",
                                   ((t, k, v) for (t, k), v in rows))
            connection.execute("COMMIT")
        row = connection.execute(
            "SELECT t, k, ev, fv FROM ("
            " SELECT e.t AS t, e.k AS k, e.v AS ev, f.v AS fv FROM e"
            "  LEFT JOIN f ON f.t = e.t AND f.k = e.k WHERE f.v IS NOT e.v"
            " UNION ALL"
            " SELECT f.t, f.k, NULL, f.v FROM f"
            "  LEFT JOIN e ON e.t = f.t AND e.k = f.k WHERE e.t IS NULL"
            ") ORDER BY t, k LIMIT 1").fetchone()
    finally:
        connection.close()
    return None if row is None else ((row[0], row[1]), row[2], row[3])
