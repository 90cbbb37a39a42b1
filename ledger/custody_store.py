"""Custody state in tables: the registry and custody state of the engine, stored.

The state of `registry.Registry` and `custody.CustodyState` is stored as rows of one keyed
table, `custody_state (tbl, key, value)`: `tbl` names the logical table (holding, item,
shipment, participant, key, ...), `key` its key (parts joined by U+001F, so a prefix range
lists the holders of a lot or the history of an item) and `value` canonical JSON. The rows
are a cache of the log: `rebuild` drops and rebuilds them with the engine's replay.

`StoredRegistry` and `StoredState` read the rows the rules need by primary key (`_load`), or
many at once (`prefetch`); `write_changes` writes back what a batch changed, with one
driver-level executemany upsert (the validators, `validators.py`, do both inside the Ledger's
write transaction).

Given the ledger's `RowSeal` (`seal.py`), every row written carries its seal and every row
read is checked against it: a row edited in the database is refused (`SealMismatchError`,
naming the row) before any rule uses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from decimal import Decimal
from itertools import islice
from typing import Any, cast

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from .custody import (
    CustodyState,
    Facility,
    ItemState,
    Limits,
    LotState,
    Shipment,
    UsedId,
    decimal_text,
)
from .engine import Replay, limits_of, tolerance_of
from .log import Ledger
from .registry import KeyRecord, Participant, Registry, UsedDocument
from .replay import replay_entries
from .seal import RowSeal
from .spill import SEP, SPILL_ROWS
from .tables import CUSTODY_STATE

TABLE_NAME = CUSTODY_STATE.name

# Logical table -> the dataclass of its values (None: a scalar).
_CLASSES: dict[str, type | None] = {
    "lot": LotState,
    "holding": None,
    "item": ItemState,
    "shipment": Shipment,
    "event": UsedId,
    "credential": UsedId,
    "edge": None,
    "source": None,
    "history": None,
    "battery_code": None,
    "erroneous": None,
    "gs1_key": None,
    "processed": None,
    "participant": Participant,
    "key": KeyRecord,
    "facility": Facility,
    "document": UsedDocument,
    "name": None,
}


# --- encoding -----------------------------------------------------------------------------


def encode_key(key: Any) -> str:
    return SEP.join(key) if isinstance(key, tuple) else str(key)


def decode_key(table: str, text: str) -> Any:
    return tuple(text.split(SEP)) if SEP in text else text


def plain_json(value: Any) -> Any:
    """A state value as JSON-ready data; Decimals as {"$d": "<exact string>"}."""
    if isinstance(value, Decimal):
        return {"$d": decimal_text(value)}
    if is_dataclass(value):
        return {f.name: plain_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    return value


def _revive(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"$d"}:
            return Decimal(value["$d"])
        return {k: _revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_revive(v) for v in value)
    return value


def _json_default(value: Any) -> Any:
    # What plain_json does, one level at a time: the C encoder recurses into the result.
    kind = type(value)
    if kind is Decimal:
        return {"$d": decimal_text(value)}
    names = _FIELD_NAMES.get(kind)
    if names is not None:
        return {name: getattr(value, name) for name in names}
    if isinstance(value, Decimal):
        return {"$d": decimal_text(value)}
    if is_dataclass(value) and not isinstance(value, type):
        # dataclasses.fields() costs more than the encoding: remember the names per class.
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
        return {name: getattr(value, name) for name in names}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not a state value")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


# Built once: the same text as json.dumps(plain_json(value), sort_keys=True, ...) in a
# single C-encoder pass (plain_json's copy of every value cost more than the encoding).
_STATE_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
)


_encode_string = json.encoder.encode_basestring  # the encoder's own string escaping


def encode_value(value: Any) -> str:
    """A state value as compact, key-sorted JSON (Decimals as {"$d": "<exact string>"})."""
    # The values every event writes (positions, holdings, used ids) spelled out directly:
    # the same text the encoder writes, without its per-call setup.
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is Decimal:
        return '{"$d":"' + decimal_text(value) + '"}'  # digits need no escaping
    if kind is UsedId and type(value.digest) is str and type(value.seq) is int:
        return '{"digest":' + _encode_string(value.digest) + ',"seq":' + str(value.seq) + "}"
    return _STATE_ENCODER.encode(value)


def decode_value(table: str, text: str) -> Any:
    data = _revive(json.loads(text))
    cls = _CLASSES[table]
    return data if cls is None else cls(**data)


# --- the table ----------------------------------------------------------------------------


def ensure_schema(connection: Connection) -> None:
    CUSTODY_STATE.create(connection, checkfirst=True)


def drop_state(connection: Connection) -> None:
    """Drop the custody tables (they are rebuilt from the log)."""
    CUSTODY_STATE.drop(connection, checkfirst=True)


# A plain, pre-built statement: building a select() per lookup costs more than the lookup.
_SELECT_VALUE = text(f"SELECT value, seal FROM {TABLE_NAME} WHERE tbl = :tbl AND key = :key")


class _Loader:
    """Reads rows by primary key through a connection (mixed into the stored classes);
    checks each row's seal when given the ledger's `RowSeal`."""

    connection: Connection
    tables: dict[str, dict[Any, Any]]
    seal: RowSeal | None = None

    def _load(self, table: str, key: Any) -> Any:
        encoded = encode_key(key)
        row = self.connection.execute(_SELECT_VALUE, {"tbl": table, "key": encoded}).first()
        if row is None:
            return None
        if self.seal is not None:
            self.seal.check(TABLE_NAME, table, encoded, row[0], row[1])
        return decode_value(table, row[0])

    def prefetch(self, wanted: Iterable[tuple[str, Any]]) -> int:
        """Read the rows of (table, key) pairs not yet known, one query per table (chunks of
        500 keys); keys without a row are remembered as absent. Returns the keys read."""
        missing: dict[str, dict[str, Any]] = {}
        for table, key in wanted:
            if table in self.tables and key not in self.tables[table]:
                missing.setdefault(table, {})[encode_key(key)] = key
        for table, keys in missing.items():
            rows = self.tables[table]
            encoded = list(keys)
            for start in range(0, len(encoded), _PREFETCH_CHUNK):
                chunk = encoded[start : start + _PREFETCH_CHUNK]
                found = {k: (v, sealed) for k, v, sealed
                         in _select_keys(self.connection, table, chunk)}
                for text_key in chunk:
                    row = found.get(text_key)
                    if row is None:
                        rows[keys[text_key]] = None
                        continue
                    if self.seal is not None:
                        self.seal.check(TABLE_NAME, table, text_key, row[0], row[1])
                    rows[keys[text_key]] = decode_value(table, row[0])
        return sum(len(k) for k in missing.values())


_PREFETCH_CHUNK = 500


def _select_keys(connection: Connection, table: str, keys: list[str]
                 ) -> Sequence[tuple[str, str, str | None]]:
    """(key, value, seal) of the rows of `table` among `keys`: driver-level SQL, as
    SQLAlchemy's expanding IN recompiles the statement per call (more than the query costs)."""
    p = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    marks = ", ".join([p] * len(keys))
    rows = connection.exec_driver_sql(
        f"SELECT key, value, seal FROM {TABLE_NAME} WHERE tbl = {p} AND key IN ({marks})",
        (table, *keys),
    ).all()
    return cast(Sequence[tuple[str, str, str | None]], rows)


