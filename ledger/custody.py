"""The custody rules: pure functions over an in-memory CustodyState.

The ledger checks them at append (custody_store.py backs the state with tables) and the verifier
replays them offline over the same events. Every rejection raises a typed error from
custody_errors.py; a credential (and a batch) applies atomically: `CustodyState.transaction()`
undoes every change made inside it when a rule fails.

State, keyed for indexed lookups (all values immutable, so the undo journal is exact):
- `lot`: lot URI -> LotState (declared composition, creating event, sources);
- `holding`: (lot, holder DID) -> kilograms (Decimal);
- `item`: item URI -> ItemState (mass, composition, parent, children; holder and status are
  meaningful on an assembly's root only: what happens to a pack happens to its cells);
- `shipment`: shipping event id -> Shipment (open until the destination signs the receipt);
- `event`: event id -> its fingerprint (`event_fingerprint`: its issuer and content) and log
  position; `credential`: credential id -> the credential's digest and log position;
- `gs1_key`: the GS1 Digital Link key of a lot or item (`resolver_links.subject_link`: its
  URI on any host, or its declared gtin with serial or lot number) -> the first subject made
  with it: the resolver's index (a lookup by key, not a scan);
- `erroneous`: event id -> the id of the event that declared it erroneous (EPCIS
  errorDeclaration: its effect was reversed, `_declare_erroneous`);
- `edge` / `source`: (input, output) / (output, input) -> transformation event id (downstream
  and upstream);
- `history`: (lot or item, event id) -> log position.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any, Protocol

from .custody_errors import (
    AssemblyError,
    BatteryCodeError,
    CompositionError,
    CustodyModelError,
    DuplicateEventIdError,
    ErroneousEventMovedOnError,
    ErrorAlreadyDeclaredError,
    ErrorDeclarationError,
    EventBeforeLotError,
    EventTimeAheadError,
    FacilityNotOperatedError,
    InsufficientHoldingError,
    ItemCreationError,
    ItemExistsError,
    LotExistsError,
    MassBalanceError,
    MaterialCreationError,
    NotHolderError,
    QuantityImplausibleError,
    ReceiptMismatchError,
    ShipmentError,
    UnknownFacilityError,
    UnknownItemError,
    UnknownLotError,
    UnknownParticipantError,
    UnsupportedEventError,
)
from .events import BizStep, DteCredential, Quantity, TraceEvent
from .resolver_links import subject_link
from .settings import DEFAULT_EVENT_TIME_AHEAD_HOURS, MAX_ITEM_KG, MAX_QUANTITY

ZERO = Decimal(0)
MINE = "mine"
ACTIVE, IN_TRANSIT, CONSUMED, DISPOSED = "active", "in_transit", "consumed", "disposed"


@dataclass(frozen=True)
class Facility:
    """A registered site: a mine, a plant or a depot, operated by one participant."""

    id: str
    name: str
    operator: str
    country: str
    kind: str
    latitude: float | None = None
    longitude: float | None = None


class Directory(Protocol):
    """What the rules need from the registry at the event's log position."""

    def facility(self, facility_id: str) -> Facility | None: ...

    def is_participant(self, did: str) -> bool: ...


@dataclass(frozen=True)
class LotState:
    id: str
    composition: Mapping[str, Decimal]
    created_by: str
    details: Mapping[str, Any] = field(default_factory=dict)
    created_at: str | None = None  # eventTime of the creating event (None: older rows)


@dataclass(frozen=True)
class ItemState:
    id: str
    category: str
    mass_kg: Decimal
    composition: Mapping[str, Decimal]
    created_by: str
    holder: str | None
    status: str = ACTIVE
    parent: str | None = None
    children: tuple[str, ...] = ()
    battery_code: str | None = None
    responsible: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Shipment:
    id: str
    source: str
    destination: str
    lots: tuple[tuple[str, Decimal], ...]
    items: tuple[str, ...]
    waste: bool = False
    purpose: str | None = None
    mode: str | None = None
    received_by: str | None = None


@dataclass(frozen=True)
class UsedId:
    digest: str
    seq: int


TABLES = (
    "lot", "holding", "item", "shipment", "event", "credential", "edge", "source", "history",
    "battery_code",  # GB/T 34014 code -> the item it names: unique per ledger
    "erroneous",  # event id -> the event that declared it erroneous
    "gs1_key",  # GS1 Digital Link key path (/01/<gtin>/21|10/<value>) -> the item or lot
    "processed",  # lot id -> how many standing events processed it in place
)


class Tables:
    """Keyed tables with an undo journal. Lookups go through `get`; a subclass may load missing
    keys lazily (`_load`) from storage and write back what `changed()` reports."""

    table_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, Any]] = {name: {} for name in self.table_names}
        self.journal: list[tuple[str, Any, Any]] = []

    def _load(self, table: str, key: Any) -> Any:
        """The stored value of `key`, or None. The in-memory state has nothing behind it."""
        return None

    def get(self, table: str, key: Any) -> Any:
        rows = self.tables[table]
        if key in rows:
            return rows[key]
        value = rows[key] = self._load(table, key)
        return value

    def put(self, table: str, key: Any, value: Any) -> None:
        """Set (or, with None, delete) a value, recording the old one for undo."""
        self.journal.append((table, key, self.get(table, key)))
        self.tables[table][key] = value

    def transaction(self) -> _Undo:
        """A context that undoes every change made inside the block when it raises."""
        return _Undo(self)

    def changed(self) -> dict[tuple[str, Any], Any]:
        """Keys changed since the journal was last cleared, with their current values."""
        return {(t, k): self.tables[t][k] for t, k, _ in self.journal}

    def rows(self, table: str) -> Iterator[tuple[Any, Any]]:
        """Every (key, value) row a table holds (a None value is no row). A subclass that
        keeps rows elsewhere (`spill.Spilled`) lists them from there."""
        return ((k, v) for k, v in self.tables[table].items() if v is not None)

    def settle(self) -> None:
        """Between entries (the undo journal empty): a subclass may move rows out of
        memory here (`spill.Spilled`). Nothing to do in memory."""


