"""Storage of the log behind one small interface, implemented once with SQLModel/SQLAlchemy.

Tables (declared in `tables.py`): `ledger_entries` (seq, kind, hash, canonical body),
`ledger_tree_tiles` (the hashes of every complete subtree, packed in tiles: see `tile_slot`),
`ledger_checkpoints` (every signed checkpoint note) and `ledger_sequencer` (one row: size, head
entry hash, root).
Writers lock the sequencer row: SQLite opens the write transaction with BEGIN IMMEDIATE (the
database's one writer lock), PostgreSQL takes `SELECT ... FOR UPDATE` on the row (see
docs/operations.md). SQLite specifics sit in `_setup_sqlite` and `_Readers`. The schema is made
and upgraded by the Alembic revisions in `ledger/migrations`. Driver errors that mean "the
database is not reachable" surface as `db_errors.StorageUnavailableError`.

Tiles: stratum s holds tree levels 8s .. 8s+7; tile (s, t) holds every node of those levels
below the level-(8s+8) node t, level by level (256 leaves-of-the-tile, then 128, ..., 2):
510 hashes, 16,320 bytes, missing (not yet complete) nodes all-zero. Any proof path crosses
one tile per stratum, so an inclusion proof at 10^6 entries reads 3 rows (the upper two
usually cached).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from batterytrace.credentials.errors import InputError
from sqlalchemy import create_engine, event, func, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlmodel import Session

from .db_errors import (
    StorageSchemaError,
    StorageUnavailableError,
    _reason,
    _safe,
    translate_db_errors,
)
from .migrations.schema import current_revision, upgrade
from .seal import RowSeal, checkpoint_message
from .tables import CHECKPOINTS, ENTRIES, LEDGER_TABLES, SEQUENCER, TILES

ENTRY_COLUMNS = ("seq", "kind", "hash", "body")  # the columns the appender writes
LEVEL_SHIFT = 48  # node and tile keys: level << 48 | index (indexes stay far below 2**48)
SEQUENCER_ID = 1
TILE_HEIGHT = 8
LEAVES_PER_TILE = 1 << TILE_HEIGHT  # level 0 fills the first 256 slots of a tile, in order
TILE_HASHES = 2 * (1 << TILE_HEIGHT) - 2  # 256 + 128 + ... + 2
TILE_BYTES = TILE_HASHES * 32
ZERO_HASH = bytes(32)
TILE_LEVEL_OFFSETS = [(2 << TILE_HEIGHT) - ((2 << TILE_HEIGHT) >> r) for r in range(TILE_HEIGHT)]


def node_key(level: int, index: int) -> int:
    """Integer key of the complete subtree (level, index) (the 0001 schema's node rows)."""
    return (level << LEVEL_SHIFT) | index


def tile_slot(level: int, index: int) -> tuple[int, int]:
    """(tile key, byte offset) of the hash of complete subtree (level, index)."""
    stratum, r = divmod(level, TILE_HEIGHT)
    shift = TILE_HEIGHT - r
    return ((stratum << LEVEL_SHIFT) | (index >> shift),
            (TILE_LEVEL_OFFSETS[r] + (index & ((1 << shift) - 1))) << 5)


def appended_tiles(first_leaf: int, count: int) -> set[int]:
    """Keys of the tiles that appending `count` leaves at position `first_leaf` writes: the
    leaves' own, and those of every subtree the leaves complete."""
    keys: set[int] = set()
    end = first_leaf + count
    level = 0
    while count and (end >> level):
        # complete subtrees of this level ending in (first_leaf, end]
        low, high = first_leaf >> level, (end >> level) - 1
        if low <= high:
            keys.update(range(tile_slot(level, low)[0], tile_slot(level, high)[0] + 1))
        level += 1
    return keys


STRATA = 7  # positions stay below 2**53 (MAX_SEQ): levels 0..53 lie in strata 0..6


def edge_tiles_query(table: str) -> str:
    """SQL reading the last two tiles of every stratum (key, hashes), whatever the size.

    Within a stratum, tiles are made in key order (a tile's first node is a level-8s node,
    and those complete left to right), so its last tile T holds the last complete level-8s
    node. An append writes, of the tiles that exist, only T (its new nodes reach at most
    127 level-8s nodes back); the frontier's node at level 8s + r ends at most 2**(r+1) - 1
    level-8s nodes before the last one, so it lies in T or T - 1. These tiles are thus a
    superset of `appended_tiles` (those that exist) and `frontier_tiles`, read without
    knowing the size: the read can go to the server with the sequencer lock, in one round
    trip (tests/test_tree_store.py checks the superset)."""
    return " UNION ALL ".join(
        f"SELECT * FROM (SELECT key, hashes FROM {table} WHERE key >= {s << LEVEL_SHIFT} "
        f"AND key < {(s + 1) << LEVEL_SHIFT} ORDER BY key DESC LIMIT 2) AS stratum{s}"
        for s in range(STRATA))


def pack_tiles(
    tiles: dict[int, bytearray], nodes: Iterable[tuple[int, int, bytes]]
) -> dict[int, bytearray]:
    """Write (level, index, hash) nodes into `tiles` (tile key -> contents, new tiles
    zero-filled); returns `tiles`."""
    return _pack_slots(tiles, ((*tile_slot(level, index), h) for level, index, h in nodes))


def _pack_slots(
    tiles: dict[int, bytearray], slots: Iterable[tuple[int, int, bytes]]
) -> dict[int, bytearray]:
    for key, off, h in slots:  # h: one hash, or a run of consecutive leaf hashes
        tile = tiles.get(key)
        if tile is None:
            tile = tiles[key] = bytearray(TILE_BYTES)
        tile[off:off + len(h)] = h
    return tiles


@dataclass(frozen=True)
class Head:
    """The sequencer row: size of the log, hash of its last entry, Merkle root."""

    size: int
    head: bytes
    root: bytes


class Storage(Protocol):
    """What the ledger needs from a database (one implementation: `SqlStorage`)."""

    def create_schema(self) -> str | None: ...
    def write(self) -> Any: ...  # context manager yielding (session, Head | None)
    def head(self) -> Head | None: ...
    def entry_body(self, seq: int) -> bytes | None: ...
    def iter_bodies(self, start: int, end: int) -> Iterator[tuple[int, bytes]]: ...
    def hashes(self, leaf_seqs: Iterable[int], node_keys: Iterable[int]) -> dict[int, bytes]: ...
    def tiles(self, keys: Iterable[int]) -> dict[int, bytes]: ...
    def store_nodes(
        self, session: Session, nodes: Sequence[tuple[int, int, bytes]],
        leaves: Sequence[bytes] = ..., first_leaf: int = ...,
    ) -> set[int]: ...
    def checkpoint(self, size: int) -> tuple[bytes, bytes] | None: ...
    def latest_checkpoint(self) -> tuple[int, bytes, bytes] | None: ...
    def iter_checkpoints(self) -> Iterator[tuple[int, bytes]]: ...


class SqlStorage:
    """The SQLModel implementation (SQLite by default; PostgreSQL through the same code)."""

    chunk = 2000  # rows per read when streaming

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        # DBAPI placeholder for driver-level SQL: sqlite3 uses "?", psycopg "%s".
        self._placeholder = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._readers = _Readers(self.engine)

    def close(self) -> None:
        self._readers.close()
        self.engine.dispose()

    def create_schema(self) -> str | None:
        """Create or upgrade the schema to the newest Alembic revision (idempotent); returns
        the revision the database had (None: none)."""
        from alembic.util.exc import CommandError  # alembic: loaded when a schema is made

        self._create_sqlite_file()
        with translate_db_errors(self.url):
            try:
                return upgrade(self.engine)
            except CommandError as exc:  # e.g. a revision this program does not know
                raise StorageSchemaError(
                    f"cannot migrate the schema of {self.url.split(':', 1)[0]} database: {exc}"
                ) from exc

    def _create_sqlite_file(self) -> None:
        """Create a missing SQLite database file with mode 0600 whatever the umask (SQLite
        gives its -wal and -shm files the mode of the database file)."""
        database = self.engine.url.database if self.is_sqlite else None
        if not database or database == ":memory:" or database.startswith("file:"):
            return
        try:
            fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:  # exists already, or a missing folder (SQLite reports it)
            return
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)

    # --- writing ----------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[tuple[Session, Head | None]]:
        """One write transaction with the sequencer row locked; commits on normal exit.

        Every writer (appends, checkpoint signing) goes through here, so they are serialized
        by the one row lock on every engine; a lost connection rolls the whole batch back."""
        with translate_db_errors(self.url):
            with Session(self.engine.execution_options(batterytrace_write=True)) as session:
                with session.begin():
                    row = session.connection().execute(_LOCK_HEAD).first()
                    yield session, (Head(row.size, bytes(row.head), bytes(row.root))
                                    if row else None)

    @staticmethod
    def replace_checkpoint_note(session: Session, size: int, note: bytes,
                                seal: RowSeal | None) -> int:
        """Replace the note of the checkpoint row at `size` (the same checkpoint with
        witness cosignatures added), its seal made again over the new note (the row's own
        seal checked first); returns the rows changed (0 or 1)."""
        t = CHECKPOINTS
        row = session.connection().execute(
            select(t.c.size, t.c.root, t.c.note, t.c.previous, t.c.seal)
            .where(t.c.size == size)).first()
        if row is None:
            return 0
        record = CheckpointRecord(row.size, bytes(row.root), bytes(row.note), row.previous,
                                  row.seal)
        if seal is not None:
            record.check_seal(seal)
        record = replace(record, note=note).sealed_by(seal)
        session.connection().execute(
            update(t).where(t.c.size == size).values(note=record.note, seal=record.seal))
        return 1

    def insert(self, session: Session, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Bulk insert: one driver-level executemany (no ORM objects, no per-row processing)."""
        if not rows:
            return
        columns = list(rows[0])
        self.insert_rows(session, table, columns, [tuple(r[c] for c in columns) for r in rows])

    def insert_rows(
        self, session: Session, table: Any, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Bulk insert of value tuples in `columns` order (the appender's hot path): one
        executemany on SQLite, one COPY on PostgreSQL (one statement for the server instead
        of one per row, while the sequencer lock is held)."""
        if not rows:
            return
        if self.is_sqlite:
            sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
                   f"VALUES ({', '.join([self._placeholder] * len(columns))})")
            session.connection().exec_driver_sql(sql, rows)
            return
        _copy_rows(session.connection(), table, columns, rows)

    def store_nodes(
        self,
        session: Session,
        nodes: Sequence[tuple[int, int, bytes]],
        leaves: Sequence[bytes] = (),
        first_leaf: int = 0,
        known: Mapping[int, bytes] | None = None,
    ) -> set[int]:
        """Write complete subtree hashes into their tiles inside the write transaction: `nodes`
        as (level, index, hash), and `leaves` (level 0) at positions from `first_leaf` on.
        One read of the touched tiles (none when `known` holds them, as `tiles_in` read them
        in this transaction: a key it lacks is a tile that does not exist yet), then one
        executemany of updates and one of inserts. Returns the keys of the tiles written."""
        tiles, old = self._packed_tiles(session, nodes, leaves, first_leaf, known)
        conn = session.connection()
        for sql, params in self._tile_writes(tiles, old):
            if params:
                conn.exec_driver_sql(sql, params)
        return set(tiles)

    def _tile_writes(
        self, tiles: Mapping[int, bytearray], old: set[int]
    ) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """(sql, parameter rows) that write `tiles`: updates of the `old` ones, inserts of
        the others."""
        p = self._placeholder
        return [
            (f"UPDATE {TILES.name} SET hashes = {p} WHERE key = {p}",
             [(bytes(tiles[k]), k) for k in sorted(old)]),
            (f"INSERT INTO {TILES.name} (key, hashes) VALUES ({p}, {p})",
             [(k, bytes(tiles[k])) for k in sorted(set(tiles) - old)]),
        ]

    def _packed_tiles(
        self,
        session: Session,
        nodes: Sequence[tuple[int, int, bytes]],
        leaves: Sequence[bytes],
        first_leaf: int,
        known: Mapping[int, bytes] | None,
    ) -> tuple[dict[int, bytearray], set[int]]:
        """The new contents of every tile the nodes and leaves go into, and the keys of those
        that exist already (their old contents from `known`, else read in the transaction)."""
        slots = [(*tile_slot(level, index), h) for level, index, h in nodes]
        # Consecutive leaves fill consecutive slots of the level-0 tiles: one slice per tile.
        position, end = first_leaf, first_leaf + len(leaves)
        while position < end:
            in_tile = position & (LEAVES_PER_TILE - 1)
            take = min(LEAVES_PER_TILE - in_tile, end - position)
            chunk = b"".join(leaves[position - first_leaf:position - first_leaf + take])
            slots.append((*tile_slot(0, position), chunk))
            position += take
        if not slots:
            return {}, set()
        keys = {key for key, _, _ in slots}
        found = self.tiles_in(session, keys) if known is None else known
        tiles = {k: bytearray(found[k]) for k in keys if k in found}
        old = set(tiles)
        _pack_slots(tiles, slots)
        return tiles, old

    @staticmethod
    def tiles_in(session: Session, keys: Iterable[int]) -> dict[int, bytes]:
        """Tile contents by key, read in the write transaction in one query (absent tiles
        are absent)."""
        wanted = sorted(keys)
        if not wanted:
            return {}
        rows = session.connection().execute(
            select(TILES.c.key, TILES.c.hashes).where(TILES.c.key.in_(wanted))).all()
        return {k: bytes(h) for k, h in rows}

    @contextmanager
    def append_transaction(
        self, checkpoint: bool
    ) -> Iterator[tuple[Session, Head | None, dict[int, bytes], CheckpointRecord | None]]:
        """`write`, with what an append reads once it holds the lock: the last two tiles of
        every stratum (`edge_tiles_query`, a superset of the tiles the append writes or its
        frontier lies in) and, when `checkpoint`, the latest checkpoint row. Yields
        (session, head, tiles by key, latest checkpoint row or None).

        On PostgreSQL the lock and the reads go to the server in one pipeline: one round
        trip under the lock instead of two. Each statement of a READ COMMITTED transaction
        takes its own snapshot when it starts, and the reads start after the lock is
        granted, so they see the previous holder's commit."""
        with translate_db_errors(self.url):
            with Session(self.engine.execution_options(batterytrace_write=True)) as session:
                with session.begin():
                    conn = session.connection()
                    if self.is_sqlite:
                        row = conn.execute(_LOCK_HEAD).first()
                        tiles: dict[int, bytes] = dict(conn.exec_driver_sql(_EDGE_TILES).all())
                        latest = self.latest_checkpoint_in(session) if checkpoint else None
                    else:
                        row, tiles, latest = _locked_reads(conn, checkpoint)
                    yield (session,
                           None if row is None else Head(row[0], bytes(row[1]), bytes(row[2])),
                           {k: bytes(h) for k, h in tiles.items()}, latest)

    @contextmanager
    def entry_writer(
        self, session: Session
    ) -> Iterator[Callable[[tuple[int, str, bytes, bytes]], None]]:
        """Write entry rows (`ENTRY_COLUMNS`) in the write transaction as the appender makes
        them: yields the function that takes one row. On PostgreSQL one binary COPY, opened
        at the first row and fed row by row, so the server inserts while the appender goes
        on making entries and, inside this block, extends the tree and signs; it is
        finished when the block ends. On SQLite the rows are inserted at the end (one
        executemany). An exception in the block writes nothing."""
        if self.is_sqlite:
            rows: list[tuple[int, str, bytes, bytes]] = []
            yield rows.append
            self.insert_rows(session, ENTRIES, ENTRY_COLUMNS, rows)
            return
        conn = session.connection()
        with ExitStack() as stack:
            copy: Any = None

            def put(row: tuple[int, str, bytes, bytes]) -> None:
                nonlocal copy
                if copy is None:
                    copy = stack.enter_context(_copy(conn, ENTRIES, ENTRY_COLUMNS))
                copy.write_row(row)

            yield put

    def write_append(
        self,
        session: Session,
        nodes: Sequence[tuple[int, int, bytes]],
        first_leaf: int,
        leaves: Sequence[bytes],
        known: Mapping[int, bytes],
        head: Head,
        checkpoint: CheckpointRecord | None,
    ) -> set[int]:
        """Write the rest of an appended batch (its entries went through `entry_writer`) in
        the write transaction: its leaves and new subtrees into their tiles (`store_nodes`,
        old contents from `known`), the new head and, when given, its checkpoint row. On
        PostgreSQL these and the COMMIT go in one pipeline (one round trip: the sequencer
        lock is held meanwhile, and each round trip costs scheduling delays on a busy host),
        so there the transaction is over when this returns, and nothing may follow it in
        the write block (the block's own commit finds nothing to do). Returns the keys of
        the tiles written."""
        if self.is_sqlite:
            touched = self.store_nodes(session, nodes, leaves, first_leaf, known)
            self.set_head(session, head)
            if checkpoint is not None:
                self.insert(session, CHECKPOINTS, [checkpoint.to_row()])
            return touched
        tiles, old = self._packed_tiles(session, nodes, leaves, first_leaf, known)
        statements: list[tuple[str, list[tuple[Any, ...]]]] = [
            *self._tile_writes(tiles, old),
            (f"UPDATE {SEQUENCER.name} SET size = %s, head = %s, root = %s WHERE id = %s",
             [(head.size, head.head, head.root, SEQUENCER_ID)]),
        ]
        if checkpoint is not None:
            row = checkpoint.to_row()
            statements.append((f"INSERT INTO {CHECKPOINTS.name} ({', '.join(row)}) "
                               f"VALUES ({', '.join(['%s'] * len(row))})", [tuple(row.values())]))
        _pipeline(session.connection(),
                  [(sql, params) for sql, params in statements if params], commit=True)
        return set(tiles)

    @staticmethod
    def set_head(session: Session, head: Head, create: bool = False) -> None:
        values = {"size": head.size, "head": head.head, "root": head.root}
        conn = session.connection()
        if create:
            conn.execute(SEQUENCER.insert().values(id=SEQUENCER_ID, **values))
        else:
            conn.execute(SEQUENCER.update().where(SEQUENCER.c.id == SEQUENCER_ID).values(**values))

    @staticmethod
    def entry_hash_in(session: Session, seq: int) -> bytes | None:
        h = (
            session.connection()
            .execute(select(ENTRIES.c.hash).where(ENTRIES.c.seq == seq))
            .scalar()
        )
        return None if h is None else bytes(h)

    # --- reading ----------------------------------------------------------------------------

    def _one(self, query: Any) -> Any:
        with translate_db_errors(self.url), self.engine.connect() as conn:
            return conn.execute(query).first()

    def head(self) -> Head | None:
        row = self._one(
            select(SEQUENCER.c.size, SEQUENCER.c.head, SEQUENCER.c.root).where(
                SEQUENCER.c.id == SEQUENCER_ID
            )
        )
        return Head(row.size, bytes(row.head), bytes(row.root)) if row else None

    def has_schema(self) -> bool:
        try:
            return inspect(self.engine).has_table(SEQUENCER.name)
        except OperationalError as exc:
            if self.is_sqlite:  # for example a SQLite file in a folder that does not exist
                return False
            with translate_db_errors(self.url):
                raise exc

    def schema_revision(self) -> str | None:
        """The Alembic revision of the database (None before any migration ran)."""
        with translate_db_errors(self.url), self.engine.connect() as conn:
            return current_revision(conn)

    def entry_body(self, seq: int) -> bytes | None:
        row = self._one(select(ENTRIES.c.body).where(ENTRIES.c.seq == seq))
        return None if row is None else bytes(row[0])

    def iter_bodies(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(seq, body) in seq order from `start` (inclusive) to `end` (exclusive), read in
        chunks by key range, so memory stays constant however long the log."""
        after = start - 1
        while True:
            query = select(ENTRIES.c.seq, ENTRIES.c.body).where(ENTRIES.c.seq > after)
            if end is not None:
                query = query.where(ENTRIES.c.seq < end)
            with translate_db_errors(self.url), self.engine.connect() as conn:
                rows = conn.execute(query.order_by(ENTRIES.c.seq).limit(self.chunk)).all()
            if not rows:
                return
            for seq, body in rows:
                yield seq, bytes(body)
            after = rows[-1][0]

    def iter_settings(self, end: int) -> Iterator[bytes]:
        """Bodies of the settings entries with seq < end, in seq order, read in chunks (no
        connection is held between them)."""
        after = -1
        while True:
            with translate_db_errors(self.url), self.engine.connect() as conn:
                rows = conn.execute(
                    select(ENTRIES.c.seq, ENTRIES.c.body)
                    # A literal, not a parameter: the planners use the partial index only
                    # when the query's condition is visibly the index's own.
                    .where(text("kind = 'settings'"), ENTRIES.c.seq > after, ENTRIES.c.seq < end)
                    .order_by(ENTRIES.c.seq)
                    .limit(self.chunk)
                ).all()
            if not rows:
                return
            for _, body in rows:
                yield bytes(body)
            after = rows[-1][0]

    def tiles(self, keys: Iterable[int]) -> dict[int, bytes]:
        """Tile contents by tile key, in ONE query (absent tiles are absent)."""
        # The hot read path: plain SQL with the integer keys inlined (each passed through
        # int(), so nothing to escape), on a per-thread connection kept open (a pool
        # checkout, plus PostgreSQL's pre-ping, would cost more than the query).
        wanted = ",".join(str(int(k)) for k in keys)
        if not wanted:
            return {}
        return self._readers.fetch(
            self.url, f"SELECT key, hashes FROM {TILES.name} WHERE key IN ({wanted})"
        )

    def hashes(self, leaf_seqs: Iterable[int], node_keys: Iterable[int]) -> dict[int, bytes]:
        """Leaf hashes (keyed by seq) and subtree hashes (keyed by `node_key`), read from the
        tiles in one query; hashes not (yet) stored are absent."""
        wanted = [(0, int(s), int(s)) for s in leaf_seqs]
        mask = (1 << LEVEL_SHIFT) - 1
        wanted += [(int(k) >> LEVEL_SHIFT, int(k) & mask, int(k)) for k in node_keys]
        slots = [(key, *tile_slot(level, index)) for level, index, key in wanted]
        tiles = self.tiles({tk for _, tk, _ in slots})
        out = {}
        for key, tk, off in slots:
            h = tiles.get(tk, b"")[off:off + 32]
            if h and h != ZERO_HASH:
                out[key] = h
        return out

    def checkpoint(self, size: int) -> tuple[bytes, bytes] | None:
        """(root, note) of the checkpoint signed at `size`, if any."""
        row = self._one(
            select(CHECKPOINTS.c.root, CHECKPOINTS.c.note).where(CHECKPOINTS.c.size == size)
        )
        return (bytes(row.root), bytes(row.note)) if row else None

    def latest_checkpoint(self) -> tuple[int, bytes, bytes] | None:
        """(size, root, note) of the largest signed checkpoint."""
        row = self._one(
            select(CHECKPOINTS.c.size, CHECKPOINTS.c.root, CHECKPOINTS.c.note)
            .order_by(CHECKPOINTS.c.size.desc())
            .limit(1)
        )
        return (row.size, bytes(row.root), bytes(row.note)) if row else None

    @staticmethod
    def latest_checkpoint_in(session: Session) -> CheckpointRecord | None:
        """The largest checkpoint row, read in the caller's transaction."""
        t = CHECKPOINTS
        row = session.connection().execute(
            select(t.c.size, t.c.root, t.c.note, t.c.previous, t.c.seal)
            .order_by(t.c.size.desc()).limit(1)
        ).first()
        if row is None:
            return None
        return CheckpointRecord(row.size, bytes(row.root), bytes(row.note), row.previous,
                                row.seal)

    def iter_checkpoints(self) -> Iterator[tuple[int, bytes]]:
        """(size, note) of every signed checkpoint, by increasing size, streamed in chunks."""
        after = -1
        while True:
            with translate_db_errors(self.url), self.engine.connect() as conn:
                rows = conn.execute(
                    select(CHECKPOINTS.c.size, CHECKPOINTS.c.note)
                    .where(CHECKPOINTS.c.size > after)
                    .order_by(CHECKPOINTS.c.size)
                    .limit(self.chunk)
                ).all()
            if not rows:
                return
            for size, note in rows:
                yield size, bytes(note)
            after = rows[-1][0]

    def count_checkpoints(self) -> int:
        with translate_db_errors(self.url), self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(CHECKPOINTS)).scalar_one()


