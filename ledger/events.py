"""UNTP Digital Traceability Event credentials, read into typed custody events.

The signed unit is a UNTP DTE credential (working data model, `data/untp/untp-dte-schema.json`):
`@context` = VC v2, the UNTP DTE context, the project's context; `credentialSubject` is a list
of EPCIS-shaped events applied in order. UNTP's `QuantityElement` and `Item` are closed, but its
events accept extra properties, so the project's fields sit on the event (docs/events.md):

- `custodyModel`: "segregated" | "massBalance" (required on a TransformationEvent);
- `lotDeclarations`: [{id, composition: {element: mass fraction}, ...}] for lots created here;
- `itemDeclarations`: [{id, category, mass: {value, uom}, composition, batteryCode?, ...}];
- `transport`: {mode, purpose, origin, destination, dispatchTime, arrivalTime?};
- `wasteBattery`: true when a shipment carries a declared waste battery;
- `shipmentEvent`: on a receipt, the id of the shipping event it closes;
- `producerResponsibility`: on repurposing, the DID taking over producer responsibility.

Numbers are read as Decimal. A number is accepted only when its Decimal equals the number that
JCS signs (the IEEE double's shortest form), so what is signed is exactly what is counted.

Here: the DTE vocabulary (contexts, `BizStep`, units), exact numbers (`decimal_of`,
`loads_exact`), the typed events (`TraceEvent`, `DteCredential`) and their reading
(`parse_credential`, `parse_event`). The UNTP schema check that `parse_credential` runs first is
`event_schema.validate_dte_schema`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeGuard

from batterytrace.credentials.errors import ParsingError
from batterytrace.credentials.gbt34014 import CODE as GBT_CODE
from batterytrace.credentials.gbt34014 import code_problems

from .custody_errors import (
    BatteryCodeError,
    CompositionError,
    EventFormatError,
    QuantityPrecisionError,
    UnsupportedUnitError,
)
from .event_schema import EVENT_KINDS, validate_dte_schema

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
DTE_CONTEXT = "https://test.uncefact.org/vocabulary/untp/dte/working/"
BT_CONTEXT = "https://batterytrace.dev/contexts/v1"
DTE_CONTEXTS = (VC_CONTEXT, DTE_CONTEXT, BT_CONTEXT)
DTE_TYPE = "DigitalTraceabilityEvent"

CBV_BIZSTEP = "https://ref.gs1.org/cbv/BizStep-"
CBV_DISP = "https://ref.gs1.org/cbv/Disp-"
# Project terms, only where GS1 CBV has none.
BT_BIZSTEP = "https://batterytrace.dev/vocab/BizStep-"


class BizStep:
    """Business steps used by the custody rules (GS1 CBV 2.0, project terms where none)."""

    EXTRACTION = BT_BIZSTEP + "extraction"
    REFINING = BT_BIZSTEP + "refining"
    REPURPOSING = BT_BIZSTEP + "repurposing"
    RECYCLING = BT_BIZSTEP + "recycling"
    COMMISSIONING = CBV_BIZSTEP + "commissioning"
    SHIPPING = CBV_BIZSTEP + "shipping"
    RECEIVING = CBV_BIZSTEP + "receiving"
    ASSEMBLING = CBV_BIZSTEP + "assembling"
    DISASSEMBLING = CBV_BIZSTEP + "disassembling"
    INSTALLING = CBV_BIZSTEP + "installing"
    REMOVING = CBV_BIZSTEP + "removing"
    REPAIRING = CBV_BIZSTEP + "repairing"
    SENSOR_REPORTING = CBV_BIZSTEP + "sensor_reporting"
    INSPECTING = CBV_BIZSTEP + "inspecting"
    RETAIL_SELLING = CBV_BIZSTEP + "retail_selling"
    COLLECTING = CBV_BIZSTEP + "collecting"
    DESTROYING = CBV_BIZSTEP + "destroying"


CUSTODY_MODELS = ("segregated", "massBalance")
TRANSPORT_MODES = ("road", "rail", "sea", "air")
TRANSPORT_PURPOSES = ("sale", "secondUse", "repair", "recycling", "disposal")
ITEM_CATEGORIES = ("cell", "module", "pack", "vehicle", "component")

# UNECE Rec 20 mass units the custody arithmetic converts to kilograms.
KG_PER_UNIT: Mapping[str, Decimal] = {
    "KGM": Decimal(1),
    "TNE": Decimal(1000),
    "GRM": Decimal("0.001"),
}

# GB/T 34014 traction battery code (24 characters, or 19 for cascade utilisation): the
# Catena-X regular expression, with the letter checks, in credentials/gbt34014.py.
GBT_34014_CODE = GBT_CODE

# An element of interest: a chemical symbol, or "graphite" (carbon as anode material).
_ELEMENT = re.compile(r"^(?:[A-Z][a-z]?|graphite)$")
_MAX_SAFE_INT = 2**53
# Element names already matched by _ELEMENT: composition_of runs for every declared lot.
_ELEMENTS_SEEN: set[str] = set()
_ZERO, _ONE = Decimal(0), Decimal(1)


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # A JSON object is a dict: the exact type test first spares the ABC check (~1 us, and
    # a simple event makes half a dozen of them).
    return type(value) is dict or isinstance(value, Mapping)


# --- numbers ------------------------------------------------------------------------------


def decimal_of(value: Any, where: str = "number") -> Decimal:
    """The Decimal of a JSON number, rejected when it differs from the number JCS signs.

    Floats become the Decimal of their shortest repr (what JCS writes); Decimals (from
    `loads_exact`) must equal their double exactly; integers must be within 2^53.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise EventFormatError(f"{where} must be a JSON number", where=where)
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise QuantityPrecisionError(f"{where} {value} is beyond 2^53", where=where)
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise EventFormatError(f"{where} is not a finite number", where=where)
        return Decimal(repr(value))
    if not value.is_finite():
        raise EventFormatError(f"{where} is not a finite number", where=where)
    signed = Decimal(repr(float(value)))
    if signed != value:
        raise QuantityPrecisionError(
            f"{where} {value} would be signed as {signed} (more than 15 significant digits)",
            where=where,
        )
    return value