class _Undo:
    """`Tables.transaction()`: a plain class, as a generator-based context manager costs
    more than the rest of applying a simple event (two are entered per credential)."""

    __slots__ = ("mark", "tables")

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.mark = 0

    def __enter__(self) -> None:
        self.mark = len(self.tables.journal)

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is None:
            return
        journal, rows = self.tables.journal, self.tables.tables
        while len(journal) > self.mark:
            table, key, old = journal.pop()
            rows[table][key] = old


@dataclass(frozen=True)
class Limits:
    """The plausibility bounds the ledger settings set (`settings.py`): the largest quantity
    or item mass of one event in kg, and how far an eventTime may lie after the receipt."""

    max_kg: Decimal = MAX_ITEM_KG
    ahead: timedelta = timedelta(hours=int(DEFAULT_EVENT_TIME_AHEAD_HOURS))


class CustodyState(Tables):
    """The custody state of the ledger at one log position. `received`: the ledger's receipt
    time of the entry being applied (None: unknown, the eventTime bound is not applied)."""

    table_names = TABLES

    def __init__(self, directory: Directory, tolerance: Decimal = ZERO,
                 limits: Limits | None = None) -> None:
        super().__init__()
        self.directory = directory
        self.tolerance = Decimal(tolerance)
        self.limits = limits or Limits()
        self.received: str | None = None

    # --- typed accessors -------------------------------------------------------------------

    def holding(self, lot: str, holder: str) -> Decimal:
        return self.get("holding", (lot, holder)) or ZERO

    def lot(self, lot_id: str) -> LotState | None:
        return self.get("lot", lot_id)

    def item(self, item_id: str) -> ItemState | None:
        return self.get("item", item_id)

    def known_item(self, item_id: str) -> ItemState:
        """An item the state must hold (a parent, a child or a shipped item of its records)."""
        item = self.item(item_id)
        if item is None:
            raise UnknownItemError(f"item {item_id} is unknown", item=item_id)
        return item

    def known_lot(self, lot_id: str) -> LotState:
        """A lot the state must hold (one with a holding or in a shipment)."""
        lot = self.lot(lot_id)
        if lot is None:
            raise UnknownLotError(f"lot {lot_id} is unknown", lot=lot_id)
        return lot

    def shipment(self, event_id: str) -> Shipment | None:
        return self.get("shipment", event_id)

    def root(self, item: ItemState) -> ItemState:
        """The top of the assembly an item sits in (itself when it has no parent)."""
        while item.parent is not None:
            item = self.get("item", item.parent)
        return item

    def subtree_mass(self, item: ItemState) -> dict[str, Decimal]:
        """Element masses (kg) of an item and everything assembled into it."""
        total: dict[str, Decimal] = {}
        stack = [item]
        while stack:
            current = stack.pop()
            _add_mass(total, current.mass_kg, current.composition)
            stack.extend(self.get("item", c) for c in current.children)
        return total


def _add_mass(total: dict[str, Decimal], kg: Decimal, composition: Mapping[str, Decimal]) -> None:
    for element, fraction in composition.items():
        total[element] = total.get(element, ZERO) + kg * fraction


def decimal_text(value: Decimal) -> str:
    """A Decimal in one spelling per value ("6.0", "6" and "6E0" all give "6"): the append
    path reads amounts as written, the replay from canonical JSON, and both must store the
    same row (and the same fingerprint)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


_ATOMS = frozenset({str, int, bool, type(None)})  # kept as they are
_FIELDS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}  # dataclass -> its fields' values


def _canonical(value: Any) -> Any:
    """A value of a parsed event as nested tuples of str, int, bool and None: amounts in one
    spelling (`decimal_text`), mappings sorted, dataclasses by field. (Hot: every event of
    every replay. Atoms are kept without a call, and a dataclass's fields are read by one
    `attrgetter`.)"""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is Decimal or kind is float:
        return "#" + decimal_text(Decimal(str(value)) if kind is float else value)
    if kind is tuple or kind is list:
        return tuple([v if type(v) in _ATOMS else _canonical(v) for v in value])
    fields = _FIELDS.get(kind)
    if fields is None and hasattr(value, "__dataclass_fields__"):
        fields = _FIELDS[kind] = _field_getter(tuple(value.__dataclass_fields__))
    if fields is not None:
        return tuple([v if type(v) in _ATOMS else _canonical(v) for v in fields(value)])
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _canonical(v)) for k, v in value.items()))
    return repr(value)


def _field_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of the fields `names` of a dataclass, as a tuple (`attrgetter` of one name
    returns the value alone)."""
    if not names:
        return lambda value: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda value: (one(value),)
    return attrgetter(*names)  # several names: a tuple


