"""Custody state in tables, the Validators of "registry" and "event" entries, and replay.

The state of `registry.Registry` and `custody.CustodyState` is stored as rows of one keyed
table, `custody_state (tbl, key, value)`: `tbl` names the logical table (holding, item,
shipment, participant, key, ...), `key` its key (parts joined by U+001F, so a prefix range
lists the holders of a lot or the history of an item) and `value` canonical JSON. The rows
are a cache of the log: `rebuild` drops and rebuilds them from the entries, and `replay` (pure,
no database, for the verifier) runs the same rules over entries handed in.

Validation runs inside the Ledger's write transaction: the rules read the rows they need by
primary key (`_load`) and the rows they changed are written back before the batch commits, so
a rejected batch leaves nothing.

Log positions: a validator sees the submissions of its own kind only, so a submission's
position is taken as `first_seq` + the number of entries appended before it in that list,
which is exact for batches of one kind (what the command line and the API send).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import verify_proofs
from batterytrace.credentials.errors import BatterytraceError, ProofVerificationError

from .custody import (
    CustodyState,
    Facility,
    ItemState,
    LotState,
    Shipment,
    UsedId,
    apply_credential,
)
from .events import parse_credential
from .registry import (
    KeyRecord,
    Participant,
    Registry,
    RegistryResolver,
    UsedDocument,
    apply_registry,
)

TABLE_NAME = "custody_state"
SEP = "\x1f"
TOLERANCE_SETTING = "massBalanceTolerance"

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
    "participant": Participant,
    "key": KeyRecord,
    "facility": Facility,
    "document": UsedDocument,
    "name": None,
}


def digest(document: Mapping[str, Any]) -> str:
    """The sha256 (hex) of a document's canonical bytes: what "the same document" means."""
    return hashlib.sha256(canonicalize(dict(document))).hexdigest()


# --- encoding -----------------------------------------------------------------------------


def encode_key(key: Any) -> str:
    return SEP.join(key) if isinstance(key, tuple) else str(key)


def decode_key(table: str, text: str) -> Any:
    return tuple(text.split(SEP)) if SEP in text else text


def plain_json(value: Any) -> Any:
    """A state value as JSON-ready data; Decimals as {"$d": "<exact string>"}."""
    if isinstance(value, Decimal):
        return {"$d": str(value)}
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


