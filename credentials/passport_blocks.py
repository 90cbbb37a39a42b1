"""The UNTP Digital Product Passport blocks a BatteryPassportCredential carries, as models.

UNTP's ProductPassport (working data model, pinned in `data/schemas/untp/untp-dpp-schema.json`)
defines `conformityClaim`, `traceabilityInformation`, `materialsProvenance` and
`emissionsScorecard`. The passport's issuer never writes them by hand: they are built from a
verified evidence bundle of the battery by `verifier/untp_dpp.py` (one place), and these models
say what a well-formed block is, so that the passport's own schema
(`battery-passport-credential-1.0.json`, generated from `domain_models`) checks them too:

- `ConformityClaim`: one per policy rule, with the rule's `verdict` (PASS, FAIL,
  NOT_EVALUATED; `conformance` given exactly when the rule was evaluated, true for PASS), its
  legal source (`referenceRegulation`), and the credential backing it (`conformityEvidence`);
- `TraceabilityPerformance`: SecureLinks to the DTE events of one business step;
- `MaterialProvenance`: an element from one country of origin, its mass fraction of the
  battery and its recycled share (fractions, 0 to 1, as UNTP writes them);
- `EmissionsScorecard`: the carbon footprint per declared unit from the carbon-footprint
  credential.

`verdict` is the project's extension (the project context defines it); UNTP's Claim allows it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .domain_blocks import (
    ConformityTopic,
    CountryCode,
    DomainModel,
    Measure,
    SecureLink,
    Text,
    TypedModel,
    Uri,
)

Fraction = Annotated[float, Field(ge=0, le=1)]
Verdict = Literal["PASS", "FAIL", "NOT_EVALUATED"]


class AdministeringBody(DomainModel):
    """Who administers a regulation (UNTP `Regulation.administeredBy`)."""

    id: Uri
    name: Text


class RegulationReference(TypedModel):
    """The legal source of a policy rule (UNTP `Regulation`)."""

    REQUIRED_TYPES = ("Regulation",)
    name: Text
    administered_by: AdministeringBody
    jurisdiction_country: CountryCode | None = None


class ConformityClaim(TypedModel):
    """One regulatory check of the battery: a policy rule's verdict (UNTP `Claim`)."""

    REQUIRED_TYPES = ("Claim",)
    id: Uri
    description: Text
    conformity_topic: ConformityTopic
    reference_regulation: RegulationReference
    verdict: Verdict
    conformance: bool | None = None
    assessment_date: date | None = None
    conformity_evidence: SecureLink | None = None

    @model_validator(mode="after")
    def _conformance_follows_the_verdict(self) -> ConformityClaim:
        if self.verdict == "NOT_EVALUATED":
            if self.conformance is not None:
                raise ValueError("a rule not evaluated states no conformance")
        elif self.conformance is None or self.conformance != (self.verdict == "PASS"):
            raise ValueError(f"conformance must be {self.verdict == 'PASS'} for verdict "
                             f"{self.verdict}")
        return self


class TraceabilityPerformance(TypedModel):
    """The DTE events of one business step (UNTP `TraceabilityPerformance`)."""

    REQUIRED_TYPES = ("TraceabilityPerformance",)
    value_chain_process: Text
    verified_ratio: Fraction
    traceability_event: Annotated[list[SecureLink], Field(min_length=1)]


class MaterialProvenance(TypedModel):
    """An element of the battery from one country of origin (UNTP `Material`)."""

    REQUIRED_TYPES = ("Material",)
    name: Text
    origin_country: CountryCode | None = None
    mass_fraction: Annotated[float, Field(ge=0)]
    mass: Measure
    recycled_mass_fraction: Fraction | None = None


class EmissionsScorecard(TypedModel):
    """The battery's carbon footprint (UNTP `EmissionsPerformance`)."""

    REQUIRED_TYPES = ("EmissionsPerformance",)
    carbon_footprint: Annotated[float, Field(ge=0)]
    declared_unit: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,3}$")]
    operational_scope: Literal["None", "CradleToGate", "CradleToGrave"]
    primary_sourced_ratio: Fraction


# The members of the passport subject these blocks fill, in UNTP's names.
UNTP_BLOCKS = ("conformityClaim", "traceabilityInformation", "materialsProvenance",
               "emissionsScorecard")

__all__ = ["UNTP_BLOCKS", "ConformityClaim", "EmissionsScorecard", "MaterialProvenance",
           "RegulationReference", "TraceabilityPerformance"]
