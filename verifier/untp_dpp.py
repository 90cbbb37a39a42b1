"""The UNTP Digital Product Passport of a battery, from its verified evidence bundle.

The blocks UNTP's ProductPassport defines (working data model, pinned in
`credentials/data/schemas/untp/untp-dpp-schema.json`), built from what the verifier established,
never from what a credential merely claims:

- `conformityClaim`: one Claim per policy rule outcome (verifier/policy.py): the rule's title
  and verdict (`PASS`, `FAIL`, `NOT_EVALUATED`; `conformance` true / false for the first two,
  absent when not evaluated), its legal source as `referenceRegulation`, the policy date as
  `assessmentDate`, and the credential that backs it as `conformityEvidence` (a SecureLink with
  the SHA-256 of its RFC 8785 form) when the outcome's evidence names one in the bundle;
- `traceabilityInformation`: the DTE events of the bundle grouped by business step
  (`valueChainProcess`), each a SecureLink to the event on the ledger with the SHA-256 of the
  entry's credential; `verifiedRatio` 1 when the bundle verified, else 0;
- `materialsProvenance`: per element and country of origin, the mass fraction of the battery
  (traced mass over the battery's mass) and the recycled share of that element;
- `emissionsScorecard`: from the carbon-footprint credential the provenance accepted (per kWh,
  `CradleToGrave` as EU 2023/1542 Annex II's life cycle without the use stage is the closest
  UNTP scope, `primarySourcedRatio` from the credential when it states one, else 0 and a note).

One rule, one place: `passport_blocks` builds these four blocks from a bundle of the battery
that verifies against the caller's trust file; the BatteryPassportCredential the manufacturer
issues carries them beside its Battery Pass attributes (the battery-specific extension;
`credential issue` and the demo call it), and `bundle untp-passport` wraps the same blocks in a
plain UNTP DigitalProductPassport credential (`untp_passport_from_bundle`), which anyone who
verified the bundle may issue. Pure: no storage, no web.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.errors import InputError, VerificationError
from batterytrace.credentials.passport_blocks import UNTP_BLOCKS
from batterytrace.ledger.bundle_format import CREDENTIAL, ENTRY
from batterytrace.ledger.events import KG_PER_UNIT

from .bundle import Header, Record, read_bundle
from .bundle_verify import verify_bundle
from .policy import FAIL, PASS, Policy, PolicyResult, evaluate_policy
from .provenance import trace_provenance
from .provenance_facts import with_draft_passport
from .trust import TrustConfig

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
DPP_CONTEXT = "https://test.uncefact.org/vocabulary/untp/dpp/working/"
LINK_DTE = "https://test.uncefact.org/vocabulary/linkTypes/dte"
LINK_DCC = "https://test.uncefact.org/vocabulary/linkTypes/dcc"
# Conformity topics (UNTP's enumeration) by the policy rule type.
TOPICS = {"recycled-content": "circularity.content", "carbon-footprint": "environment.emissions",
          "material-recovery": "environment.waste", "recycling-efficiency": "environment.waste",
          "irma-level": "social.rights", "artisanal-sources": "social.labour",
          "second-life-routing": "circularity.design", "waste-shipments": "environment.waste",
          "passport-completeness": "governance.transparency",
          "ira-critical-minerals": "governance.compliance"}
JURISDICTIONS = {
    "EU": ("https://european-union.europa.eu/", "European Union", "EU"),
    "US": ("https://www.usa.gov/", "United States of America", "US"),
}


@dataclass(frozen=True)
class BundleView:
    """What the UNTP passport reads from a verified bundle: the events with their positions
    and credentials, and the credentials."""

    events: tuple[tuple[int, str, Mapping[str, Any], Mapping[str, Any]], ...]
    credentials: Mapping[str, Mapping[str, Any]]
    public_url: str = ""  # the ledger's, from its genesis entry when the bundle holds it
    origin: str = ""
    scope: str | None = None  # the item the bundle is the bundle of

    @classmethod
    def read(cls, lines: Iterable[bytes]) -> BundleView:
        """The view of a bundle `verify_bundle` accepted (read with the one bundle parser)."""
        events, credentials = [], {}
        public_url, origin, scope = "", "", None
        for record in read_bundle(lines):
            if isinstance(record, Header):
                origin, scope = record.origin, record.subject
            elif isinstance(record, Record) and record.type == ENTRY:
                entry = record.data["entry"]
                if entry.get("kind") == "genesis":
                    public_url = str((entry.get("document") or {}).get("publicUrl") or "")
                if entry.get("kind") != "event":
                    continue
                document = entry["document"]
                for event in document.get("credentialSubject") or []:
                    events.append((entry["seq"], str(event.get("id")), event, document))
            elif (isinstance(record, Record) and record.type == CREDENTIAL
                  and isinstance(record.data.get("credential"), dict)):
                credential = record.data["credential"]
                credentials[str(credential.get("id"))] = credential
        return cls(tuple(events), credentials, public_url, origin, scope)

    def base_url(self) -> str:
        """Where the links point: the ledger's public URL, else its origin's host."""
        return (self.public_url or f"https://{self.origin.split('/')[0]}").rstrip("/")


def _sha256(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonicalize(dict(document))).hexdigest()


def _secure_link(url: str, name: str, link_type: str, document: Mapping[str, Any]
                 ) -> dict[str, Any]:
    return {"type": ["SecureLink", "Link"], "linkURL": url, "linkName": name,
            "linkType": link_type, "hashDigest": _sha256(document), "hashMethod": "SHA-256"}


def _evidence_credentials(value: Any) -> list[str]:
    """Credential ids named anywhere in an outcome's evidence."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in ("credential", "credentials") or key.endswith("_credential"):
                for cid in item if isinstance(item, list) else [item]:
                    if isinstance(cid, str):
                        found.append(cid)
            else:
                found += _evidence_credentials(item)
    elif isinstance(value, list):
        for item in value:
            found += _evidence_credentials(item)
    return found