def encode_value(value: Any) -> str:
    return json.dumps(plain_json(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode_value(table: str, text: str) -> Any:
    data = _revive(json.loads(text))
    cls = _CLASSES[table]
    return data if cls is None else cls(**data)


# --- the table ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def state_table() -> Any:
    from sqlalchemy import Column, MetaData, String, Table, Text

    return Table(
        TABLE_NAME,
        MetaData(),
        Column("tbl", String(16), primary_key=True),
        Column("key", String(1024), primary_key=True),
        Column("value", Text, nullable=False),
    )


def ensure_schema(connection: Any) -> None:
    state_table().create(connection, checkfirst=True)


def drop_state(connection: Any) -> None:
    """Drop the custody tables (they are rebuilt from the log)."""
    state_table().drop(connection, checkfirst=True)


@lru_cache(maxsize=1)
def _select_value() -> Any:
    from sqlalchemy import text

    return text(f"SELECT value FROM {TABLE_NAME} WHERE tbl = :tbl AND key = :key")


class _Loader:
    """Reads rows by primary key through a connection (mixed into the stored classes)."""

    connection: Any

    def _load(self, table: str, key: Any) -> Any:
        # A plain, pre-built statement: building a select() per lookup costs more than the
        # lookup itself.
        text = self.connection.execute(
            _select_value(), {"tbl": table, "key": encode_key(key)}
        ).scalar()
        return None if text is None else decode_value(table, text)


class StoredRegistry(_Loader, Registry):
    def __init__(self, connection: Any, admin_did: str, public_url: str) -> None:
        super().__init__(admin_did, public_url)
        self.connection = connection


class StoredState(_Loader, CustodyState):
    def __init__(self, connection: Any, directory: Any, tolerance: Decimal) -> None:
        super().__init__(directory, tolerance)
        self.connection = connection


def write_changes(connection: Any, changes: Mapping[tuple[str, Any], Any]) -> None:
    """Upsert (delete, then insert) the changed rows; a None value deletes the row."""
    from sqlalchemy import and_, delete, insert, or_

    if not changes:
        return
    t = state_table()
    keys = [(table, encode_key(key)) for table, key in changes]
    for start in range(0, len(keys), 400):
        chunk = keys[start : start + 400]
        connection.execute(
            delete(t).where(or_(*(and_(t.c.tbl == a, t.c.key == b) for a, b in chunk)))
        )
    rows = [
        {"tbl": table, "key": encode_key(key), "value": encode_value(value)}
        for (table, key), value in changes.items()
        if value is not None
    ]
    if rows:
        connection.execute(insert(t), rows)


def dump_state(connection: Any) -> dict[tuple[str, str], str]:
    """Every stored row (for the rebuild comparison and exports)."""
    from sqlalchemy import select

    t = state_table()
    return {(r.tbl, r.key): r.value for r in connection.execute(select(t))}


def rows_with_prefix(connection: Any, table: str, prefix: str) -> list[tuple[Any, Any]]:
    """(key, value) rows of a logical table whose key starts with `prefix` + SEP."""
    from sqlalchemy import select

    t = state_table()
    low = prefix + SEP
    result = connection.execute(
        select(t.c.key, t.c.value).where(t.c.tbl == table, t.c.key >= low,
                                         t.c.key < prefix + "\x20")
    )
    return [(decode_key(table, k), decode_value(table, v)) for k, v in result]


# --- validators ---------------------------------------------------------------------------


def tolerance_of(settings: Mapping[str, Any]) -> Decimal:
    value = settings.get(TOLERANCE_SETTING, 0)
    return Decimal(str(value))


def _positions(first_seq: int, answers: list[int | None]) -> int:
    return first_seq + sum(1 for a in answers if a is None)


class RegistryValidator:
    """Validator of "registry" entries: admin (and participant) proofs, registry rules."""

    def __init__(self, admin_did: str, public_url: str) -> None:
        self.admin_did = admin_did
        self.public_url = public_url

    def validate(
        self, session: Any, first_seq: int, submissions: Sequence[Any]
    ) -> list[int | None]:
        connection = session.connection()
        ensure_schema(connection)
        registry = StoredRegistry(connection, self.admin_did, self.public_url)
        answers: list[int | None] = []
        for sub in submissions:
            position = _positions(first_seq, answers)
            answers.append(check_registry(registry, sub.document, position))
        write_changes(connection, registry.changed())
        return answers


def check_registry(registry: Registry, document: dict[str, Any], position: int) -> int | None:
    """Verify a registry document's proofs at `position` and apply it."""
    sha = digest(document)
    used = registry.get("document", sha)
    if used is not None:
        return used.seq
    results = verify_proofs(document, RegistryResolver(registry, position, admin=True))
    return apply_registry(registry, document, position, [r.verification_method for r in results],
                          sha)


def check_event(
    registry: Registry, state: CustodyState, document: dict[str, Any], position: int
) -> int | None:
    """Schema, signature by a key of the issuer valid at `position`, then the custody rules."""
    credential = parse_credential(document)
    sha = digest(document)
    used = state.get("credential", credential.id)
    if used is not None and used.digest == sha:
        return used.seq
    results = verify_proofs(document, RegistryResolver(registry, position))
    if len(results) != 1 or results[0].controller != credential.issuer:
        raise ProofVerificationError(
            "a traceability event carries one proof, by a key of its issuer"
        )
    registry.participant(credential.issuer)
    return apply_credential(state, credential, credential.issuer, position, sha)


class EventValidator:
    """Validator of "event" entries: DTE schema, issuer key at the position, custody rules."""

    def __init__(self, admin_did: str, public_url: str, settings: Any = None) -> None:
        self.admin_did = admin_did
        self.public_url = public_url
        # settings(seq) -> dict: the ledger settings in force before `seq`.
        self.settings = settings or (lambda seq: {})

    def validate(
        self, session: Any, first_seq: int, submissions: Sequence[Any]
    ) -> list[int | None]:
        connection = session.connection()
        ensure_schema(connection)
        registry = StoredRegistry(connection, self.admin_did, self.public_url)
        state = StoredState(connection, registry, tolerance_of(self.settings(first_seq - 1)))
        answers: list[int | None] = []
        with state.transaction():
            for sub in submissions:
                position = _positions(first_seq, answers)
                answers.append(check_event(registry, state, sub.document, position))
        write_changes(connection, state.changed())
        return answers


def validators_for(ledger: Any) -> dict[str, Any]:
    """The custody validators of a ledger (its admin key, public URL and settings)."""
    return {
        "registry": RegistryValidator(ledger.admin_did, ledger.public_url),
        "event": EventValidator(ledger.admin_did, ledger.public_url, ledger.settings_at),
    }


# --- replay and rebuild -------------------------------------------------------------------


def replay(
    entries: Iterable[tuple[int, str, dict[str, Any]]],
    admin_did: str,
    public_url: str,
    *,
    registry: Registry | None = None,
    state: CustodyState | None = None,
) -> tuple[Registry, CustodyState]:
    """Run the registry and custody rules (with signatures) over (seq, kind, document)
    entries in log order, in memory. Raises the first rule's error, with the seq in details."""
    registry = registry or Registry(admin_did, public_url)
    state = state or CustodyState(registry)
    settings: dict[str, Any] = {}
    for seq, kind, document in entries:
        try:
            if kind == "settings":
                settings.update(document.get("settings", {}))
                state.tolerance = tolerance_of(settings)
            elif kind == "registry":
                check_registry(registry, document, seq)
            elif kind == "event":
                check_event(registry, state, document, seq)
        except BatterytraceError as exc:
            exc.details.setdefault("seq", seq)
            raise
    return registry, state


def iter_ledger_entries(ledger: Any) -> Iterator[tuple[int, str, dict[str, Any]]]:
    for entry in ledger.iter_entries():
        yield entry.seq, entry.kind, entry.document


def rebuild(ledger: Any) -> int:
    """Drop the custody tables and rebuild them from the log. Returns the rows written."""
    registry, state = replay(iter_ledger_entries(ledger), ledger.admin_did, ledger.public_url)
    rows = {**registry.changed(), **state.changed()}
    with ledger.storage.engine.begin() as connection:
        drop_state(connection)
        ensure_schema(connection)
        write_changes(connection, rows)
    return sum(1 for v in rows.values() if v is not None)


def open_state(connection: Any, ledger: Any) -> tuple[StoredRegistry, StoredState]:
    """Read-only views of the stored registry and custody state (for show and trace)."""
    ensure_schema(connection)
    registry = StoredRegistry(connection, ledger.admin_did, ledger.public_url)
    state = StoredState(connection, registry, tolerance_of(ledger.settings_at(ledger.size)))
    return registry, state