def _exact(value: Any, path: str) -> Any:
    if isinstance(value, Decimal):
        decimal_of(value, path)
        return float(value)
    if isinstance(value, dict):
        return {k: _exact(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_SAFE_INT:
        raise QuantityPrecisionError(f"{path} {value} is beyond 2^53", where=path)
    return value


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON, rejecting any number that the signed (JCS) form would change.

    Returns plain JSON values (floats, not Decimals), ready to canonicalize.
    """
    try:
        raw = json.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise ParsingError(f"not valid JSON: {exc}") from exc
    return _exact(raw, "$")


# --- typed events -------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    """A quantity element: `productId` is the lot URI; `kg` is the amount in kilograms."""

    lot: str
    name: str
    amount: Decimal
    uom: str
    kg: Decimal


@dataclass(frozen=True)
class LotDeclaration:
    """Composition (mass fractions) of a lot created by the event, plus free-form details."""

    lot: str
    composition: Mapping[str, Decimal]
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemDeclaration:
    """Mass and composition of a serialized item produced by the event."""

    item: str
    category: str
    mass_kg: Decimal
    composition: Mapping[str, Decimal]
    battery_code: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transport:
    mode: str
    purpose: str
    origin: str
    destination: str
    dispatch_time: str
    arrival_time: str | None = None


@dataclass(frozen=True)
class TraceEvent:
    """One event of a DTE credential, with the fields the custody rules read."""

    kind: str
    id: str
    event_time: str
    action: str
    biz_step: str | None
    disposition: str | None
    biz_location: str
    epcs: tuple[str, ...] = ()
    quantities: tuple[Quantity, ...] = ()
    input_items: tuple[str, ...] = ()
    output_items: tuple[str, ...] = ()
    input_quantities: tuple[Quantity, ...] = ()
    output_quantities: tuple[Quantity, ...] = ()
    parent: str | None = None
    children: tuple[str, ...] = ()
    source_party: str | None = None
    destination_party: str | None = None
    custody_model: str | None = None
    lots: tuple[LotDeclaration, ...] = ()
    items: tuple[ItemDeclaration, ...] = ()
    transport: Transport | None = None
    waste: bool = False
    shipment: str | None = None
    producer_responsibility: str | None = None
    declares: str | None = None  # `erroneousEvent`: the earlier event this one declares erroneous


@dataclass(frozen=True)
class DteCredential:
    """A parsed DTE credential: its id, issuer DID and events (in the order they apply)."""

    id: str
    issuer: str
    issuer_name: str
    events: tuple[TraceEvent, ...]


def parse_credential(document: Mapping[str, Any], *, check_schema: bool = True) -> DteCredential:
    """Validate a DTE credential (schema, contexts, project fields) and read its events.

    Raises SchemaValidationError, EventFormatError or a CustodyError subclass (precision,
    unit, composition, battery code). Signatures are not checked here.
    """
    if not _is_mapping(document):
        raise EventFormatError("a traceability event credential must be a JSON object")
    if check_schema:
        validate_dte_schema(document)
    context = document.get("@context")
    if not isinstance(context, list) or tuple(context[:3]) != DTE_CONTEXTS:
        raise EventFormatError(f"@context must start with {', '.join(DTE_CONTEXTS)}")
    types = document.get("type")
    if not isinstance(types, list) or DTE_TYPE not in types:
        raise EventFormatError(f"type must include {DTE_TYPE}")
    issuer = document.get("issuer")
    if not _is_mapping(issuer) or not isinstance(issuer.get("id"), str):
        raise EventFormatError("issuer must be an object with an id (the participant DID)")
    subjects = document.get("credentialSubject")
    if not isinstance(subjects, list) or not subjects:
        raise EventFormatError("credentialSubject must be a non-empty list of events")
    events = tuple(parse_event(e, f"credentialSubject[{i}]") for i, e in enumerate(subjects))
    return DteCredential(
        id=str(document["id"]),
        issuer=issuer["id"],
        issuer_name=str(issuer.get("name", "")),
        events=events,
    )


def parse_event(raw: Any, where: str = "event") -> TraceEvent:
    """Read one event object into a TraceEvent (project checks; the schema is checked first)."""
    if not _is_mapping(raw):
        raise EventFormatError(f"{where} must be an object")
    types = raw.get("type") or []
    kinds = [k for k in EVENT_KINDS if k in types]
    if len(kinds) != 1:
        raise EventFormatError(f"{where}.type must name exactly one of {', '.join(EVENT_KINDS)}")
    kind = kinds[0]
    for name in ("id", "eventTime", "bizLocation"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            raise EventFormatError(f"{where}.{name} is required (time and place of every event)")
    _check_time(raw["eventTime"], f"{where}.eventTime")
    action = raw.get("action", "observe")
    fields: dict[str, Any] = {
        "kind": kind,
        "id": raw["id"],
        "event_time": raw["eventTime"],
        "action": action,
        "biz_step": raw.get("bizStep"),
        "disposition": raw.get("disposition"),
        "biz_location": raw["bizLocation"],
    }
    if kind in ("ObjectEvent", "TransactionEvent"):
        fields["epcs"] = _items(raw.get("epcList"))
        fields["quantities"] = _quantities(raw.get("quantityList"), f"{where}.quantityList")
    if kind == "TransformationEvent":
        fields["input_items"] = _items(raw.get("inputEPCList"))
        fields["output_items"] = _items(raw.get("outputEPCList"))
        fields["input_quantities"] = _quantities(
            raw.get("inputQuantityList"), f"{where}.inputQuantityList"
        )
        fields["output_quantities"] = _quantities(
            raw.get("outputQuantityList"), f"{where}.outputQuantityList"
        )
    if kind in ("AggregationEvent", "AssociationEvent"):
        parent = raw.get("parentEPC")
        fields["parent"] = parent.get("id") if _is_mapping(parent) else None
        fields["children"] = _items(raw.get("childEPCList"))
        if raw.get("childQuantityList"):
            raise EventFormatError(
                f"{where}.childQuantityList: lots are combined by a TransformationEvent"
            )
    if kind == "TransactionEvent":
        fields["source_party"] = raw.get("sourceParty")
        fields["destination_party"] = raw.get("destinationParty")
    model = raw.get("custodyModel")
    if model is not None and model not in CUSTODY_MODELS:
        raise EventFormatError(f"{where}.custodyModel must be one of {', '.join(CUSTODY_MODELS)}")
    fields["custody_model"] = model
    fields["lots"] = tuple(
        _lot_declaration(d, f"{where}.lotDeclarations[{i}]")
        for i, d in enumerate(_list(raw.get("lotDeclarations"), f"{where}.lotDeclarations"))
    )
    fields["items"] = tuple(
        _item_declaration(d, f"{where}.itemDeclarations[{i}]", raw.get("chemistry"))
        for i, d in enumerate(_list(raw.get("itemDeclarations"), f"{where}.itemDeclarations"))
    )
    if raw.get("transport") is not None:
        fields["transport"] = _transport(raw["transport"], f"{where}.transport")
    waste = raw.get("wasteBattery", False)
    if not isinstance(waste, bool):
        raise EventFormatError(f"{where}.wasteBattery must be true or false")
    fields["waste"] = waste
    for key, name in (
        ("shipment", "shipmentEvent"),
        ("producer_responsibility", "producerResponsibility"),
        ("declares", "erroneousEvent"),
    ):
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            raise EventFormatError(f"{where}.{name} must be a URI string")
        fields[key] = value
    return TraceEvent(**fields)


def _check_time(value: str, where: str) -> None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EventFormatError(f"{where} is not an ISO 8601 date-time: {value}") from exc
    if parsed.tzinfo is None:
        raise EventFormatError(f"{where} must carry a time zone (Z or an offset)")


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EventFormatError(f"{where} must be a list")
    return value


def _items(value: Any) -> tuple[str, ...]:
    return tuple(item["id"] for item in value or ())


def _quantities(value: Any, where: str) -> tuple[Quantity, ...]:
    return tuple(quantity_of(q, f"{where}[{i}]") for i, q in enumerate(value or ()))


def to_kg(amount: Decimal, uom: Any, where: str) -> Decimal:
    """Convert a mass in a UNECE Rec 20 unit (KGM, TNE, GRM) to kilograms."""
    factor = KG_PER_UNIT.get(uom) if isinstance(uom, str) else None
    if factor is None:
        raise UnsupportedUnitError(
            f"{where}: unit {uom!r} is not a mass unit the ledger counts "
            f"({', '.join(KG_PER_UNIT)})",
            where=where,
        )
    return amount * factor


def quantity_of(raw: Mapping[str, Any], where: str) -> Quantity:
    """A UNTP QuantityElement as a Quantity in kilograms (positive, a mass unit)."""
    amount = decimal_of(raw["quantity"], f"{where}.quantity")
    if amount <= 0:
        raise EventFormatError(f"{where}.quantity must be positive", where=where)
    uom = raw.get("uom")
    return Quantity(
        lot=raw["productId"],
        name=raw["productName"],
        amount=amount,
        uom=str(uom),
        kg=to_kg(amount, uom, where),
    )


def composition_of(raw: Any, where: str) -> dict[str, Decimal]:
    """Mass fractions per element: each in [0, 1], summing to at most 1."""
    if not _is_mapping(raw):
        raise CompositionError(f"{where} must map elements to mass fractions", where=where)
    out: dict[str, Decimal] = {}
    for element, value in raw.items():
        if element not in _ELEMENTS_SEEN:
            if not isinstance(element, str) or not _ELEMENT.match(element):
                raise CompositionError(
                    f"{where}: {element!r} is not an element symbol", where=where
                )
            _ELEMENTS_SEEN.add(element)  # bounded: the pattern admits ~700 names
        fraction = decimal_of(value, f"{where}.{element}")
        if not _ZERO <= fraction <= _ONE:
            raise CompositionError(f"{where}.{element} must be within [0, 1]", where=where)
        out[element] = fraction
    if sum(out.values(), Decimal(0)) > 1:
        raise CompositionError(f"{where}: mass fractions sum above 1", where=where)
    return out


def _lot_declaration(raw: Any, where: str) -> LotDeclaration:
    if not _is_mapping(raw) or not isinstance(raw.get("id"), str):
        raise EventFormatError(f"{where} must be an object with the lot id")
    details = {k: v for k, v in raw.items() if k not in ("id", "composition")}
    return LotDeclaration(
        lot=raw["id"], composition=composition_of(raw.get("composition"), where), details=details
    )


def _item_declaration(raw: Any, where: str, chemistry: Any = None) -> ItemDeclaration:
    if not _is_mapping(raw) or not isinstance(raw.get("id"), str):
        raise EventFormatError(f"{where} must be an object with the item id")
    category = raw.get("category")
    if category not in ITEM_CATEGORIES:
        raise EventFormatError(f"{where}.category must be one of {', '.join(ITEM_CATEGORIES)}")
    mass = raw.get("mass")
    if not _is_mapping(mass):
        raise EventFormatError(f"{where}.mass must be {{value, uom}}")
    mass_kg = to_kg(decimal_of(mass.get("value"), f"{where}.mass.value"), mass.get("uom"), where)
    if mass_kg <= 0:
        raise EventFormatError(f"{where}.mass must be positive")
    code = raw.get("batteryCode")
    if code is not None:
        # the structure, the product type letter against the item's category and the battery
        # type letter against its declared chemistry (the item's own, else the event's)
        declared = raw.get("chemistry", chemistry)
        problems = code_problems(code, category=category, chemistry=declared if isinstance(
            declared, str) else None) if isinstance(code, str) else [
            f"{code!r} is not a GB/T 34014 code"]
        if problems:
            raise BatteryCodeError(f"{where}.batteryCode {code!r}: " + "; ".join(problems))
    details = {k: v for k, v in raw.items() if k not in ("id", "category", "mass", "composition")}
    return ItemDeclaration(
        item=raw["id"],
        category=category,
        mass_kg=mass_kg,
        composition=composition_of(raw.get("composition"), f"{where}.composition"),
        battery_code=code,
        details=details,
    )


def _transport(raw: Any, where: str) -> Transport:
    if not _is_mapping(raw):
        raise EventFormatError(f"{where} must be an object")
    if raw.get("mode") not in TRANSPORT_MODES:
        raise EventFormatError(f"{where}.mode must be one of {', '.join(TRANSPORT_MODES)}")
    if raw.get("purpose") not in TRANSPORT_PURPOSES:
        raise EventFormatError(f"{where}.purpose must be one of "
                               + ", ".join(TRANSPORT_PURPOSES))
    for name in ("origin", "destination", "dispatchTime"):
        if not isinstance(raw.get(name), str):
            raise EventFormatError(f"{where}.{name} is required")
    _check_time(raw["dispatchTime"], f"{where}.dispatchTime")
    arrival = raw.get("arrivalTime")
    if arrival is not None:
        _check_time(arrival, f"{where}.arrivalTime")
    return Transport(
        mode=raw["mode"],
        purpose=raw["purpose"],
        origin=raw["origin"],
        destination=raw["destination"],
        dispatch_time=raw["dispatchTime"],
        arrival_time=arrival,
    )
