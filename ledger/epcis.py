"""GS1 EPCIS 2.0 in and out: EPCIS events mapped to the ledger's UNTP DTE events and back.

Import (`dte_events_of`): each event of an EPCISDocument or EPCISQueryDocument becomes one DTE
event (docs/events.md, "EPCIS 2.0", has the table field by field). What the ledger counts comes
from EPCIS fields with the same meaning (ids, time, action, bizStep, disposition, location, the
EPC and quantity lists, parent and children, parties); what EPCIS defines and DTE does not
(readPoint, bizTransactionList, source and destination lists, sensor elements, certification
and error declarations, persistent disposition, the rest of the ILMD, vendor extensions, and
quantities in units other than mass) is kept verbatim in the DTE event's `epcis` member
(`{"fields": {...}, "derived": [...], "context": [...]}`), which the custody rules do not
read. Project fields travel in EPCIS as `batterytrace:<name>` members (and the lot and item
declarations as `batterytrace:lotDeclarations` / `batterytrace:itemDeclarations` in `ilmd`).

Export (`epcis_event_of`): the inverse, built from the DTE fields the ledger enforced; an
`epcis` member never overrides them (a source list that names another party than the signed
`sourceParty`, a readPoint that is not the signed location, ... are replaced by what was
signed). `epcis_document` wraps events with their ledger references (`batterytrace:ledger`:
position, entry and leaf hashes, the inclusion proof) into an EPCISDocument.

Events that cannot become DTE events raise one `EpcisEventError` each (with the event's index);
`dte_events_of` gathers them all in an `EpcisImportError`. Pure: no storage, no web.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.errors import InputError

from .epcis_schema import EPCIS_CONTEXT_URL, schema_errors
from .events import CBV_BIZSTEP, CBV_DISP, KG_PER_UNIT

BT_PREFIX = "batterytrace"
BT_NAMESPACE = "https://batterytrace.dev/epcis#"
BT = BT_PREFIX + ":"
LEDGER_FIELD = BT + "ledger"
EXPORT_CONTEXT: list[Any] = [EPCIS_CONTEXT_URL,
                             {BT_PREFIX: BT_NAMESPACE, LEDGER_FIELD: {"@type": "@json"}}]
EPCIS_KINDS = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent",
               "AssociationEvent")
_ID_NAMESPACE = uuid.UUID("6f0c3f7e-6a43-5c1e-9a1b-2b5d1f1f0e21")

# EPCIS members the DTE fields carry (per kind); everything else EPCIS defines goes verbatim
# into the DTE event's `epcis.fields`.
_COMMON = ("type", "eventID", "eventTime", "action", "bizStep", "disposition", "bizLocation")
_MAPPED: Mapping[str, tuple[str, ...]] = {
    "ObjectEvent": (*_COMMON, "epcList", "quantityList"),
    "TransactionEvent": (*_COMMON, "epcList", "quantityList"),
    "TransformationEvent": (*_COMMON, "inputEPCList", "outputEPCList", "inputQuantityList",
                            "outputQuantityList"),
    "AggregationEvent": (*_COMMON, "parentID", "childEPCs"),
    "AssociationEvent": (*_COMMON, "parentID", "childEPCs"),
}
# EPCIS list -> DTE list (items as {id, name}, quantities as QuantityElements).
_EPC_LISTS = {"epcList": "epcList", "inputEPCList": "inputEPCList",
              "outputEPCList": "outputEPCList", "childEPCs": "childEPCList"}
_QUANTITY_LISTS = {"quantityList": "quantityList", "inputQuantityList": "inputQuantityList",
                   "outputQuantityList": "outputQuantityList"}
# DTE members that are not EPCIS's and travel as `batterytrace:<name>` (declarations in ilmd).
_DTE_OWN = frozenset({"type", "id", "eventTime", "action", "bizStep", "disposition",
                      "bizLocation", "epcList", "quantityList", "inputEPCList", "outputEPCList",
                      "inputQuantityList", "outputQuantityList", "parentEPC", "childEPCList",
                      "sourceParty", "destinationParty", "bizTransaction", "epcis",
                      "erroneousEvent"})
_DECLARATIONS = ("lotDeclarations", "itemDeclarations")
_ILMD_ALLOWED = frozenset({"ObjectEvent", "TransformationEvent"})
_PARTY_TYPES = ("owning_party", "possessing_party")
_MAX_INDEXED_ERRORS = 100


class EpcisEventError(InputError):
    """An EPCIS event that cannot become a ledger event (its index in the document)."""

    code = "EPCIS_EVENT_UNMAPPABLE"
    title = "EPCIS event cannot be mapped to a traceability event"
    http_status = 422

    def __init__(self, index: int, reason: str) -> None:
        self.index, self.reason = index, reason
        super().__init__(f"event {index}: {reason}", index=index)


class EpcisImportError(InputError):
    """An EPCIS document with unmappable events: every one listed, nothing appended."""

    code = "EPCIS_IMPORT_REFUSED"
    title = "EPCIS document refused"
    http_status = 422

    def __init__(self, errors: Sequence[EpcisEventError]) -> None:
        self.errors = tuple(errors)
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"{len(self.errors)} event(s) cannot be mapped, nothing appended: "
                         f"{shown}{more}",
                         events=[{"index": e.index, "reason": e.reason}
                                 for e in self.errors[:_MAX_INDEXED_ERRORS]])


class EpcisDocumentError(InputError):
    """Not an EPCISDocument or EPCISQueryDocument with an event list."""

    code = "EPCIS_DOCUMENT_INVALID"
    title = "Not an EPCIS 2.0 document"


def _event_error(index: int, reason: str) -> EpcisEventError:
    return EpcisEventError(index, reason)


@dataclass(frozen=True)
class MappedEvent:
    """One imported event: the DTE event, and what the import noted (normalisations, quantities
    kept but not counted)."""

    index: int
    event: dict[str, Any]
    notes: tuple[str, ...] = field(default_factory=tuple)


# --- reading a document ---------------------------------------------------------------------


def document_events(document: Any) -> tuple[list[Any], list[Any]]:
    """The event list of an EPCISDocument or EPCISQueryDocument, and the inline entries of its
    `@context` (prefix definitions the events' extension fields need)."""
    if not isinstance(document, dict):
        raise EpcisDocumentError("an EPCIS document is a JSON object")
    body = document.get("epcisBody")
    kind = document.get("type")
    if kind == "EPCISDocument":
        events = body.get("eventList") if isinstance(body, dict) else None
    elif kind == "EPCISQueryDocument":
        results = body.get("queryResults") if isinstance(body, dict) else None
        results_body = results.get("resultsBody") if isinstance(results, dict) else None
        events = results_body.get("eventList") if isinstance(results_body, dict) else None
    else:
        raise EpcisDocumentError("type must be EPCISDocument or EPCISQueryDocument")
    if not isinstance(events, list):
        raise EpcisDocumentError(f"the {kind} has no event list")
    context = document.get("@context")
    entries = context if isinstance(context, list) else [context]
    return events, [e for e in entries if isinstance(e, dict)]


def normalize_event(event: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """An EPCIS event in the form the mapping reads, and what was changed: `action` upper
    case; CBV short names of bizStep and disposition as their URIs; a source or destination
    list given as one object as a list; an `ilmd` where EPCIS 2.0 allows none (an ObjectEvent
    other than ADD, the other kinds but TransformationEvent) kept as `batterytrace:ilmd`."""
    out = copy.deepcopy(dict(event))
    notes = []
    if isinstance(out.get("action"), str):
        out["action"] = out["action"].upper()
    for name, prefix in (("bizStep", CBV_BIZSTEP), ("disposition", CBV_DISP)):
        value = out.get(name)
        if isinstance(value, str) and value and ":" not in value:
            out[name] = prefix + value
    for name in ("sourceList", "destinationList"):
        if isinstance(out.get(name), dict):
            out[name] = [out[name]]
            notes.append(f"{name} given as one object, read as a list of one")
    kind = out.get("type")
    if "ilmd" in out and (kind not in _ILMD_ALLOWED
                          or (kind == "ObjectEvent" and out.get("action") != "ADD")):
        out[BT + "ilmd"] = out.pop("ilmd")
        notes.append("ilmd on an event EPCIS 2.0 gives none (only ADD ObjectEvents and "
                     "TransformationEvents): kept as batterytrace:ilmd")
    return out, notes


# --- EPCIS -> DTE ---------------------------------------------------------------------------


def _id_of(value: Any, where: str) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a URI")
    return value


def _is_counted(element: Mapping[str, Any]) -> bool:
    return element.get("uom") in KG_PER_UNIT and ":idpat:" not in str(element.get("epcClass"))


def _quantity_element(element: Any, where: str) -> dict[str, Any]:
    if not isinstance(element, dict) or not isinstance(element.get("epcClass"), str):
        raise ValueError(f"{where} must be an object with an epcClass")
    quantity = element.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int | float | Decimal):
        raise ValueError(f"{where}.quantity must be a number")
    return {"productId": element["epcClass"], "productName": element["epcClass"],
            "quantity": quantity, "uom": element["uom"]}


def _party(entries: Any, key: str) -> str | None:
    for wanted in _PARTY_TYPES:
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and _short(entry.get("type")) == wanted:
                value = entry.get(key)
                if isinstance(value, str):
                    return value
    return None


def _short(value: Any) -> Any:
    """A CBV code as its short name (`owning_party` for `https://ref.gs1.org/cbv/SDT-owning_party`)."""
    if isinstance(value, str) and value.startswith("https://ref.gs1.org/cbv/"):
        return value.rsplit("-", 1)[-1]
    return value


def to_dte(event: Mapping[str, Any], index: int, issuer: str,
           context: Sequence[Any] = ()) -> MappedEvent:
    """One EPCIS event as a DTE event (EpcisEventError with `index` when it cannot be)."""
    if not isinstance(event, dict):
        raise _event_error(index, "an event is a JSON object")
    raw, notes = normalize_event(event)
    kind = raw.get("type")
    if kind not in EPCIS_KINDS:
        raise _event_error(index, f"type {kind!r} is not one of {', '.join(EPCIS_KINDS)}")
    invalid = schema_errors({"@context": [EPCIS_CONTEXT_URL, *context], **raw})
    if invalid:
        raise _event_error(index, "not valid against the EPCIS 2.0 JSON Schema: " + invalid[0])
    try:
        return MappedEvent(index, _to_dte(raw, kind, issuer, context, notes), tuple(notes))
    except ValueError as exc:
        raise _event_error(index, str(exc)) from None


def _to_dte(raw: dict[str, Any], kind: str, issuer: str, context: Sequence[Any],
            notes: list[str]) -> dict[str, Any]:
    derived: list[str] = []
    declaration = raw.get("errorDeclaration")
    if isinstance(declaration, dict):
        # EPCIS 2.0: an error declaration repeats the erroneous event, its eventID
        # included; the ledger gives the declaration its own id and names the event it
        # declares erroneous (`erroneousEvent`, whose effect the custody rules reverse).
        if not isinstance(raw.get("eventID"), str):
            raise ValueError("an errorDeclaration repeats the erroneous event's eventID")
        notes.append(f"errorDeclaration: declares event {raw['eventID']} erroneous (the "
                     "ledger reverses its effect; the declaration gets its own id)")
    if isinstance(raw.get("eventID"), str) and not isinstance(declaration, dict):
        event_id = raw["eventID"]
    else:
        event_id = "urn:uuid:" + str(uuid.uuid5(_ID_NAMESPACE, canonicalize(raw).hex()))
        derived.append("id")
    if "bizLocation" in raw:
        location = _id_of(raw["bizLocation"], "bizLocation")
    elif "readPoint" in raw:
        location = _id_of(raw["readPoint"], "readPoint")
        derived.append("bizLocation")
        notes.append("no bizLocation: the readPoint is the ledger's location of the event")
    else:
        raise ValueError("neither bizLocation nor readPoint: the ledger needs where it happened")
    dte: dict[str, Any] = {"type": [kind, "Event"], "id": event_id,
                           "eventTime": raw["eventTime"]}
    if kind == "TransformationEvent":
        dte["action"] = "add"
        derived.append("action")
    else:
        dte["action"] = str(raw["action"]).lower()
    for name in ("bizStep", "disposition"):
        if isinstance(raw.get(name), str):
            dte[name] = raw[name]
    dte["bizLocation"] = location
    if isinstance(declaration, dict):
        dte["erroneousEvent"] = raw["eventID"]
    fields: dict[str, Any] = {}
    for epcis_name, dte_name in _EPC_LISTS.items():
        if epcis_name in raw:
            values = raw[epcis_name]
            if ":idpat:" in json.dumps(values):
                raise ValueError(f"{epcis_name} holds an EPC pattern: the ledger names items")
            dte[dte_name] = [{"id": _id_of(v, epcis_name), "name": _id_of(v, epcis_name)}
                             for v in values]
    for epcis_name, dte_name in _QUANTITY_LISTS.items():
        elements = raw.get(epcis_name)
        if elements is None:
            continue
        counted = [e for e in elements if isinstance(e, dict) and _is_counted(e)]
        others = [e for e in elements if not (isinstance(e, dict) and _is_counted(e))]
        if counted:
            dte[dte_name] = [_quantity_element(e, f"{epcis_name}[{i}]")
                             for i, e in enumerate(counted)]
        if others:
            fields[epcis_name] = others
            notes.append(f"{epcis_name}: {len(others)} quantity(ies) not in mass (KGM, TNE, "
                         "GRM) or by pattern, kept but not counted by the custody rules")
    if kind in ("AggregationEvent", "AssociationEvent") and "parentID" in raw:
        parent = _id_of(raw["parentID"], "parentID")
        dte["parentEPC"] = {"id": parent, "name": parent}
    if kind == "TransactionEvent":
        for side, key, dte_name in (("sourceList", "source", "sourceParty"),
                                    ("destinationList", "destination", "destinationParty")):
            party = _party(raw.get(side), key)
            if party is None:
                party = issuer
                derived.append(dte_name)
            dte[dte_name] = party
        transactions = raw.get("bizTransactionList") or []
        first = transactions[0] if transactions and isinstance(transactions[0], dict) else None
        if first is not None and isinstance(first.get("bizTransaction"), str):
            dte["bizTransaction"] = first["bizTransaction"]
    ilmd = raw.get("ilmd")
    if isinstance(ilmd, dict):
        rest = dict(ilmd)
        for name in _DECLARATIONS:
            if BT + name in rest:
                dte[name] = rest.pop(BT + name)
        if rest:
            fields["ilmd"] = rest
    for name, value in raw.items():
        if name in _MAPPED[kind] or name in ("ilmd", "readPoint") or name in fields:
            continue
        if name.startswith(BT) and name != BT + "ilmd" and name != LEDGER_FIELD:
            dte[name[len(BT):]] = value
        elif name != LEDGER_FIELD:
            fields[name] = value
    if "readPoint" in raw:
        fields["readPoint"] = raw["readPoint"]
    extension: dict[str, Any] = {"fields": fields}
    if derived:
        extension["derived"] = derived
    if context:
        extension["context"] = list(context)
    dte["epcis"] = extension
    return dte


def dte_events_of(document: Any, issuer: str) -> list[MappedEvent]:
    """Every event of an EPCIS document as a DTE event, in order; EpcisImportError listing
    every event that cannot be mapped (then none is returned)."""
    events, context = document_events(document)
    mapped, errors = [], []
    for index, event in enumerate(events):
        try:
            mapped.append(to_dte(event, index, issuer, context))
        except EpcisEventError as error:
            errors.append(error)
    if errors:
        raise EpcisImportError(errors)
    if not mapped:
        raise EpcisDocumentError("the document holds no event")
    return mapped


# --- DTE -> EPCIS ---------------------------------------------------------------------------


def _offset_of(event_time: str) -> str:
    if event_time.endswith(("Z", "z")):
        return "+00:00"
    tail = event_time[-6:]
    return tail if len(tail) == 6 and tail[0] in "+-" and tail[3] == ":" else "+00:00"


def _kind_of(event: Mapping[str, Any]) -> str:
    kinds = [k for k in EPCIS_KINDS if k in (event.get("type") or [])]
    if len(kinds) != 1:
        raise ValueError("a DTE event names exactly one event kind")
    return kinds[0]


def _ids(items: Any) -> list[str]:
    return [str(i["id"]) for i in items or [] if isinstance(i, dict) and "id" in i]


def epcis_event_of(event: Mapping[str, Any],
                   ledger_ref: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The EPCIS 2.0 event of a DTE event (built from its signed DTE fields; its `epcis`
    member adds what EPCIS defines and DTE does not, never overriding the DTE fields)."""
    kind = _kind_of(event)
    given = event.get("epcis")
    extension: Mapping[str, Any] = given if isinstance(given, dict) else {}
    fields = dict(extension.get("fields") or {})
    derived = set(extension.get("derived") or [])
    out: dict[str, Any] = {"type": kind}
    declared = event.get("erroneousEvent")
    if isinstance(declared, str):  # an error declaration repeats the erroneous eventID
        out["eventID"] = declared
        fields["errorDeclaration"] = fields.get("errorDeclaration") or {
            "declarationTime": event["eventTime"]}
    elif "id" not in derived:
        out["eventID"] = event["id"]
    out["eventTime"] = event["eventTime"]
    out["eventTimeZoneOffset"] = fields.pop("eventTimeZoneOffset", None) or _offset_of(
        str(event["eventTime"]))
    if kind != "TransformationEvent" or "action" not in derived:
        if kind != "TransformationEvent":
            out["action"] = str(event.get("action", "observe")).upper()
    for name in ("bizStep", "disposition"):
        if isinstance(event.get(name), str):
            out[name] = event[name]
    read_point = fields.pop("readPoint", None)
    if "bizLocation" in derived and _id_or_none(read_point) == event["bizLocation"]:
        out["readPoint"] = read_point
    else:
        if read_point is not None:
            out["readPoint"] = read_point
        out["bizLocation"] = {"id": event["bizLocation"]}
    for epcis_name, dte_name in _EPC_LISTS.items():
        if dte_name in event:
            out["childEPCs" if dte_name == "childEPCList" else epcis_name] = _ids(
                event[dte_name])
    for epcis_name, dte_name in _QUANTITY_LISTS.items():
        counted = [{"epcClass": q["productId"], "quantity": q["quantity"], "uom": q["uom"]}
                   for q in event.get(dte_name) or []]
        others = fields.pop(epcis_name, None) or []
        if counted or others:
            out[epcis_name] = counted + list(others)
    if isinstance(event.get("parentEPC"), dict):
        out["parentID"] = event["parentEPC"]["id"]
    if kind == "TransactionEvent":
        for side, key, dte_name in (("sourceList", "source", "sourceParty"),
                                    ("destinationList", "destination", "destinationParty")):
            given = fields.pop(side, None)
            party = event.get(dte_name)
            if dte_name in derived and given is None:
                continue
            if given is not None and _party(given, key) == party:
                out[side] = given
            elif given is not None and dte_name in derived and _party(given, key) is None:
                out[side] = given
            else:
                out[side] = [{"type": "owning_party", key: party}]
        transactions = fields.pop("bizTransactionList", None)
        signed = event.get("bizTransaction")
        if signed is not None and not any(isinstance(t, dict) and t.get("bizTransaction")
                                          == signed for t in transactions or []):
            transactions = [{"bizTransaction": signed}, *(transactions or [])]
        if not transactions:  # EPCIS requires one: the shipment this event belongs to
            shipment = event.get("shipmentEvent") or event["id"]
            transactions = [{"type": BT_NAMESPACE + "shipment", "bizTransaction": shipment}]
        out["bizTransactionList"] = transactions
    ilmd = dict(fields.pop("ilmd", None) or {})
    for name in _DECLARATIONS:
        if name in event:
            if kind in _ILMD_ALLOWED and (kind != "ObjectEvent" or out.get("action") == "ADD"):
                ilmd[BT + name] = event[name]
            else:
                out[BT + name] = event[name]
    if ilmd:
        out["ilmd"] = ilmd
    for name, value in event.items():
        if name not in _DTE_OWN and name not in _DECLARATIONS:
            out[BT + name] = value
    for name, value in fields.items():
        if name not in out and name not in _MAPPED[kind]:
            out[name] = value
    if ledger_ref is not None:
        out[LEDGER_FIELD] = dict(ledger_ref)
    return out


def _id_or_none(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else None


def epcis_document(events: Sequence[Mapping[str, Any]], creation_date: str,
                   contexts: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """An EPCISDocument of EPCIS events, its `@context` the EPCIS 2.0 context, the project's
    prefix and the inline entries the events' extension fields need (`contexts`)."""
    context: list[Any] = copy.deepcopy(EXPORT_CONTEXT)
    literals = sorted({name for event in events for name in _structured_project_members(event)})
    context[1].update({name: {"@type": "@json"} for name in literals})
    for entry in contexts:
        if entry not in context:
            context.append(dict(entry))
    return {"@context": context, "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": creation_date, "epcisBody": {"eventList": list(events)}}


def _structured_project_members(event: Mapping[str, Any]) -> set[str]:
    """`batterytrace:` members (on the event or in its ILMD) holding objects or lists: typed
    `@json` in the document's context, so JSON-LD reads them as literals."""
    found = set()
    ilmd = event.get("ilmd")
    for members in (event, ilmd if isinstance(ilmd, Mapping) else {}):
        for name, value in members.items():
            if name.startswith(BT) and name != LEDGER_FIELD and isinstance(value, dict | list):
                found.add(name)
    return found


def event_contexts(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The inline `@context` entries a DTE event imported from EPCIS carried."""
    extension = event.get("epcis")
    entries = extension.get("context") if isinstance(extension, dict) else None
    return [e for e in entries or [] if isinstance(e, dict)]


# --- comparing ------------------------------------------------------------------------------


def comparable(event: Mapping[str, Any]) -> dict[str, Any]:
    """The fields EPCIS defines of an event, normalised (`normalize_event`, EPCIS lists as
    sorted multisets, the project's `batterytrace:ledger` left out): equal for an event and
    its round trip through the ledger."""
    normalized, _ = normalize_event(event)
    out: dict[str, Any] = {}
    for name, value in normalized.items():
        if name in (LEDGER_FIELD, "@context"):
            continue
        if isinstance(value, list):
            value = sorted(value, key=lambda v: canonicalize(v))
        if isinstance(value, dict) and name in ("bizLocation", "readPoint"):
            value = {k: v for k, v in value.items()}
        out[name] = value
    return json.loads(json.dumps(out, default=str))


__all__ = ["BT_NAMESPACE", "EPCIS_KINDS", "EXPORT_CONTEXT", "LEDGER_FIELD", "EpcisDocumentError",
           "EpcisEventError", "EpcisImportError", "MappedEvent", "comparable", "document_events",
           "dte_events_of", "epcis_document", "epcis_event_of", "event_contexts",
           "normalize_event", "to_dte"]
