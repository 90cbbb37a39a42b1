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
which is exact for a run of one kind; `validate_in_order` calls the validators run by run so
that mixed batches get exact positions too (the Ledger's `_validate` should use it).

Speed (docs/performance.md, "Custody"): the rows a batch needs are read in one query per
logical table (`prefetch`), the registry is kept between batches while no registry entry
is appended (`RegistryCache`), rows are written back with one driver-level executemany
upsert, and the schema and signature checks of long batches run in a process pool
(`event_precheck`), which also returns each document's canonical bytes: the Ledger builds the
entry from them (`EventValidator.canonical`) instead of canonicalizing the document again.
With `Ledger.append_batches`, `EventValidator.prepare` starts the next batch's checks in the
pool while the current one is written.
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
from .event_precheck import PrecheckedEvent, precheck_all, precheck_event
from .events import DteCredential, parse_credential
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


def _json_default(value: Any) -> Any:
    # What plain_json does, one level at a time: the C encoder recurses into the result.
    kind = type(value)
    if kind is Decimal:
        return {"$d": str(value)}
    names = _FIELD_NAMES.get(kind)
    if names is not None:
        return {name: getattr(value, name) for name in names}
    if isinstance(value, Decimal):
        return {"$d": str(value)}
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
        return '{"$d":"' + str(value) + '"}'  # str(Decimal) needs no escaping
    if kind is UsedId and type(value.digest) is str and type(value.seq) is int:
        return '{"digest":' + _encode_string(value.digest) + ',"seq":' + str(value.seq) + "}"
    return _STATE_ENCODER.encode(value)


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
    tables: dict[str, dict[Any, Any]]

    def _load(self, table: str, key: Any) -> Any:
        # A plain, pre-built statement: building a select() per lookup costs more than the
        # lookup itself.
        text = self.connection.execute(
            _select_value(), {"tbl": table, "key": encode_key(key)}
        ).scalar()
        return None if text is None else decode_value(table, text)

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
                found = dict(_select_keys(self.connection, table, chunk))
                for text_key in chunk:
                    value = found.get(text_key)
                    rows[keys[text_key]] = None if value is None else decode_value(table, value)
        return sum(len(k) for k in missing.values())


_PREFETCH_CHUNK = 500


def _select_keys(connection: Any, table: str, keys: list[str]) -> list[tuple[str, str]]:
    """(key, value) of the rows of `table` among `keys`: driver-level SQL, as SQLAlchemy's
    expanding IN recompiles the statement per call (more than the query costs)."""
    p = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    marks = ", ".join([p] * len(keys))
    return connection.exec_driver_sql(
        f"SELECT key, value FROM {TABLE_NAME} WHERE tbl = {p} AND key IN ({marks})",
        (table, *keys),
    ).all()


class StoredRegistry(_Loader, Registry):
    def __init__(self, connection: Any, admin_did: str, public_url: str) -> None:
        super().__init__(admin_did, public_url)
        self.connection = connection


class StoredState(_Loader, CustodyState):
    def __init__(self, connection: Any, directory: Any, tolerance: Decimal) -> None:
        super().__init__(directory, tolerance)
        self.connection = connection


def write_changes(connection: Any, changes: Mapping[tuple[str, Any], Any]) -> None:
    """Upsert the changed rows (one executemany); a None value deletes the row."""
    if not changes:
        return
    upserts: list[tuple[str, str, str]] = []
    deletes: list[tuple[str, str]] = []
    for (table, key), value in changes.items():
        if value is None:
            deletes.append((table, encode_key(key)))
        else:
            upserts.append((table, encode_key(key), encode_value(value)))
    # Driver-level executemany: no per-row parameter processing by SQLAlchemy.
    p = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    if deletes:
        connection.exec_driver_sql(
            f"DELETE FROM {TABLE_NAME} WHERE tbl = {p} AND key = {p}", deletes
        )
    if upserts:
        # ON CONFLICT ... DO UPDATE: SQLite >= 3.24 and PostgreSQL alike.
        connection.exec_driver_sql(
            f"INSERT INTO {TABLE_NAME} (tbl, key, value) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value",
            upserts,
        )


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


class RegistryCache:
    """The registry rows read by event batches, kept between batches of one ledger.

    Valid while no registry entry is appended: the registry validator drops it, and a batch
    that finds the log grew by entries it did not see checks that none of them is a registry
    entry (another process may append). Rows read in a batch that also holds registry entries
    are never kept (that batch may still roll back).
    """

    def __init__(self) -> None:
        self.size: int | None = None
        self.tables: dict[str, dict[Any, Any]] | None = None
        self.dirty_seq: int | None = None

    def invalidate(self, first_seq: int) -> None:
        self.tables = None
        self.size = None
        self.dirty_seq = first_seq

    def registry(self, connection: Any, first_seq: int, admin_did: str,
                 public_url: str) -> StoredRegistry:
        """A registry for a batch starting at `first_seq`, with the kept rows when valid."""
        registry = StoredRegistry(connection, admin_did, public_url)
        if self.dirty_seq == first_seq:
            return registry
        if (
            self.tables is not None
            and self.size is not None
            and self.size <= first_seq
            and not _registry_entries_between(connection, self.size, first_seq)
        ):
            registry.tables = self.tables
        else:
            self.tables = registry.tables
        self.size = first_seq
        return registry


def _registry_entries_between(connection: Any, start: int, end: int) -> bool:
    from sqlalchemy import text

    if start >= end:
        return False
    found = connection.execute(
        text("SELECT 1 FROM ledger_entries WHERE seq >= :a AND seq < :b AND kind = 'registry' "
             "LIMIT 1"),
        {"a": start, "b": end},
    ).first()
    return found is not None


class RegistryValidator:
    """Validator of "registry" entries: admin (and participant) proofs, registry rules."""

    def __init__(self, admin_did: str, public_url: str,
                 cache: RegistryCache | None = None) -> None:
        self.admin_did = admin_did
        self.public_url = public_url
        self.cache = cache

    def validate(
        self, session: Any, first_seq: int, submissions: Sequence[Any]
    ) -> list[int | None]:
        if self.cache is not None:
            self.cache.invalidate(first_seq)
        connection = session.connection()
        ensure_schema(connection)
        registry = StoredRegistry(connection, self.admin_did, self.public_url)
        answers: list[int | None] = []
        position = first_seq
        for sub in submissions:
            answer = check_registry(registry, sub.document, position)
            answers.append(answer)
            position += answer is None
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
    registry: Registry,
    state: CustodyState,
    document: dict[str, Any],
    position: int,
    prechecked: PrecheckedEvent | None = None,
    credential: DteCredential | None = None,
) -> int | None:
    """Schema, signature by a key of the issuer valid at `position`, then the custody rules.

    `prechecked` (schema, digest, signature; see event_precheck) and `credential` (the
    parsed document) may be handed in when computed beforehand, e.g. in a worker process.
    """
    if prechecked is None:
        credential = parse_credential(document)  # the schema first: it explains errors best
        prechecked = precheck_event(document, check_schema=False)
    elif credential is None:
        credential = parse_credential(document, check_schema=False)
    used = state.get("credential", credential.id)
    if used is not None and used.digest == prechecked.digest:
        return used.seq
    # The signature verified against the key the method names; the registry must hold that
    # very key for the issuer, valid at this position.
    record = registry.key_at(prechecked.verification_method, position)
    if record.controller != credential.issuer or (
        record.public_multibase != prechecked.public_multibase
    ):
        raise ProofVerificationError(
            "a traceability event carries one proof, by a key of its issuer"
        )
    registry.participant(credential.issuer)
    return apply_credential(state, credential, credential.issuer, position, prechecked.digest)


