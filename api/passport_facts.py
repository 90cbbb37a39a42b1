"""The EU 2023/1542 Annex XIII facts of a battery passport, read from the item's evidence
bundle (already exported by the ledger and judged by the verifier: this only reads it):
identity and chemistry, manufacturer and plant, model, carbon footprint and class, recycled
content against the EU minimums, state of health, provenance (country level and mine level),
due diligence, the custody timeline and each credential's view. `passport.build_passport`
puts them together."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.vc import issuer_id
from batterytrace.ledger.bundle_format import credential_subject_ids, event_subjects
from batterytrace.ledger.custody_graph import reachable
from batterytrace.ledger.events import parse_event
from batterytrace.ledger.registry import participant_did
from batterytrace.verifier.bundle import Record, read_bundle

# EU 2023/1542 Art. 8(2): minimum recycled shares in active materials from 18 August 2031.
EU_MINIMUMS_2031 = {"Cobalt": 16.0, "Lithium": 6.0, "Nickel": 6.0, "Lead": 85.0}
# Credential types about the battery itself: public (Annex XIII). Facility, lot and
# participant credentials (IRMA audits, mineral origin, due diligence) are mine-level or
# operator-level: legitimate interest only.
PUBLIC_CREDENTIAL_TYPES = frozenset(
    {"BatteryPassportCredential", "CarbonFootprintCredential", "RecycledContentCredential"})
SOH_SENSOR = "stateOfHealth"


@dataclass
class BundleFacts:
    """Registry names, events and credentials of a bundle (already exported by the ledger;
    the verifier judges it, this only reads it)."""

    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    facilities: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    credentials: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, lines: Iterable[bytes]) -> BundleFacts:
        facts = cls()
        public_url = ""
        for record in read_bundle(lines):
            if not isinstance(record, Record):
                continue
            if record.type == "credential":
                facts.credentials.append(record.data["credential"])
                continue
            if record.type != "entry":
                continue
            entry = record.data["entry"]
            kind, doc, seq = entry.get("kind"), entry.get("document") or {}, entry.get("seq")
            if kind == "genesis":
                public_url = doc.get("publicUrl", "")
            elif kind == "registry" and doc.get("type") == "ParticipantRegistration":
                try:
                    did = participant_did(public_url, doc["name"])
                except (BatterytraceError, KeyError):
                    continue
                facts.participants[did] = doc
            elif kind == "registry" and doc.get("type") == "FacilityRegistration":
                facts.facilities[str(doc.get("id"))] = doc
            elif kind == "event":
                issuer = doc.get("issuer")
                actor = issuer.get("id") if isinstance(issuer, dict) else str(issuer)
                subjects = doc.get("credentialSubject")
                for event in subjects if isinstance(subjects, list) else [subjects]:
                    if isinstance(event, dict):
                        facts.events.append((seq, actor, event))
        return facts

    def about(self, subject: str, type_name: str, excluded: Set[str] = frozenset()
              ) -> dict[str, Any] | None:
        """The last credential of `type_name` whose subject is `subject`, leaving out the
        `excluded` ids (revoked or suspended: evidence for nothing)."""
        found = None
        for credential in self.credentials:
            if (type_name in _types(credential) and subject in _subject_ids(credential)
                    and str(credential.get("id")) not in excluded):
                found = credential
        return found

    def components(self, item_id: str) -> set[str]:
        """Items ever assembled into `item_id`, recursively (cells of a pack, ...)."""
        children: dict[str, set[str]] = {}
        for _, _, event in self.events:
            parent = _ref(event.get("parentEPC"))
            if parent and event.get("action") == "add":
                children.setdefault(parent, set()).update(
                    _ref(c) for c in event.get("childEPCList") or [])
        return reachable(children.get(item_id, ()), children) - {""}

    def participant(self, did: str) -> dict[str, Any]:
        doc = self.participants.get(did, {})
        return {"id": did, "name": doc.get("legalName") or doc.get("name") or did,
                "country": doc.get("country")}

    def facility(self, facility_id: str) -> dict[str, Any]:
        doc = self.facilities.get(facility_id, {})
        return {"id": facility_id, "name": doc.get("name") or facility_id,
                "country": doc.get("country"), "kind": doc.get("kind")}

    def timeline(self) -> Iterator[dict[str, Any]]:
        """Every custody event of the closure in log order, mine to present holder."""
        for seq, actor, event in self.events:
            place = self.facility(str(event.get("bizLocation")))
            yield {
                "seq": seq, "time": event.get("eventTime"),
                "step": _last_segment(event.get("bizStep")), "country": place["country"],
                "event": next((t for t in _types(event) if t != "Event"), None),
                "action": event.get("action"), "facility": place,
                "actor": self.participant(actor), "subjects": sorted(_event_subjects(event)),
            }

    def mines(self, statuses: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Extraction events of the bundle: mine, country, lot, mass, method, IRMA level."""
        mines = []
        for seq, actor, event in self.events:
            if _last_segment(event.get("bizStep")) != "extraction":
                continue
            site = self.facility(str(event.get("bizLocation")))
            declarations = {d.get("id"): d for d in event.get("lotDeclarations") or []
                            if isinstance(d, dict)}
            audit = self.about(site["id"], "IRMAAuditCredential")
            level = None
            if audit is not None:
                level = {"level": audit["credentialSubject"].get("achievementLevel"),
                         "credential": audit.get("id"),
                         "status": statuses.get(str(audit.get("id")), {}).get("status")}
            for q in event.get("quantityList") or []:
                lot = q.get("productId")
                details = declarations.get(lot, {})
                mines.append({
                    "seq": seq, "mine": site, "operator": self.participant(actor),
                    "lot": lot, "massKg": q.get("quantity"), "uom": q.get("uom"),
                    "method": details.get("extractionMethod"),
                    "mineral": details.get("mineral"), "irma": level,
                })
        return mines


