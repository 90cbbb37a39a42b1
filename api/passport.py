"""The battery passport of one item, built from its verified evidence bundle.

`build_passport` exports the item's bundle from the ledger (in memory), verifies it with the
offline verifier against the server's own trust file (`<home>/trust.toml`; without one the
verification result says "not configured": trust never comes from the bundle), traces its
provenance (`verifier.provenance`, when installed), and gathers the EU 2023/1542 Annex XIII
facts: identity and chemistry, manufacturer and plant, model, carbon footprint and class,
recycled content against the EU minimums, latest state of health, provenance, the custody
timeline, each credential with its verified status, and the verification result.

The full (legitimate-interest) passport is cached per (ledger, item, log size, trust file);
`Passport.for_tier("public")` leaves out what only the holder and its grantees may see
(mine-level provenance, due diligence, the holder, the evidence bundle). See docs/passport.md.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batterytrace.credentials.errors import BatterytraceError, InputError

from .passport_access import LEGITIMATE_INTEREST, PUBLIC, TIERS, Tier, item_holder

TRUST_FILE = "trust.toml"
CACHE_SIZE = 64
# EU 2023/1542 Art. 8(2): minimum recycled shares in active materials from 18 August 2031.
EU_MINIMUMS_2031 = {"Cobalt": 16.0, "Lithium": 6.0, "Nickel": 6.0, "Lead": 85.0}
# Credential types about the battery itself: public (Annex XIII). Facility, lot and
# participant credentials (IRMA audits, mineral origin, due diligence) are mine-level or
# operator-level: legitimate interest only.
PUBLIC_CREDENTIAL_TYPES = frozenset(
    {"BatteryPassportCredential", "CarbonFootprintCredential", "RecycledContentCredential"})
SOH_SENSOR = "stateOfHealth"


class PassportNotFoundError(InputError):
    """No item with that URI in the ledger (lots have no passport)."""

    code = "PASSPORT_NOT_FOUND"
    title = "No passport for this item"
    http_status = 404


class PassportTierError(InputError):
    code = "PASSPORT_TIER_UNKNOWN"
    title = "Unknown passport tier"


@dataclass(frozen=True)
class Passport:
    """What the passport page and its JSON twin show, for one tier."""

    item: str
    tier: Tier
    page_url: str  # the public URL of the page: what the QR code encodes
    log_size: int
    identity: Mapping[str, Any]
    manufacturer: Mapping[str, Any] | None
    plant: Mapping[str, Any] | None
    model: str | None
    carbon_footprint: Mapping[str, Any] | None
    recycled_content: tuple[Mapping[str, Any], ...]
    state_of_health: Mapping[str, Any] | None
    provenance: Mapping[str, Any]
    custody: tuple[Mapping[str, Any], ...]
    credentials: tuple[Mapping[str, Any], ...]
    verification: Mapping[str, Any]
    holder: str | None = None
    due_diligence: tuple[Mapping[str, Any], ...] = ()
    evidence_bundle: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def for_tier(self, tier: Tier) -> Passport:
        """This passport as `tier` may see it (a built passport is legitimate-interest)."""
        if tier not in TIERS:
            raise PassportTierError(f"tier must be one of {TIERS}, not {tier!r}")
        if tier == self.tier or tier == LEGITIMATE_INTEREST:
            return self
        return replace(
            self, tier=PUBLIC, holder=None, due_diligence=(), evidence_bundle=None,
            provenance={k: v for k, v in self.provenance.items() if k in _PUBLIC_PROVENANCE},
            custody=tuple({k: s[k] for k in _PUBLIC_STEP if k in s} for s in self.custody),
            credentials=tuple(c for c in self.credentials if c["public"]),
            verification=_public_verification(self.verification),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON twin of the page (camelCase keys)."""
        data: dict[str, Any] = {
            "item": self.item, "tier": self.tier, "pageUrl": self.page_url,
            "logSize": self.log_size, "identity": dict(self.identity),
            "manufacturer": self.manufacturer, "plant": self.plant, "model": self.model,
            "carbonFootprint": self.carbon_footprint,
            "recycledContent": [dict(r) for r in self.recycled_content],
            "stateOfHealth": self.state_of_health, "provenance": dict(self.provenance),
            "custody": [dict(s) for s in self.custody],
            "credentials": [dict(c) for c in self.credentials],
            "verification": dict(self.verification), "notes": list(self.notes),
        }
        if self.tier == LEGITIMATE_INTEREST:
            data["holder"] = self.holder
            data["dueDiligence"] = [dict(d) for d in self.due_diligence]
            data["evidenceBundle"] = self.evidence_bundle
        return _plain(data)