@contextmanager
def _driver(conn: Connection, sql: str) -> Iterator[Any]:
    """The psycopg connection under a SQLAlchemy connection, for what SQLAlchemy does not
    offer (COPY, pipelines), inside its transaction. A driver error is raised as SQLAlchemy
    raises it for its own statements (IntegrityError, OperationalError, ...; a lost
    connection invalidated, so the pool drops it), so `translate_db_errors` types it."""
    dbapi = conn.dialect.loaded_dbapi
    raw: Any = conn.connection.dbapi_connection  # psycopg.Connection
    try:
        yield raw
    except dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, raw, None)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, dbapi.Error, connection_invalidated=lost,
                                  dialect=conn.dialect) from exc


def _announce(conn: Connection, cursor: Any, sql: str, params: Any, many: bool) -> None:
    """Tell the engine's `before_cursor_execute` listeners (instrumentation, tests that count
    queries) of a statement sent through `_driver`."""
    before = conn.engine.dispatch.before_cursor_execute
    if before:
        before(conn, cursor, sql, params, None, many)


def _copy_rows(
    conn: Connection, table: Any, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """`COPY table (columns) FROM STDIN` of `rows` (`_copy`)."""
    with _copy(conn, table, columns) as copy:
        for row in rows:
            copy.write_row(row)


@contextmanager
def _copy(conn: Connection, table: Any, columns: Sequence[str]) -> Iterator[Any]:
    """A `COPY table (columns) FROM STDIN` (binary format, typed by the table's columns)
    through `_driver`: yields psycopg's Copy (`write_row`); finished when the block ends,
    abandoned (nothing written) when it raises."""
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    types = [_COPY_TYPES[type(table.c[c].type).__name__] for c in columns]
    with _driver(conn, sql) as raw, raw.cursor() as cursor:
        _announce(conn, cursor, sql, (), False)
        with cursor.copy(sql) as copy:
            copy.set_types(types)
            yield copy


def _pipeline(conn: Connection, statements: Sequence[tuple[str, Sequence[tuple[Any, ...]]]],
              commit: bool = False) -> None:
    """Run each (sql, rows of parameters) in one pipeline (one round trip), through
    `_driver`, then COMMIT in the same pipeline if `commit`. A failing statement fails the
    whole (the transaction is then aborted and nothing is committed)."""
    sql = "; ".join([*(s for s, _ in statements), *(["COMMIT"] if commit else [])])
    with _driver(conn, sql) as raw, raw.pipeline(), raw.cursor() as cursor:
        for statement, params in statements:
            _announce(conn, cursor, statement, params, True)
            cursor.executemany(statement, params)
        if commit:
            _announce(conn, cursor, "COMMIT", (), False)
            cursor.execute("COMMIT")


def _locked_reads(conn: Connection, checkpoint: bool
                  ) -> tuple[Any, dict[int, bytes], CheckpointRecord | None]:
    """PostgreSQL: lock the sequencer row and read the edge tiles and (if `checkpoint`) the
    latest checkpoint row, in one pipeline (one round trip), through `_driver`: (the head
    row or None, tiles by key, latest checkpoint row or None)."""
    statements = [_LOCK_HEAD_SQL, _EDGE_TILES, *([_LATEST_CHECKPOINT] if checkpoint else [])]
    with _driver(conn, "; ".join(statements)) as raw, raw.pipeline():
        cursors = [raw.cursor() for _ in statements]
        for cursor, sql in zip(cursors, statements, strict=True):
            _announce(conn, cursor, sql, (), False)
            cursor.execute(sql)
        head = cursors[0].fetchone()
        tiles = {k: bytes(h) for k, h in cursors[1].fetchall()}
        latest = cursors[2].fetchone() if checkpoint else None
        for cursor in cursors:
            cursor.close()
    record = None if latest is None else CheckpointRecord(
        latest[0], bytes(latest[1]), bytes(latest[2]), latest[3], latest[4])
    return head, tiles, record


# PostgreSQL type of each SQLAlchemy column type the ledger's COPY path writes.
_COPY_TYPES = {"BigInteger": "int8", "Integer": "int4", "AutoString": "text", "String": "text",
               "Text": "text", "LargeBinary": "bytea", "Boolean": "bool"}
# The writers' lock: the sequencer row, FOR UPDATE (SQLite: under BEGIN IMMEDIATE).
_LOCK_HEAD = (select(SEQUENCER.c.size, SEQUENCER.c.head, SEQUENCER.c.root)
              .where(SEQUENCER.c.id == SEQUENCER_ID).with_for_update())
_LOCK_HEAD_SQL = (f"SELECT size, head, root FROM {SEQUENCER.name} WHERE id = {SEQUENCER_ID} "
                  "FOR UPDATE")
_EDGE_TILES = edge_tiles_query(TILES.name)
_LATEST_CHECKPOINT = (f"SELECT size, root, note, previous, seal FROM {CHECKPOINTS.name} "
                      "ORDER BY size DESC LIMIT 1")


@dataclass(frozen=True)
class CheckpointRecord:
    """A `ledger_checkpoints` row: size, root, signed note, the size of the row before it
    (None: the first) and the row's seal (`seal.py`)."""

    size: int
    root: bytes
    note: bytes
    previous: int | None
    seal: str | None

    def sealed_message(self) -> bytes:
        """The bytes the row's seal covers."""
        return checkpoint_message(self.size, self.root, self.note, self.previous)

    def to_row(self) -> dict[str, Any]:
        return {"size": self.size, "root": self.root, "note": self.note,
                "previous": self.previous, "seal": self.seal}

    def sealed_by(self, seal: RowSeal | None) -> CheckpointRecord:
        """This row with its seal (as it is without a seal)."""
        if seal is None:
            return self
        return replace(self, seal=seal.seal(CHECKPOINTS.name, str(self.size),
                                            self.sealed_message()))

    def check_seal(self, seal: RowSeal) -> None:
        """Raise SealMismatchError unless the row carries its seal."""
        seal.check(CHECKPOINTS.name, CHECKPOINTS.name, str(self.size), self.sealed_message(),
                   self.seal)


class _Readers:
    """One autocommit DBAPI connection per thread for the proof read path, kept open and
    used without SQLAlchemy's result machinery (a pool checkout plus a CursorResult cost
    three times the query itself), opened outside the pool so it never starves the writers;
    all closed by `close`. A connection that fails is dropped and the next read opens a new
    one (after a server restart, say). Each statement is still announced to the engine's
    `before_cursor_execute` listeners, so instrumentation sees every query."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dbapi = engine.dialect.loaded_dbapi
        self.local = threading.local()
        self.lock = threading.Lock()
        self.open: list[Any] = []

    def _connect(self) -> Any:
        dialect = self.engine.dialect
        cargs, cparams = dialect.create_connect_args(self.engine.url)
        if dialect.name == "sqlite":
            cparams.update(timeout=60, check_same_thread=False)
        conn = self.dbapi.connect(*cargs, **cparams)
        if dialect.name == "sqlite":
            conn.isolation_level = None  # autocommit: no read transaction left open
            # Memory-mapped reads: a tile spans several overflow pages, one read() each
            # otherwise (about 30 % of a proof's query time).
            conn.execute(f"PRAGMA mmap_size={1 << 30}")
        else:
            conn.autocommit = True
        with self.lock:
            self.open.append(conn)
        return conn

    def fetch(self, url: str, sql: str) -> dict[int, bytes]:
        try:
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = self._connect()
            cursor = conn.cursor()
            try:
                before = self.engine.dispatch.before_cursor_execute
                if before:
                    before(None, cursor, sql, (), None, False)
                cursor.execute(sql)
                return {k: bytes(h) for k, h in cursor.fetchall()}
            finally:
                cursor.close()
        except (self.dbapi.OperationalError, self.dbapi.InterfaceError) as exc:
            self._discard()
            raise StorageUnavailableError(
                f"database unavailable for reading proofs: {str(exc).strip()[:200]}"
            ) from exc

    def _discard(self) -> None:
        conn, self.local.conn = getattr(self.local, "conn", None), None
        if conn is None:
            return
        with self.lock:
            if conn in self.open:
                self.open.remove(conn)
        try:
            conn.close()
        except Exception:  # already broken: nothing more to release
            pass

    def close(self) -> None:
        with self.lock:
            conns, self.open = self.open, []
        for conn in conns:
            try:
                conn.close()
            except Exception:  # closing a broken connection
                pass
        self.local = threading.local()


__all__ = ["CHECKPOINTS", "ENTRIES", "LEDGER_TABLES", "SEQUENCER", "TILES", "Head",
           "PoolSettingError", "PoolSettings", "SqlStorage", "Storage", "StorageBusyError",
           "make_engine", "node_key", "pack_tiles", "pool_settings", "tile_slot",
           "transient_storage_error"]

POOL_SIZE_ENV = "BATTERYTRACE_DB_POOL_SIZE"
MAX_OVERFLOW_ENV = "BATTERYTRACE_DB_MAX_OVERFLOW"
POOL_TIMEOUT_ENV = "BATTERYTRACE_DB_POOL_TIMEOUT"


class PoolSettingError(InputError):
    """A BATTERYTRACE_DB_POOL_* variable that is not a number in range."""

    code = "POOL_SETTING_INVALID"
    title = "Invalid database pool setting"


class StorageBusyError(StorageUnavailableError):
    """Every pooled connection of this process stayed checked out for the pool timeout: the
    process is overloaded; nothing was done, retry shortly."""

    code = "STORAGE_BUSY"
    title = "Database busy"
    http_status = 503


@dataclass(frozen=True)
class PoolSettings:
    """SQLAlchemy QueuePool sizing: `size` connections kept, up to `size + max_overflow` open
    at once; a checkout waits at most `timeout` seconds for one, then StorageBusyError."""

    size: int
    max_overflow: int
    timeout: float


# A server answers at most 40 requests at once in worker threads (AnyIO's default limiter)
# and writes through one writer thread: 40 connections cover every thread, also the few that
# hold two at once briefly. SQLite connections are a file handle: keep them all. A PostgreSQL
# connection is a server process: keep 10, open up to 40 under load, per service process.
SQLITE_POOL = PoolSettings(size=40, max_overflow=20, timeout=10.0)
POSTGRES_POOL = PoolSettings(size=10, max_overflow=30, timeout=10.0)


def pool_settings(url: str, environ: Mapping[str, str] | None = None) -> PoolSettings:
    """The pool of `url`: the engine's defaults above, each overridden by
    BATTERYTRACE_DB_POOL_SIZE, BATTERYTRACE_DB_MAX_OVERFLOW, BATTERYTRACE_DB_POOL_TIMEOUT."""
    env = os.environ if environ is None else environ
    base = SQLITE_POOL if url.startswith("sqlite") else POSTGRES_POOL

    def number(name: str, default: float, kind: type) -> Any:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise PoolSettingError(f"{name}={raw!r} is not a number") from None
        if value < 0 or (name != MAX_OVERFLOW_ENV and value == 0):
            raise PoolSettingError(f"{name}={raw!r} is out of range")
        return value

    return PoolSettings(size=number(POOL_SIZE_ENV, base.size, int),
                        max_overflow=number(MAX_OVERFLOW_ENV, base.max_overflow, int),
                        timeout=number(POOL_TIMEOUT_ENV, base.timeout, float))


def make_engine(url: str, pool: PoolSettings | None = None) -> Engine:
    """An engine for `url`, with the SQLite settings the ledger relies on when it is SQLite,
    and its connection pool sized by `pool` (default `pool_settings(url)`)."""
    pool = pool or pool_settings(url)
    sizing: dict[str, Any] = {"pool_size": pool.size, "max_overflow": pool.max_overflow,
                              "pool_timeout": pool.timeout}
    if url.startswith("sqlite"):
        if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite+pysqlite:"):
            sizing = {}  # an in-memory database has its own (single-connection) pool
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False},
                               **sizing)
        _setup_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **sizing)


def transient_storage_error(error: BaseException,
                            url: str | None = None) -> StorageUnavailableError | None:
    """The typed 503 error of a database failure raised outside `translate_db_errors`: the
    pool's checkout timeout (StorageBusyError) or a driver's connection-level error, such as
    SQLite's "database is locked" (StorageUnavailableError); None for anything else."""
    name = _safe_name(url)
    if isinstance(error, PoolTimeoutError):
        return StorageBusyError(f"every connection to database {name} stayed busy: "
                                "retry shortly")
    if isinstance(error, (OperationalError, InterfaceError)) or (
            isinstance(error, DBAPIError) and error.connection_invalidated):
        return StorageUnavailableError(f"database {name} unavailable: {_reason(error)}")
    return None


def _safe_name(url: str | None) -> str:
    return _safe(make_url, url) if url else "(ledger)"


def _setup_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling issues BEGIN lazily (after the first read), which
    # would let two writers read the same head: take over and begin explicitly.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: DBAPIConnection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("batterytrace_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