def _types(doc: Mapping[str, Any]) -> list[str]:
    value = doc.get("type")
    return [t for t in (value if isinstance(value, list) else [value]) if isinstance(t, str)]


def _subject_ids(credential: Mapping[str, Any]) -> set[str]:
    return credential_subject_ids(credential)


def _ref(value: Any) -> str:
    return str(value.get("id")) if isinstance(value, dict) else str(value or "")


def _event_subjects(event: Mapping[str, Any]) -> set[str]:
    """The lots and items an event names (`bundle_format.event_subjects`; every event of a
    bundle was parsed when it was appended, so it parses here too)."""
    try:
        return event_subjects(parse_event(event))
    except BatterytraceError:
        return set()


def _last_segment(value: Any) -> str | None:
    """`https://ref.gs1.org/cbv/BizStep-shipping` -> `shipping`."""
    if not value:
        return None
    return str(value).rstrip("/").rsplit("/", 1)[-1].removeprefix("BizStep-")


def provenance_of(traced: Mapping[str, Any] | None, mines: list[dict[str, Any]],
                notes: list[str]) -> dict[str, Any]:
    """Country-level figures (public) and mine-level ones (legitimate interest)."""
    out: dict[str, Any] = {"mines": mines}
    if traced is not None:
        out["basis"] = "attributed by mass through each transformation's custody model"
        for source, target in (("countries", "countries"), ("artisanal_share", "artisanalShare"),
                               ("lifecycle", "lifecycle"), ("placed_on_market",
                                                            "placedOnMarket"),
                               ("recycled_content", "recycledContent"),
                               ("elements", "elements"), ("route", "route")):
            if traced.get(source) is not None:
                out[target] = traced[source]
        return out
    total = sum(Decimal(str(m["massKg"] or 0)) for m in mines)
    countries: dict[str, Decimal] = {}
    artisanal = Decimal(0)
    for m in mines:
        kg = Decimal(str(m["massKg"] or 0))
        country = m["mine"]["country"] or "unknown"
        countries[country] = countries.get(country, Decimal(0)) + kg
        if m["method"] == "artisanal":
            artisanal += kg
    out["basis"] = "extracted mass of the lots in the bundle"
    out["countries"] = {c: round(float(kg / total), 4) if total else None
                        for c, kg in sorted(countries.items())}
    out["artisanalShare"] = round(float(artisanal / total), 4) if total else None
    return out


