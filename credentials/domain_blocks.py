"""Shared building blocks of the battery-domain credential subjects (`domain_models`).

Patterns and constrained types (URI, DID, GB/T 34014 code, country code, percentage), the base
models (`DomainModel`: camelCase JSON, closed, immutable; `TypedModel`: required UNTP type
names), the UNTP building blocks, and `ConformityAttestationBase`, the header of every
conformity credential.

Vocabularies the verifier's policy rules rely on:

- `MINERALS`: mined commodities (origin, IRMA, due diligence), lowercase names;
- `RECOVERABLE_MATERIALS`: the Battery Pass material names used for recycled content and
  recovery rates (`MATERIAL_SYMBOL` maps them to chemical symbols);
- shares, rates and efficiencies are percentages (0 to 100), as in Battery Pass and the EU rules.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .gbt34014 import PATTERN as GBT34014_REGEX

URI_PATTERN = r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$"
DID_PATTERN = r"^did:[a-z0-9]+:\S+$"

# GB/T 34014 battery code (24 characters, or 19 for cascade utilisation): credentials/gbt34014.py.
GBT34014_PATTERN = GBT34014_REGEX

Uri = Annotated[str, Field(pattern=URI_PATTERN)]
Did = Annotated[str, Field(pattern=DID_PATTERN)]
Text = Annotated[str, Field(min_length=1)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
Percent = Annotated[float, Field(ge=0, le=100)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

Mineral = Literal[
    "lithium",
    "cobalt",
    "nickel",
    "manganese",
    "natural-graphite",
    "copper",
    "aluminium",
    "lead",
    "iron",
    "phosphate",
]
MINERALS: tuple[str, ...] = Mineral.__args__  # type: ignore[attr-defined]

RecoverableMaterial = Literal["Cobalt", "Nickel", "Lithium", "Lead", "Copper"]
RECOVERABLE_MATERIALS: tuple[str, ...] = RecoverableMaterial.__args__  # type: ignore[attr-defined]
MATERIAL_SYMBOL = {"Cobalt": "Co", "Nickel": "Ni", "Lithium": "Li", "Lead": "Pb", "Copper": "Cu"}

ConformityTopic = Literal[
    "environment.energy",
    "environment.emissions",
    "environment.water",
    "environment.waste",
    "environment.deforestation",
    "environment.biodiversity",
    "circularity.content",
    "circularity.design",
    "social.labour",
    "social.rights",
    "social.community",
    "social.safety",
    "governance.ethics",
    "governance.compliance",
    "governance.transparency",
]


class DomainModel(BaseModel):
    """Base of every model here: camelCase JSON, closed, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class TypedModel(DomainModel):
    """A model whose JSON `type` list must contain the UNTP class names in `REQUIRED_TYPES`."""

    REQUIRED_TYPES: ClassVar[tuple[str, ...]] = ()
    type: list[str] | None = None

    @field_validator("type")
    @classmethod
    def _required_types(cls, value: list[str] | None) -> list[str] | None:
        missing = [t for t in cls.REQUIRED_TYPES if value is not None and t not in value]
        if missing:
            raise ValueError(f"type must contain {', '.join(missing)}")
        return value


# --- UNTP building blocks -----------------------------------------------------------------


class Party(DomainModel):
    """An organisation or person named by URI (UNTP party reference)."""

    id: Uri
    name: Text
    registered_id: str | None = None
    description: str | None = None


class FacilityRef(DomainModel):
    """A facility (mine site, plant) named by URI."""

    id: Uri
    name: Text
    registered_id: str | None = None


class Measure(DomainModel):
    """A value with a UNECE Rec 20 unit code (KGM, TNE, KWH...)."""

    value: float
    unit: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,3}$")]


class Metric(DomainModel):
    metric_name: Text
    metric_value: Measure
    score: str | None = None
    accuracy: Annotated[float, Field(ge=0, le=1)] | None = None


class Link(TypedModel):
    REQUIRED_TYPES = ("Link",)
    link_url: Uri = Field(alias="linkURL")
    link_name: str | None = None
    link_type: str | None = None


class SecureLink(TypedModel):
    """A link to a document with its SHA-256 digest (hex), so the document is tamper-evident."""

    REQUIRED_TYPES = ("SecureLink", "Link")
    link_url: Uri = Field(alias="linkURL")
    link_name: str | None = None
    link_type: str | None = None
    hash_digest: Sha256Hex
    hash_method: Literal["SHA-256"] = "SHA-256"


class Period(DomainModel):
    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end_date < self.start_date:
            raise ValueError("endDate is before startDate")
        return self


class GeoPoint(DomainModel):
    """A GeoJSON point: [longitude, latitude] (optionally altitude)."""

    type: Literal["Point"] = "Point"
    coordinates: Annotated[list[float], Field(min_length=2, max_length=3)]

    @field_validator("coordinates")
    @classmethod
    def _in_range(cls, value: list[float]) -> list[float]:
        if not (-180 <= value[0] <= 180 and -90 <= value[1] <= 90):
            raise ValueError("coordinates must be [longitude, latitude] in degrees")
        return value


class IdentifierScheme(TypedModel):
    REQUIRED_TYPES = ("IdentifierScheme",)
    id: Uri
    name: Text


class Classification(TypedModel):
    REQUIRED_TYPES = ("Classification",)
    id: Uri
    name: Text
    code: str | None = None
    scheme_id: Uri | None = Field(default=None, alias="schemeID")
    scheme_name: str | None = None


class ConformityScheme(TypedModel):
    """The scheme an attestation is issued under (for IRMA: the IRMA Standard and its version)."""

    REQUIRED_TYPES = ("ConformityScheme",)
    id: Uri
    name: Text
    description: Text
    version: Text
    valid_from: date
    owner: Party


class FacilityVerification(TypedModel):
    REQUIRED_TYPES = ("FacilityVerification",)
    facility: FacilityRef
    id_verified_by_cab: bool | None = Field(default=None, alias="IDverifiedByCAB")


class ConformityAssessment(TypedModel):
    """One UNTP assessment (a topic, a conformance flag, declared values)."""

    REQUIRED_TYPES = ("ConformityAssessment", "Declaration")
    id: Uri
    name: str | None = None
    description: str | None = None
    assessment_date: date | None = None
    conformity_topic: ConformityTopic
    conformance: bool
    declared_value: list[Metric] | None = None
    assessed_facility: list[FacilityVerification] | None = None


class LedgerReference(DomainModel):
    """The ledger entry a registry credential was issued from (log position and entry hash)."""

    sequence: Annotated[int, Field(ge=0)]
    entry_hash: Sha256Hex


class ConformityAttestationBase(TypedModel):
    """The UNTP ConformityAttestation header shared by every conformity credential.

    `id` is the URI of what the attestation speaks about (facility, lot, item or participant).
    """

    REQUIRED_TYPES = ("ConformityAttestation", "Attestation")
    id: Uri
    name: Text
    description: str | None = None
    assessor_level: Literal["Self", "Commercial", "Buyer", "Membership", "Unspecified", "3rdParty"]
    assessment_level: Literal[
        "GovtApproval", "GlobalMRA", "Accredited", "Verified", "Validated", "Unspecified"
    ]
    attestation_type: Literal[
        "certification",
        "declaration",
        "inspection",
        "testing",
        "verification",
        "validation",
        "calibration",
    ]
    issued_to_party: Party
    scope: ConformityScheme | None = None
    conformity_certificate: SecureLink | None = None
    assessment: list[ConformityAssessment] | None = None

