"""The provenance document of a subject, built from the replay state of a pass.

`build_facts` turns a `Tracer` (provenance_profiles) into the facts `Provenance` holds: per
element its sources (IRMA level at extraction, origin, artisanal and high-risk flags,
custody models), countries, route, lifecycle and state of health, carbon footprint, recycled
content, recycling efficiency, model, passport fields and the credentials not in force.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from batterytrace.credentials.domain_blocks import MATERIAL_SYMBOL
from batterytrace.ledger.custody_graph import reachable
from batterytrace.ledger.events import BizStep, TraceEvent

from .provenance_profiles import Source, Tracer, subject_pool

IRMA_LEVELS = ("IRMA Transparency", "IRMA 50", "IRMA 75", "IRMA 100")
SOH_SENSOR = "stateOfHealth"
ARTISANAL = frozenset({"artisanal", "artisanal-small-scale", "asm", "small-scale"})
USE_STEPS = frozenset({BizStep.SENSOR_REPORTING, BizStep.INSPECTING, BizStep.REPAIRING,
                       BizStep.INSTALLING})
END_OF_LIFE_STEPS = frozenset({BizStep.REMOVING, BizStep.COLLECTING, BizStep.REPURPOSING,
                               BizStep.DISASSEMBLING, BizStep.DESTROYING})


def credential_types(credential: Mapping[str, Any]) -> list[str]:
    """The type names of a credential (`type` a string or a list)."""
    types = credential.get("type")
    return [t for t in (types if isinstance(types, list) else [types]) if isinstance(t, str)]


def credential_subject(credential: Mapping[str, Any]) -> dict[str, Any]:
    """The (first) subject of a credential, {} when it has none."""
    subject = credential.get("credentialSubject")
    subject = subject[0] if isinstance(subject, list) and subject else subject
    return subject if isinstance(subject, dict) else {}


def _of_type(tracer: Tracer, name: str, ids: set[str] | None = None, *,
             in_force: bool = True) -> list[Mapping[str, Any]]:
    """The bundle's credentials of a type (about `ids`); by default only those in force at
    the checkpoint: a revoked or suspended credential is evidence for nothing."""
    return [c for c in tracer.credentials if name in credential_types(c)
            and (ids is None or credential_subject(c).get("id") in ids)
            and not (in_force and _not_in_force(tracer, c))]


def _not_in_force(tracer: Tracer, credential: Mapping[str, Any]) -> bool:
    credential_id = str(credential.get("id"))
    return credential_id in tracer.revoked or credential_id in tracer.suspended


def _standing(tracer: Tracer) -> list[dict[str, Any]]:
    """The credentials of the bundle not in force at its checkpoint, with the position."""
    out = []
    for credential in tracer.credentials:
        credential_id = str(credential.get("id"))
        for status, table in (("REVOKED", tracer.revoked), ("SUSPENDED", tracer.suspended)):
            if credential_id in table:
                out.append({"id": credential_id, "types": credential_types(credential),
                            "status": status, "since": table[credential_id]})
                break
    return out


def _round(value: float) -> float:
    """Nine significant digits: float noise off, small masses (grams of a cell) kept."""
    return float(f"{value:.9g}") + 0.0


def _irma_level(tracer: Tracer, source: Source) -> tuple[str | None, str | None]:
    """The IRMA level (and credential id) of the source's mine site valid at its extraction:
    validity window, certification period and no revocation anchored by then; the latest
    audit wins (a surveillance or recertification audit supersedes the earlier one)."""
    when = parse_day(source.received)
    best: tuple[str, str, str] | None = None
    # Judged at the extraction (its own revocation test below), not at the checkpoint.
    for credential in _of_type(tracer, "IRMAAuditCredential", {source.site}, in_force=False):
        subject = credential_subject(credential)
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


def _origin(tracer: Tracer, lot: str | None) -> dict[str, Any]:
    found = _of_type(tracer, "MineralOriginCredential", {lot} if lot else set())
    return credential_subject(found[-1]) if found else {}


def _source_facts(tracer: Tracer, source: Source) -> dict[str, Any]:
    site = tracer.facilities.get(source.site, {})
    operator = site.get("operator", "")
    party = tracer.participants.get(operator, {})
    origin = _origin(tracer, source.lot)
    method = str(source.details.get("extractionMethod") or origin.get("productionType") or "")
    artisanal = not source.recycled and (
        method.lower() in ARTISANAL or "artisanal-cooperative" in party.get("roles", ()))
    high_risk = bool(origin.get("conflictAffectedHighRiskArea") or source.details.get(
        "conflictAffectedHighRiskArea") or source.details.get("highRiskArea"))
    # Only a credential naming the site resolves a high-risk source, never the miner's own
    # words on its extraction (those stay visible as `declared_status`).
    resolution = _site_credential(tracer, source.site) if not source.recycled else None
    declared = next((str(source.details[k]) for k in ("legalStatus", "riskMitigation",
                                                       "riskAssessment")
                     if source.details.get(k)), None)
    level, audit = (None, None) if source.recycled else _irma_level(tracer, source)
    return {
        "site": source.site, "site_name": site.get("name", source.site), "operator": operator,
        "operator_name": party.get("legalName", operator), "country": site.get("country", ""),
        "artisanal": artisanal, "recycled": source.recycled, "irma_level": level,
        "irma_credential": audit, "high_risk": high_risk, "risk_resolution": resolution,
        "declared_status": declared,
    }


# Credential types that can resolve a high-risk artisanal source when they name its site.
RESOLUTION_TYPES = ("DueDiligenceCredential",)


def _site_credential(tracer: Tracer, site: str) -> dict[str, Any] | None:
    """The latest credential in force of a resolving type whose subject is the site (or names
    it as `mineSite`), with its issuer: whether that issuer is accredited is the bundle
    verifier's trust path (policy: `issuers_accredited`)."""
    found = [c for c in tracer.credentials if set(credential_types(c)) & set(RESOLUTION_TYPES)
             and not _not_in_force(tracer, c)
             and site in (credential_subject(c).get("id"),
                          (credential_subject(c).get("mineSite") or {}).get("id"))]
    if not found:
        return None
    issuer = found[-1].get("issuer")
    return {"credential": found[-1].get("id"), "types": credential_types(found[-1]),
            "issuer": issuer.get("id") if isinstance(issuer, dict) else issuer}