# --- the Annex XIII facts -----------------------------------------------------------------


def identity_of(item_id: str, item: Any, status: str, passport: Mapping[str, Any] | None,
              facts: BundleFacts, components: set[str]) -> dict[str, Any]:
    subject = (passport or {}).get("credentialSubject") or {}
    product = subject.get("product") or {}
    chemistry = subject.get("batteryChemistry") or {}
    short = chemistry.get("shortName")
    if short is None:  # declared on the production event of the item or of its cells
        wanted = components | {item_id}
        for _, _, event in facts.events:
            made = {_ref(r) for r in event.get("outputEPCList") or []}
            if event.get("chemistry") and made & wanted:
                short = event["chemistry"]
    return {
        "id": item_id, "name": product.get("name"), "category": item.category,
        "batteryCategory": subject.get("batteryCategory"),
        "chemistry": short, "chemistryName": chemistry.get("clearName"),
        "massKg": subject.get("batteryMass", float(item.mass_kg)),
        "ratedCapacityAh": subject.get("ratedCapacity"),
        "ratedEnergyKWh": subject.get("ratedEnergy"),
        "nominalVoltageV": subject.get("nominalVoltage"),
        "productionDate": product.get("productionDate"),
        "countryOfProduction": product.get("countryOfProduction"),
        "serialNumber": product.get("serialNumber"),
        "gbt34014Code": subject.get("gbt34014Code") or item.battery_code,
        "hazardousSubstances": [h.get("hazardousSubstanceName")
                                for h in subject.get("hazardousSubstances") or []],
        "status": status,
    }


def maker_of(item_id: str, passport: Mapping[str, Any] | None,
           facts: BundleFacts) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    product = ((passport or {}).get("credentialSubject") or {}).get("product") or {}
    party, site = product.get("producedByParty"), product.get("producedAtFacility")
    if party and site:
        return ({"id": party.get("id"), "name": party.get("name"), "country":
                 product.get("countryOfProduction")},
                {"id": site.get("id"), "name": site.get("name"),
                 "country": product.get("countryOfProduction")})
    for _, actor, event in facts.events:  # the production event that created the item
        if item_id in {_ref(r) for r in event.get("outputEPCList") or []}:
            return facts.participant(actor), facts.facility(str(event.get("bizLocation")))
    return None, None


def model_of(*credentials: Mapping[str, Any] | None) -> str | None:
    for credential in credentials:
        subject = (credential or {}).get("credentialSubject") or {}
        name = subject.get("batteryModelName") or (subject.get("product") or {}).get("name")
        if name:
            return str(name)
    return None