def _backing(rule_type: str, provenance: Mapping[str, Any]) -> list[str]:
    """The credentials the provenance used for the input of a rule type."""
    def credential_of(value: Any) -> list[str]:
        items = value if isinstance(value, list) else [value]
        return [str(v["credential"]) for v in items
                if isinstance(v, Mapping) and v.get("credential")]

    if rule_type == "recycled-content":
        return credential_of(provenance.get("recycled_content"))
    if rule_type == "carbon-footprint":
        return credential_of(provenance.get("carbon_footprint"))
    if rule_type in ("recycling-efficiency", "material-recovery"):
        return credential_of(provenance.get("recycling_efficiency"))
    if rule_type == "passport-completeness" and provenance.get("passport_credential"):
        return [str(provenance["passport_credential"])]
    return []


def conformity_claims(subject: str, policy: PolicyResult | None, view: BundleView,
                      base_url: str, rule_types: Mapping[str, str],
                      provenance: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One UNTP Claim per policy rule outcome (`rule_types`: rule id -> rule type); its
    evidence is the credential the outcome names, else the one the provenance used for the
    rule's input."""
    claims = []
    for outcome in policy.outcomes if policy is not None else ():
        jurisdiction = outcome.jurisdiction.upper()
        body = JURISDICTIONS.get(jurisdiction, (f"urn:batterytrace:jurisdiction:"
                                                f"{quote(outcome.jurisdiction)}",
                                                outcome.jurisdiction, None))
        regulation: dict[str, Any] = {"type": ["Regulation"], "name": outcome.source,
                                      "administeredBy": {"id": body[0], "name": body[1]}}
        if body[2]:
            regulation["jurisdictionCountry"] = body[2]
        claim: dict[str, Any] = {
            "type": ["Claim", "Declaration"],
            "id": f"{subject}#claim-{quote(outcome.rule_id, safe='')}",
            "description": f"{outcome.title}: {outcome.status} ({outcome.reason})",
            "conformityTopic": TOPICS.get(rule_types.get(outcome.rule_id, ""),
                                          "governance.compliance"),
            "referenceRegulation": regulation,
            "verdict": outcome.status,
        }
        if outcome.status in (PASS, FAIL):
            claim["conformance"] = outcome.status == PASS
        if policy is not None and policy.policy_date is not None:
            claim["assessmentDate"] = policy.policy_date.isoformat()
        rule_type = rule_types.get(outcome.rule_id, "")
        for cid in (_evidence_credentials(dict(outcome.evidence))
                    + _backing(rule_type, provenance or {})):
            if cid in view.credentials:
                claim["conformityEvidence"] = _secure_link(
                    f"{base_url}/credentials/{quote(cid, safe='')}", f"credential {cid}",
                    LINK_DCC, view.credentials[cid])
                break
        claims.append(claim)
    return claims


def traceability_information(view: BundleView, base_url: str, verified: bool
                             ) -> list[dict[str, Any]]:
    """The bundle's DTE events grouped by business step, as SecureLinks."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for seq, event_id, event, credential in view.events:
        step = str(event.get("bizStep") or "observation").rsplit("-", 1)[-1].rsplit("/", 1)[-1]
        groups.setdefault(step, []).append(_secure_link(
            f"{base_url}/events/{quote(event_id, safe='')}",
            f"{step} at log position {seq}", LINK_DTE, credential))
    return [{"type": ["TraceabilityPerformance"], "valueChainProcess": step,
             "verifiedRatio": 1.0 if verified else 0.0, "traceabilityEvent": links}
            for step, links in groups.items()]


def materials_provenance(provenance: Mapping[str, Any], battery_kg: float
                         ) -> list[dict[str, Any]]:
    """Per element and country of origin: mass fraction of the battery, recycled share."""
    materials = []
    for element, facts in sorted((provenance.get("elements") or {}).items()):
        by_country: dict[str, float] = {}
        for source in facts.get("sources") or []:
            country = source.get("country") or "ZZ"
            by_country[country] = by_country.get(country, 0.0) + float(source.get("mass_kg", 0))
        for country, kg in sorted(by_country.items()):
            material: dict[str, Any] = {"type": ["Material"], "name": element,
                                        "massFraction": round(kg / battery_kg, 9)
                                        if battery_kg > 0 else 0.0,
                                        "mass": {"value": round(kg, 9), "unit": "KGM"}}
            if country != "ZZ":
                material["originCountry"] = country
            if facts.get("recycled_share") is not None:
                material["recycledMassFraction"] = float(facts["recycled_share"])
            materials.append(material)
    return materials


def emissions_scorecard(provenance: Mapping[str, Any], view: BundleView,
                        notes: list[str]) -> dict[str, Any] | None:
    """From the carbon-footprint credential the provenance accepted, or None."""
    carbon = provenance.get("carbon_footprint")
    if not isinstance(carbon, Mapping) or carbon.get("value") is None:
        return None
    credential = view.credentials.get(str(carbon.get("credential")), {})
    subject = credential.get("credentialSubject") or {}
    ratio = subject.get("primarySourcedRatio") if isinstance(subject, Mapping) else None
    if not isinstance(ratio, int | float):
        notes.append("the carbon footprint credential states no primary data share: "
                     "primarySourcedRatio is 0")
        ratio = 0.0
    unit = str(carbon.get("unit") or "")
    scorecard: dict[str, Any] = {
        "type": ["EmissionsPerformance"], "carbonFootprint": float(carbon["value"]),
        "declaredUnit": "KWH" if unit.endswith("/kWh") else "EA",
        "operationalScope": "CradleToGrave", "primarySourcedRatio": float(ratio),
    }
    return scorecard


def untp_blocks(*, subject: str, battery_kg: float, base_url: str,
                provenance: Mapping[str, Any], view: BundleView, verified: bool,
                policy: PolicyResult | None = None, rule_types: Mapping[str, str] | None = None,
                notes: list[str] | None = None) -> dict[str, Any]:
    """The UNTP ProductPassport blocks of `subject` (emissionsScorecard only when a carbon
    footprint credential backs one), in UNTP's member names."""
    notes = notes if notes is not None else []
    base_url = base_url.rstrip("/")
    blocks: dict[str, Any] = {
        "conformityClaim": conformity_claims(subject, policy, view, base_url,
                                             rule_types or {}, provenance),
        "traceabilityInformation": traceability_information(view, base_url, verified),
        "materialsProvenance": materials_provenance(provenance, battery_kg),
    }
    scorecard = emissions_scorecard(provenance, view, notes)
    if scorecard is not None:
        blocks["emissionsScorecard"] = scorecard
    return {k: v for k, v in blocks.items() if v}


def untp_passport_credential(*, subject: str, name: str, battery_kg: float, issuer: str,
                             issuer_name: str, credential_id: str, valid_from: str,
                             base_url: str, provenance: Mapping[str, Any], view: BundleView,
                             verified: bool, policy: PolicyResult | None = None,
                             rule_types: Mapping[str, str] | None = None,
                             notes: list[str] | None = None) -> dict[str, Any]:
    """The unsigned UNTP DigitalProductPassport credential of `subject`."""
    passport: dict[str, Any] = {
        "type": ["ProductPassport"], "id": subject,
        "product": {"type": ["Product"], "id": subject, "name": name},
        "granularityLevel": "item",
        **untp_blocks(subject=subject, battery_kg=battery_kg, base_url=base_url,
                      provenance=provenance, view=view, verified=verified, policy=policy,
                      rule_types=rule_types, notes=notes),
    }
    return {
        "@context": [VC_CONTEXT, DPP_CONTEXT],
        "type": ["DigitalProductPassport", "VerifiableCredential"],
        "id": credential_id,
        "issuer": {"type": ["CredentialIssuer"], "id": issuer, "name": issuer_name},
        "validFrom": valid_from,
        "credentialSubject": passport,
    }


@lru_cache(maxsize=8)
def _untp_validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    files = resources.files("batterytrace.credentials")
    schema = json.loads(files.joinpath("data", "schemas", "untp", name).read_text("utf-8"))
    return Draft202012Validator(schema)


def untp_schema_errors(document: Mapping[str, Any], model: str = "dpp") -> list[str]:
    """Violations of the pinned UNTP schema of `model` (dpp, dcc, dfr, dia, dte)."""
    validator = _untp_validator(f"untp-{model}-schema.json")
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '$'}: {e.message}"[:400]
            for e in validator.iter_errors(dict(document))]