_PUBLIC_PROVENANCE = frozenset({"countries", "artisanalShare", "lifecycle", "placedOnMarket",
                                "recycledContent", "basis"})
_PUBLIC_STEP = ("seq", "time", "step", "country")


def _public_verification(full: Mapping[str, Any]) -> dict[str, Any]:
    # Failure records name credentials and mines: the public sees how many failed, and why
    # by code only.
    out = {k: v for k, v in full.items() if k != "failures"}
    if "failures" in full:
        out["failureCodes"] = sorted({f["code"] for f in full["failures"]})
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def page_path(item: str) -> str:
    """The path of an item's passport page (the item URI percent-encoded as one segment)."""
    return "/passports/" + quote(item, safe="")


def bundle_path(item: str) -> str:
    """The path of an item's evidence bundle download (legitimate-interest tier)."""
    return "/api/passport-bundles/" + quote(item, safe="")


# --- the cache ----------------------------------------------------------------------------


class _Cache:
    """A small thread-safe LRU of built passports."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[tuple[Any, ...], Passport] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Passport | None:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], value: Passport) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_CACHE = _Cache(CACHE_SIZE)


def clear_cache() -> None:
    """Forget every cached passport (tests; a trust file edited in place within a second)."""
    _CACHE.clear()


def _trust_stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


# --- building -----------------------------------------------------------------------------


def build_passport(ledger: Any, item_id: str, *, tier: Tier) -> Passport:
    """The passport of `item_id` for `tier` ("public" or "legitimate-interest").

    Raises PassportNotFoundError for an item no event created. The caller decides the tier
    (`passport_access.access_for`)."""
    if tier not in TIERS:
        raise PassportTierError(f"tier must be one of {TIERS}, not {tier!r}")
    trust_path = Path(ledger.home.path) / TRUST_FILE
    # The bundle reflects the latest signed checkpoint: that is the ledger size that counts.
    size = ledger.latest_checkpoint()[0].size
    key = (ledger.storage.url, item_id, size, _trust_stamp(trust_path))
    full = _CACHE.get(key)
    if full is None:
        full = _build_full(ledger, item_id, trust_path, size)
        _CACHE.put(key, full)
    return full.for_tier(tier)


def export_item_bundle(ledger: Any, item_id: str) -> bytes:
    """The item's evidence bundle (JSON Lines) with the credentials the ledger stores about
    its closure and their published status lists."""
    from batterytrace.ledger.bundle_export import export_bundle

    store = _credential_reader(ledger)
    out = io.BytesIO()
    export_bundle(ledger, out, item=item_id,
                  find_credentials=store.find if store else None,
                  lists_for=store.lists_for if store else None)
    return out.getvalue()


def _credential_reader(ledger: Any) -> Any:
    """The ledger's credential store, read only (`CredentialStore()` would install validators
    on the shared ledger); None when the ledger has no credential tables."""
    from batterytrace.ledger.credential_store import CredentialStore, tables
    from sqlalchemy import inspect

    if not inspect(ledger.storage.engine).has_table(tables().credential.name):
        return None

    return CredentialStore.reader(ledger)


def _build_full(ledger: Any, item_id: str, trust_path: Path, size: int) -> Passport:
    from batterytrace.ledger.custody_store import open_state

    with ledger.storage.engine.connect() as connection:
        _, state = open_state(connection, ledger)
        item_state = state.item(item_id)
        if item_state is None:
            raise PassportNotFoundError(f"no item {item_id} in the ledger", item=item_id)
        status = state.root(item_state).status
        holder = item_holder(ledger, connection, item_id)
    data = export_item_bundle(ledger, item_id)
    lines = data.splitlines(keepends=True)
    facts = _BundleFacts.read(lines)
    notes: list[str] = []
    verification, statuses = _verify(lines, trust_path)
    provenance_json = _trace(lines, item_id, notes)

    components = facts.components(item_id)
    passport_cred = facts.about(item_id, "BatteryPassportCredential")
    carbon_cred = facts.about(item_id, "CarbonFootprintCredential")
    recycled_cred = facts.about(item_id, "RecycledContentCredential")
    traced_model = (provenance_json or {}).get("model")
    traced_model = traced_model if isinstance(traced_model, Mapping) else {}
    identity = _identity(item_id, item_state, status, passport_cred, facts, components)
    identity["chemistry"] = identity["chemistry"] or traced_model.get("chemistry")
    manufacturer, plant = _maker(item_id, passport_cred, facts)
    model = _model(passport_cred, carbon_cred, recycled_cred) or traced_model.get("name")
    mines = facts.mines(statuses)
    provenance = _provenance(provenance_json, mines, notes)
    own = components | {item_id}  # public: credentials about this battery and its parts only
    credentials = tuple(_credential_view(c, statuses, own) for c in facts.credentials)
    return Passport(
        item=item_id, tier=LEGITIMATE_INTEREST,
        page_url=ledger.public_url.rstrip("/") + page_path(item_id),
        log_size=size, identity=identity, manufacturer=manufacturer, plant=plant,
        model=model if isinstance(model, str) else None,
        carbon_footprint=_carbon(carbon_cred, provenance_json),
        recycled_content=_recycled(recycled_cred),
        state_of_health=_state_of_health(provenance_json, facts, components | {item_id}),
        provenance=provenance, custody=tuple(facts.timeline()), credentials=credentials,
        verification=verification, holder=holder,
        due_diligence=tuple(_due_diligence(facts, statuses)),
        evidence_bundle=bundle_path(item_id), notes=tuple(notes),
    )


# --- reading the bundle -------------------------------------------------------------------


@dataclass
class _BundleFacts:
    """Registry names, events and credentials of a bundle (already exported by the ledger;
    the verifier judges it, this only reads it)."""

    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    facilities: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    credentials: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, lines: Iterable[bytes]) -> _BundleFacts:
        from batterytrace.ledger.registry import participant_did
        from batterytrace.verifier.bundle import Record, read_bundle

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

    def about(self, subject: str, type_name: str) -> dict[str, Any] | None:
        """The last credential of `type_name` whose subject is `subject`."""
        found = None
        for credential in self.credentials:
            if type_name in _types(credential) and subject in _subject_ids(credential):
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
        seen: set[str] = set()
        stack = list(children.get(item_id, ()))
        while stack:
            node = stack.pop()
            if node and node not in seen:
                seen.add(node)
                stack.extend(children.get(node, ()))
        return seen

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
    from batterytrace.ledger.bundle_export import credential_subject_ids

    return credential_subject_ids(credential)


def _ref(value: Any) -> str:
    return str(value.get("id")) if isinstance(value, dict) else str(value or "")


def _event_subjects(event: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for name in ("quantityList", "inputQuantityList", "outputQuantityList"):
        out.update(str(q.get("productId")) for q in event.get(name) or [] if isinstance(q, dict))
    for name in ("epcList", "inputEPCList", "outputEPCList", "childEPCList"):
        out.update(_ref(r) for r in event.get(name) or [])
    if event.get("parentEPC"):
        out.add(_ref(event["parentEPC"]))
    return out


def _last_segment(value: Any) -> str | None:
    """`https://ref.gs1.org/cbv/BizStep-shipping` -> `shipping`."""
    if not value:
        return None
    return str(value).rstrip("/").rsplit("/", 1)[-1].removeprefix("BizStep-")


# --- verification and provenance ----------------------------------------------------------


def _verify(lines: list[bytes], trust_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The verification result and each credential's status ({id: {status, code, reason}})."""
    from batterytrace.verifier.bundle_verify import default_credential_check, verify_bundle
    from batterytrace.verifier.trust import load_trust

    if not trust_path.exists():
        return {"status": "not configured",
                "reason": f"the server has no {TRUST_FILE}: nothing is verified (trust never "
                          "comes from the bundle itself)"}, {}
    try:
        trust = load_trust(trust_path)
    except BatterytraceError as error:
        return {"status": "not configured", "reason": error.diagnostics()}, {}
    passed: set[str] = set()

    def recording_check(credential: Mapping[str, Any], ctx: Any) -> list[str]:
        checks = default_credential_check(credential, ctx)
        passed.add(str(credential.get("id")))
        return checks

    report = verify_bundle(lines, trust, credential_check=recording_check)
    statuses: dict[str, dict[str, Any]] = {cid: {"status": "verified"} for cid in passed}
    for failure in report.failures:
        if failure.record.startswith("credential "):
            statuses[failure.record[len("credential "):]] = {
                "status": "failed", "code": failure.code, "reason": failure.reason}
    result = {
        "status": "verified" if report.ok else "failed",
        "origin": report.origin, "checkpointSize": report.checkpoint_size,
        "entries": report.entries, "signaturesVerified": report.signatures_verified,
        "credentialsVerified": report.credentials_verified, "checks": list(report.checks),
        "failures": [{"record": f.record, "code": f.code, "reason": f.reason}
                     for f in report.failures],
    }
    return result, statuses