def carbon_of(credential: Mapping[str, Any] | None,
            traced: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if credential is None:  # provenance may have found one about a container or the model
        value = (traced or {}).get("carbon_footprint")
        if not isinstance(value, Mapping):
            return None
        return {"value": value.get("value"), "unit": value.get("unit"),
                "performanceClass": value.get("class"), "plant": value.get("plant_name"),
                "stages": {}, "credential": value.get("credential")}
    subject = credential["credentialSubject"]
    return {
        "value": subject.get("batteryCarbonFootprint"),
        "unit": subject.get("declaredUnit", "kgCO2e/kWh"),
        "performanceClass": subject.get("carbonFootprintPerformanceClass"),
        "plant": (subject.get("manufacturingPlant") or {}).get("name"),
        "stages": {s.get("lifecycleStage"): s.get("carbonFootprint")
                   for s in subject.get("carbonFootprintPerLifecycleStage") or []},
        "credential": credential.get("id"),
    }


def recycled_of(credential: Mapping[str, Any] | None) -> tuple[dict[str, Any], ...]:
    if credential is None:
        return ()
    rows = []
    for share in credential["credentialSubject"].get("recycledContent") or []:
        material = share.get("recycledMaterial")
        total = float(share.get("preConsumerShare", 0)) + float(share.get("postConsumerShare", 0))
        minimum = EU_MINIMUMS_2031.get(material)
        rows.append({"material": material, "preConsumer": share.get("preConsumerShare"),
                     "postConsumer": share.get("postConsumerShare"), "total": round(total, 3),
                     "euMinimum2031": minimum,
                     "meetsMinimum": None if minimum is None else total >= minimum})
    return tuple(rows)


def state_of_health_of(traced: Mapping[str, Any] | None, facts: BundleFacts,
                     items: set[str]) -> dict[str, Any] | None:
    value = (traced or {}).get("state_of_health")
    if isinstance(value, Mapping):
        return dict(value)
    latest = None
    for seq, _, event in facts.events:
        for element in event.get("sensorElementList") or []:
            device = _ref((element.get("sensorMetadata") or {}).get("device"))
            if device not in items and not items & {_ref(r) for r in event.get("epcList") or []}:
                continue
            for report in element.get("sensorReport") or []:
                if str(report.get("sensorType", "")).endswith(SOH_SENSOR):
                    latest = {"value": report.get("value"), "uom": report.get("uom"),
                              "time": report.get("time"), "seq": seq}
    return latest


def due_diligence_of(facts: BundleFacts,
                   statuses: Mapping[str, Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    for credential in facts.credentials:
        if "DueDiligenceCredential" not in _types(credential):
            continue
        subject = credential.get("credentialSubject") or {}
        yield {"credential": credential.get("id"), "operator": subject.get("id"),
               "chainOfCustody": subject.get("chainOfCustodySystem"),
               "minerals": (subject.get("dueDiligencePolicy") or {}).get("coveredMinerals"),
               "status": statuses.get(str(credential.get("id")), {}).get("status",
                                                                         "not checked")}


def credential_view(credential: Mapping[str, Any], statuses: Mapping[str, Mapping[str, Any]],
                    own: set[str]) -> dict[str, Any]:
    types = [t for t in _types(credential) if t != "VerifiableCredential"]
    status = statuses.get(str(credential.get("id")), {"status": "not checked"})
    issuer = credential.get("issuer")
    return {
        "id": credential.get("id"), "type": types[-1] if types else None,
        "issuer": issuer_id(dict(credential)),
        "issuerName": issuer.get("name") if isinstance(issuer, dict) else None,
        "subject": sorted(_subject_ids(credential)),
        "public": bool(PUBLIC_CREDENTIAL_TYPES & set(types) and own & _subject_ids(credential)),
        **status,
    }


# --- the custody timeline by stage, lifecycle coverage, successor passports ---------------

# Lifecycle stages of the page, in order, and the business steps that belong to each.
# Shipping and receiving belong to the stage of the step before them (the goods move on).
STAGES = ("Extraction", "Refining and processing", "Manufacturing", "Placing on the market",
          "Use", "Second life", "End of life and recycling")
STAGE_OF_STEP = {
    "extraction": "Extraction", "refining": "Refining and processing",
    "commissioning": "Manufacturing", "assembling": "Manufacturing",
    "installing": "Manufacturing", "retail_selling": "Placing on the market",
    "sensor_reporting": "Use", "inspecting": "Use", "repairing": "Use", "removing": "Use",
    "repurposing": "Second life", "remanufacturing": "Second life",
    "preparing_for_reuse": "Second life", "preparing_for_repurposing": "Second life",
    "collecting": "End of life and recycling", "disassembling": "End of life and recycling",
    "destroying": "End of life and recycling", "recycling": "End of life and recycling",
}
LOGISTICS_STEPS = frozenset({"shipping", "receiving"})
# Steps that make a battery with a new passport out of an original one (Art. 77(6)).
SUCCESSOR_STEPS = frozenset({"repurposing", "remanufacturing", "preparing_for_reuse",
                             "preparing_for_repurposing"})
# provenance `lifecycle` keys, in order, with the words the page uses.
LIFECYCLE_WORDS = (("production", "Production"), ("sale", "Placing on the market"),
                   ("use", "Use"), ("end_of_life", "End of life"), ("recycling", "Recycling"))
_FOLD_KEYS = ("step", "country", "facility", "actor")


def _fold_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(str(row.get(k)) if not isinstance(row.get(k), Mapping)
                 else str(row[k].get("name")) for k in _FOLD_KEYS)


def custody_stages(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The custody rows (log order) grouped by lifecycle stage (STAGES order); within a stage
    the rows of the same step and country (and facility and actor, where the tier shows them)
    are folded into one with their count and first and last date, in date order: {stage,
    events, rows: [{step, country, count, from, to, firstSeq, lastSeq, facility?, actor?}]}."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    current = STAGES[0]
    for row in rows:
        step = str(row.get("step") or "")
        if step not in LOGISTICS_STEPS:
            current = STAGE_OF_STEP.get(step, current)
        grouped.setdefault(current, []).append(row)
    out = []
    for stage in STAGES:
        folded: dict[tuple[Any, ...], dict[str, Any]] = {}  # in order of first occurrence
        for row in grouped.get(stage, []):
            day = str(row.get("time") or "")[:10] or None
            same = folded.get(_fold_key(row))
            if same is not None:
                same["count"] += 1
                same["to"] = max(filter(None, (same["to"], day)), default=None)
                same["from"] = min(filter(None, (same["from"], day)), default=None)
                same["lastSeq"] = row.get("seq")
                continue
            folded[_fold_key(row)] = {
                "step": row.get("step"), "country": row.get("country"), "count": 1,
                "from": day, "to": day, "firstSeq": row.get("seq"), "lastSeq": row.get("seq"),
                **{k: row[k] for k in ("facility", "actor") if k in row}}
        if folded:
            rows = sorted(folded.values(), key=lambda r: (r["from"] or "", r["firstSeq"] or 0))
            out.append({"stage": stage, "events": sum(r["count"] for r in rows), "rows": rows})
    return out


def lifecycle_coverage(lifecycle: Mapping[str, Any] | None,
                       rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The provenance lifecycle ({stage: first log position or false}) in words and dates:
    [{stage, label, covered, date}] (the date of the event at that position, from the custody
    rows; None when the timeline does not carry it)."""
    if not lifecycle:
        return []
    dates = {row.get("seq"): str(row.get("time") or "")[:10] or None for row in rows}
    out = []
    for key, label in LIFECYCLE_WORDS:
        if key not in lifecycle:
            continue
        seq = lifecycle[key]
        covered = isinstance(seq, int) and not isinstance(seq, bool)  # false: not recorded
        out.append({"stage": key, "label": label, "covered": covered,
                    "date": dates.get(seq) if covered else None})
    return out


def passport_links(facts: BundleFacts, item_id: str) -> dict[str, list[dict[str, Any]]]:
    """Art. 77(6): a repurposed or remanufactured battery has a new passport linked to the
    original's. A TransformationEvent whose step is repurposing or remanufacturing (or
    preparing for re-use or repurposing) that consumes `item_id` gives its successors
    (`successors`: the items it made); one that makes `item_id` gives its `originals`. Each
    link: {item, step, time, seq}."""
    links: dict[str, list[dict[str, Any]]] = {"originals": [], "successors": []}
    for seq, _, event in facts.events:
        step = _last_segment(event.get("bizStep"))
        if step not in SUCCESSOR_STEPS or "TransformationEvent" not in _types(event):
            continue
        inputs = [_ref(r) for r in event.get("inputEPCList") or []]
        outputs = [_ref(r) for r in event.get("outputEPCList") or []]
        for side, others in (("successors", outputs if item_id in inputs else []),
                             ("originals", inputs if item_id in outputs else [])):
            links[side].extend({"item": other, "step": step, "time": event.get("eventTime"),
                                "seq": seq} for other in others if other != item_id)
    return links