def event_fingerprint(event: TraceEvent, actor: str) -> str:
    """SHA-256 of an event's issuer and of everything the custody rules read of it but its
    id (every field of TraceEvent): what an error declaration must restate (with its own id)
    to name this event. The same on the append path and in every replay (amounts in one
    spelling per value). Computed once per event and actor (`remember_fingerprints`)."""
    known = event.__dict__.get(_FINGERPRINT)
    if known is not None and known[0] == actor:
        return str(known[1])
    content = _canonical(event)
    text = repr((actor, content[:1] + content[2:]))  # field 1 is the id
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_FINGERPRINT = "_fingerprint"  # (actor, fingerprint), kept on the event: not a field


def remember_fingerprints(credential: DteCredential) -> None:
    """Compute each event's fingerprint by the credential's issuer now, and keep it on the
    event (frozen: its fields cannot change under it; pickled with it). A worker process
    that checked the credential does this part of the replay's work (`engine`), and the
    replay in log order finds it done. A projected event is a new object, without it."""
    for event in credential.events:
        fingerprint = event_fingerprint(event, credential.issuer)
        object.__setattr__(event, _FINGERPRINT, (credential.issuer, fingerprint))


# --- credentials --------------------------------------------------------------------------


def apply_credential(
    state: CustodyState, credential: DteCredential, actor: str, seq: int, digest: str
) -> int | None:
    """Apply every event of a credential signed by `actor`, atomically, at log position `seq`.

    Returns None when applied, or the log position of the same credential already appended
    (same id and digest). A different document with a used credential or event id is rejected.
    """
    used = state.get("credential", credential.id)
    if used is not None:
        if used.digest == digest:
            return used.seq
        raise DuplicateEventIdError(
            f"credential id {credential.id} is already used by another document", id=credential.id
        )
    if credential.issuer != actor:
        raise NotHolderError(f"issuer {credential.issuer} is not the signer {actor}")
    with state.transaction():
        state.put("credential", credential.id, UsedId(digest, seq))
        for event in credential.events:
            apply_event(state, event, actor, seq, digest)
    return None


def apply_event(state: CustodyState, event: TraceEvent, actor: str, seq: int, digest: str) -> None:
    """Check one event against the rules and apply it (atomically)."""
    with state.transaction():
        if state.get("event", event.id) is not None:
            raise DuplicateEventIdError(f"event id {event.id} is already used", id=event.id)
        state.put("event", event.id, UsedId(event_fingerprint(event, actor), seq))
        _check_plausible(event, state.limits)
        _check_not_ahead(event, state.received, state.limits)
        _require_location(state, event, actor)
        if event.declares is not None:
            _declare_erroneous(state, event, actor, seq)
            return
        handler = _HANDLERS.get(event.kind)
        if handler is None:  # pragma: no cover - parse_event admits only the five kinds
            raise UnsupportedEventError(f"{event.kind} is not a custody event")
        handler(state, event, actor, seq)


def _check_plausible(event: TraceEvent, limits: Limits) -> None:
    """Every quantity within the bound of its unit (settings.MAX_QUANTITY, lowered by the
    `maxQuantityKg` setting), every declared item mass within it: an extraction of 1e300 kg
    is not a measurement."""
    for q in (*event.quantities, *event.input_quantities, *event.output_quantities):
        amount, uom = (q.amount, q.uom) if q.uom in MAX_QUANTITY else (q.kg, "KGM")
        if amount > MAX_QUANTITY[uom] or q.kg > limits.max_kg:
            bound = (f"{MAX_QUANTITY[uom]} {uom}" if amount > MAX_QUANTITY[uom]
                     else f"{limits.max_kg} kg (setting maxQuantityKg)")
            raise QuantityImplausibleError(
                f"quantity {q.amount} {q.uom} of {q.lot} in event {event.id} is above the "
                f"plausible bound {bound}", event=event.id, lot=q.lot, uom=q.uom)
    for item in event.items:
        if item.mass_kg > min(MAX_ITEM_KG, limits.max_kg):
            raise QuantityImplausibleError(
                f"item {item.item} in event {event.id} declares {item.mass_kg} kg, above the "
                f"plausible bound {min(MAX_ITEM_KG, limits.max_kg)} kg", event=event.id,
                item=item.item)


def _check_not_ahead(event: TraceEvent, received: str | None, limits: Limits) -> None:
    """Refuse an event dated later than the ledger's receipt plus the allowed clock skew:
    time that a signer sets must not run ahead of the time the ledger fixed."""
    if received is None:
        return
    at, receipt = _instant(event.event_time), _instant(received)
    if at is not None and receipt is not None and at > receipt + limits.ahead:
        hours = limits.ahead.total_seconds() / 3600
        raise EventTimeAheadError(
            f"event {event.id} is dated {event.event_time}, more than {hours:g} h after the "
            f"ledger received it ({received}; setting maxEventTimeAheadHours)",
            event=event.id, received=received)


def _require_location(state: CustodyState, event: TraceEvent, actor: str) -> Facility:
    facility = state.directory.facility(event.biz_location)
    if facility is None:
        raise UnknownFacilityError(f"bizLocation {event.biz_location} is not registered")
    if facility.operator != actor:
        raise FacilityNotOperatedError(
            f"bizLocation {event.biz_location} is not a facility of {actor}", event=event.id
        )
    return facility


