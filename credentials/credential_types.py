"""The registry of battery-domain credential types: build and validate their documents.

Each `CredentialType` ties a type name to its subject model (`domain_models`), its versioned
JSON Schema (bundled in `data/schemas/`, referenced by `credentialSchema`), the UNTP credential
it aligns with, and the JSON-LD contexts its documents carry:
`[VC 2.0, the UNTP working context, the batterytrace context]` (UNTP requires its context second).

Issuance calls `build_credential` (which validates the subject); verification calls
`validate_credential_document`. Signing, status entries and ledger anchors live elsewhere.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ValidationError

from . import domain_models as dm
from .compiled_schema import Accepts, compile_accepting
from .errors import InputError, ParsingError, SchemaValidationError, VerificationError

VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
BATTERYTRACE_CONTEXT = "https://batterytrace.dev/contexts/credentials-v1.jsonld"
SCHEMA_BASE = "https://batterytrace.dev/schemas/"
UNTP_BASE = "https://test.uncefact.org/vocabulary/untp/"

SubjectKind = Literal["facility", "lot", "item", "participant"]


class CredentialSubjectError(VerificationError):
    """A credential subject does not satisfy its type's model; the message names the field."""

    code = "CREDENTIAL_SUBJECT_ERROR"
    title = "Credential subject is invalid"


class UnknownCredentialTypeError(InputError):
    """The type name (or the document's `type`) is not a registered battery-domain type."""

    code = "UNKNOWN_CREDENTIAL_TYPE"
    title = "Unknown credential type"


@dataclass(frozen=True)
class UntpFamily:
    """A UNTP credential family: its VC type, subject class and working context."""

    credential_type: str
    short: str  # dcc, dfr, dia, dpp

    @property
    def context(self) -> str:
        return f"{UNTP_BASE}{self.short}/working/"

    @property
    def schema_file(self) -> str:
        """File name of the UNTP working schema (in ../shared/domain/samples/untp/...)."""
        return f"untp-{self.short}-schema.json"


DCC = UntpFamily("DigitalConformityCredential", "dcc")
DFR = UntpFamily("DigitalFacilityRecord", "dfr")
DIA = UntpFamily("DigitalIdentityAnchor", "dia")
DPP = UntpFamily("DigitalProductPassport", "dpp")


@dataclass(frozen=True)
class CredentialType:
    """One credential type of the registry.

    `subject_kind` says what `credentialSubject.id` names (a facility, a lot, an item -- a
    battery, or a battery model or batch -- or a participant's DID); `policy_fields` documents
    the subject fields the verifier's policy rules read (JSON path in the subject -> meaning).
    """

    name: str
    model: type[BaseModel]
    untp: UntpFamily
    subject_kind: SubjectKind
    description: str
    policy_fields: Mapping[str, str] = field(default_factory=dict)
    version: str = "1.0"

    @property
    def kebab(self) -> str:
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", self.name.replace("IRMA", "Irma")).lower()

    @property
    def schema_file(self) -> str:
        return f"{self.kebab}-{self.version}.json"

    @property
    def schema_id(self) -> str:
        return SCHEMA_BASE + self.schema_file

    @property
    def contexts(self) -> list[str]:
        return [VC_V2_CONTEXT, self.untp.context, BATTERYTRACE_CONTEXT]

    @property
    def types(self) -> list[str]:
        return ["VerifiableCredential", self.untp.credential_type, self.name]

    @property
    def subject_types(self) -> list[str]:
        return list(getattr(self.model, "REQUIRED_TYPES", ()))