def rule_types_of(rules: Sequence[Any]) -> dict[str, str]:
    """Rule id -> rule type, through combinators."""
    out: dict[str, str] = {}
    for rule in rules:
        out[rule.id] = rule.type
        out.update(rule_types_of(getattr(rule, "rules", ()) or ()))
    return out


class UntpPassportError(VerificationError):
    """The UNTP blocks cannot be built: the bundle does not verify, is not the bundle of the
    battery, or the document does not validate against the pinned UNTP DPP schema."""

    code = "UNTP_PASSPORT_INVALID"
    title = "UNTP passport not issued"


@dataclass(frozen=True)
class PassportEvidence:
    """What the verifier established from a bundle of one battery, for its UNTP blocks."""

    subject: str
    view: BundleView
    provenance: Mapping[str, Any]
    policy: PolicyResult | None
    rule_types: Mapping[str, str]
    base_url: str


def battery_mass(lines: Iterable[bytes], subject: str) -> float:
    """The item's mass (kg) from its declaration in the bundle."""
    for line in lines:
        record = json.loads(line)
        entry = record.get("entry") if record.get("type") == "entry" else None
        for event in (entry or {}).get("document", {}).get("credentialSubject") or []:
            for declaration in event.get("itemDeclarations") or []:
                if declaration.get("id") == subject:
                    mass = declaration.get("mass") or {}
                    factor = KG_PER_UNIT.get(str(mass.get("uom")), 1)
                    return float(mass.get("value", 0)) * float(factor)
    raise InputError(f"the bundle declares no item {subject}")