_GROUP = ("site", "irma_level", "artisanal", "recycled", "high_risk", "declared_status")


def _elements(tracer: Tracer, pool: Mapping[str, Mapping[str, list[Any]]]
              ) -> dict[str, Any]:
    facts: dict[str, dict[str, Any]] = {}  # of the sources in the pool only
    out: dict[str, Any] = {}
    for element in sorted(pool):
        shares = pool[element]
        total = sum(v[0] for v in shares.values())
        if total <= 0:
            continue
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        for key, (kg, steps) in shares.items():
            fact = facts.get(key) or facts.setdefault(key, _source_facts(tracer,
                                                                         tracer.sources[key]))
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


def _legal_name(tracer: Tracer, did: str) -> str:
    return str(tracer.participants.get(did, {}).get("legalName") or did)


def _names(tracer: Tracer, subject: str) -> tuple[set[str], set[str]]:
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


def _route(tracer: Tracer, related: set[str]) -> list[dict[str, Any]]:
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


def _lifecycle(tracer: Tracer, subject: str, parts: set[str], names: set[str]
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    stages: dict[str, Any] = {k: False for k in ("production", "sale", "use", "end_of_life",
                                                 "recycling")}
    readings: list[dict[str, Any]] = []
    routing: list[dict[str, Any]] = []
    sale: tuple[int, TraceEvent] | None = None
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
            sale = sale or (seq, event)
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
             **_placing(tracer, sale)}
    return stages, extra


def _placing(tracer: Tracer, sale: tuple[int, TraceEvent] | None) -> dict[str, Any]:
    """The placing on the market: the day the ledger received its event (the policy date:
    a signer cannot set it), the day its signer wrote, and the operator of its site."""
    if sale is None:
        return {"placed_on_market": None, "placed_on_market_event_time": None,
                "placed_on_market_by": None, "placed_on_market_seq": None}
    seq, event = sale
    received = parse_day(tracer.received.get(seq))
    claimed = parse_day(event.event_time)
    site = tracer.facilities.get(event.biz_location, {})
    return {"placed_on_market": str(received) if received else None,
            "placed_on_market_event_time": str(claimed) if claimed else None,
            "placed_on_market_by": site.get("operator") or None,
            "placed_on_market_seq": seq}