class StoredRegistry(_Loader, Registry):
    def __init__(self, connection: Connection, admin_did: str, public_url: str,
                 seal: RowSeal | None = None) -> None:
        super().__init__(admin_did, public_url)
        self.connection = connection
        self.seal = seal


class StoredState(_Loader, CustodyState):
    def __init__(self, connection: Connection, directory: Any, tolerance: Decimal,
                 seal: RowSeal | None = None, limits: Limits | None = None) -> None:
        super().__init__(directory, tolerance, limits)
        self.connection = connection
        self.seal = seal


def write_changes(connection: Connection, changes: Mapping[tuple[str, Any], Any],
                  seal: RowSeal | None = None) -> None:
    """Upsert the changed rows (one executemany), sealed with `seal` when given; a None value
    deletes the row."""
    if not changes:
        return
    upserts: list[tuple[str, str, str, str | None]] = []
    deletes: list[tuple[str, str]] = []
    for (table, key), value in changes.items():
        encoded = encode_key(key)
        if value is None:
            deletes.append((table, encoded))
        else:
            text_value = encode_value(value)
            upserts.append((table, encoded, text_value,
                            None if seal is None else seal.seal(table, encoded, text_value)))
    # Driver-level executemany: no per-row parameter processing by SQLAlchemy.
    p = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    if deletes:
        connection.exec_driver_sql(
            f"DELETE FROM {TABLE_NAME} WHERE tbl = {p} AND key = {p}", deletes
        )
    if upserts:
        # ON CONFLICT ... DO UPDATE: SQLite >= 3.24 and PostgreSQL alike.
        connection.exec_driver_sql(
            f"INSERT INTO {TABLE_NAME} (tbl, key, value, seal) VALUES ({p}, {p}, {p}, {p}) "
            "ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value, seal = excluded.seal",
            upserts,
        )