_REGISTRY: dict[str, CredentialType] = {
    t.name: t
    for t in (
        CredentialType(
            "IRMAAuditCredential",
            dm.IRMAAuditSubject,
            DCC,
            "facility",
            "IRMA audit result of a mine site, issued by an accredited certification body.",
            {
                "achievementLevel": "IRMA Transparency | IRMA 50 | IRMA 75 | IRMA 100",
                "certified": "true only for IRMA 100",
                "minerals[]": "mined commodities of the site (domain_models.MINERALS)",
                "countryOfOperation": "ISO 3166-1 alpha-2 of the mine site",
                "openNonConformities.critical": "open critical non-conformities",
                "certificationPeriod": "startDate / endDate of the certification",
            },
        ),
        CredentialType(
            "MineralOriginCredential",
            dm.MineralOriginSubject,
            DCC,
            "lot",
            "Origin of a lot of mined material: mine site, country, period, ASM, CAHRA flag.",
            {
                "mineral": "the lot's commodity (domain_models.MINERALS)",
                "countryOfOrigin": "ISO 3166-1 alpha-2 (IRA free-trade-agreement checks)",
                "mineSite.id": "the mine site facility URI (links to IRMA audits)",
                "productionType": "industrial | artisanal-small-scale",
                "conflictAffectedHighRiskArea": "CAHRA flag",
            },
        ),
        CredentialType(
            "CarbonFootprintCredential",
            dm.CarbonFootprintSubject,
            DCC,
            "item",
            "Carbon footprint of a battery model per plant (kg CO2e/kWh, per life-cycle stage).",
            {
                "batteryCarbonFootprint": "kg CO2e per kWh over the service life",
                "carbonFootprintPerformanceClass": "A..G",
                "manufacturingPlant.id": "the plant facility URI",
            },
        ),
        CredentialType(
            "RecycledContentCredential",
            dm.RecycledContentSubject,
            DCC,
            "item",
            "Recycled shares of Co, Li, Ni, Pb in the active materials of a model and batch.",
            {
                "recycledContent[].recycledMaterial": "Cobalt | Nickel | Lithium | Lead",
                "recycledContent[].preConsumerShare": "percent from manufacturing waste",
                "recycledContent[].postConsumerShare": "percent from post-consumer waste",
                "backingLots[]": "recovered-material lot URIs that back the claim",
            },
        ),
        CredentialType(
            "DueDiligenceCredential",
            dm.DueDiligenceSubject,
            DCC,
            "participant",
            "Supply-chain due-diligence policy, custody system and report of an operator.",
            {
                "dueDiligencePolicy.coveredMinerals[]": "minerals the policy covers",
                "chainOfCustodySystem": "identity-preserved | segregated | mass-balance | "
                "book-and-claim",
                "latestAnnualReport.reportDate": "date of the latest annual report",
            },
        ),
        CredentialType(
            "BatteryPassportCredential",
            dm.BatteryPassportSubject,
            DPP,
            "item",
            "Static battery passport data (Battery Pass 1.2 terms) of one battery.",
            {
                "gbt34014Code": "GB/T 34014 code when the battery has one",
                "batteryCategory": "lmt | ev | industrial | stationary",
                "product.productionDate": "manufacturing date",
                "ratedEnergy": "kWh (carbon footprint per kWh)",
            },
        ),
        CredentialType(
            "FacilityCredential",
            dm.FacilitySubject,
            DFR,
            "facility",
            "Digital Facility Record issued by the ledger operator from a registration entry.",
            {
                "facility.operatedByParty.id": "operator participant URI",
                "facility.countryOfOperation": "ISO 3166-1 alpha-2",
                "facilityRole": "mine | refinery | ... | recycling-plant",
                "minerals[]": "commodities handled (mines)",
            },
        ),
        CredentialType(
            "ParticipantCredential",
            dm.ParticipantSubject,
            DIA,
            "participant",
            "Digital Identity Anchor binding a participant's DID to its registered identity.",
            {
                "roles[]": "supply-chain roles of the participant",
                "countryOfRegistration": "ISO 3166-1 alpha-2",
            },
        ),
        CredentialType(
            "RecyclingEfficiencyCredential",
            dm.RecyclingEfficiencySubject,
            DCC,
            "facility",
            "Audited recycling efficiency and material recovery rates of a recycling plant.",
            {
                "recyclingEfficiency": "percent by weight (EU recycling efficiency targets)",
                "materialRecovery[].material": "Cobalt | Nickel | Lithium | Lead | Copper",
                "materialRecovery[].recoveryRate": "percent recovered",
                "reportingPeriod": "startDate / endDate",
            },
        ),
    )
}