def _trace(lines: list[bytes], item_id: str, notes: list[str]) -> dict[str, Any] | None:
    try:
        from batterytrace.verifier.provenance import trace_provenance
    except ImportError:
        notes.append("provenance tracing (verifier.provenance) is not installed: countries "
                     "and the artisanal share are by extracted mass in the bundle, not "
                     "attributed through the transformations")
        return None
    try:
        return dict(trace_provenance(lines, item_id).to_json())
    except BatterytraceError as error:
        notes.append(f"provenance could not be traced: {error.diagnostics()}")
        return None


def _provenance(traced: Mapping[str, Any] | None, mines: list[dict[str, Any]],
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


def _identity(item_id: str, item: Any, status: str, passport: Mapping[str, Any] | None,
              facts: _BundleFacts, components: set[str]) -> dict[str, Any]:
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


def _maker(item_id: str, passport: Mapping[str, Any] | None,
           facts: _BundleFacts) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
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


def _model(*credentials: Mapping[str, Any] | None) -> str | None:
    for credential in credentials:
        subject = (credential or {}).get("credentialSubject") or {}
        name = subject.get("batteryModelName") or (subject.get("product") or {}).get("name")
        if name:
            return str(name)
    return None


def _carbon(credential: Mapping[str, Any] | None,
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


def _recycled(credential: Mapping[str, Any] | None) -> tuple[dict[str, Any], ...]:
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


def _state_of_health(traced: Mapping[str, Any] | None, facts: _BundleFacts,
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


def _due_diligence(facts: _BundleFacts,
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


def _credential_view(credential: Mapping[str, Any], statuses: Mapping[str, Mapping[str, Any]],
                     own: set[str]) -> dict[str, Any]:
    from batterytrace.credentials.vc import issuer_id

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


__all__ = [
    "EU_MINIMUMS_2031",
    "Passport",
    "PassportNotFoundError",
    "PassportTierError",
    "build_passport",
    "bundle_path",
    "clear_cache",
    "export_item_bundle",
    "page_path",
]
