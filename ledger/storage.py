"""Storage of the log behind one small interface, implemented once with SQLModel/SQLAlchemy.

Tables: `ledger_entries` (seq, kind, hash, leaf, canonical body), `ledger_tree_nodes` (hashes of
complete subtrees at level >= 1, keyed by `node_key(level, index)`; level 0 is the entries' leaf
column), `ledger_checkpoints` (every signed checkpoint note) and `ledger_sequencer` (one row:
size, head entry hash, root). Writers lock the sequencer row: SQLite opens the write
transaction with BEGIN IMMEDIATE (the database's one writer lock), other databases get
`SELECT ... FOR UPDATE` on the row. Everything SQLite-specific sits in `_setup_sqlite`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import BigInteger, Integer, LargeBinary, create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel

# SQLite only makes "INTEGER PRIMARY KEY" the rowid (the fast clustered key), not BIGINT.
_BIGINT = BigInteger().with_variant(Integer(), "sqlite")
_LEVEL_SHIFT = 48  # node keys: level << 48 | index (indexes stay far below 2**48)
SEQUENCER_ID = 1


def node_key(level: int, index: int) -> int:
    """Integer key of the complete subtree (level, index) in `ledger_tree_nodes`."""
    return (level << _LEVEL_SHIFT) | index


class EntryRow(SQLModel, table=True):
    __tablename__ = "ledger_entries"

    seq: int = Field(primary_key=True, sa_type=_BIGINT, sa_column_kwargs={"autoincrement": False})
    kind: str = Field(index=True)
    hash: bytes = Field(sa_type=LargeBinary)
    leaf: bytes = Field(sa_type=LargeBinary)
    body: bytes = Field(sa_type=LargeBinary)


class TreeNodeRow(SQLModel, table=True):
    __tablename__ = "ledger_tree_nodes"

    key: int = Field(primary_key=True, sa_type=_BIGINT, sa_column_kwargs={"autoincrement": False})
    hash: bytes = Field(sa_type=LargeBinary)


class CheckpointRow(SQLModel, table=True):
    __tablename__ = "ledger_checkpoints"

    size: int = Field(primary_key=True, sa_type=_BIGINT, sa_column_kwargs={"autoincrement": False})
    root: bytes = Field(sa_type=LargeBinary)
    note: bytes = Field(sa_type=LargeBinary)


class SequencerRow(SQLModel, table=True):
    __tablename__ = "ledger_sequencer"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    size: int = Field(sa_type=BigInteger)
    head: bytes = Field(sa_type=LargeBinary)
    root: bytes = Field(sa_type=LargeBinary)


ENTRIES = EntryRow.__table__
NODES = TreeNodeRow.__table__
CHECKPOINTS = CheckpointRow.__table__
SEQUENCER = SequencerRow.__table__
LEDGER_TABLES = [ENTRIES, NODES, CHECKPOINTS, SEQUENCER]


@dataclass(frozen=True)
class Head:
    """The sequencer row: size of the log, hash of its last entry, Merkle root."""

    size: int
    head: bytes
    root: bytes


class Storage(Protocol):
    """What the ledger needs from a database (one implementation: `SqlStorage`)."""

    def create_schema(self) -> None: ...
    def write(self) -> Any: ...  # context manager yielding (session, Head | None)
    def head(self) -> Head | None: ...
    def entry_body(self, seq: int) -> bytes | None: ...
    def iter_bodies(self, start: int, end: int) -> Iterator[tuple[int, bytes]]: ...
    def hashes(self, leaf_seqs: Iterable[int], node_keys: Iterable[int]) -> dict[int, bytes]: ...
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

    def close(self) -> None:
        self.engine.dispose()

    def create_schema(self) -> None:
        """Create every table registered with SQLModel (the ledger's and its validators')."""
        SQLModel.metadata.create_all(self.engine)

    # --- writing ----------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[tuple[Session, Head | None]]:
        """One write transaction with the sequencer row locked; commits on normal exit."""
        with Session(self.engine.execution_options(batterytrace_write=True)) as session:
            with session.begin():
                row = (
                    session.connection()
                    .execute(
                        select(SEQUENCER.c.size, SEQUENCER.c.head, SEQUENCER.c.root)
                        .where(SEQUENCER.c.id == SEQUENCER_ID)
                        .with_for_update()
                    )
                    .first()
                )
                yield session, (Head(row.size, row.head, row.root) if row else None)

    def insert(self, session: Session, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Bulk insert: one driver-level executemany (no ORM objects, no per-row processing)."""
        if not rows:
            return
        columns = list(rows[0])
        sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
               f"VALUES ({', '.join([self._placeholder] * len(columns))})")
        session.connection().exec_driver_sql(sql, [tuple(r[c] for c in columns) for r in rows])

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
        return (
            session.connection()
            .execute(select(ENTRIES.c.hash).where(ENTRIES.c.seq == seq))
            .scalar()
        )

    # --- reading ----------------------------------------------------------------------------

    def head(self) -> Head | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(SEQUENCER.c.size, SEQUENCER.c.head, SEQUENCER.c.root).where(
                    SEQUENCER.c.id == SEQUENCER_ID
                )
            ).first()
        return Head(row.size, row.head, row.root) if row else None

    def has_schema(self) -> bool:
        from sqlalchemy import inspect
        from sqlalchemy.exc import OperationalError

        try:
            return inspect(self.engine).has_table(SEQUENCER.name)
        except OperationalError:  # for example a SQLite file in a folder that does not exist
            return False

    def entry_body(self, seq: int) -> bytes | None:
        with self.engine.connect() as conn:
            return conn.execute(select(ENTRIES.c.body).where(ENTRIES.c.seq == seq)).scalar()

    def iter_bodies(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(seq, body) in seq order from `start` (inclusive) to `end` (exclusive), read in
        chunks by key range, so memory stays constant however long the log."""
        after = start - 1
        while True:
            query = select(ENTRIES.c.seq, ENTRIES.c.body).where(ENTRIES.c.seq > after)
            if end is not None:
                query = query.where(ENTRIES.c.seq < end)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(ENTRIES.c.seq).limit(self.chunk)).all()
            if not rows:
                return
            yield from rows
            after = rows[-1][0]

    def iter_kind(self, kind: str, end: int) -> Iterator[bytes]:
        """Bodies of the entries of one kind with seq < end, in seq order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ENTRIES.c.body)
                .where(ENTRIES.c.kind == kind, ENTRIES.c.seq < end)
                .order_by(ENTRIES.c.seq)
            ).scalars()
            yield from rows

    def hashes(self, leaf_seqs: Iterable[int], node_keys: Iterable[int]) -> dict[int, bytes]:
        """Leaf hashes (keyed by seq) and subtree hashes (keyed by node key) in ONE query."""
        # The hot read path: plain SQL with the integer keys inlined (each passed through
        # int(), so nothing to escape), run on the pooled DBAPI connection; portable SQL.
        seqs = ",".join(str(int(s)) for s in leaf_seqs)
        keys = ",".join(str(int(k)) for k in node_keys)
        parts = []
        if seqs:
            parts.append(f"SELECT seq, leaf FROM {ENTRIES.name} WHERE seq IN ({seqs})")
        if keys:
            parts.append(f"SELECT key, hash FROM {NODES.name} WHERE key IN ({keys})")
        if not parts:
            return {}
        with self.engine.connect() as conn:
            cursor = conn.connection.cursor()
            try:
                cursor.execute(" UNION ALL ".join(parts))
                return {k: bytes(h) for k, h in cursor.fetchall()}
            finally:
                cursor.close()

    def checkpoint(self, size: int) -> tuple[bytes, bytes] | None:
        """(root, note) of the checkpoint signed at `size`, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CHECKPOINTS.c.root, CHECKPOINTS.c.note).where(CHECKPOINTS.c.size == size)
            ).first()
        return (row.root, row.note) if row else None

    def latest_checkpoint(self) -> tuple[int, bytes, bytes] | None:
        """(size, root, note) of the largest signed checkpoint."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CHECKPOINTS.c.size, CHECKPOINTS.c.root, CHECKPOINTS.c.note)
                .order_by(CHECKPOINTS.c.size.desc())
                .limit(1)
            ).first()
        return (row.size, row.root, row.note) if row else None

    @staticmethod
    def latest_checkpoint_in(session: Session) -> tuple[int, bytes] | None:
        row = (
            session.connection()
            .execute(
                select(CHECKPOINTS.c.size, CHECKPOINTS.c.root)
                .order_by(CHECKPOINTS.c.size.desc())
                .limit(1)
            )
            .first()
        )
        return (row.size, row.root) if row else None

    def iter_checkpoints(self) -> Iterator[tuple[int, bytes]]:
        """(size, note) of every signed checkpoint, by increasing size, streamed in chunks."""
        after = -1
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(CHECKPOINTS.c.size, CHECKPOINTS.c.note)
                    .where(CHECKPOINTS.c.size > after)
                    .order_by(CHECKPOINTS.c.size)
                    .limit(self.chunk)
                ).all()
            if not rows:
                return
            yield from rows
            after = rows[-1][0]

    def count_checkpoints(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(CHECKPOINTS)).scalar_one()


def make_engine(url: str) -> Engine:
    """An engine for `url`, with the SQLite settings the ledger relies on when it is SQLite."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        _setup_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _setup_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling issues BEGIN lazily (after the first read), which
    # would let two writers read the same head: take over and begin explicitly.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        write = conn.get_execution_options().get("batterytrace_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