def dump_state(connection: Connection) -> dict[tuple[str, str], str]:
    """Every stored row (for the rebuild comparison and exports)."""
    t = CUSTODY_STATE
    return {(r.tbl, r.key): r.value for r in connection.execute(select(t))}


def rows_with_prefix(connection: Connection, table: str, prefix: str) -> list[tuple[Any, Any]]:
    """(key, value) rows of a logical table whose key starts with `prefix` + SEP."""
    t = CUSTODY_STATE
    low = prefix + SEP
    result = connection.execute(
        select(t.c.key, t.c.value).where(t.c.tbl == table, t.c.key >= low,
                                         t.c.key < prefix + "\x20")
    )
    return [(decode_key(table, k), decode_value(table, v)) for k, v in result]


def all_values(connection: Connection, table: str) -> list[Any]:
    """Every value of a logical table, ordered by key."""
    t = CUSTODY_STATE
    rows = connection.execute(select(t.c.value).where(t.c.tbl == table).order_by(t.c.key))
    return [decode_value(table, v) for (v,) in rows]


# --- replay and rebuild -------------------------------------------------------------------


def iter_ledger_entries(ledger: Ledger) -> Iterator[tuple[int, str, dict[str, Any], str]]:
    for entry in ledger.iter_entries():
        yield entry.seq, entry.kind, entry.document, entry.received


def replayed_rows(replay: Replay) -> Iterator[tuple[tuple[str, Any], Any]]:
    """The custody_state rows of a replay's registry and state, ((table, key), value), one at
    a time (from the replay's spill file when it has one): what `rebuild` writes and
    `ledger verify` compares the stored rows with."""
    registry, state = replay.started()
    for tables in (registry, state):
        for table in tables.table_names:
            for key, value in tables.rows(table):
                yield (table, key), value


def rebuild(ledger: Ledger) -> int:
    """Drop the custody tables and rebuild them from the log (the engine's replay, checks
    included, its state spilled to a temporary file when large). Returns the rows written."""
    replay = Replay(SPILL_ROWS)
    try:
        replay_entries(iter_ledger_entries(ledger), replay=replay)
        with ledger.storage.engine.begin() as connection:
            return replace_state(connection, replayed_rows(replay), ledger.row_seal)
    finally:
        replay.close()


def replace_state(connection: Connection,
                  rows: Mapping[tuple[str, Any], Any] | Iterable[tuple[tuple[str, Any], Any]],
                  seal: RowSeal | None, *, chunk: int = 5000) -> int:
    """Replace every custody_state row with `rows` ((table, key) -> value, or a stream of
    ((table, key), value) with distinct keys), sealed with `seal`, in the caller's
    transaction; written `chunk` rows at a time, so a stream is never all in memory.
    Returns the rows written."""
    drop_state(connection)
    ensure_schema(connection)
    pairs = iter(rows.items() if isinstance(rows, Mapping) else rows)
    written = 0
    while batch := dict(islice(pairs, chunk)):
        write_changes(connection, batch, seal)
        written += len(batch)
    return written


def stored_rows(connection: Connection) -> Iterator[tuple[str, str, str, str | None]]:
    """Every stored row as (tbl, key, value, seal), ordered by table and key."""
    t = CUSTODY_STATE
    # Streamed (a server-side cursor where the driver has one): the table may not fit in memory.
    for r in connection.execute(select(t.c.tbl, t.c.key, t.c.value, t.c.seal)
                                .order_by(t.c.tbl, t.c.key).execution_options(yield_per=5000)):
        yield r.tbl, r.key, r.value, r.seal


def open_state(connection: Connection, ledger: Ledger) -> tuple[StoredRegistry, StoredState]:
    """Read-only views of the stored registry and custody state (for show and trace)."""
    ensure_schema(connection)
    registry = StoredRegistry(connection, ledger.admin_did, ledger.public_url)
    state = StoredState(connection, registry, tolerance_of(ledger.settings_at(ledger.size)),
                        limits=limits_of(ledger.settings_at(ledger.size)))
    return registry, state
