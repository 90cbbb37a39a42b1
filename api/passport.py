"""The battery passport of one item, built from its verified evidence bundle.

`build_passport` exports the item's bundle from the ledger (in memory), verifies it with the
offline verifier against the server's own trust file (`<home>/trust.toml`; without one the
verification result says "not configured": trust never comes from the bundle), traces its
provenance (`verifier.provenance`, when installed), and gathers the EU 2023/1542 Annex XIII
facts: identity and chemistry, manufacturer and plant, model, carbon footprint and class,
recycled content against the EU minimums, latest state of health, provenance, the custody
timeline, each credential with its verified status, and the verification result.

The full (authority-tier) passport is cached per (ledger, item, log size, trust file);
`Passport.for_tier(tier)` leaves out what that tier may not see (`api/passport_tiers.py`: the
public tier sees no state of health, mine-level provenance, due diligence, holder, evidence
bundle or dismantling information; only authorities see test reports). A repurposed or
remanufactured battery links to its original and back (Art. 77(6)). See docs/passport.md.
"""

from __future__ import annotations

import io
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batterytrace.credentials.errors import BatterytraceError, InputError
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.credential_store import CredentialStore
from batterytrace.ledger.log import Ledger
from batterytrace.ledger.queries import read_state
from batterytrace.verifier.report import VALID

from .passport_access import item_holder
from .passport_facts import (
    EU_MINIMUMS_2031,
    BundleFacts,
    carbon_of,
    credential_view,
    custody_stages,
    due_diligence_of,
    identity_of,
    lifecycle_coverage,
    maker_of,
    model_of,
    passport_links,
    provenance_of,
    recycled_of,
    state_of_health_of,
)
from .passport_tiers import (
    AUTHORITY,
    LEGITIMATE_INTEREST,
    PUBLIC,
    SECTION_TIERS,
    TIER_BASIS,
    TIERS,
    WITHHELD_NAMES,
    Tier,
    sees,
    split_attributes,
)