def _carbon(tracer: Tracer, names: set[str], model: str | None) -> dict[str, Any] | None:
    """The footprint declared for the battery itself, else for its model (by model name):
    never another model's declaration that happens to travel in the same bundle."""
    found = _of_type(tracer, "CarbonFootprintCredential", names) or [
        c for c in _of_type(tracer, "CarbonFootprintCredential")
        if model and credential_subject(c).get("batteryModelName") == model]
    if not found:
        return None
    s = credential_subject(found[-1])
    plant = s.get("manufacturingPlant") or {}
    return {"value": s.get("batteryCarbonFootprint"), "unit": s.get("declaredUnit",
                                                                    "kgCO2e/kWh"),
            "class": s.get("carbonFootprintPerformanceClass"), "model": s.get("batteryModelName"),
            "plant": plant.get("id"), "plant_name": plant.get("name"),
            "rules": s.get("calculationRules"), "credential": found[-1].get("id")}


def _recycled_content(tracer: Tracer, names: set[str], elements: Mapping[str, Any]
                      ) -> dict[str, Any]:
    found = _of_type(tracer, "RecycledContentCredential", names)
    claimed = None
    backing: list[str] = []
    if found:
        s = credential_subject(found[-1])
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


def _efficiency(tracer: Tracer) -> list[dict[str, Any]]:
    out = []
    for credential in _of_type(tracer, "RecyclingEfficiencyCredential"):
        s = credential_subject(credential)
        period = s.get("reportingPeriod") or {}
        out.append({"facility": s.get("id"), "credential": credential.get("id"),
                    "chemistry": s.get("batteryChemistry"),
                    "period": [period.get("startDate"), period.get("endDate")],
                    "recycling_efficiency": s.get("recyclingEfficiency"),
                    "material_recovery": {MATERIAL_SYMBOL.get(r.get("material"),
                                                              r.get("material")):
                                          r.get("recoveryRate")
                                          for r in s.get("materialRecovery") or ()}})
    return out


def _model(tracer: Tracer, subject: str, parts: set[str], names: set[str]
           ) -> dict[str, Any] | None:
    model: dict[str, Any] = {}
    for credential in _of_type(tracer, "BatteryPassportCredential", names):
        model.update(_passport_model(credential_subject(credential)))
    for part in sorted(parts, key=lambda p: p != subject):
        item = tracer.items.get(part)
        if item is None:
            continue
        details = item.details
        model.setdefault("name", details.get("model") or details.get("batteryModel")
                         or details.get("cellModel"))
        model.setdefault("chemistry", details.get("chemistry"))
        model.setdefault("category", details.get("batteryCategory"))
        model.setdefault("rated_energy_kwh", details.get("ratedEnergy"))
    model = {k: v for k, v in model.items() if v}
    return model or None


def _passport_model(s: Mapping[str, Any]) -> dict[str, Any]:
    """The model facts a passport subject gives."""
    return {"name": (s.get("product") or {}).get("name"),
            "chemistry": (s.get("batteryChemistry") or {}).get("shortName"),
            "category": s.get("batteryCategory"), "rated_energy_kwh": s.get("ratedEnergy")}


def with_draft_passport(data: Mapping[str, Any], credential: Mapping[str, Any]
                        ) -> dict[str, Any]:
    """The facts of `data` as they stand once `credential`, a BatteryPassportCredential about
    to be issued for the battery, is in force: its model facts, its fields, its id (what the
    passport rules read), as `build_facts` would give them with the credential in the bundle."""
    s = credential_subject(credential)
    model = {**(data.get("model") or {}), **{k: v for k, v in _passport_model(s).items() if v}}
    return {**data, "model": model or None, "passport_credential": credential.get("id"),
            "passport_fields": sorted(set(data.get("passport_fields") or ()) | set(s)
                                      | _paths(s))}


def _passport_fields(tracer: Tracer, names: set[str], data: Mapping[str, Any]) -> list[str]:
    """Names of the fields the bundle's credentials and events give about the battery (the
    subjects' keys, nested keys of `product`, and what the ledger itself shows)."""
    available: set[str] = set()
    for kind in ("BatteryPassportCredential", "CarbonFootprintCredential",
                 "RecycledContentCredential"):
        for credential in _of_type(tracer, kind, names):
            s = credential_subject(credential)
            available |= set(s)
            available |= _paths(s)
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