def event_keys(credential: DteCredential) -> set[tuple[str, Any]]:
    """The (table, key) rows the custody rules will read for a credential (for prefetch)."""
    actor = credential.issuer
    wanted: set[tuple[str, Any]] = {("credential", credential.id)}
    for event in credential.events:
        wanted.add(("event", event.id))
        wanted.add(("shipment", event.id))
        if event.shipment:
            wanted.add(("shipment", event.shipment))
        lots = {q.lot for q in (*event.quantities, *event.input_quantities,
                                *event.output_quantities)}
        lots.update(d.lot for d in event.lots)
        items = {*event.epcs, *event.input_items, *event.output_items, *event.children}
        items.update(d.item for d in event.items)
        if event.parent:
            items.add(event.parent)
        for lot in lots:
            wanted.update((("lot", lot), ("holding", (lot, actor)),
                           ("history", (lot, event.id))))
        for item in items:
            wanted.update((("item", item), ("history", (item, event.id))))
        sources = {q.lot for q in event.input_quantities} | set(event.input_items)
        products = ({q.lot for q in event.output_quantities} | set(event.output_items)
                    | {d.lot for d in event.lots} | {d.item for d in event.items})
        for source in sources:
            for product in products:
                wanted.update((("edge", (source, product)), ("source", (product, source))))
    return wanted