def _touch(state: CustodyState, subject: str, event: TraceEvent, seq: int) -> None:
    state.put("history", (subject, event.id), seq)


# --- lots and items -----------------------------------------------------------------------


def _create_lot(
    state: CustodyState, event: TraceEvent, lot_id: str, kg: Decimal, actor: str, seq: int
) -> Mapping[str, Decimal]:
    if state.lot(lot_id) is not None:
        raise LotExistsError(f"lot {lot_id} already exists", lot=lot_id)
    declaration = next((d for d in event.lots if d.lot == lot_id), None)
    if declaration is None:
        raise CompositionError(
            f"lot {lot_id} must declare its composition in lotDeclarations", lot=lot_id
        )
    state.put("lot", lot_id, LotState(lot_id, declaration.composition, event.id,
                                      declaration.details, event.event_time))
    _index_gs1_key(state, "lot", lot_id, declaration.details)
    state.put("holding", (lot_id, actor), state.holding(lot_id, actor) + kg)
    _touch(state, lot_id, event, seq)
    return declaration.composition


def _index_gs1_key(state: CustodyState, kind: str, subject: str,
                   details: Mapping[str, Any], remove: bool = False) -> None:
    """Index (or, `remove`, unindex) the GS1 Digital Link key of a lot or item made: the
    first subject made with a key keeps it."""
    link = subject_link(kind, subject, details)
    if link is None:
        return
    held = state.get("gs1_key", link.path())
    if held is None and not remove:
        state.put("gs1_key", link.path(), subject)
    elif held == subject and remove:
        state.put("gs1_key", link.path(), None)