TRUST_FILE = "trust.toml"
CACHE_SIZE = 64



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
    # the members of the battery's passport credential subject this tier may see
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # what this tier may not see: {name, label, tier, basis}
    withheld: tuple[Mapping[str, Any], ...] = ()
    state_of_health_readings: tuple[Mapping[str, Any], ...] = ()
    # Art. 77(6): {"originals": [...], "successors": [...]}, each {item, step, time, seq}
    links: Mapping[str, Any] = field(default_factory=dict)

    def for_tier(self, tier: Tier) -> Passport:
        """This passport as `tier` may see it (a built passport is authority-tier: it holds
        everything)."""
        if tier not in TIERS:
            raise PassportTierError(f"tier must be one of {', '.join(TIERS)}, not {tier!r}")
        if tier == self.tier:
            return self
        if not sees(self.tier, tier):
            raise PassportTierError(f"a {self.tier} passport cannot be shown as {tier}")
        shown, hidden = split_attributes(self.attributes, tier)
        sections = {name: needed for name, needed in SECTION_TIERS.items()
                    if not sees(tier, needed)}
        withheld = tuple(
            {"name": name, "label": WITHHELD_NAMES.get(name, name), "tier": needed,
             "basis": TIER_BASIS[needed]}
            for name, needed in {**sections, **hidden}.items())
        narrowed = replace(self, tier=tier, attributes=shown, withheld=withheld)
        if tier != PUBLIC:
            return narrowed
        return replace(
            narrowed, holder=None, due_diligence=(), evidence_bundle=None,
            state_of_health=None, state_of_health_readings=(),
            provenance={k: v for k, v in self.provenance.items() if k in _PUBLIC_PROVENANCE},
            custody=tuple({k: s[k] for k in _PUBLIC_STEP if k in s} for s in self.custody),
            credentials=tuple(c for c in self.credentials if c["public"]),
            verification=_public_verification(self.verification),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON twin of the page (camelCase keys). A section the tier may not see is
        absent, not null."""
        data: dict[str, Any] = {
            "item": self.item, "tier": self.tier, "tierBasis": TIER_BASIS[self.tier],
            "pageUrl": self.page_url, "jsonPath": json_path(self.item),
            "logSize": self.log_size, "identity": dict(self.identity),
            "manufacturer": self.manufacturer, "plant": self.plant, "model": self.model,
            "carbonFootprint": self.carbon_footprint,
            "recycledContent": [dict(r) for r in self.recycled_content],
            "provenance": dict(self.provenance),
            "lifecycle": lifecycle_coverage(self.provenance.get("lifecycle"), self.custody),
            "custody": [dict(s) for s in self.custody],
            "custodyStages": custody_stages(self.custody),
            "attributes": dict(self.attributes),
            "links": {k: [{**x, "pagePath": page_path(str(x["item"]))} for x in v]
                      for k, v in self.links.items()},
            "credentials": [dict(c) for c in self.credentials],
            "verification": dict(self.verification), "notes": list(self.notes),
            "withheld": [dict(w) for w in self.withheld],
        }
        if sees(self.tier, LEGITIMATE_INTEREST):
            data["stateOfHealth"] = self.state_of_health
            data["stateOfHealthReadings"] = [dict(r) for r in self.state_of_health_readings]
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


def json_path(item: str) -> str:
    """The path of an item's passport JSON twin."""
    return "/api/passports/" + quote(item, safe="")


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


def _trust_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def trust_stamp(ledger: Ledger) -> tuple[int, int, int] | None:
    """What identifies the server's trust file now (None without one): a passport depends
    on it and on the latest checkpoint only (api/read_cache.py keys answers by both)."""
    return _trust_stamp(Path(ledger.home.path) / TRUST_FILE)


# --- building -----------------------------------------------------------------------------


def build_passport(ledger: Ledger, item_id: str, *, tier: Tier) -> Passport:
    """The passport of `item_id` for `tier` ("public", "legitimate-interest", "authority").

    Raises PassportNotFoundError for an item no event created. The caller decides the tier
    (`passport_access.access_for`)."""
    if tier not in TIERS:
        raise PassportTierError(f"tier must be one of {', '.join(TIERS)}, not {tier!r}")
    trust_path = Path(ledger.home.path) / TRUST_FILE
    # The bundle reflects the latest signed checkpoint: that is the ledger size that counts.
    size = ledger.latest_checkpoint()[0].size
    key = (ledger.storage.url, item_id, size, _trust_stamp(trust_path))
    full = _CACHE.get(key)
    if full is None:
        full = _build_full(ledger, item_id, trust_path, size)
        _CACHE.put(key, full)
    return full.for_tier(tier)


def export_item_bundle(ledger: Ledger, item_id: str) -> bytes:
    """The item's evidence bundle (JSON Lines) with the credentials the ledger stores about
    its closure and their published status lists."""
    store = _credential_reader(ledger)
    out = io.BytesIO()
    export_bundle(ledger, out, item=item_id,
                  find_credentials=store.find if store else None,
                  lists_for=store.lists_for if store else None)
    return out.getvalue()


def _credential_reader(ledger: Ledger) -> CredentialStore | None:
    """The ledger's credential store, read only (`CredentialStore()` would install validators
    on the shared ledger); None when the ledger has no credential tables."""
    return CredentialStore.stored_reader(ledger)


def _build_full(ledger: Ledger, item_id: str, trust_path: Path, size: int) -> Passport:
    with read_state(ledger) as view:
        state = view.state
        item_state = state.item(item_id)
        if item_state is None:
            raise PassportNotFoundError(f"no item {item_id} in the ledger", item=item_id)
        status = state.root(item_state).status
        holder = item_holder(ledger, view, item_id)
    data = export_item_bundle(ledger, item_id)
    lines = data.splitlines(keepends=True)
    facts = BundleFacts.read(lines)
    notes: list[str] = []
    verification, statuses = _verify(lines, trust_path)
    provenance_json = _trace(lines, item_id, notes)

    components = facts.components(item_id)
    not_in_force = {cid for cid, s in statuses.items() if s["status"] in NOT_IN_FORCE}
    passport_cred = facts.about(item_id, "BatteryPassportCredential", not_in_force)
    carbon_cred = facts.about(item_id, "CarbonFootprintCredential", not_in_force)
    recycled_cred = facts.about(item_id, "RecycledContentCredential", not_in_force)
    traced_model = (provenance_json or {}).get("model")
    traced_model = traced_model if isinstance(traced_model, Mapping) else {}
    identity = identity_of(item_id, item_state, status, passport_cred, facts, components)
    identity["chemistry"] = identity["chemistry"] or traced_model.get("chemistry")
    manufacturer, plant = maker_of(item_id, passport_cred, facts)
    model = model_of(passport_cred, carbon_cred, recycled_cred) or traced_model.get("name")
    mines = facts.mines(statuses)
    provenance = provenance_of(provenance_json, mines, notes)
    own = components | {item_id}  # public: credentials about this battery and its parts only
    credentials = tuple(credential_view(c, statuses, own) for c in facts.credentials)
    readings = (provenance_json or {}).get("state_of_health_readings")
    return Passport(
        item=item_id, tier=AUTHORITY,
        attributes=dict((passport_cred or {}).get("credentialSubject") or {}),
        state_of_health_readings=tuple(r for r in readings or () if isinstance(r, Mapping)),
        links=passport_links(facts, item_id),
        page_url=ledger.public_url.rstrip("/") + page_path(item_id),
        log_size=size, identity=identity, manufacturer=manufacturer, plant=plant,
        model=model if isinstance(model, str) else None,
        carbon_footprint=carbon_of(carbon_cred, provenance_json),
        recycled_content=recycled_of(recycled_cred),
        state_of_health=state_of_health_of(provenance_json, facts, components | {item_id}),
        provenance=provenance, custody=tuple(facts.timeline()), credentials=credentials,
        verification=verification, holder=holder,
        due_diligence=tuple(due_diligence_of(facts, statuses)),
        evidence_bundle=bundle_path(item_id), notes=tuple(notes),
    )


def featured_item(home: Path) -> str | None:
    """The item whose passport a home features: the subject of the bundle the demo exported
    (`<home>/bundle.jsonl`, an item scope), else None."""
    try:
        with (Path(home) / "bundle.jsonl").open("rb") as handle:
            first = handle.readline(64 * 1024)
    except OSError:
        return None
    try:
        scope = json.loads(first).get("scope") or {}
    except (ValueError, AttributeError):
        return None
    subject = scope.get("id") if isinstance(scope, dict) else None
    return subject if isinstance(subject, str) and scope.get("kind") == "item" else None


# --- verification and provenance ----------------------------------------------------------


NOT_IN_FORCE = frozenset({"revoked", "suspended"})  # credential statuses that back nothing


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
    # Its status at the checkpoint comes first: a revoked or suspended credential is shown
    # struck out with the date, and backs none of the passport's facts.
    for standing in report.credentials:
        if standing.status != VALID:
            statuses[standing.id] = {
                "status": standing.status.lower(), "since": standing.since,
                "sinceDate": (standing.since_received or "")[:10] or None,
                "code": f"CREDENTIAL_STATUS_{standing.status}",
                "reason": f"{standing.status.lower()} at log position {standing.since}"}
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


__all__ = [
    "EU_MINIMUMS_2031",
    "Passport",
    "PassportNotFoundError",
    "PassportTierError",
    "build_passport",
    "bundle_path",
    "clear_cache",
    "export_item_bundle",
    "featured_item",
    "json_path",
    "page_path",
    "trust_stamp",
]