def registry_keys(credential: DteCredential, document: Mapping[str, Any]) -> set[tuple[str, Any]]:
    """The registry rows checking a credential reads: signer key, parties, facilities."""
    wanted: set[tuple[str, Any]] = {("participant", credential.issuer)}
    proof = document.get("proof")
    if isinstance(proof, Mapping) and isinstance(proof.get("verificationMethod"), str):
        wanted.add(("key", proof["verificationMethod"]))
    for event in credential.events:
        wanted.add(("facility", event.biz_location))
        for did in (event.destination_party, event.source_party, event.producer_responsibility):
            if did:
                wanted.add(("participant", did))
        if event.transport is not None:
            wanted.add(("facility", event.transport.destination))
            wanted.add(("facility", event.transport.origin))
    return wanted


def _parse_quietly(document: Any) -> DteCredential | None:
    """The parsed credential for prefetching, or None: errors are raised later, in order,
    after the schema check that explains them."""
    try:
        return parse_credential(document, check_schema=False)
    except Exception:  # best effort: the checked path reports the error
        return None


class EventValidator:
    """Validator of "event" entries: DTE schema, issuer key at the position, custody rules."""

    def __init__(self, admin_did: str, public_url: str, settings: Any = None,
                 cache: RegistryCache | None = None, processes: int | None = None) -> None:
        self.admin_did = admin_did
        self.public_url = public_url
        # settings(seq) -> dict: the ledger settings in force before `seq`.
        self.settings = settings or (lambda seq: {})
        self.cache = cache or RegistryCache()
        # Processes for the signature checks of long batches (None: up to 2 cores).
        self.processes = processes
        # The batch announced by `prepare`, then its checks once started (documents, results).
        self._pending: list[Any] | None = None
        self._prepared: tuple[list[Any], Iterator[Any]] | None = None
        # id(document) -> (document, canonical bytes) of the batch last validated.
        self._canonical: dict[int, tuple[Any, bytes]] = {}

    def prepare(self, submissions: Sequence[Any]) -> None:
        """Announce the batch validated after the next one: its schema and signature checks
        start in the worker processes as soon as the current batch's checks are done, and
        run while this process applies the current batch's rules and writes it."""
        self._pending = [sub.document for sub in submissions]

    def canonical(self, document: Any) -> bytes | None:
        """The canonical bytes of a document of the last validated batch (for its entry)."""
        known = self._canonical.get(id(document))
        return known[1] if known is not None and known[0] is document else None

    def _checks(self, documents: list[Any]) -> Iterator[Any]:
        """This batch's checks (the ones started when it was announced, else new), and the
        announced next batch's checks started right behind them."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None and _same(prepared[0], documents):
            checks = prepared[1]
        else:
            checks = precheck_all(documents, self.processes)
        pending, self._pending = self._pending, None
        if pending is not None and not _same(pending, documents):
            # Queued behind this batch's chunks: the workers go on to it without a pause.
            self._prepared = (pending, precheck_all(pending, self.processes))
        return checks

    def validate(
        self, session: Any, first_seq: int, submissions: Sequence[Any]
    ) -> list[int | None]:
        connection = session.connection()
        ensure_schema(connection)
        registry = self.cache.registry(connection, first_seq, self.admin_did, self.public_url)
        state = StoredState(connection, registry, tolerance_of(self.settings(first_seq - 1)))
        documents = [sub.document for sub in submissions]
        checks = self._checks(documents)
        self._canonical = {}
        parsed = [_parse_quietly(d) for d in documents]
        wanted_registry: set[tuple[str, Any]] = set()
        wanted_state: set[tuple[str, Any]] = set()
        for document, credential in zip(documents, parsed, strict=True):
            if credential is not None:
                wanted_registry |= registry_keys(credential, document)
                wanted_state |= event_keys(credential)
        registry.prefetch(wanted_registry)
        state.prefetch(wanted_state)
        answers: list[int | None] = []
        position = first_seq  # the seq of the next new entry
        with state.transaction():
            for document, credential, check in zip(documents, parsed, checks, strict=True):
                if isinstance(check, BatterytraceError):
                    raise check
                answer = check_event(registry, state, document, position, check, credential)
                answers.append(answer)
                position += answer is None
                if check.canonical:
                    self._canonical[id(document)] = (document, check.canonical)
        write_changes(connection, state.changed())
        return answers


def _same(a: list[Any], b: list[Any]) -> bool:
    """The same document objects, in the same order."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def validators_for(ledger: Any, processes: int | None = None) -> dict[str, Any]:
    """The custody validators of a ledger (its admin key, public URL and settings)."""
    cache = RegistryCache()
    return {
        "registry": RegistryValidator(ledger.admin_did, ledger.public_url, cache),
        "event": EventValidator(ledger.admin_did, ledger.public_url, ledger.settings_at,
                                cache, processes),
    }