def _instant(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _check_not_before_lot(lot: LotState, event: TraceEvent) -> None:
    """Refuse an event dated before the event that created the lot it moves or uses."""
    if lot.created_at is None:
        return
    created, at = _instant(lot.created_at), _instant(event.event_time)
    if created is not None and at is not None and at < created:
        raise EventBeforeLotError(
            f"event {event.id} is dated {event.event_time}, before lot {lot.id} was created "
            f"({lot.created_at})", event=event.id, lot=lot.id,
        )


def _take_lot(
    state: CustodyState, event: TraceEvent, lot_id: str, kg: Decimal, actor: str, seq: int
) -> LotState:
    """Remove `kg` of a lot from the actor's holding (never below zero)."""
    lot = state.lot(lot_id)
    if lot is None:
        raise UnknownLotError(f"lot {lot_id} is unknown", lot=lot_id)
    _check_not_before_lot(lot, event)
    held = state.holding(lot_id, actor)
    if kg > held:
        raise InsufficientHoldingError(
            f"{actor} holds {held} kg of {lot_id}, not {kg} kg", lot=lot_id, held=held, asked=kg
        )
    state.put("holding", (lot_id, actor), (held - kg) or None)
    _touch(state, lot_id, event, seq)
    return lot


def _check_lot_held(
    state: CustodyState, event: TraceEvent, lot_id: str, kg: Decimal, actor: str
) -> None:
    lot = state.lot(lot_id)
    if lot is None:
        raise UnknownLotError(f"lot {lot_id} is unknown", lot=lot_id)
    _check_not_before_lot(lot, event)
    held = state.holding(lot_id, actor)
    if kg > held:
        raise InsufficientHoldingError(f"{actor} holds {held} kg of {lot_id}, not {kg} kg",
                                       lot=lot_id, held=held, asked=kg)


def _held_item(state: CustodyState, item_id: str, actor: str, *, top: bool) -> ItemState:
    """The item, checked to be active in the actor's hands (and not inside another, if `top`)."""
    item = state.item(item_id)
    if item is None:
        raise UnknownItemError(f"item {item_id} is unknown", item=item_id)
    root = state.root(item)
    if root.status != ACTIVE or root.holder != actor:
        raise NotHolderError(f"{actor} does not hold item {item_id} ({root.status})",
                             item=item_id)
    if top and item.parent is not None:
        raise AssemblyError(f"item {item_id} is inside {item.parent}; disassemble it first",
                            item=item_id)
    return item


# --- handlers -----------------------------------------------------------------------------


def _object_event(state: CustodyState, event: TraceEvent, actor: str, seq: int) -> None:
    if event.action == "add":
        if event.epcs:
            raise ItemCreationError("serialized items are created only by a production "
                                    "TransformationEvent", event=event.id)
        if not event.quantities:
            raise MaterialCreationError("an extraction must list the extracted quantities")
        facility = state.directory.facility(event.biz_location)
        if event.biz_step != BizStep.EXTRACTION or facility is None or facility.kind != MINE:
            raise MaterialCreationError(
                "new material enters only by extraction at a mine site of the actor "
                "(bizStep extraction, bizLocation a registered mine)", event=event.id
            )
        for q in event.quantities:
            _create_lot(state, event, q.lot, q.kg, actor, seq)
        return
    if event.action == "delete":
        # Disposal or destruction: the material leaves the ledger for good.
        for q in event.quantities:
            _take_lot(state, event, q.lot, q.kg, actor, seq)
        for item_id in event.epcs:
            item = _held_item(state, item_id, actor, top=True)
            state.put("item", item_id, replace(item, status=DISPOSED, holder=None))
            _touch(state, item_id, event, seq)
        return
    for q in event.quantities:
        _check_lot_held(state, event, q.lot, q.kg, actor)
        _touch(state, q.lot, event, seq)
    for item_id in event.epcs:
        item = _held_item(state, item_id, actor, top=False)
        if event.biz_step == BizStep.REPURPOSING and event.producer_responsibility:
            if not state.directory.is_participant(event.producer_responsibility):
                raise UnknownParticipantError(
                    f"producerResponsibility {event.producer_responsibility} is not registered"
                )
            item = replace(item, responsible=event.producer_responsibility)
            state.put("item", item_id, item)
        _touch(state, item_id, event, seq)


def _transformation(state: CustodyState, event: TraceEvent, actor: str, seq: int) -> None:
    if event.custody_model is None:
        raise CustodyModelError("a TransformationEvent declares custodyModel "
                                "(segregated or massBalance)", event=event.id)
    if not (event.input_quantities or event.input_items) and (
        event.output_quantities or any(d.composition for d in event.items)
    ):
        # Without inputs, only items with no tracked element (a vehicle body) may be made.
        raise MaterialCreationError("a transformation consumes inputs; new material enters "
                                    "only by extraction", event=event.id)
    inputs: dict[str, Decimal] = {}
    outputs: dict[str, Decimal] = {}
    sources: list[str] = []
    for q in event.input_quantities:
        lot = _take_lot(state, event, q.lot, q.kg, actor, seq)
        _add_mass(inputs, q.kg, lot.composition)
        sources.append(q.lot)
    for item_id in event.input_items:
        item = _held_item(state, item_id, actor, top=True)
        for element, kg in state.subtree_mass(item).items():
            inputs[element] = inputs.get(element, ZERO) + kg
        state.put("item", item_id, replace(item, status=CONSUMED, holder=None))
        _touch(state, item_id, event, seq)
        sources.append(item_id)
    products: list[str] = []
    consumed = {q.lot for q in event.input_quantities}
    for q in event.output_quantities:
        if q.lot in consumed:
            composition = _process_in_place(state, event, q.lot, q.kg, actor, seq)
        else:
            composition = _create_lot(state, event, q.lot, q.kg, actor, seq)
        _add_mass(outputs, q.kg, composition)
        products.append(q.lot)
    for item_id in event.output_items:
        if state.item(item_id) is not None:
            raise ItemExistsError(f"item {item_id} already exists", item=item_id)
        spec = next((d for d in event.items if d.item == item_id), None)
        if spec is None:
            raise CompositionError(f"item {item_id} must declare its mass and composition in "
                                   "itemDeclarations", item=item_id)
        if spec.battery_code is not None:
            holder = state.get("battery_code", spec.battery_code)
            if holder is not None:
                raise BatteryCodeError(f"battery code {spec.battery_code} already names item "
                                       f"{holder}: a GB/T 34014 code is unique per ledger",
                                       item=item_id)
            state.put("battery_code", spec.battery_code, item_id)
        state.put("item", item_id, ItemState(
            id=item_id, category=spec.category, mass_kg=spec.mass_kg,
            composition=spec.composition, created_by=event.id, holder=actor,
            battery_code=spec.battery_code, details=spec.details,
        ))
        _index_gs1_key(state, "item", item_id, spec.details)
        _add_mass(outputs, spec.mass_kg, spec.composition)
        _touch(state, item_id, event, seq)
        products.append(item_id)
    check_mass_balance(inputs, outputs, state.tolerance, event.id)
    for source in sources:
        for product in products:
            if source == product:  # processed in place: no link to itself
                continue
            state.put("edge", (source, product), event.id)
            state.put("source", (product, source), event.id)


def _process_in_place(state: CustodyState, event: TraceEvent, lot_id: str, kg: Decimal,
                      actor: str, seq: int) -> Mapping[str, Decimal]:
    """An output lot that is one of the event's own inputs (processing in place: the input
    was taken from the actor's holding, so the actor held it): the lot keeps its identity and
    its declaration, which every holder of it shares; a declaration given for it must state
    the same composition (a changed composition is a new lot)."""
    lot = state.known_lot(lot_id)
    declaration = next((d for d in event.lots if d.lot == lot_id), None)
    if declaration is not None and dict(declaration.composition) != dict(lot.composition):
        raise CompositionError(
            f"lot {lot_id} is processed in place: its composition stays as declared when it "
            "was created (a changed composition is a new lot)", lot=lot_id)
    state.put("holding", (lot_id, actor), state.holding(lot_id, actor) + kg)
    # Counted: the event that made the lot can no longer be declared erroneous (its holding
    # is whole again, so only this count says the lot was used since).
    state.put("processed", lot_id, (state.get("processed", lot_id) or 0) + 1)
    _touch(state, lot_id, event, seq)
    return lot.composition


def check_mass_balance(
    inputs: Mapping[str, Decimal], outputs: Mapping[str, Decimal], tolerance: Decimal,
    event_id: str = "",
) -> None:
    """For each element, output mass may exceed input mass by at most `tolerance` (a fraction
    of the input mass, set by the admin in a settings entry)."""
    for element, out in sorted(outputs.items()):
        limit = inputs.get(element, ZERO) * (1 + tolerance)
        if out > limit:
            raise MassBalanceError(
                f"{element}: output {out} kg exceeds input {inputs.get(element, ZERO)} kg "
                f"(tolerance {tolerance})",
                event=event_id, element=element, input=inputs.get(element, ZERO), output=out,
            )


def _ancestors(state: CustodyState, item: ItemState) -> set[str]:
    """The item and every item it sits in."""
    found = set()
    node: ItemState | None = item
    while node is not None:
        found.add(node.id)
        node = state.item(node.parent) if node.parent else None
    return found


def _assembly(state: CustodyState, event: TraceEvent, actor: str, seq: int) -> None:
    if event.parent is None:
        raise AssemblyError(f"{event.kind} needs parentEPC", event=event.id)
    parent = _held_item(state, event.parent, actor, top=False)
    _touch(state, parent.id, event, seq)
    if event.action == "add":
        if not event.children:
            raise AssemblyError("an assembly lists its children", event=event.id)
        ancestors = _ancestors(state, parent)
        for child_id in event.children:
            child = _held_item(state, child_id, actor, top=False)
            if child.parent is not None:
                raise AssemblyError(f"item {child_id} already has a parent ({child.parent})",
                                    item=child_id)
            if child_id in ancestors:
                raise AssemblyError(f"item {child_id} cannot contain itself", item=child_id)
            state.put("item", child_id, replace(child, parent=parent.id, holder=None))
            current = state.known_item(parent.id)
            parent = replace(current, children=(*current.children, child_id))
            state.put("item", parent.id, parent)
            _touch(state, child_id, event, seq)
        return
    if event.action == "delete":
        current = state.known_item(parent.id)
        children = event.children or current.children
        root = state.root(current)
        for child_id in children:
            found = state.item(child_id)
            if found is None or found.parent != parent.id:
                raise AssemblyError(f"item {child_id} is not a child of {parent.id}",
                                    item=child_id)
            state.put("item", child_id, replace(found, parent=None, holder=root.holder,
                                                status=ACTIVE))
            current = replace(current, children=tuple(c for c in current.children
                                                      if c != child_id))
            state.put("item", parent.id, current)
            _touch(state, child_id, event, seq)
        return
    for child_id in event.children:
        _held_item(state, child_id, actor, top=False)
        _touch(state, child_id, event, seq)


def _transaction(state: CustodyState, event: TraceEvent, actor: str, seq: int) -> None:
    if event.biz_step == BizStep.SHIPPING:
        _ship(state, event, actor, seq)
    elif event.biz_step == BizStep.RECEIVING:
        _receive(state, event, actor, seq)
    else:
        _observe_transaction(state, event, actor, seq)


def _observe_transaction(state: CustodyState, event: TraceEvent, actor: str, seq: int) -> None:
    """A TransactionEvent whose bizStep is not a custody change (shipping, receiving). In EPCIS
    2.0 a TransactionEvent ties objects to, or unties them from, business transactions (a rail
    passage, a discharge summary); it moves nothing by itself. The holder records that its
    lots and items took part: no holding changes, no shipment opens."""
    for q in event.quantities:
        _check_lot_held(state, event, q.lot, q.kg, actor)
        _touch(state, q.lot, event, seq)
    for item_id in event.epcs:
        _held_item(state, item_id, actor, top=False)
        _touch(state, item_id, event, seq)


def _ship(state: CustodyState, event: TraceEvent, actor: str, seq: int) -> None:
    if event.source_party != actor:
        raise ShipmentError(f"only the holder ships: sourceParty must be the signer {actor}")
    destination = event.destination_party or ""
    if destination == actor or not state.directory.is_participant(destination):
        raise ShipmentError(f"destinationParty {destination!r} is not another registered "
                            "participant", event=event.id)
    if not (event.quantities or event.epcs):
        raise ShipmentError("a shipment carries at least one lot quantity or item")
    if event.transport is not None:
        site = state.directory.facility(event.transport.destination)
        if site is None or site.operator != destination:
            raise FacilityNotOperatedError(
                f"transport destination {event.transport.destination} is not a facility of "
                f"{destination}", event=event.id
            )
    lots: dict[str, Decimal] = {}
    for q in event.quantities:
        _take_lot(state, event, q.lot, q.kg, actor, seq)
        lots[q.lot] = lots.get(q.lot, ZERO) + q.kg
    for item_id in event.epcs:
        item = _held_item(state, item_id, actor, top=True)
        state.put("item", item_id, replace(item, status=IN_TRANSIT, holder=None))
        _touch(state, item_id, event, seq)
    transport = event.transport
    state.put("shipment", event.id, Shipment(
        id=event.id, source=actor, destination=destination, lots=tuple(sorted(lots.items())),
        items=tuple(sorted(set(event.epcs))), waste=event.waste,
        purpose=transport.purpose if transport else None,
        mode=transport.mode if transport else None,
    ))


def _receive(state: CustodyState, event: TraceEvent, actor: str, seq: int) -> None:
    shipment = state.shipment(event.shipment) if event.shipment else None
    if shipment is None or shipment.received_by is not None:
        raise ReceiptMismatchError(f"no open shipment {event.shipment!r}", event=event.id)
    if shipment.destination != actor or event.destination_party != actor:
        raise ReceiptMismatchError(f"shipment {shipment.id} is not addressed to {actor}")
    if event.source_party != shipment.source:
        raise ReceiptMismatchError(f"sourceParty differs from the shipper {shipment.source}")
    lots: dict[str, Decimal] = {}
    for q in event.quantities:
        lots[q.lot] = lots.get(q.lot, ZERO) + q.kg
    if tuple(sorted(lots.items())) != shipment.lots or tuple(sorted(set(event.epcs))) != \
            shipment.items:
        raise ReceiptMismatchError(f"receipt contents differ from shipment {shipment.id}")
    for lot_id, kg in shipment.lots:
        _check_not_before_lot(state.known_lot(lot_id), event)
        state.put("holding", (lot_id, actor), state.holding(lot_id, actor) + kg)
        _touch(state, lot_id, event, seq)
    for item_id in shipment.items:
        state.put("item", item_id, replace(state.known_item(item_id), status=ACTIVE,
                                           holder=actor))
        _touch(state, item_id, event, seq)
    state.put("shipment", shipment.id, replace(shipment, received_by=event.id))


# --- error declarations (EPCIS 2.0 errorDeclaration) --------------------------------------


def _subjects(event: TraceEvent) -> list[str]:
    lots = [q.lot for q in (*event.quantities, *event.input_quantities,
                            *event.output_quantities)]
    items = [*event.epcs, *event.input_items, *event.output_items, *event.children]
    return list(dict.fromkeys([*lots, *items, *([event.parent] if event.parent else [])]))


def _declare_erroneous(state: CustodyState, event: TraceEvent, actor: str, seq: int) -> None:
    """An error declaration: `event` restates, under its own id, the earlier event named by
    `erroneousEvent` as its issuer recorded it (EPCIS 2.0: an error declaration repeats the
    erroneous event, its eventID included, with an errorDeclaration). The earlier event's
    custody effect is reversed (the log keeps both: nothing is rewritten), so that corrective
    events can apply. Refused: an unknown event, a restatement by another issuer or with other
    content, a declaration of a declaration, a second declaration, an effect that moved on
    since (docs/events.md, "Error declarations")."""
    target = event.declares
    assert target is not None
    used = state.get("event", target)
    if used is None:
        raise ErrorDeclarationError(f"event {target} declared erroneous is not on the ledger",
                                    event=event.id)
    earlier = state.get("erroneous", target)
    if earlier is not None:
        raise ErrorAlreadyDeclaredError(f"event {target} was already declared erroneous by "
                                        f"{earlier}", event=event.id)
    original = replace(event, id=target, declares=None)
    if used.digest != event_fingerprint(original, actor):
        raise ErrorDeclarationError(
            f"event {event.id} does not restate event {target} as its issuer recorded it: "
            "only that issuer declares it erroneous, repeating it unchanged", event=event.id)
    _REVERSALS[original.kind](state, original, actor, int(used.seq))
    state.put("erroneous", target, event.id)
    for subject in _subjects(original):
        _touch(state, subject, event, seq)


def _moved_on(original: TraceEvent, what: str) -> ErroneousEventMovedOnError:
    return ErroneousEventMovedOnError(
        f"event {original.id} cannot be declared erroneous: {what}", event=original.id)


def _unmake_lots(state: CustodyState, original: TraceEvent, made: tuple[Quantity, ...],
                 actor: str, in_place: set[str]) -> None:
    """Take back the lots an event made: each still declared by it and held whole by its
    maker (a lot processed in place: the amount it added, still held)."""
    totals: dict[str, Decimal] = {}
    for q in made:
        totals[q.lot] = totals.get(q.lot, ZERO) + q.kg
    for lot_id, kg in totals.items():
        held = state.holding(lot_id, actor)
        processed = state.get("processed", lot_id) or 0
        if lot_id in in_place:
            if held < kg:
                raise _moved_on(original, f"lot {lot_id} it processed is no longer held")
            state.put("holding", (lot_id, actor), (held - kg) or None)
            state.put("processed", lot_id, (processed - 1) or None)
            continue
        lot = state.lot(lot_id)
        if lot is None or lot.created_by != original.id or held != kg or processed:
            raise _moved_on(original, f"lot {lot_id} it made was shipped, used or re-made")
        state.put("holding", (lot_id, actor), None)
        state.put("lot", lot_id, None)
        _index_gs1_key(state, "lot", lot_id, lot.details, remove=True)


def _restore_lots(state: CustodyState, original: TraceEvent, taken: tuple[Quantity, ...],
                  actor: str, original_seq: int) -> None:
    """Give back the lots an event took: each still the lot it took (not made again since)."""
    for q in taken:
        lot = state.lot(q.lot)
        creator = state.get("event", lot.created_by) if lot is not None else None
        if lot is None or (creator is not None and creator.seq > original_seq):
            raise _moved_on(original, f"lot {q.lot} it used was made again since")
        state.put("holding", (q.lot, actor), state.holding(q.lot, actor) + q.kg)


def _restore_items(state: CustodyState, original: TraceEvent, items: tuple[str, ...],
                   actor: str, status: str) -> None:
    for item_id in items:
        item = state.known_item(item_id)
        if item.status != status or item.holder is not None:
            raise _moved_on(original, f"item {item_id} is no longer {status}")
        state.put("item", item_id, replace(item, status=ACTIVE, holder=actor))


def _unmake_items(state: CustodyState, original: TraceEvent, actor: str) -> None:
    for item_id in original.output_items:
        item = state.item(item_id)
        if (item is None or item.created_by != original.id or item.status != ACTIVE
                or item.holder != actor or item.parent is not None or item.children):
            raise _moved_on(original, f"item {item_id} it made was shipped, used or assembled")
        if item.battery_code is not None:
            state.put("battery_code", item.battery_code, None)
        state.put("item", item_id, None)
        _index_gs1_key(state, "item", item_id, item.details, remove=True)


def _reverse_object(state: CustodyState, original: TraceEvent, actor: str, seq: int) -> None:
    if original.action == "add":
        _unmake_lots(state, original, original.quantities, actor, set())
    elif original.action == "delete":
        _restore_lots(state, original, original.quantities, actor, seq)
        _restore_items(state, original, original.epcs, actor, DISPOSED)


def _reverse_transformation(state: CustodyState, original: TraceEvent, actor: str,
                            seq: int) -> None:
    in_place = {q.lot for q in original.input_quantities} & {
        q.lot for q in original.output_quantities}
    _unmake_lots(state, original, original.output_quantities, actor, in_place)
    _unmake_items(state, original, actor)
    _restore_lots(state, original, original.input_quantities, actor, seq)
    _restore_items(state, original, original.input_items, actor, CONSUMED)
    products = [q.lot for q in original.output_quantities] + list(original.output_items)
    for source in [q.lot for q in original.input_quantities] + list(original.input_items):
        for product in products:
            if state.get("edge", (source, product)) == original.id:
                state.put("edge", (source, product), None)
                state.put("source", (product, source), None)


def _reverse_transaction(state: CustodyState, original: TraceEvent, actor: str,
                         seq: int) -> None:
    if original.biz_step == BizStep.SHIPPING:
        shipment = state.shipment(original.id)
        if shipment is None or shipment.received_by is not None:
            raise _moved_on(original, "its shipment was received")
        _restore_lots(state, original, original.quantities, actor, seq)
        _restore_items(state, original, tuple(shipment.items), actor, IN_TRANSIT)
        state.put("shipment", original.id, None)
    elif original.biz_step == BizStep.RECEIVING:
        shipment = state.shipment(original.shipment or "")
        if shipment is None or shipment.received_by != original.id:
            raise _moved_on(original, "its shipment is not received by it")
        for lot_id, kg in shipment.lots:
            held = state.holding(lot_id, actor)
            if held < kg:
                raise _moved_on(original, f"lot {lot_id} it received is no longer held")
            state.put("holding", (lot_id, actor), (held - kg) or None)
        for item_id in shipment.items:
            item = state.known_item(item_id)
            if item.status != ACTIVE or item.holder != actor or item.parent is not None:
                raise _moved_on(original, f"item {item_id} it received moved on")
            state.put("item", item_id, replace(item, status=IN_TRANSIT, holder=None))
        state.put("shipment", shipment.id, replace(shipment, received_by=None))


def _reverse_assembly(state: CustodyState, original: TraceEvent, actor: str, seq: int) -> None:
    if original.action not in ("add", "delete"):
        return
    if not original.children:
        raise ErrorDeclarationError(f"event {original.id} lists no children: its effect "
                                    "cannot be reversed", event=original.id)
    parent = _held_item(state, original.parent or "", actor, top=False)
    for child_id in original.children:
        child = state.known_item(child_id)
        if original.action == "add":
            if child.parent != parent.id:
                raise _moved_on(original, f"item {child_id} is no longer in {parent.id}")
            state.put("item", child_id, replace(child, parent=None, holder=actor,
                                                status=ACTIVE))
            parent = replace(parent, children=tuple(c for c in parent.children
                                                    if c != child_id))
        else:
            if (child.parent is not None or child.status != ACTIVE or child.holder != actor
                    or child_id in _ancestors(state, parent)):
                raise _moved_on(original, f"item {child_id} moved on since")
            state.put("item", child_id, replace(child, parent=parent.id, holder=None))
            parent = replace(parent, children=(*parent.children, child_id))
        state.put("item", parent.id, parent)


_REVERSALS: dict[str, Callable[[CustodyState, TraceEvent, str, int], None]] = {
    "ObjectEvent": _reverse_object,
    "TransformationEvent": _reverse_transformation,
    "AggregationEvent": _reverse_assembly,
    "AssociationEvent": _reverse_assembly,
    "TransactionEvent": _reverse_transaction,
}


_HANDLERS: dict[str, Callable[[CustodyState, TraceEvent, str, int], None]] = {
    "ObjectEvent": _object_event,
    "TransformationEvent": _transformation,
    "AggregationEvent": _assembly,
    "AssociationEvent": _assembly,
    "TransactionEvent": _transaction,
}


# --- accounting (tests, verifier, reports) ------------------------------------------------


def element_totals(state: CustodyState) -> dict[str, Decimal]:
    """Element masses (kg) still on the ledger: holdings, lots in transit, active and in-transit
    items (assemblies counted once, through their members). Loaded rows only."""
    total: dict[str, Decimal] = {}
    for (lot_id, _holder), kg in state.tables["holding"].items():
        if kg:
            _add_mass(total, kg, state.known_lot(lot_id).composition)
    for shipment in state.tables["shipment"].values():
        if shipment is not None and shipment.received_by is None:
            for lot_id, kg in shipment.lots:
                _add_mass(total, kg, state.known_lot(lot_id).composition)
    for item in state.tables["item"].values():
        if item is not None and state.root(item).status in (ACTIVE, IN_TRANSIT):
            _add_mass(total, item.mass_kg, item.composition)
    return total
