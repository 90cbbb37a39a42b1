"""The three access tiers of a battery passport and which facts belong to which (EU 2023/1542
Annex XIII), as data.

- public, Annex XIII(1): identity, chemistry, hazardous substances, carbon footprint, recycled
  and renewable content, the rated and initial performance and durability figures, labels,
  the declaration of conformity, the due diligence report;
- legitimate-interest, Annex XIII(2): detailed composition, part numbers and spare parts,
  dismantling information, safety measures; and XIII(4): the state of health and the data
  behind it (readings, condition). For the item's holder and whom the holder grants access;
- authority, Annex XIII(3): the results of test reports proving compliance. For notified
  bodies, market surveillance authorities and the Commission.

A higher tier sees everything a lower one sees. `ATTRIBUTE_TIERS` classifies the members of a
BatteryPassportCredential's subject; a member it does not name is shown to the legitimate-
interest tier and above only (a new attribute is never public by accident: add it here).
`SECTION_TIERS` does the same for the passport's own sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Tier = Literal["public", "legitimate-interest", "authority"]
PUBLIC: Tier = "public"
LEGITIMATE_INTEREST: Tier = "legitimate-interest"
AUTHORITY: Tier = "authority"
TIERS: tuple[Tier, ...] = (PUBLIC, LEGITIMATE_INTEREST, AUTHORITY)  # in order of access

# Where the law puts each tier, and how the page names it.
TIER_BASIS: Mapping[Tier, str] = {
    PUBLIC: "Annex XIII(1)",
    LEGITIMATE_INTEREST: "Annex XIII(2) and (4)",
    AUTHORITY: "Annex XIII(3)",
}
TIER_LABEL: Mapping[Tier, str] = {
    PUBLIC: "public information",
    LEGITIMATE_INTEREST: "legitimate-interest access",
    AUTHORITY: "authority access (notified body, market surveillance, Commission)",
}

_PUBLIC_ATTRIBUTES = (
    # identity and general information
    "id", "type", "granularityLevel", "product", "batteryCategory", "batteryMass",
    "batteryStatus", "gbt34014Code", "manufacturerInformation", "operatorInformation",
    "manufacturingDate", "manufacturingPlace", "puttingIntoService", "warrantyPeriod",
    "warrentyPeriod",
    # material composition (Annex XIII(1)(b): chemistry, hazardous substances, critical raw
    # materials)
    "batteryChemistry", "hazardousSubstances", "criticalRawMaterials",
    # carbon footprint, recycled and renewable content, due diligence report
    "batteryCarbonFootprint", "carbonFootprintPerLifecycleStage",
    "carbonFootprintPerformanceClass", "carbonFootprintStudy", "recycledContent",
    "renewableContent", "dueDiligenceDeclaration", "supplyChainDueDiligenceReport",
    # rated and initial performance and durability (Annex XIII(1)(e), Annex IV Part A)
    "ratedCapacity", "ratedEnergy", "nominalVoltage", "minimumVoltage", "maximumVoltage",
    "originalPowerCapability", "ratedMaximumPower", "powerCapabilityRatio",
    "expectedLifetime", "expectedNumberOfCycles", "lifetimeReferenceTest",
    "cRateOfRelevantTest", "cRate", "capacityThresholdForExhaustion",
    "temperatureRangeIdleState", "initialSelfDischargingRate", "initialSelfDischarge",
    "initialRoundTripEnergyEfficiency", "roundTripEfficiency", "initialInternalResistance",
    "batteryTechnicalProperties", "batteryTechicalProperties",
    # labels, conformity, end of life (Annex XIII(1)(a), (c), (f))
    "labels", "declarationOfConformity", "endOfLifeInformation", "separateCollection",
    # UNTP blocks: the regulatory checks' verdicts and the carbon footprint (Annex XIII(1)(c),
    # (d)), as public as the declaration of conformity and the footprint they restate
    "conformityClaim", "emissionsScorecard",
)
_LEGITIMATE_INTEREST_ATTRIBUTES = (
    # Annex XIII(2)
    "detailedComposition", "batteryMaterials", "partNumbers", "componentPartNumbers",
    "sparePartSources", "spareParts", "dismantlingAndRemovalInformation", "safetyMeasures",
    # UNTP blocks: per element and country of origin (detailed composition), and the links
    # to the supply chain's events (the public custody table shows no facility or actor)
    "materialsProvenance", "traceabilityInformation",
    # Annex XIII(4)
    "stateOfHealth", "batteryCondition", "stateOfCharge", "remainingCapacity",
    "numberOfFullCycles", "negativeEvents", "remainingLifetime",
)
_AUTHORITY_ATTRIBUTES = ("resultOfTestReport", "testReports")

ATTRIBUTE_TIERS: Mapping[str, Tier] = {
    **dict.fromkeys(_PUBLIC_ATTRIBUTES, PUBLIC),
    **dict.fromkeys(_LEGITIMATE_INTEREST_ATTRIBUTES, LEGITIMATE_INTEREST),
    **dict.fromkeys(_AUTHORITY_ATTRIBUTES, AUTHORITY),
}
DEFAULT_ATTRIBUTE_TIER: Tier = LEGITIMATE_INTEREST

# The passport's own sections that are not public (the rest of `Passport` is).
SECTION_TIERS: Mapping[str, Tier] = {
    "holder": LEGITIMATE_INTEREST,
    "dueDiligence": LEGITIMATE_INTEREST,
    "evidenceBundle": LEGITIMATE_INTEREST,
    "stateOfHealth": LEGITIMATE_INTEREST,
    "mineLevelProvenance": LEGITIMATE_INTEREST,
    "custodyActors": LEGITIMATE_INTEREST,
}

# How the page names a withheld attribute or section (and the law that withholds it).
WITHHELD_NAMES: Mapping[str, str] = {
    "stateOfHealth": "state of health and the readings behind it",
    "batteryCondition": "battery condition",
    "dismantlingAndRemovalInformation": "dismantling and removal information",
    "safetyMeasures": "safety measures",
    "detailedComposition": "detailed composition",
    "batteryMaterials": "battery materials (detailed composition)",
    "partNumbers": "part numbers", "componentPartNumbers": "part numbers",
    "sparePartSources": "spare part sources", "spareParts": "spare parts",
    "resultOfTestReport": "test reports proving compliance",
    "testReports": "test reports proving compliance",
    "dueDiligence": "due diligence credentials", "holder": "the holder",
    "evidenceBundle": "the evidence bundle", "mineLevelProvenance": "mine-level provenance",
    "custodyActors": "facilities and actors of each custody step",
    "materialsProvenance": "materials by country of origin (detailed composition)",
    "traceabilityInformation": "links to the supply chain's traceability events",
}


def rank(tier: Tier) -> int:
    """The place of `tier` in TIERS (a higher tier sees everything a lower one does)."""
    return TIERS.index(tier)


def sees(viewer: Tier, needed: Tier) -> bool:
    """Whether `viewer` may see a fact of tier `needed`."""
    return rank(viewer) >= rank(needed)


def attribute_tier(name: str) -> Tier:
    """The tier of a passport credential subject member (`DEFAULT_ATTRIBUTE_TIER` if unnamed)."""
    return ATTRIBUTE_TIERS.get(name, DEFAULT_ATTRIBUTE_TIER)


def split_attributes(subject: Mapping[str, Any], viewer: Tier
                     ) -> tuple[dict[str, Any], dict[str, Tier]]:
    """The members of a passport subject `viewer` may see, and those it may not (name -> the
    tier that may)."""
    shown: dict[str, Any] = {}
    withheld: dict[str, Tier] = {}
    for name, value in subject.items():
        needed = attribute_tier(name)
        if sees(viewer, needed):
            shown[name] = value
        else:
            withheld[name] = needed
    return shown, withheld


__all__ = [
    "ATTRIBUTE_TIERS",
    "AUTHORITY",
    "DEFAULT_ATTRIBUTE_TIER",
    "LEGITIMATE_INTEREST",
    "PUBLIC",
    "SECTION_TIERS",
    "TIERS",
    "TIER_BASIS",
    "TIER_LABEL",
    "WITHHELD_NAMES",
    "Tier",
    "attribute_tier",
    "rank",
    "sees",
    "split_attributes",
]