def validate_in_order(
    validators: Mapping[str, Any], session: Any, first_seq: int, submissions: Sequence[Any]
) -> list[int | None]:
    """Validate a mixed batch run by run at exact log positions (what `Ledger` does)."""
    from .log import validate_runs

    return validate_runs(validators, session, first_seq, submissions)


# --- replay and rebuild -------------------------------------------------------------------


REPLAY_WINDOW = 4096  # entries whose signatures are checked together (bounded memory)


def replay(
    entries: Iterable[tuple[int, str, dict[str, Any]]],
    admin_did: str,
    public_url: str,
    *,
    registry: Registry | None = None,
    state: CustodyState | None = None,
    processes: int = 1,
) -> tuple[Registry, CustodyState]:
    """Run the registry and custody rules (with signatures) over (seq, kind, document)
    entries in log order, in memory. Raises the first rule's error, with the seq in details.

    Event schemas and signatures are checked a window at a time, with `processes` processes
    (this one included; see event_precheck), the next window's queued in the worker
    processes while this process applies the rules of the current one, in order.
    """
    registry = registry or Registry(admin_did, public_url)
    state = state or CustodyState(registry)
    settings: dict[str, Any] = {}
    windows = _windows(entries, REPLAY_WINDOW)
    current = next(windows, None)
    checks = _start_checks(current or [], processes)
    while current is not None:
        upcoming = next(windows, None)
        # Queued behind this window's chunks, so the workers never wait for the rules.
        following = _start_checks(upcoming, processes) if upcoming is not None else None
        _replay_window(current, checks, registry, state, settings)
        current, checks = upcoming, following
    return registry, state


def _windows(
    entries: Iterable[tuple[int, str, dict[str, Any]]], size: int
) -> Iterator[list[tuple[int, str, dict[str, Any]]]]:
    window: list[tuple[int, str, dict[str, Any]]] = []
    for entry in entries:
        window.append(entry)
        if len(window) >= size:
            yield window
            window = []
    if window:
        yield window


def _start_checks(window: list[tuple[int, str, dict[str, Any]]], processes: int) -> Any:
    documents = [doc for _, kind, doc in window if kind == "event"]
    return precheck_all(documents, processes, canonical=False)


def _replay_window(
    window: list[tuple[int, str, dict[str, Any]]],
    checks: Iterator[Any],
    registry: Registry,
    state: CustodyState,
    settings: dict[str, Any],
) -> None:
    for seq, kind, document in window:
        try:
            if kind == "settings":
                settings.update(document.get("settings", {}))
                state.tolerance = tolerance_of(settings)
            elif kind == "registry":
                check_registry(registry, document, seq)
            elif kind == "event":
                check = next(checks)
                if isinstance(check, BatterytraceError):
                    raise check
                check_event(registry, state, document, seq, check)
        except BatterytraceError as exc:
            exc.details.setdefault("seq", seq)
            raise


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