def verified_evidence(lines: Sequence[bytes], trust: TrustConfig, *,
                      subject: str | None = None, policy: Policy | None = None,
                      policy_date: date | None = None, base_url: str | None = None,
                      draft: Mapping[str, Any] | None = None) -> PassportEvidence:
    """Verify the bundle of a battery against `trust` (UNTP_PASSPORT_INVALID when it does not
    verify or is the bundle of another item), trace its provenance and judge `policy`.
    `draft`: the BatteryPassportCredential about to be issued, counted as in force (the
    passport rules judge the passport that will carry the verdicts, not an earlier one)."""
    lines = list(lines)
    # Verified first: the view reads only a bundle whose structure and proofs hold.
    report = verify_bundle(lines, trust)
    if not report.ok:
        first = report.failures[0] if report.failures else None
        why = f" ({first.code} at {first.record}: {first.reason})" if first else ""
        raise UntpPassportError(f"the bundle does not verify{why}: no passport is built "
                                "from it")
    view = BundleView.read(lines)
    subject = subject or view.scope
    if subject is None or view.scope != subject:
        raise UntpPassportError(f"the bundle is not the bundle of the item {subject}"
                                if subject else "the bundle is not the bundle of an item")
    provenance = trace_provenance(lines, subject).to_json()
    if draft is not None:
        provenance = with_draft_passport(provenance, draft)
    result, types = None, {}
    if policy is not None:
        result = evaluate_policy(policy, provenance, policy_date=policy_date,
                                 issuers_accredited=bool(trust.governance_roots))
        types = rule_types_of(policy.rules)
    return PassportEvidence(subject, view, provenance, result, types,
                            (base_url or view.base_url()).rstrip("/"))


