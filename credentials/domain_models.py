"""Pydantic models of the battery-domain credential subjects.

Each subject follows the UNTP working data model of its family, so that the credential validates
against the UNTP schema, and carries the project's fields as extensions where UNTP allows them:

- conformity credentials (IRMA audit, mineral origin, carbon footprint, recycled content, due
  diligence, recycling efficiency) are UNTP `ConformityAttestation`s (Digital Conformity
  Credential); their header is `ConformityAttestationBase`;
- the facility credential is a UNTP `FacilityRecord` (Digital Facility Record);
- the participant credential is a UNTP `RegisteredIdentity` (Digital Identity Anchor);
- the passport is a UNTP `ProductPassport` (Digital Product Passport) with Battery Pass 1.2 terms
  as the battery-specific extension, and UNTP's own blocks (`passport_blocks`).

JSON names are camelCase (the UNTP and Battery Pass spelling); Python names are snake_case.
Unknown fields are rejected (`extra="forbid"`) so that a misspelt claim is an error, not a claim
silently left unchecked. The shared building blocks and the vocabularies (`MINERALS`,
`RECOVERABLE_MATERIALS`, `MATERIAL_SYMBOL`) are in `domain_blocks`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator, model_validator

from .domain_blocks import (
    GBT34014_PATTERN,
    Classification,
    ConformityAttestationBase,
    CountryCode,
    Did,
    DomainModel,
    FacilityRef,
    GeoPoint,
    IdentifierScheme,
    LedgerReference,
    Link,
    Measure,
    Mineral,
    Party,
    Percent,
    Period,
    RecoverableMaterial,
    SecureLink,
    Text,
    TypedModel,
    Uri,
)
from .domain_blocks import MINERALS as MINERALS  # re-exported: domain_models.MINERALS (docs)
from .domain_blocks import URI_PATTERN as URI_PATTERN  # re-exported: credential_types
from .gbt34014 import chemistry_letter, code_problems
from .passport_blocks import (
    ConformityClaim,
    EmissionsScorecard,
    MaterialProvenance,
    TraceabilityPerformance,
)

_GBT34014 = re.compile(GBT34014_PATTERN)


def _unique(values: list[str], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} lists a value twice")


# --- IRMA audit (subject: the mine site) --------------------------------------------------

IrmaLevel = Literal["IRMA Transparency", "IRMA 50", "IRMA 75", "IRMA 100"]


class ChapterScore(DomainModel):
    chapter: Annotated[str, Field(pattern=r"^[1-4]\.[0-9]{1,2}$")]
    title: Text
    score: Percent


class AuditDates(DomainModel):
    announcement_date: date | None = None
    stage1_date: date | None = None
    stage2_date: date
    report_finalised_date: date
    publication_date: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> AuditDates:
        steps = [
            self.announcement_date,
            self.stage1_date,
            self.stage2_date,
            self.report_finalised_date,
            self.publication_date,
        ]
        known = [d for d in steps if d is not None]
        if known != sorted(known):
            raise ValueError(
                "audit dates are out of order (announcement, stage 1, stage 2, "
                "report finalised, publication)"
            )
        return self


class NonConformities(DomainModel):
    critical: Annotated[int, Field(ge=0)]
    major: Annotated[int, Field(ge=0)]


class Auditor(DomainModel):
    name: Text
    id: Uri | None = None


class IRMAAuditSubject(ConformityAttestationBase):
    """An IRMA audit result for one mine site. Only "IRMA 100" is `certified`."""

    facility_name: Text
    operator: Party
    country_of_operation: CountryCode
    geo_location: GeoPoint
    minerals: Annotated[list[Mineral], Field(min_length=1)]
    irma_standard_version: Text
    achievement_level: IrmaLevel
    certified: bool
    chapter_scores: list[ChapterScore]
    audit_type: Literal["initial", "surveillance", "recertification"]
    certification_body: Party
    lead_auditor: Auditor
    audit_dates: AuditDates
    open_non_conformities: NonConformities
    corrective_action_deadline: date | None = None
    conformity_certificate: SecureLink  # the audit report URL and its SHA-256 digest
    report_redacted: bool = False
    certification_period: Period

    @model_validator(mode="after")
    def _consistent(self) -> IRMAAuditSubject:
        if self.certified != (self.achievement_level == "IRMA 100"):
            raise ValueError("certified must be true exactly when achievementLevel is IRMA 100")
        open_count = self.open_non_conformities.critical + self.open_non_conformities.major
        if open_count and self.corrective_action_deadline is None:
            raise ValueError("correctiveActionDeadline is required while non-conformities are open")
        _unique([c.chapter for c in self.chapter_scores], "chapterScores")
        return self


# --- Mineral origin (subject: the lot) ----------------------------------------------------


class MineralOriginSubject(ConformityAttestationBase):
    """Where a lot of mined material comes from, and how it was mined."""

    mineral: Mineral
    mine_site: FacilityRef
    country_of_origin: CountryCode
    extraction_period: Period
    production_type: Literal["industrial", "artisanal-small-scale"]
    conflict_affected_high_risk_area: bool
    quantity: Measure | None = None


# --- Carbon footprint (subject: the battery model made at one plant) ----------------------

LifecycleStage = Literal["RawMaterialExtraction", "MainProduction", "Distribution", "Recycling"]


class StageFootprint(DomainModel):
    lifecycle_stage: LifecycleStage
    carbon_footprint: float


class CarbonFootprintSubject(ConformityAttestationBase):
    """A carbon footprint declaration, Battery Pass 1.2 terms, in kg CO2e per kWh of total
    energy over the service life; the four life-cycle stages must add up to the total."""

    battery_model_name: Text
    manufacturing_plant: FacilityRef
    battery_carbon_footprint: Annotated[float, Field(ge=0)]
    declared_unit: Literal["kgCO2e/kWh"] = "kgCO2e/kWh"
    carbon_footprint_per_lifecycle_stage: Annotated[list[StageFootprint], Field(min_length=4)]
    absolute_carbon_footprint: Annotated[float, Field(ge=0)] | None = None
    carbon_footprint_performance_class: Annotated[str, Field(pattern=r"^[A-G]$")]
    calculation_rules: Literal["EU-2023/1542-delegated-act", "PEF"]
    calculation_rules_reference: Uri | None = None
    carbon_footprint_study: Uri | None = None
    third_party_verifier: Party

    @model_validator(mode="after")
    def _stages_add_up(self) -> CarbonFootprintSubject:
        stages = self.carbon_footprint_per_lifecycle_stage
        _unique([s.lifecycle_stage for s in stages], "carbonFootprintPerLifecycleStage")
        total = sum(s.carbon_footprint for s in stages)
        # Declarations round each stage; allow 1% (at least 0.1 kg) of rounding slack.
        if abs(total - self.battery_carbon_footprint) > max(0.1, 0.01 * total):
            raise ValueError(
                f"life-cycle stages add up to {total:g}, not to "
                f"batteryCarbonFootprint {self.battery_carbon_footprint:g}"
            )
        return self


# --- Recycled content (subject: the battery model and batch) ------------------------------


class RecycledShare(DomainModel):
    """Percent of the material in the active materials recovered from manufacturing waste
    (pre-consumer) and from post-consumer waste (Battery Pass 1.2 `recycledContent`)."""

    recycled_material: Literal["Cobalt", "Nickel", "Lithium", "Lead"]
    pre_consumer_share: Percent
    post_consumer_share: Percent

    @model_validator(mode="after")
    def _at_most_whole(self) -> RecycledShare:
        if self.pre_consumer_share + self.post_consumer_share > 100:
            raise ValueError("preConsumerShare + postConsumerShare exceeds 100")
        return self


class RecycledContentSubject(ConformityAttestationBase):
    battery_model_name: Text
    batch_number: Text
    manufacturing_plant: FacilityRef
    recycled_content: Annotated[list[RecycledShare], Field(min_length=1)]
    backing_lots: Annotated[list[Uri], Field(min_length=1)]

    @model_validator(mode="after")
    def _one_share_per_material(self) -> RecycledContentSubject:
        _unique([s.recycled_material for s in self.recycled_content], "recycledContent")
        return self


# --- Due diligence (subject: the operator) ------------------------------------------------


class DueDiligencePolicy(DomainModel):
    covered_minerals: Annotated[list[Mineral], Field(min_length=1)]
    policy_document: SecureLink
    oecd_aligned: bool


class ThirdPartyVerification(DomainModel):
    verifier: Party
    verification_date: date


class AnnualReport(DomainModel):
    report_date: date
    report: SecureLink


class DueDiligenceSubject(ConformityAttestationBase):
    due_diligence_policy: DueDiligencePolicy
    chain_of_custody_system: Literal[
        "identity-preserved", "segregated", "mass-balance", "book-and-claim"
    ]
    supplier_contract_clauses: bool
    third_party_verification: ThirdPartyVerification | None = None
    latest_annual_report: AnnualReport


# --- Recycling efficiency (subject: the recycling plant) ----------------------------------


class RecoveryRate(DomainModel):
    material: RecoverableMaterial
    recovery_rate: Percent


class EnergySource(DomainModel):
    renewable_share: Percent
    description: str | None = None


class RecyclingEfficiencySubject(ConformityAttestationBase):
    """A recycler's audited statement for a run or a period (EU recycling targets). The
    chemistry is that of the waste batteries the statement covers: each has its own target
    (Annex XII Part B)."""

    recycling_run: str | None = None
    battery_chemistry: Literal["lead-acid", "lithium-based", "nickel-cadmium", "other"] | None = (
        None)
    reporting_period: Period
    input_mass: Measure
    recycling_efficiency: Percent
    material_recovery: Annotated[list[RecoveryRate], Field(min_length=1)]
    process_route: Annotated[
        list[
            Literal[
                "mechanical-pretreatment", "pyrometallurgy", "hydrometallurgy", "direct-recycling"
            ]
        ],
        Field(min_length=1),
    ]
    energy_source: EnergySource

    @model_validator(mode="after")
    def _one_rate_per_material(self) -> RecyclingEfficiencySubject:
        _unique([r.material for r in self.material_recovery], "materialRecovery")
        return self


# --- Battery passport (subject: the battery item) -----------------------------------------


class PassportProduct(TypedModel):
    REQUIRED_TYPES = ("Product",)
    id: Uri
    name: Text
    registered_id: str | None = None
    id_scheme: IdentifierScheme | None = None
    serial_number: str | None = None
    batch_number: str | None = None
    produced_by_party: Party
    produced_at_facility: FacilityRef
    production_date: date
    country_of_production: CountryCode


class BatteryChemistry(DomainModel):
    short_name: Text
    clear_name: Text


class ComponentLocation(DomainModel):
    """Where in the battery a material or substance is (Battery Pass `...Location`)."""

    component_name: Text
    component_id: str | None = None


class HazardousSubstance(DomainModel):
    hazardous_substance_name: Text
    hazardous_substance_identifier: Annotated[str, Field(pattern=r"^\d{2,7}-\d{2}-\d$")]  # CAS
    hazardous_substance_class: Literal[
        "AcuteToxicity", "SkinCorrosionOrIrritation", "EyeDamageOrIrritation"
    ]
    hazardous_substance_concentration: Percent | None = None
    hazardous_substance_impact: Annotated[list[Text], Field(min_length=1)] | None = None
    hazardous_substance_location: ComponentLocation | None = None


class BatteryMaterial(DomainModel):
    """A material of the battery (Annex XIII(1)(b)): its location and whether it is a
    critical raw material (Regulation (EU) 2024/1252, Annex II)."""

    battery_material_name: Text
    battery_material_identifier: Annotated[str, Field(pattern=r"^\d{2,7}-\d{2}-\d$")] | None \
        = None
    battery_material_mass: Annotated[float, Field(gt=0, description="kg")] | None = None
    battery_material_location: ComponentLocation
    is_critical_raw_material: bool


class PostalAddress(DomainModel):
    address_country: CountryCode
    street_address: Text
    postal_code: Text


class ContactInformation(DomainModel):
    """Identification and contact of the manufacturer or the operator (Annex VI Part A)."""

    identifier: Uri
    name: Text | None = None
    contact_name: str | None = None
    email_address: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
    postal_address: PostalAddress
    web_address: Uri


class PowerCapability(DomainModel):
    at_soc: Percent = Field(alias="atSoC")
    power_capability_at: Annotated[float, Field(gt=0, description="W")]


class TemperatureRange(DomainModel):
    lower_limit: Annotated[float, Field(description="degrees Celsius")]
    upper_limit: Annotated[float, Field(description="degrees Celsius")]

    @model_validator(mode="after")
    def _ordered(self) -> TemperatureRange:
        if self.lower_limit > self.upper_limit:
            raise ValueError("lowerLimit is above upperLimit")
        return self


class InternalResistance(DomainModel):
    ohmic_resistance: Annotated[float, Field(gt=0, description="ohm")]
    battery_component: Literal["pack", "module", "cell"]


class PerformanceProperties(DomainModel):
    """Performance and durability (Annex IV Part A, Annex XIII(1)(c)), Battery Pass names."""

    minimum_voltage: Annotated[float, Field(gt=0, description="V")]
    maximum_voltage: Annotated[float, Field(gt=0, description="V")]
    original_power_capability: Annotated[list[PowerCapability], Field(min_length=1)]
    rated_maximum_power: Annotated[float, Field(gt=0, description="W")]
    power_capability_ratio: Annotated[float, Field(gt=0, description="W/Wh")]
    expected_lifetime: Annotated[float, Field(gt=0, description="years")]
    expected_number_of_cycles: Annotated[int, Field(gt=0)]
    lifetime_reference_test: Uri
    c_rate_life_cycle_test: Annotated[float, Field(gt=0)]
    capacity_threshold_for_exhaustion: Percent
    temperature_range_idle_state: TemperatureRange
    initial_self_discharge: Annotated[float, Field(ge=0, description="% per month")]
    roundtrip_efficiency: Percent
    initial_internal_resistance: Annotated[list[InternalResistance], Field(min_length=1)]

    @model_validator(mode="after")
    def _voltages(self) -> PerformanceProperties:
        if self.minimum_voltage >= self.maximum_voltage:
            raise ValueError("minimumVoltage must be below maximumVoltage")
        return self


class EndOfLifeInformation(DomainModel):
    """Annex XIII(1)(i) via Art. 74(1): prevention, separate collection, collection points."""

    waste_prevention: Uri
    separate_collection: Uri
    information_on_collection: Uri


class Label(DomainModel):
    labeling_subject: Text
    labeling_symbol: Uri
    labeling_meaning: Text


class DismantlingDocument(DomainModel):
    document_type: Literal[
        "BillOfMaterial",
        "Model3D",
        "DismantlingManual",
        "RemovalManual",
        "OtherManual",
        "Drawing",
    ]
    mime_type: Text
    document_url: Uri = Field(alias="documentURL")


class SafetyMeasures(DomainModel):
    safety_instructions: Uri
    extinguishing_agent: Annotated[list[Text], Field(min_length=1)]


class BatteryPassportSubject(TypedModel):
    """The static battery passport (Battery Pass 1.2 terms). Dynamic data (state of health,
    usage) comes from ledger events, not from this credential."""

    REQUIRED_TYPES = ("ProductPassport",)
    id: Uri
    granularity_level: Literal["item", "batch", "model"] = "item"
    product: PassportProduct
    gbt34014_code: str | None = None
    battery_category: Literal["lmt", "ev", "industrial", "stationary"]
    battery_chemistry: BatteryChemistry
    rated_capacity: Annotated[float, Field(gt=0, description="Ah")]
    rated_energy: Annotated[float, Field(gt=0, description="kWh")]
    nominal_voltage: Annotated[float, Field(gt=0, description="V")] | None = None
    battery_mass: Annotated[float, Field(gt=0, description="kg")]
    hazardous_substances: list[HazardousSubstance]
    dismantling_and_removal_information: Annotated[list[DismantlingDocument], Field(min_length=1)]
    safety_measures: SafetyMeasures
    due_diligence_declaration: Link | None = None
    # The regulation's mandatory attributes (Art. 77, Annex XIII; Battery Pass 1.2 names).
    # Optional here so that an incomplete passport is a credential the policy can judge
    # (rule eu-art77-passport names what is missing), not one that cannot be issued.
    manufacturer_information: ContactInformation | None = None
    operator_information: ContactInformation | None = None
    performance: PerformanceProperties | None = None
    warranty_period: Annotated[int, Field(gt=0, description="months")] | None = None
    renewable_content: Percent | None = None
    end_of_life_information: EndOfLifeInformation | None = None
    labels: Annotated[list[Label], Field(min_length=1)] | None = None
    declaration_of_conformity: Uri | None = None
    # Annex XIII(3): for notified bodies, market surveillance and the Commission only.
    result_of_test_report: Annotated[list[Link], Field(min_length=1)] | None = None
    battery_materials: Annotated[list[BatteryMaterial], Field(min_length=1)] | None = None
    # UNTP's ProductPassport blocks, built from a verified evidence bundle of the battery
    # (verifier/untp_dpp.py; `credential issue` and the demo add them): never written by hand.
    conformity_claim: Annotated[list[ConformityClaim], Field(min_length=1)] | None = None
    traceability_information: Annotated[list[TraceabilityPerformance],
                                        Field(min_length=1)] | None = None
    materials_provenance: Annotated[list[MaterialProvenance], Field(min_length=1)] | None = None
    emissions_scorecard: EmissionsScorecard | None = None

    @field_validator("gbt34014_code")
    @classmethod
    def _gbt_code(cls, value: str | None) -> str | None:
        if value is not None and not _GBT34014.match(value):
            raise ValueError("not a GB/T 34014 battery code")
        return value

    @model_validator(mode="after")
    def _same_item(self) -> BatteryPassportSubject:
        if self.product.id != self.id:
            raise ValueError("product.id must equal the subject id (the battery)")
        if self.gbt34014_code is not None:
            # the battery type letter against the declared chemistry (short name, else the
            # clear name when the short one is not in the table)
            chemistry = self.battery_chemistry.short_name if chemistry_letter(
                self.battery_chemistry.short_name) else self.battery_chemistry.clear_name
            problems = code_problems(self.gbt34014_code, chemistry=chemistry)
            if problems:
                raise ValueError("gbt34014Code: " + "; ".join(problems))
        return self


# --- Facility (Digital Facility Record; subject: the facility) ----------------------------

FacilityRole = Literal[
    "mine",
    "refinery",
    "precursor-plant",
    "cathode-plant",
    "anode-plant",
    "cell-plant",
    "module-plant",
    "pack-plant",
    "vehicle-plant",
    "second-life",
    "collection-point",
    "dismantling",
    "recycling-plant",
]


class Location(DomainModel):
    plus_code: str | None = None
    geo_location: GeoPoint


class Address(TypedModel):
    REQUIRED_TYPES = ("Address",)
    street_address: str | None = None
    postal_code: str | None = None
    address_locality: str | None = None
    address_region: str | None = None
    address_country: CountryCode


class FacilityDetail(TypedModel):
    REQUIRED_TYPES = ("Facility",)
    id: Uri
    name: Text
    registered_id: str | None = None
    description: str | None = None
    country_of_operation: CountryCode
    process_category: list[Classification] | None = None
    operated_by_party: Party
    location_information: Location
    address: Address | None = None


class FacilitySubject(TypedModel):
    REQUIRED_TYPES = ("FacilityRecord",)
    id: Uri
    facility: FacilityDetail
    facility_role: FacilityRole
    minerals: list[Mineral] | None = None
    registration_entry: LedgerReference

    @model_validator(mode="after")
    def _same_facility(self) -> FacilitySubject:
        if self.facility.id != self.id:
            raise ValueError("facility.id must equal the subject id (the facility)")
        return self


# --- Participant (Digital Identity Anchor; subject: the participant's DID) ----------------

ParticipantRole = Literal[
    "miner",
    "artisanal-cooperative",
    "trader",
    "refiner",
    "precursor-maker",
    "cathode-maker",
    "anode-maker",
    "cell-maker",
    "pack-maker",
    "automaker",
    "fleet",
    "second-life-operator",
    "collector",
    "dismantler",
    "recycler",
    "transporter",
    "auditor",
    "certification-body",
    "regulator",
    "tester",
]
# The one list of roles: the registry (ledger/registry.py) and the participant credential's
# schema (participant-credential-1.0.json, checked by a test) take theirs from here.
PARTICIPANT_ROLES: tuple[str, ...] = get_args(ParticipantRole)


class ParticipantSubject(TypedModel):
    REQUIRED_TYPES = ("RegisteredIdentity",)
    id: Did
    name: Text
    registered_id: Text
    id_scheme: IdentifierScheme
    register_type: Literal["Business"] = "Business"
    registration_scope_list: list[Uri] | None = None
    country_of_registration: CountryCode
    roles: Annotated[list[ParticipantRole], Field(min_length=1)]
    registration_entry: LedgerReference
