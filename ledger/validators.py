"""The Validators of "registry" and "event" entries: the engine's checks inside the
Ledger's write transaction, over the state stored in `custody_store`.

The rows a batch needs are read in one query per logical table (`prefetch`); the registry is
kept between batches while no registry entry is appended (`RegistryCache`); the rows changed
are written back before the batch commits, so a rejected batch leaves nothing. The
position-independent half of each event's check runs in the worker pool (`event_precheck`),
which also returns each document's canonical bytes: the Ledger builds the entry from them
(`EventValidator.canonical`) instead of canonicalizing the document again. With
`Ledger.append_batches`, `EventValidator.prepare` starts the next batch's checks while the
current one is written.

Log positions: a validator sees the submissions of its own kind only, so a submission's
position is `first_seq` + the number of entries appended before it in that list, exact for a
run of one kind; the Ledger calls the validators run by run (`log.validate_runs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import Session

from .custody_store import (
    StoredRegistry,
    StoredState,
    ensure_schema,
    write_changes,
)
from .engine import (
    EventCheck,
    check_event,
    check_registry,
    check_settings,
    limits_of,
    tolerance_of,
)
from .entry import utc_now
from .event_precheck import precheck_all
from .events import DteCredential, parse_credential
from .log import Ledger
from .seal import RowSeal


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

    def registry(self, connection: Connection, first_seq: int, admin_did: str,
                 public_url: str, seal: RowSeal | None = None) -> StoredRegistry:
        """A registry for a batch starting at `first_seq`, with the kept rows when valid."""
        registry = StoredRegistry(connection, admin_did, public_url, seal)
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


def _registry_entries_between(connection: Connection, start: int, end: int) -> bool:
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
                 cache: RegistryCache | None = None, seal: RowSeal | None = None) -> None:
        self.admin_did = admin_did
        self.public_url = public_url
        self.cache = cache
        self.seal = seal

    def validate(
        self, session: Session, first_seq: int, submissions: Sequence[Any]
    ) -> list[int | None]:
        if self.cache is not None:
            self.cache.invalidate(first_seq)
        connection = session.connection()
        ensure_schema(connection)
        registry = StoredRegistry(connection, self.admin_did, self.public_url, self.seal)
        answers: list[int | None] = []
        position = first_seq
        for sub in submissions:
            answer = check_registry(registry, sub.document, position)
            answers.append(answer)
            position += answer is None
        write_changes(connection, registry.changed(), self.seal)
        return answers


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
                           ("history", (lot, event.id)), ("processed", lot)))
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
                 cache: RegistryCache | None = None, processes: int | None = None,
                 seal: RowSeal | None = None, clock: Callable[[], str] = utc_now) -> None:
        self.admin_did = admin_did
        self.seal = seal  # seals the rows written and checks the rows read (`seal.py`)
        self.clock = clock  # the ledger's receipt clock
        self.public_url = public_url
        # settings(seq) -> dict: the ledger settings in force before `seq`.
        self.settings: Callable[[int], Mapping[str, Any]] = settings or (lambda seq: {})
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

    def start(self, submissions: Sequence[Any]) -> None:
        """Start the schema and signature checks of the batch about to be validated now,
        before the sequencer lock is taken (they depend on no log position): they run while
        this writer waits for the lock. Nothing to do when they already started (announced
        by `prepare`)."""
        documents = [sub.document for sub in submissions]
        if self._prepared is None or not _same(self._prepared[0], documents):
            self._prepared = (documents, precheck_all(documents, self.processes))

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
        self, session: Session, first_seq: int, submissions: Sequence[Any]
    ) -> list[int | None]:
        connection = session.connection()
        ensure_schema(connection)
        registry = self.cache.registry(connection, first_seq, self.admin_did, self.public_url,
                                       self.seal)
        settings = self.settings(first_seq - 1)
        state = StoredState(connection, registry, tolerance_of(settings), self.seal,
                            limits_of(settings))
        # Every entry of the batch is received no earlier than now (log.py reads its clock
        # after validating): the eventTime bound checked here holds at the receipt too.
        state.received = self.clock()
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
                answer = check_event(registry, state, document, position, check,
                                     credential=credential)
                answers.append(answer)
                position += answer is None
                if isinstance(check, EventCheck) and check.canonical:
                    self._canonical[id(document)] = (document, check.canonical)
        write_changes(connection, state.changed(), self.seal)
        return answers


def _same(a: list[Any], b: list[Any]) -> bool:
    """The same document objects, in the same order."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


class SettingsValidator:
    """Validator of "settings" entries: known settings in range, signed by the admin key."""

    def __init__(self, admin_did: str, public_url: str, seal: RowSeal | None = None) -> None:
        self.admin_did = admin_did
        self.public_url = public_url
        self.seal = seal

    def validate(
        self, session: Session, first_seq: int, submissions: Sequence[Any]
    ) -> list[int | None]:
        registry = StoredRegistry(session.connection(), self.admin_did, self.public_url,
                                  self.seal)
        for offset, sub in enumerate(submissions):
            check_settings(registry, sub.document, first_seq + offset)
        return [None] * len(submissions)


def validators_for(ledger: Ledger, processes: int | None = None) -> dict[str, Any]:
    """The custody validators of a ledger (its admin key, public URL and settings)."""
    cache = RegistryCache()
    seal = ledger.row_seal
    return {
        "registry": RegistryValidator(ledger.admin_did, ledger.public_url, cache, seal),
        "settings": SettingsValidator(ledger.admin_did, ledger.public_url, seal),
        "event": EventValidator(ledger.admin_did, ledger.public_url, ledger.settings_at,
                                cache, processes, seal, ledger.clock),
    }