def credential_types() -> list[CredentialType]:
    """Every registered battery-domain credential type, in a stable order."""
    return list(_REGISTRY.values())


def credential_type(type_name: str) -> CredentialType:
    """The registered type called `type_name`; UnknownCredentialTypeError otherwise."""
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise UnknownCredentialTypeError(
            f"unknown credential type {type_name!r} (known: {', '.join(_REGISTRY)})",
            type=type_name,
        ) from None


def subject_kind(type_name: str) -> SubjectKind:
    """What the subject `id` of `type_name` names: facility, lot, item or participant."""
    return credential_type(type_name).subject_kind


def type_of_document(doc: Mapping[str, Any]) -> CredentialType:
    """The registered type a credential document declares in its `type` list."""
    types = doc.get("type")
    names = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    found = [_REGISTRY[n] for n in names if isinstance(n, str) and n in _REGISTRY]
    if len(found) != 1:
        raise UnknownCredentialTypeError(
            f"document type {types!r} names {len(found)} battery-domain types, expected 1",
            type=types,
        )
    return found[0]


# --- subject validation -------------------------------------------------------------------


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = "credentialSubject"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validate_subject(type_name: str, subject: Mapping[str, Any]) -> BaseModel:
    """Validate a credential subject against its type's model and return the model.

    Raises CredentialSubjectError whose message names the first failing field
    (`credentialSubject.auditDates.stage2Date: ...`); every error is in `details["errors"]`.
    """
    ctype = credential_type(type_name)
    if not isinstance(subject, Mapping):
        raise CredentialSubjectError(f"{type_name}: credentialSubject must be a JSON object")
    try:
        return ctype.model.model_validate(dict(subject))
    except ValidationError as exc:
        errors = [{"field": _field_path(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CredentialSubjectError(
            f"{type_name}: {first['field']}: {first['message']}{more}",
            field=first["field"],
            errors=errors,
        ) from None


# --- building documents -------------------------------------------------------------------


def _timestamp(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # VC 2.0: a time without offset is UTC
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_credential(
    type_name: str,
    subject: Mapping[str, Any],
    *,
    issuer: str | Mapping[str, Any],
    issuer_name: str | None = None,
    id: str | None = None,
    valid_from: datetime | str | None = None,
    valid_until: datetime | str | None = None,
) -> dict[str, Any]:
    """An unsigned VC 2.0 document of `type_name` about `subject` (validated first).

    `issuer` is a DID (or an issuer object). With `issuer_name`, the issuer becomes a UNTP
    `CredentialIssuer` object `{type, id, name}`, which the UNTP schemas require.
    `id` defaults to a fresh `urn:uuid:`. The subject gets its UNTP `type` when it has none and
    is written back in normal form (camelCase, ISO dates, no nulls).
    """
    ctype = credential_type(type_name)
    subject = dict(subject)
    if "type" not in subject:
        subject = {"type": ctype.subject_types, **subject}
    model = validate_subject(type_name, subject)
    if isinstance(issuer, str) and issuer_name is not None:
        issuer_value: str | dict[str, Any] = {
            "type": ["CredentialIssuer"],
            "id": issuer,
            "name": issuer_name,
        }
    else:
        issuer_value = issuer if isinstance(issuer, str) else dict(issuer)
    doc: dict[str, Any] = {
        "@context": ctype.contexts,
        "id": id or f"urn:uuid:{uuid.uuid4()}",
        "type": ctype.types,
        "issuer": issuer_value,
    }
    if valid_from is not None:
        doc["validFrom"] = _timestamp(valid_from)
    if valid_until is not None:
        doc["validUntil"] = _timestamp(valid_until)
    doc["credentialSchema"] = {"id": ctype.schema_id, "type": "JsonSchema"}
    doc["credentialSubject"] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return doc


# --- JSON Schemas -------------------------------------------------------------------------

_DATE_TIME = (
    r"^-?([1-9][0-9]{3,}|0[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)


def _contains_all(values: list[str]) -> dict[str, Any]:
    return {"allOf": [{"contains": {"const": v}} for v in values]}


def generate_schema(type_name: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a whole credential of `type_name`, from its model.

    The bundled files in `data/schemas/` are this function's output; a test keeps them equal.
    """
    ctype = credential_type(type_name)
    subject = ctype.model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs = subject.pop("$defs", {})
    defs[ctype.model.__name__] = subject
    uri = {"type": "string", "pattern": dm.URI_PATTERN}
    timestamp = {"type": "string", "pattern": _DATE_TIME}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": ctype.schema_id,
        "title": f"{ctype.name} {ctype.version}",
        "description": ctype.description,
        "type": "object",
        "required": ["@context", "id", "type", "issuer", "credentialSchema", "credentialSubject"],
        "properties": {
            "@context": {
                "type": "array",
                "prefixItems": [{"const": c} for c in ctype.contexts],
                "minItems": len(ctype.contexts),
                "items": {"type": ["string", "object"]},
            },
            "id": uri,
            "type": {"type": "array", "items": {"type": "string"}, **_contains_all(ctype.types)},
            "issuer": {
                "oneOf": [
                    uri,
                    {"type": "object", "required": ["id"], "properties": {"id": uri}},
                ]
            },
            "validFrom": timestamp,
            "validUntil": timestamp,
            "credentialSchema": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {"id": {"const": ctype.schema_id}, "type": {"const": "JsonSchema"}},
            },
            "credentialSubject": {"$ref": f"#/$defs/{ctype.model.__name__}"},
        },
        "$defs": defs,
    }


@cache
def load_schema(type_name: str) -> dict[str, Any]:
    """The bundled JSON Schema of `type_name` (package data)."""
    ctype = credential_type(type_name)
    path = resources.files(__package__) / "data" / "schemas" / ctype.schema_file
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _validator(type_name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        load_schema(type_name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@cache
def _accepts(type_name: str) -> Accepts:
    """The type's schema compiled once, formats asserted as `_validator` does."""
    return compile_accepting(load_schema(type_name), assert_formats=True)


def validate_credential_document(doc: Mapping[str, Any]) -> None:
    """Check a (signed or unsigned) credential against its type's JSON Schema and model.

    Raises UnknownCredentialTypeError, SchemaValidationError (message names the JSON path) or
    CredentialSubjectError; returns None when the document is a well-formed credential of its
    type. Signatures, status and trust are checked elsewhere.
    """
    if not isinstance(doc, Mapping):
        raise ParsingError("a credential must be a JSON object")
    ctype = type_of_document(doc)
    # The compiled validator accepts; a document it rejects goes to jsonschema, which decides.
    error = None if _accepts(ctype.name)(dict(doc)) else jsonschema.exceptions.best_match(
        _validator(ctype.name).iter_errors(dict(doc))
    )
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(document)"
        raise SchemaValidationError(
            f"{ctype.name} does not match {ctype.schema_id} at {path}: {error.message}",
            path=path,
            schema=ctype.schema_id,
        )
    validate_subject(ctype.name, doc["credentialSubject"])


def write_schemas(directory: str) -> list[str]:
    """Regenerate the bundled schema files into `directory`; returns the file names."""
    written = []
    for ctype in credential_types():
        target = Path(directory) / ctype.schema_file
        text = json.dumps(generate_schema(ctype.name), indent=2, ensure_ascii=False) + "\n"
        target.write_text(text, encoding="utf-8")
        written.append(ctype.schema_file)
    return written