def _paths(value: Any, prefix: str = "") -> set[str]:
    """Dotted paths of the non-empty values of a subject (`performance.minimumVoltage`). A
    list of objects gives a key only when every element has it (every material its
    location)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if inner is None or inner == [] or inner == {} or inner == "":
                continue
            path = f"{prefix}{key}"
            out.add(path)
            out |= _paths(inner, f"{path}.")
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        common = set.intersection(*(_paths(v, prefix) for v in value))
        out |= common
    return out


def _due_diligence(tracer: Tracer) -> list[dict[str, Any]]:
    """The DueDiligenceCredentials of the bundle in force, with the party each is issued to."""
    out = []
    for credential in _of_type(tracer, "DueDiligenceCredential"):
        s = credential_subject(credential)
        issuer = credential.get("issuer")
        out.append({"credential": credential.get("id"), "subject": s.get("id"),
                    "issued_to": (s.get("issuedToParty") or {}).get("id"),
                    "issuer": issuer.get("id") if isinstance(issuer, dict) else issuer})
    return out


# Credential types build_facts reads whatever their subject (every one is in the facts, or
# may resolve a source's site).
EVERY_ONE = frozenset({"DueDiligenceCredential", "RecyclingEfficiencyCredential",
                       *RESOLUTION_TYPES})
# Types it reads only about the subject, its parts or the items it was assembled into.
ABOUT_NAMES = frozenset({"BatteryPassportCredential", "CarbonFootprintCredential",
                         "RecycledContentCredential"})


class CredentialKeeper:
    """The credentials of a bundle that `build_facts` can read about `subject`, offered in
    bundle order once every entry is replayed (a credential comes after the entries): a
    subsequence of the bundle's credentials holding each one any fact picks, so the facts
    are those of the whole list. Kept: every credential not in force (`not_in_force`), every
    one of EVERY_ONE, those of ABOUT_NAMES about the subject's names, IRMA audits about a
    source's site, mineral origins about a source's lot and, per battery model name, the last
    carbon footprint in force (what `_carbon` falls back to)."""

    def __init__(self, tracer: Tracer, subject: str) -> None:
        parts, containers = _names(tracer, subject)
        self.tracer, self.names = tracer, parts | containers
        self.sites = {s.site for s in tracer.sources.values()}
        self.lots = {s.lot for s in tracer.sources.values() if s.lot}
        self.kept: list[Mapping[str, Any] | None] = []
        self.by_model: dict[Any, int] = {}  # model name -> index kept only for the model

    def offer(self, credential: Mapping[str, Any]) -> None:
        """Keep the credential if a fact can read it."""
        types = set(credential_types(credential))
        about = credential_subject(credential).get("id")
        wanted = (_not_in_force(self.tracer, credential) or bool(types & EVERY_ONE)
                  or (bool(types & ABOUT_NAMES) and about in self.names)
                  or ("IRMAAuditCredential" in types and about in self.sites)
                  or ("MineralOriginCredential" in types and about in self.lots))
        model = credential_subject(credential).get("batteryModelName")
        if isinstance(model, (list, dict)):
            wanted = wanted or "CarbonFootprintCredential" in types  # unhashable: kept
        elif "CarbonFootprintCredential" in types and model is not None and not (
                _not_in_force(self.tracer, credential)):
            earlier = self.by_model.pop(model, None)
            if earlier is not None:
                self.kept[earlier] = None  # a later one in force with the model name wins
            if not wanted:
                self.by_model[model] = len(self.kept)
                wanted = True
        if wanted:
            self.kept.append(credential)

    def credentials(self) -> list[Mapping[str, Any]]:
        return [c for c in self.kept if c is not None]


def build_facts(tracer: Tracer, subject: str) -> dict[str, Any]:
    """The provenance facts of `subject` from the replay state (the document `Provenance`
    holds; docs/provenance.md)."""
    pool = subject_pool(tracer, subject)
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
    data["due_diligence"] = _due_diligence(tracer)
    data["not_in_force"] = _standing(tracer)
    return data


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