def passport_blocks(evidence: PassportEvidence, battery_kg: float,
                    notes: list[str] | None = None) -> dict[str, Any]:
    """The UNTP blocks of the battery from verified evidence."""
    return untp_blocks(subject=evidence.subject, battery_kg=battery_kg,
                       base_url=evidence.base_url, provenance=evidence.provenance,
                       view=evidence.view, verified=True, policy=evidence.policy,
                       rule_types=evidence.rule_types, notes=notes)


def with_untp_blocks(credential: Mapping[str, Any], lines: Sequence[bytes],
                     trust: TrustConfig, *, policy: Policy | None = None,
                     policy_date: date | None = None, base_url: str | None = None,
                     notes: list[str] | None = None) -> dict[str, Any]:
    """An unsigned BatteryPassportCredential with its UNTP blocks built from the battery's
    bundle (`lines`, verified against `trust`): blocks it carried before are replaced. The
    result validates against the pinned UNTP DPP schema, else UNTP_PASSPORT_INVALID."""
    subject = dict(credential.get("credentialSubject") or {})
    evidence = verified_evidence(lines, trust, subject=str(subject.get("id")), policy=policy,
                                 policy_date=policy_date, base_url=base_url, draft=credential)
    # The mass the ledger's declaration of the item states (what the verifier established);
    # the passport's own batteryMass only when the ledger states none.
    try:
        kg = battery_mass(lines, evidence.subject)
    except InputError:
        kg = 0.0
    mass = subject.get("batteryMass")
    if kg <= 0 and isinstance(mass, int | float):
        kg = float(mass)
    kept = {k: v for k, v in subject.items() if k not in UNTP_BLOCKS}
    out = {**credential, "credentialSubject": {**kept, **passport_blocks(evidence, kg, notes)}}
    errors = untp_schema_errors({k: v for k, v in out.items() if k != "proof"})
    if errors:
        raise UntpPassportError(f"not valid against the UNTP DPP schema: {errors[0]}")
    return out


def untp_passport_from_bundle(lines: Sequence[bytes], trust: TrustConfig, *, issuer: str,
                              issuer_name: str, credential_id: str, valid_from: str,
                              policy: Policy | None = None, policy_date: date | None = None,
                              base_url: str | None = None,
                              notes: list[str] | None = None) -> dict[str, Any]:
    """The unsigned UNTP DigitalProductPassport credential of a bundle's battery (`bundle
    untp-passport`): the same blocks as the BatteryPassportCredential's, without the Battery
    Pass attributes, valid against the pinned UNTP DPP schema."""
    lines = list(lines)
    evidence = verified_evidence(lines, trust, policy=policy, policy_date=policy_date,
                                 base_url=base_url)
    model = evidence.provenance.get("model") or {}
    credential = untp_passport_credential(
        subject=evidence.subject, name=str(model.get("name") or evidence.subject),
        battery_kg=battery_mass(lines, evidence.subject), issuer=issuer,
        issuer_name=issuer_name, credential_id=credential_id, valid_from=valid_from,
        base_url=evidence.base_url, provenance=evidence.provenance, view=evidence.view,
        verified=True, policy=evidence.policy, rule_types=evidence.rule_types, notes=notes)
    errors = untp_schema_errors(credential)
    if errors:
        raise UntpPassportError(f"not valid against the UNTP DPP schema: {errors[0]}")
    return credential


__all__ = ["BundleView", "PassportEvidence", "UntpPassportError", "battery_mass",
           "conformity_claims", "emissions_scorecard", "materials_provenance",
           "passport_blocks", "rule_types_of", "traceability_information", "untp_blocks",
           "untp_passport_credential", "untp_passport_from_bundle", "untp_schema_errors",
           "verified_evidence", "with_untp_blocks"]
