"""Provenance of a battery from a verified bundle: sources, shares, route and lifecycle.

`trace_provenance` is a second pass over a bundle that `verify_bundle` already accepted (it
checks no signature and no custody rule again). It replays the events in log order and gives
every lot and item a *profile*: per element, the share of its mass attributed to each source.

- An extraction makes a source (one per extracted lot: its mine site, country, operator).
- A transformation pools the element mass of its inputs (a consumed lot brings the shares of
  the lot; a consumed item the shares of everything assembled into it at that moment) and
  gives every output the pooled shares, element by element. Under `segregated` custody the
  inputs of the event are exactly what the output is made of, so the shares are exact; under
  `massBalance` they are an allocation by element mass (commingling). Each source remembers the
  custody models, countries and operators of the transformations it went through.
- A recycling transformation (bizStep recycling) is a boundary: its recovered-material lots
  start a *recycled* source at the recycling plant, so recycled mass is counted once, as
  recycled, and source masses of an element add up to its mass in the battery.

The battery's element masses are those of its assembly when placed on the market (or, if it
never was, just before its first disassembly, else at the end of the bundle). Details:
docs/provenance.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from batterytrace.credentials.domain_models import MATERIAL_SYMBOL
from batterytrace.ledger.bundle_format import CREDENTIAL, ENTRY
from batterytrace.ledger.custody_graph import CustodyGraph, reachable
from batterytrace.ledger.events import BizStep, TraceEvent, parse_credential
from batterytrace.ledger.registry import participant_did

from .bundle import Header, Record, read_bundle
from .errors import (
    ProvenanceSubjectError,
)

Share = float
# A transformation a source went through: (custody model, facility country, operator DID).
Step = tuple[str, str, str]
# element -> source key -> [share, steps]
Profile = dict[str, dict[str, tuple[Share, frozenset[Step]]]]

IRMA_LEVELS = ("IRMA Transparency", "IRMA 50", "IRMA 75", "IRMA 100")
SOH_SENSOR = "stateOfHealth"
ARTISANAL = frozenset({"artisanal", "artisanal-small-scale", "asm", "small-scale"})
USE_STEPS = frozenset({BizStep.SENSOR_REPORTING, BizStep.INSPECTING, BizStep.REPAIRING,
                       BizStep.INSTALLING})
END_OF_LIFE_STEPS = frozenset({BizStep.REMOVING, BizStep.COLLECTING, BizStep.REPURPOSING,
                               BizStep.DISASSEMBLING, BizStep.DESTROYING})


@dataclass(frozen=True)
class Provenance:
    """What a bundle says about one battery (or lot). `to_json()` is the stable form."""

    data: Mapping[str, Any] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        import copy

        return copy.deepcopy(dict(self.data))

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


@dataclass
class _Source:
    key: str
    site: str
    seq: int
    received: str
    recycled: bool = False
    lot: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Item:
    mass: float
    composition: dict[str, float]
    profile: Profile
    children: list[str] = field(default_factory=list)
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Tracer:
    """The replay state of one pass."""

    public_url: str = ""
    facilities: dict[str, dict[str, Any]] = field(default_factory=dict)
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    lots: dict[str, tuple[dict[str, float], Profile, Mapping[str, Any], float]] = field(
        default_factory=dict)
    items: dict[str, _Item] = field(default_factory=dict)
    sources: dict[str, _Source] = field(default_factory=dict)
    graph: CustodyGraph = field(default_factory=CustodyGraph)
    received: dict[int, str] = field(default_factory=dict)
    revoked: dict[str, int] = field(default_factory=dict)  # credential id -> position
    suspended: dict[str, int] = field(default_factory=dict)  # in force at the checkpoint
    events: list[tuple[int, TraceEvent, Mapping[str, Any]]] = field(default_factory=list)
    credentials: list[Mapping[str, Any]] = field(default_factory=list)
    frozen: dict[str, float] | None = None
    frozen_profile: Profile | None = None


# --- profiles -------------------------------------------------------------------------------


def _add(pool: dict[str, dict[str, list[Any]]], element: str, kg: float, profile: Profile) -> None:
    shares = profile.get(element)
    if not shares or kg <= 0:
        return
    into = pool.setdefault(element, {})
    for key, (share, steps) in shares.items():
        slot = into.get(key)
        if slot is None:
            into[key] = [kg * share, steps]
        else:
            slot[0] += kg * share
            slot[1] = slot[1] | steps


def _normalised(pool: Mapping[str, Mapping[str, list[Any]]], step: Step | None) -> Profile:
    out: Profile = {}
    for element, shares in pool.items():
        total = sum(v[0] for v in shares.values())
        if total <= 0:
            continue
        extra = frozenset((step,)) if step else frozenset()
        out[element] = {k: (v[0] / total, v[1] | extra) for k, v in shares.items()}
    return out


def _item_pool(tracer: _Tracer, item_id: str) -> dict[str, dict[str, list[Any]]]:
    """Element masses of an item and everything assembled into it, by source."""
    pool: dict[str, dict[str, list[Any]]] = {}
    stack = [item_id]
    while stack:
        item = tracer.items.get(stack.pop())
        if item is None:
            continue
        for element, fraction in item.composition.items():
            _add(pool, element, item.mass * fraction, item.profile)
        stack.extend(item.children)
    return pool


def _merge(pool: dict[str, dict[str, list[Any]]], other: Mapping[str, Mapping[str, list[Any]]]
           ) -> None:
    for element, shares in other.items():
        into = pool.setdefault(element, {})
        for key, (kg, steps) in shares.items():
            slot = into.get(key)
            if slot is None:
                into[key] = [kg, steps]
            else:
                slot[0] += kg
                slot[1] = slot[1] | steps


# --- the pass -------------------------------------------------------------------------------


def trace_provenance(lines: Iterable[bytes], subject: str | None = None) -> Provenance:
    """The provenance of `subject` (default: the bundle's subject) from a bundle's raw lines.

    Call it on a bundle `verify_bundle` accepted: this pass trusts what it reads. Raises
    BundleFormatError (exit 2) for a malformed bundle and ProvenanceSubjectError when the
    bundle never names the subject."""
    tracer = _Tracer()
    header: Header | None = None
    for record in read_bundle(lines):
        if isinstance(record, Header):
            header = record
            subject = subject or record.subject
        elif isinstance(record, Record) and record.type == ENTRY:
            _entry(tracer, record.data["entry"], subject)
        elif isinstance(record, Record) and record.type == CREDENTIAL:
            tracer.credentials.append(record.data["credential"])
    assert header is not None
    if subject is None:
        raise ProvenanceSubjectError("an `all` bundle has no subject: name one with --subject")
    if subject not in tracer.graph.known:
        raise ProvenanceSubjectError(f"no event of the bundle names {subject}", subject=subject)
    return Provenance(_build(tracer, subject))


def _entry(tracer: _Tracer, entry: Mapping[str, Any], subject: str | None) -> None:
    kind, doc, seq = entry.get("kind"), entry.get("document") or {}, entry.get("seq")
    if not isinstance(seq, int):
        return  # the verifier checked every entry before; nothing to trace without a seq
    tracer.received[seq] = entry.get("received", "")
    if kind == "genesis":
        tracer.public_url = doc.get("publicUrl", "")
    elif kind == "registry":
        _registry(tracer, doc)
    elif kind == "anchor" and isinstance(doc.get("credentialId"), str):
        action, credential_id = doc.get("action"), doc["credentialId"]
        if action == "revocation":
            tracer.revoked.setdefault(credential_id, seq)
        elif action == "suspension":
            tracer.suspended[credential_id] = seq
        elif action == "reinstatement":
            tracer.suspended.pop(credential_id, None)
    elif kind == "event":
        credential = parse_credential(doc, check_schema=False)
        raw = doc.get("credentialSubject") or []
        for event, raw_event in zip(credential.events, raw, strict=False):
            tracer.graph.add(event)
            tracer.events.append((seq, event, raw_event))
            _event(tracer, event, seq, subject, raw_event)


def _registry(tracer: _Tracer, doc: Mapping[str, Any]) -> None:
    if doc.get("type") == "FacilityRegistration" and isinstance(doc.get("id"), str):
        tracer.facilities.setdefault(doc["id"], dict(doc))
    elif doc.get("type") == "ParticipantRegistration" and isinstance(doc.get("name"), str):
        did = doc.get("id") or participant_did(tracer.public_url, doc["name"])
        tracer.participants.setdefault(did, dict(doc))


def _fraction(composition: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in composition.items()}


def _step(tracer: _Tracer, event: TraceEvent) -> Step:
    site = tracer.facilities.get(event.biz_location, {})
    return (event.custody_model or "segregated", site.get("country", ""),
            site.get("operator", ""))


def _event(tracer: _Tracer, event: TraceEvent, seq: int, subject: str | None,
           raw: Mapping[str, Any]) -> None:
    if event.kind == "ObjectEvent" and event.action == "add":
        for q in event.quantities:  # extraction: each lot is a source
            declaration = next((d for d in event.lots if d.lot == q.lot), None)
            composition = _fraction(declaration.composition) if declaration else {}
            details = declaration.details if declaration else {}
            tracer.sources[q.lot] = _Source(q.lot, event.biz_location, seq,
                                            tracer.received.get(seq, ""), lot=q.lot,
                                            details=details)
            first: Profile = {e: {q.lot: (1.0, frozenset())} for e in composition}
            tracer.lots[q.lot] = (composition, first, details, float(q.kg))
        return
    if event.kind == "ObjectEvent" and event.biz_step == BizStep.RETAIL_SELLING:
        if subject is not None and tracer.frozen is None and _touches(tracer, event, subject):
            _freeze(tracer, subject)
        return
    if event.kind in ("AggregationEvent", "AssociationEvent"):
        _assembly(tracer, event, subject)
        return
    if event.kind == "TransformationEvent":
        _transformation(tracer, event, seq, raw)


def _touches(tracer: _Tracer, event: TraceEvent, subject: str) -> bool:
    """Whether the event names the subject or an item the subject sits in (now)."""
    named = set(event.epcs)
    node: str | None = subject
    while node is not None:
        if node in named:
            return True
        node = _parent(tracer, node)
    return False


def _parent(tracer: _Tracer, item_id: str) -> str | None:
    for parent in tracer.graph.containers.get(item_id, ()):
        item = tracer.items.get(parent)
        if item is not None and item_id in item.children:
            return parent
    return None


def _freeze(tracer: _Tracer, subject: str) -> None:
    """Keep the subject's element masses as they are now (placing on the market)."""
    pool = _subject_pool(tracer, subject)
    tracer.frozen = {e: sum(v[0] for v in s.values()) for e, s in pool.items()}
    tracer.frozen_profile = _normalised(pool, None)


def _subject_pool(tracer: _Tracer, subject: str) -> dict[str, dict[str, list[Any]]]:
    if subject in tracer.items:
        return _item_pool(tracer, subject)
    lot = tracer.lots.get(subject)
    pool: dict[str, dict[str, list[Any]]] = {}
    if lot is not None:  # a lot: as created
        for element, fraction in lot[0].items():
            _add(pool, element, lot[3] * fraction, lot[1])
    return pool


def _assembly(tracer: _Tracer, event: TraceEvent, subject: str | None) -> None:
    parent = tracer.items.get(event.parent or "")
    if parent is None:
        return
    if event.action == "add":
        parent.children.extend(c for c in event.children if c not in parent.children)
    elif event.action == "delete":
        removed = list(event.children) or list(parent.children)
        if subject is not None and tracer.frozen is None and _within(tracer, event.parent,
                                                                     subject):
            _freeze(tracer, subject)  # the battery as it was before its first disassembly
        parent.children = [c for c in parent.children if c not in removed]


def _within(tracer: _Tracer, node: str | None, subject: str) -> bool:
    while node is not None:
        if node == subject:
            return True
        node = _parent(tracer, node)
    return False


def _transformation(tracer: _Tracer, event: TraceEvent, seq: int, raw: Mapping[str, Any]
                    ) -> None:
    pool: dict[str, dict[str, list[Any]]] = {}
    for q in event.input_quantities:
        lot = tracer.lots.get(q.lot)
        if lot is None:
            continue  # outside the closure: verify_bundle made sure it is not upstream
        for element, fraction in lot[0].items():
            _add(pool, element, float(q.kg) * fraction, lot[1])
    for item_id in event.input_items:
        _merge(pool, _item_pool(tracer, item_id))
    if event.biz_step == BizStep.RECYCLING:
        key = f"recycled:{event.id}"
        tracer.sources[key] = _Source(key, event.biz_location, seq, tracer.received.get(seq, ""),
                                      recycled=True)
        elements = ({e for lot in event.lots for e in lot.composition}
                    | {e for item in event.items for e in item.composition})
        profile: Profile = {e: {key: (1.0, frozenset())} for e in elements}
    else:
        profile = _normalised(pool, _step(tracer, event))
    for q in event.output_quantities:
        declaration = next((d for d in event.lots if d.lot == q.lot), None)
        composition = _fraction(declaration.composition) if declaration else {}
        tracer.lots[q.lot] = (composition, profile, declaration.details if declaration else {},
                              float(q.kg))
    for item_id in event.output_items:
        spec = next((d for d in event.items if d.item == item_id), None)
        if spec is None:
            continue
        tracer.items[item_id] = _Item(float(spec.mass_kg), _fraction(spec.composition), profile,
                                      details={**_model_details(raw), **spec.details})


def _model_details(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Model and chemistry declared on a production event (apply to every item it makes)."""
    return {k: raw[k] for k in ("model", "batteryModel", "cellModel", "chemistry") if k in raw}


# --- the provenance document ---------------------------------------------------------------


def _types(credential: Mapping[str, Any]) -> list[str]:
    types = credential.get("type")
    return [t for t in (types if isinstance(types, list) else [types]) if isinstance(t, str)]


def _subject(credential: Mapping[str, Any]) -> dict[str, Any]:
    subject = credential.get("credentialSubject")
    subject = subject[0] if isinstance(subject, list) and subject else subject
    return subject if isinstance(subject, dict) else {}


def _of_type(tracer: _Tracer, name: str, ids: set[str] | None = None, *,
             in_force: bool = True) -> list[Mapping[str, Any]]:
    """The bundle's credentials of a type (about `ids`); by default only those in force at
    the checkpoint: a revoked or suspended credential is evidence for nothing."""
    return [c for c in tracer.credentials if name in _types(c)
            and (ids is None or _subject(c).get("id") in ids)
            and not (in_force and _not_in_force(tracer, c))]


def _not_in_force(tracer: _Tracer, credential: Mapping[str, Any]) -> bool:
    credential_id = str(credential.get("id"))
    return credential_id in tracer.revoked or credential_id in tracer.suspended


def _standing(tracer: _Tracer) -> list[dict[str, Any]]:
    """The credentials of the bundle not in force at its checkpoint, with the position."""
    out = []
    for credential in tracer.credentials:
        credential_id = str(credential.get("id"))
        for status, table in (("REVOKED", tracer.revoked), ("SUSPENDED", tracer.suspended)):
            if credential_id in table:
                out.append({"id": credential_id, "types": _types(credential),
                            "status": status, "since": table[credential_id]})
                break
    return out


def _round(value: float) -> float:
    """Nine significant digits: float noise off, small masses (grams of a cell) kept."""
    return float(f"{value:.9g}") + 0.0


def _irma_level(tracer: _Tracer, source: _Source) -> tuple[str | None, str | None]:
    """The IRMA level (and credential id) of the source's mine site valid at its extraction:
    validity window, certification period and no revocation anchored by then; the latest
    audit wins (a surveillance or recertification audit supersedes the earlier one)."""
    when = parse_day(source.received)
    best: tuple[str, str, str] | None = None
    # Judged at the extraction (its own revocation test below), not at the checkpoint.
    for credential in _of_type(tracer, "IRMAAuditCredential", {source.site}, in_force=False):
        subject = _subject(credential)
        start, end = parse_day(credential.get("validFrom")), parse_day(credential.get("validUntil"))
        period = subject.get("certificationPeriod") or {}
        p_start, p_end = parse_day(period.get("startDate")), parse_day(period.get("endDate"))
        revoked = tracer.revoked.get(str(credential.get("id")))
        if when is None or (start and when < start) or (end and when > end) or (
                p_start and when < p_start) or (p_end and when > p_end) or (
                revoked is not None and revoked <= source.seq):
            continue
        key = (str(credential.get("validFrom", "")), str(subject.get("achievementLevel")),
               str(credential.get("id")))
        if best is None or key > best:
            best = key
    return (best[1], best[2]) if best else (None, None)


def _origin(tracer: _Tracer, lot: str | None) -> dict[str, Any]:
    found = _of_type(tracer, "MineralOriginCredential", {lot} if lot else set())
    return _subject(found[-1]) if found else {}


def _source_facts(tracer: _Tracer, source: _Source) -> dict[str, Any]:
    site = tracer.facilities.get(source.site, {})
    operator = site.get("operator", "")
    party = tracer.participants.get(operator, {})
    origin = _origin(tracer, source.lot)
    method = str(source.details.get("extractionMethod") or origin.get("productionType") or "")
    artisanal = not source.recycled and (
        method.lower() in ARTISANAL or "artisanal-cooperative" in party.get("roles", ()))
    high_risk = bool(origin.get("conflictAffectedHighRiskArea") or source.details.get(
        "conflictAffectedHighRiskArea") or source.details.get("highRiskArea"))
    resolution = next((str(source.details[k]) for k in ("legalStatus", "riskMitigation",
                                                         "riskAssessment")
                       if source.details.get(k)), None)
    level, audit = (None, None) if source.recycled else _irma_level(tracer, source)
    return {
        "site": source.site, "site_name": site.get("name", source.site), "operator": operator,
        "operator_name": party.get("legalName", operator), "country": site.get("country", ""),
        "artisanal": artisanal, "recycled": source.recycled, "irma_level": level,
        "irma_credential": audit, "high_risk": high_risk, "risk_resolution": resolution,
    }


_GROUP = ("site", "irma_level", "artisanal", "recycled", "high_risk", "risk_resolution")


def _elements(tracer: _Tracer, pool: Mapping[str, Mapping[str, list[Any]]]
              ) -> dict[str, Any]:
    facts = {key: _source_facts(tracer, src) for key, src in tracer.sources.items()}
    out: dict[str, Any] = {}
    for element in sorted(pool):
        shares = pool[element]
        total = sum(v[0] for v in shares.values())
        if total <= 0:
            continue
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        for key, (kg, steps) in shares.items():
            fact = facts[key]
            group = groups.setdefault(tuple(fact[k] for k in _GROUP), {
                **fact, "mass_kg": 0.0, "steps": set(), "lots": []})
            group["mass_kg"] += kg
            group["steps"] |= steps
            if tracer.sources[key].lot:
                group["lots"].append(tracer.sources[key].lot)
        sources = []
        for group in sorted(groups.values(), key=lambda g: (-g["mass_kg"], g["site"])):
            steps = group.pop("steps")
            sources.append({
                **group, "mass_kg": _round(group["mass_kg"]),
                "share": _round(group["mass_kg"] / total),
                "custody_models": sorted({s[0] for s in steps}),
                "processed_in": sorted({s[1] for s in steps if s[1]}),
                "processors": sorted({s[2] for s in steps if s[2]}),
                # legal names too: a policy's entity lists name companies, not DIDs
                "processor_names": sorted({_legal_name(tracer, s[2]) for s in steps if s[2]}),
                "lots": sorted(group["lots"]),
            })
        recycled = sum(s["mass_kg"] for s in sources if s["recycled"])
        artisanal = sum(s["mass_kg"] for s in sources if s["artisanal"])
        out[element] = {"mass_kg": _round(total), "recycled_mass_kg": _round(recycled),
                        "recycled_share": _round(recycled / total),
                        "artisanal_share": _round(artisanal / total), "sources": sources}
    return out


def _legal_name(tracer: _Tracer, did: str) -> str:
    return str(tracer.participants.get(did, {}).get("legalName") or did)


def _names(tracer: _Tracer, subject: str) -> tuple[set[str], set[str]]:
    """The subject with its components ever, and the items it was ever assembled into."""
    parts = reachable([subject], tracer.graph.components)
    containers = reachable([subject], tracer.graph.containers) - {subject}
    return parts, containers


def _event_names(event: TraceEvent) -> set[str]:
    names = {*event.epcs, *event.input_items, *event.output_items, *event.children}
    names |= {q.lot for q in (*event.quantities, *event.input_quantities,
                              *event.output_quantities)}
    if event.parent:
        names.add(event.parent)
    return names


def _route(tracer: _Tracer, related: set[str]) -> list[dict[str, Any]]:
    route = []
    for seq, event, _raw in tracer.events:
        if event.biz_step != BizStep.SHIPPING or not _event_names(event) & related:
            continue
        transport = event.transport
        origin = tracer.facilities.get(transport.origin if transport else event.biz_location, {})
        target = tracer.facilities.get(transport.destination, {}) if transport else {}
        roles = tracer.participants.get(target.get("operator", ""), {}).get("roles", ())
        route.append({
            "seq": seq, "time": transport.dispatch_time if transport else event.event_time,
            "biz_step": "shipping", "from_country": origin.get("country"),
            "to_country": target.get("country"), "mode": transport.mode if transport else None,
            "purpose": transport.purpose if transport else None, "waste": event.waste,
            "from_site": origin.get("id"), "to_site": target.get("id"),
            "to_recycler": "recycler" in roles, "to_roles": sorted(roles),
        })
    return route


def _soh_readings(raw: Mapping[str, Any]) -> list[tuple[str, float]]:
    readings = []
    for element in raw.get("sensorElementList") or ():
        for report in (element or {}).get("sensorReport") or ():
            if str(report.get("sensorType", "")).endswith(SOH_SENSOR) and isinstance(
                    report.get("value"), (int, float)):
                readings.append((str(report.get("time", raw.get("eventTime", ""))),
                                 float(report["value"])))
    return readings


def _decision(event: TraceEvent, raw: Mapping[str, Any], removed: bool) -> str | None:
    declared = raw.get("routingDecision")
    if declared in ("reuse", "repurpose", "recycle"):
        return str(declared)
    if event.biz_step == BizStep.REPURPOSING:
        return "reuse" if raw.get("newApplication") in ("vehicle", "ev") else "repurpose"
    if event.biz_step == BizStep.INSTALLING and removed:
        return "reuse"
    if event.biz_step == BizStep.RECYCLING or (
            event.transport is not None and event.transport.purpose == "recycling"):
        return "recycle"
    return None


def _lifecycle(tracer: _Tracer, subject: str, parts: set[str], names: set[str]
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    stages: dict[str, Any] = {k: False for k in ("production", "sale", "use", "end_of_life",
                                                 "recycling")}
    readings: list[dict[str, Any]] = []
    routing: list[dict[str, Any]] = []
    sale_time: str | None = None
    removed = False

    def mark(stage: str, seq: int) -> None:
        if stages[stage] is False:
            stages[stage] = seq

    for seq, event, raw in tracer.events:
        named = _event_names(event)
        if not named & names:
            continue
        step = event.biz_step
        if event.kind == "TransformationEvent" and set(event.output_items) & parts:
            mark("production", seq)
        if step == BizStep.RETAIL_SELLING:
            mark("sale", seq)
            sale_time = sale_time or event.event_time
        if step in USE_STEPS and stages["sale"] is not False:
            mark("use", seq)
        if step in END_OF_LIFE_STEPS or event.waste:
            if step != BizStep.DISASSEMBLING or stages["sale"] is not False:
                mark("end_of_life", seq)
        if step == BizStep.REMOVING:
            removed = True
        if event.kind == "TransformationEvent" and step == BizStep.RECYCLING and (
                set(event.input_items) & parts or {q.lot for q in event.input_quantities} & parts):
            mark("recycling", seq)
        for when, value in _soh_readings(raw):
            readings.append({"value": value, "time": when, "seq": seq})
            mark("use", seq)
        decision = _decision(event, raw, removed)
        if decision is not None and (decision != "recycle" or stages["sale"] is not False):
            before = [r for r in readings if r["seq"] <= seq]
            latest = max(before, key=lambda r: r["time"]) if before else None
            routing.append({"seq": seq, "time": event.event_time, "decision": decision,
                            "state_of_health": latest["value"] if latest else None})
    soh = max(readings, key=lambda r: r["time"]) if readings else None
    extra = {"state_of_health": {"value": soh["value"], "time": soh["time"]} if soh else None,
             "state_of_health_readings": readings, "second_life": routing,
             "placed_on_market": str(parse_day(sale_time)) if sale_time else None}
    return stages, extra


def _carbon(tracer: _Tracer, names: set[str], model: str | None) -> dict[str, Any] | None:
    """The footprint declared for the battery itself, else for its model (by model name):
    never another model's declaration that happens to travel in the same bundle."""
    found = _of_type(tracer, "CarbonFootprintCredential", names) or [
        c for c in _of_type(tracer, "CarbonFootprintCredential")
        if model and _subject(c).get("batteryModelName") == model]
    if not found:
        return None
    s = _subject(found[-1])
    plant = s.get("manufacturingPlant") or {}
    return {"value": s.get("batteryCarbonFootprint"), "unit": s.get("declaredUnit",
                                                                    "kgCO2e/kWh"),
            "class": s.get("carbonFootprintPerformanceClass"), "model": s.get("batteryModelName"),
            "plant": plant.get("id"), "plant_name": plant.get("name"),
            "rules": s.get("calculationRules"), "credential": found[-1].get("id")}


def _recycled_content(tracer: _Tracer, names: set[str], elements: Mapping[str, Any]
                      ) -> dict[str, Any]:
    found = _of_type(tracer, "RecycledContentCredential", names)
    claimed = None
    backing: list[str] = []
    if found:
        s = _subject(found[-1])
        claimed = {MATERIAL_SYMBOL.get(r.get("recycledMaterial"), r.get("recycledMaterial")):
                   _round((r.get("preConsumerShare", 0) + r.get("postConsumerShare", 0)) / 100)
                   for r in s.get("recycledContent") or ()}
        backing = list(s.get("backingLots") or ())
    recovered = {lot for e in elements.values() for src in e["sources"] if src["recycled"]
                 for lot in src["lots"]}
    recovered |= {lot for lot, v in tracer.lots.items() if v[1] and all(
        k.startswith("recycled:") for shares in v[1].values() for k in shares)}
    return {"claimed": claimed,
            "computed": {e: v["recycled_share"] for e, v in elements.items()},
            "credential": found[-1].get("id") if found else None,
            "backing_lots": backing,
            "backing_lots_in_history": sorted(set(backing) & recovered)}


def _efficiency(tracer: _Tracer) -> list[dict[str, Any]]:
    out = []
    for credential in _of_type(tracer, "RecyclingEfficiencyCredential"):
        s = _subject(credential)
        period = s.get("reportingPeriod") or {}
        out.append({"facility": s.get("id"), "credential": credential.get("id"),
                    "period": [period.get("startDate"), period.get("endDate")],
                    "recycling_efficiency": s.get("recyclingEfficiency"),
                    "material_recovery": {MATERIAL_SYMBOL.get(r.get("material"),
                                                              r.get("material")):
                                          r.get("recoveryRate")
                                          for r in s.get("materialRecovery") or ()}})
    return out


def _model(tracer: _Tracer, subject: str, parts: set[str], names: set[str]
           ) -> dict[str, Any] | None:
    model: dict[str, Any] = {}
    for credential in _of_type(tracer, "BatteryPassportCredential", names):
        s = _subject(credential)
        model.update({"name": (s.get("product") or {}).get("name"),
                      "chemistry": (s.get("batteryChemistry") or {}).get("shortName"),
                      "category": s.get("batteryCategory")})
    for part in sorted(parts, key=lambda p: p != subject):
        item = tracer.items.get(part)
        if item is None:
            continue
        details = item.details
        model.setdefault("name", details.get("model") or details.get("batteryModel")
                         or details.get("cellModel"))
        model.setdefault("chemistry", details.get("chemistry"))
    model = {k: v for k, v in model.items() if v}
    return model or None


def _passport_fields(tracer: _Tracer, names: set[str], data: Mapping[str, Any]) -> list[str]:
    """Names of the fields the bundle's credentials and events give about the battery (the
    subjects' keys, nested keys of `product`, and what the ledger itself shows)."""
    available: set[str] = set()
    for kind in ("BatteryPassportCredential", "CarbonFootprintCredential",
                 "RecycledContentCredential"):
        for credential in _of_type(tracer, kind, names):
            s = _subject(credential)
            available |= set(s)
            available |= {f"product.{k}" for k in s.get("product") or {}}
    if _of_type(tracer, "DueDiligenceCredential"):
        available.add("dueDiligenceCredential")
    if data["elements"]:
        available.add("batteryMaterials")
    if data["state_of_health"]:
        available.add("stateOfHealth")
    if data["placed_on_market"]:
        available.add("puttingIntoService")
    if any(data["lifecycle"].values()):
        available.add("batteryStatus")
    return sorted(available)


def _build(tracer: _Tracer, subject: str) -> dict[str, Any]:
    pool = _subject_pool(tracer, subject)
    if tracer.frozen_profile is not None and tracer.frozen is not None:
        pool = {e: {k: [share * tracer.frozen[e], steps] for k, (share, steps) in s.items()}
                for e, s in tracer.frozen_profile.items()}
    elements = _elements(tracer, pool)
    total = sum(e["mass_kg"] for e in elements.values())
    countries: dict[str, float] = {}
    artisanal = 0.0
    for element in elements.values():
        for source in element["sources"]:
            countries[source["country"]] = countries.get(source["country"], 0.0) + source[
                "mass_kg"]
            artisanal += source["mass_kg"] if source["artisanal"] else 0.0
    parts, containers = _names(tracer, subject)
    names = parts | containers
    stages, extra = _lifecycle(tracer, subject, parts, names)
    data: dict[str, Any] = {
        "subject": subject,
        "elements": elements,
        "countries": {c: _round(kg / total) for c, kg in sorted(countries.items())} if total
        else {},
        "artisanal_share": _round(artisanal / total) if total else 0.0,
        "route": _route(tracer, tracer.graph.closure(subject)),
        "lifecycle": stages,
        "carbon_footprint": None,  # below: it needs the model
        "recycled_content": _recycled_content(tracer, names, elements),
        "recycling_efficiency": _efficiency(tracer),
        "model": _model(tracer, subject, parts, names),
        **extra,
    }
    data["carbon_footprint"] = _carbon(tracer, names, (data["model"] or {}).get("name"))
    passports = _of_type(tracer, "BatteryPassportCredential", names)
    data["passport_credential"] = passports[-1].get("id") if passports else None
    data["passport_fields"] = _passport_fields(tracer, names, data)
    data["not_in_force"] = _standing(tracer)
    return data


def _render(data: Mapping[str, Any], console: Any) -> None:
    from rich.table import Table

    console.print(f"[bold]Provenance of[/] {data['subject']}", highlight=False)
    model = data.get("model") or {}
    if model:
        console.print("model: " + ", ".join(f"{k} {v}" for k, v in model.items()),
                      highlight=False)
    table = Table("element", "kg", "site", "country", "share", "IRMA", "artisanal", "custody")
    for symbol, element in data["elements"].items():
        for i, source in enumerate(element["sources"]):
            table.add_row(symbol if i == 0 else "", f"{element['mass_kg']:.4g}" if i == 0 else "",
                          ("recycled at " if source["recycled"] else "") + source["site_name"],
                          source["country"], f"{source['share']:.1%}",
                          source["irma_level"] or "-", "yes" if source["artisanal"] else "",
                          ", ".join(source["custody_models"]))
    console.print(table)
    console.print("countries: " + ", ".join(f"{c} {s:.1%}" for c, s in data["countries"].items())
                  + f"; artisanal {data['artisanal_share']:.1%}", highlight=False)
    if data["route"]:
        route = Table("seq", "time", "from", "to", "mode", "purpose")
        for leg in data["route"]:
            route.add_row(str(leg["seq"]), leg["time"], leg["from_country"] or "?",
                          leg["to_country"] or "?", leg["mode"] or "",
                          (leg["purpose"] or "") + (" (waste)" if leg["waste"] else ""))
        console.print(route)
    console.print("lifecycle: " + ", ".join(
        f"{k} {'entry ' + str(v) if v is not False else 'no'}"
        for k, v in data["lifecycle"].items()), highlight=False)
    cf = data["carbon_footprint"]
    if cf:
        console.print(f"carbon footprint: {cf['value']} {cf['unit']} (class {cf['class']}, "
                      f"{cf['model']} at {cf['plant_name'] or cf['plant']})", highlight=False)
    rc = data["recycled_content"]
    console.print(f"recycled content: claimed {rc['claimed']}, computed {rc['computed']}",
                  highlight=False)
    if data["state_of_health"]:
        soh = data["state_of_health"]
        console.print(f"state of health: {soh['value']} % at {soh['time']}", highlight=False)
    console.print(f"placed on the market: {data['placed_on_market'] or 'not recorded'}",
                  highlight=False)


def render_provenance(p: Provenance, console: Any) -> None:
    """Print a provenance with rich tables (rich is imported here)."""
    _render(p.to_json(), console)


def parse_day(value: Any) -> date | None:
    """The date of an ISO date or date-time string (None when absent or unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None


__all__ = ["IRMA_LEVELS", "Provenance", "ProvenanceSubjectError", "parse_day",
           "render_provenance", "trace_provenance"]
