"""The demo network's credentials: issuers outside the ledger, accreditations, and what they
attest.

`demo_issuances(b)` lists the credentials `make demo` issues (IRMA audits, due diligence,
carbon footprints, recycled content, recycling efficiency, battery passports), each an
`Issuance` by an accredited issuer; `accreditation` builds the trust chain's credentials from
the governance root (`OFF_LEDGER_ISSUERS`, `ACCREDITED_TYPES`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from batterytrace.verifier.accreditation import accreditation_document

from .demo_builders import DEMO, Builders, item_id, key_for, lot_id
from .demo_story import BATTERY_MODEL, CELL_MODEL, PACK_1, PACK_2, pack_code, recycled_shares

# Issuers outside the ledger (did:key, from keys_example/): name -> legal name. The governance
# root accredits the accreditation body, which accredits the auditors and the pack maker.
OFF_LEDGER_ISSUERS = {
    "governance": "Battery Traceability Governance Board",
    "accreditation-body": "European Battery Accreditation Service",
    "auditor-irma": "Andes Assurance Auditores SpA",
    "certifier-carbon": "Rheinland Carbon Verification GmbH",
    "laboratory": "Nordic Battery Test Lab AS",
}
# Who may issue what: the verifier's trust path asks for the specific credential type (an
# IRMA auditor accredited for IRMAAuditCredential may not issue carbon footprints).
ACCREDITED_TYPES = {
    "auditor-irma": ["IRMAAuditCredential", "DueDiligenceCredential"],
    "certifier-carbon": ["CarbonFootprintCredential", "RecycledContentCredential"],
    "laboratory": ["RecyclingEfficiencyCredential"],
    "pack-maker": ["BatteryPassportCredential"],
}


@dataclass(frozen=True)
class Issuance:
    """One credential of the demo: who issues it, its type and subject, and for how long."""

    issuer: str
    type_name: str
    subject: dict[str, Any]
    years: int


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def party(b: Builders, name: str) -> dict[str, str]:
    """{id, name} of a participant (its did:web) or of an issuer outside the ledger (did:key)."""
    legal = b.participants[name][0] if name in b.participants else OFF_LEDGER_ISSUERS[name]
    did = b.did_for(name) if name in b.participants else key_for(name).did_key
    return {"id": did, "name": legal}


def _attestation(b: Builders, subject_id: str, name: str, to: str, kind: str = "certification",
                 ) -> dict[str, Any]:
    return {"id": subject_id, "name": name, "assessorLevel": "3rdParty",
            "assessmentLevel": "Accredited", "attestationType": kind,
            "issuedToParty": party(b, to)}


def _report(url: str, name: str) -> dict[str, Any]:
    return {"type": ["SecureLink", "Link"], "linkURL": url, "linkName": name,
            "hashDigest": _digest(url)}


def _irma(b: Builders, site: str, operator: str, level: str, mineral: str,
          where: tuple[float, float], scores: tuple[float, float, float, float]
          ) -> dict[str, Any]:
    country = b.participants[operator][2]
    site_name = site.replace("-", " ").title()
    chapters = [("1.1", "Legal compliance"), ("2.1", "Environmental and social impact "
                "assessment"), ("3.1", "Fair labour and terms of work"),
                ("4.1", "Waste and materials management")]
    return {
        **_attestation(b, b.facility_id(site), f"IRMA audit of {site_name} (initial, 2025)",
                       operator),
        "conformityCertificate": _report(f"https://responsiblemining.net/reports/{site}-2025.pdf",
                                         f"IRMA initial audit report, {site_name}"),
        "facilityName": site_name, "operator": party(b, operator),
        "countryOfOperation": country,
        "geoLocation": {"type": "Point", "coordinates": [where[1], where[0]]},
        "minerals": [mineral], "irmaStandardVersion": "IRMA-STD-001 v1.0",
        "achievementLevel": level, "certified": False,
        "chapterScores": [{"chapter": c, "title": t, "score": s}
                          for (c, t), s in zip(chapters, scores, strict=True)],
        "auditType": "initial", "certificationBody": party(b, "auditor-irma"),
        "leadAuditor": {"name": "Carolina Vidal"},
        "auditDates": {"stage1Date": "2025-06-02", "stage2Date": "2025-08-18",
                       "reportFinalisedDate": "2025-10-20"},
        "openNonConformities": {"critical": 0, "major": 0},
        "certificationPeriod": {"startDate": "2025-11-01", "endDate": "2028-10-31"},
    }


def _carbon(b: Builders, pack: str, total: float, stages: tuple[float, float, float, float],
            klass: str) -> dict[str, Any]:
    names = ("RawMaterialExtraction", "MainProduction", "Distribution", "Recycling")
    return {
        **_attestation(b, item_id(pack), f"Carbon footprint of {BATTERY_MODEL}, {pack}",
                       "pack-maker", "verification"),
        "batteryModelName": BATTERY_MODEL,
        "manufacturingPlant": {"id": b.facility_id("salzgitter-pack"),
                               "name": "Salzgitter Pack"},
        "batteryCarbonFootprint": total,
        "carbonFootprintPerLifecycleStage": [{"lifecycleStage": n, "carbonFootprint": v}
                                             for n, v in zip(names, stages, strict=True)],
        "carbonFootprintPerformanceClass": klass,
        "calculationRules": "EU-2023/1542-delegated-act",
        "carbonFootprintStudy": f"https://elbe-battery.example/lca/{pack}.pdf",
        "thirdPartyVerifier": party(b, "certifier-carbon"),
    }


def _recycled(b: Builders, pack: str, batch: str, lots: list[str], post: bool
              ) -> dict[str, Any]:
    shares = recycled_shares()[pack]
    return {
        **_attestation(b, item_id(pack), f"Recycled content of {BATTERY_MODEL}, batch {batch}",
                       "pack-maker", "verification"),
        "batteryModelName": BATTERY_MODEL, "batchNumber": batch,
        "manufacturingPlant": {"id": b.facility_id("salzgitter-pack"),
                               "name": "Salzgitter Pack"},
        "recycledContent": [{"recycledMaterial": m, "preConsumerShare": 0.0 if post else v,
                             "postConsumerShare": v if post else 0.0}
                            for m, v in shares.items()],
        "backingLots": [lot_id(lot) for lot in lots],
    }


def _due_diligence(b: Builders, subject: str, to: str, name: str, site: str, reported: str
                   ) -> dict[str, Any]:
    return {
        **_attestation(b, subject, name, to, "verification"),
        "dueDiligencePolicy": {"coveredMinerals": ["cobalt", "lithium", "nickel",
                                                   "natural-graphite"], "oecdAligned": True,
                               "policyDocument": _report(f"{site}/policy.pdf",
                                                         "Supply chain policy")},
        "chainOfCustodySystem": "mass-balance", "supplierContractClauses": True,
        "latestAnnualReport": {"reportDate": reported, "report": _report(
            f"{site}/report.pdf", "Annual due diligence report")},
    }


def _passport(b: Builders, pack: str, batch: str, produced: str) -> dict[str, Any]:
    return {
        "id": item_id(pack), "granularityLevel": "item",
        "gbt34014Code": pack_code(pack, produced[:7]),
        "product": {"type": ["Product"], "id": item_id(pack), "name": BATTERY_MODEL,
                    "serialNumber": pack.rsplit("-", 1)[-1], "batchNumber": batch,
                    "producedByParty": party(b, "pack-maker"),
                    "producedAtFacility": {"id": b.facility_id("salzgitter-pack"),
                                           "name": "Salzgitter Pack"},
                    "productionDate": produced, "countryOfProduction": "DE"},
        "batteryCategory": "ev",
        "batteryChemistry": {"shortName": "NMC811",
                             "clearName": "Lithium nickel manganese cobalt oxide (8:1:1)"},
        "ratedCapacity": 230.0, "ratedEnergy": 80.6, "nominalVoltage": 350.4,
        "batteryMass": 420.0,
        "hazardousSubstances": [{"hazardousSubstanceName": "Lithium hexafluorophosphate",
                                 "hazardousSubstanceIdentifier": "21324-40-3",
                                 "hazardousSubstanceClass": "AcuteToxicity",
                                 "hazardousSubstanceConcentration": 1.2,
                                 "hazardousSubstanceImpact": [
                                     "Releases hydrogen fluoride on contact with water"],
                                 "hazardousSubstanceLocation": {
                                     "componentName": "Electrolyte", "componentId": "cell"}}],
        "dismantlingAndRemovalInformation": [{
            "documentType": "DismantlingManual", "mimeType": "application/pdf",
            "documentURL": "https://elbe-battery.example/manuals/ebs-80-dismantling.pdf"}],
        "safetyMeasures": {"safetyInstructions": "https://elbe-battery.example/safety/ebs-80",
                           "extinguishingAgent": ["Water (large quantities)"]},
        "dueDiligenceDeclaration": {
            "type": ["Link"], "linkURL": "https://elbe-battery.example/due-diligence/2026",
            "linkName": "Supply chain due diligence report 2026"},
        **_passport_attributes(b),
    }


def _contact(b: Builders, name: str, street: str, postal: str, country: str, web: str
             ) -> dict[str, Any]:
    return {"identifier": party(b, name)["id"], "name": party(b, name)["name"],
            "emailAddress": f"passport@{web.split('//', 1)[1]}",
            "postalAddress": {"addressCountry": country, "streetAddress": street,
                              "postalCode": postal},
            "webAddress": web}


def _passport_attributes(b: Builders) -> dict[str, Any]:
    """The regulation's mandatory passport attributes (Annex XIII) of the demo's pack."""
    cell = {"componentName": "Cell", "componentId": CELL_MODEL}
    return {
        "manufacturerInformation": _contact(b, "pack-maker", "Industriestraße 1", "38239",
                                            "DE", "https://elbe-battery.example"),
        "operatorInformation": _contact(b, "automaker", "Werkstraße 10", "08058", "DE",
                                        "https://nordwagen.example"),
        "performance": {
            "minimumVoltage": 288.0, "maximumVoltage": 403.2,
            "originalPowerCapability": [{"atSoC": 80, "powerCapabilityAt": 210000},
                                        {"atSoC": 20, "powerCapabilityAt": 150000}],
            "ratedMaximumPower": 210000, "powerCapabilityRatio": 2.6,
            "expectedLifetime": 12, "expectedNumberOfCycles": 2000,
            "lifetimeReferenceTest": "https://elbe-battery.example/tests/ebs-80-cycle-life.pdf",
            "cRateLifeCycleTest": 0.5, "capacityThresholdForExhaustion": 70,
            "temperatureRangeIdleState": {"lowerLimit": -30, "upperLimit": 55},
            "initialSelfDischarge": 1.5, "roundtripEfficiency": 94.0,
            "initialInternalResistance": [{"ohmicResistance": 0.089,
                                           "batteryComponent": "pack"}]},
        "warrantyPeriod": 96,
        "renewableContent": 0.0,
        "endOfLifeInformation": {
            "wastePrevention": "https://elbe-battery.example/end-of-life/prevention",
            "separateCollection": "https://elbe-battery.example/end-of-life/collection",
            "informationOnCollection": "https://elbe-battery.example/end-of-life/take-back"},
        "labels": [{"labelingSubject": "SeparateCollection",
                    "labelingSymbol": "https://elbe-battery.example/labels/wheelie-bin.svg",
                    "labelingMeaning": "Collect separately from household waste"},
                   {"labelingSubject": "CE",
                    "labelingSymbol": "https://elbe-battery.example/labels/ce.svg",
                    "labelingMeaning": "Conformity with Regulation (EU) 2023/1542"}],
        "declarationOfConformity": "https://elbe-battery.example/doc/ebs-80-eu-doc.pdf",
        "resultOfTestReport": [{"type": ["Link"],
                                "linkName": "UN 38.3 and IEC 62660-2 test report",
                                "linkURL": "https://elbe-battery.example/doc/ebs-80-tests.pdf"}],
        "batteryMaterials": [
            {"batteryMaterialName": "Lithium nickel manganese cobalt oxide (NMC811)",
             "batteryMaterialMass": 69.0, "batteryMaterialLocation": {
                 **cell, "componentName": "Cathode"}, "isCriticalRawMaterial": True},
            {"batteryMaterialName": "Natural graphite", "batteryMaterialIdentifier":
             "7782-42-5", "batteryMaterialMass": 41.4, "batteryMaterialLocation": {
                 **cell, "componentName": "Anode"}, "isCriticalRawMaterial": True},
            {"batteryMaterialName": "Copper foil", "batteryMaterialIdentifier": "7440-50-8",
             "batteryMaterialMass": 25.0, "batteryMaterialLocation": {
                 **cell, "componentName": "Anode current collector"},
             "isCriticalRawMaterial": True},
            {"batteryMaterialName": "Aluminium housing", "batteryMaterialIdentifier":
             "7429-90-5", "batteryMaterialMass": 60.0, "batteryMaterialLocation": {
                 "componentName": "Pack housing"}, "isCriticalRawMaterial": False}],
    }


def demo_issuances(b: Builders = DEMO) -> list[Issuance]:
    """The credentials of the demo, by accredited issuers (and the pack maker's passports)."""
    return [
        Issuance("auditor-irma", "IRMAAuditCredential", _irma(
            b, "kolwezi-mine", "mine-kolwezi", "IRMA 75", "cobalt", (-10.72, 25.47),
            (88, 79, 81, 76)), 3),
        Issuance("auditor-irma", "IRMAAuditCredential", _irma(
            b, "atacama-brine", "mine-atacama", "IRMA Transparency", "lithium",
            (-23.50, -68.25), (61, 42, 55, 47)), 3),
        Issuance("auditor-irma", "DueDiligenceCredential", {
            **_attestation(b, b.did_for("refiner"), "OECD-aligned due diligence of "
                           "Quzhou Cobalt Materials", "refiner", "verification"),
            "dueDiligencePolicy": {"coveredMinerals": ["cobalt"], "oecdAligned": True,
                                   "policyDocument": _report(
                                       "https://quzhou-cobalt.example/dd-policy.pdf",
                                       "Cobalt supply chain policy")},
            "chainOfCustodySystem": "mass-balance", "supplierContractClauses": True,
            "latestAnnualReport": {"reportDate": "2026-04-30", "report": _report(
                "https://quzhou-cobalt.example/dd-report-2025.pdf", "Annual report 2025")},
        }, 1),
        # Due diligence of the automaker, which places pack 1 on the market: issued to it,
        # about the pack (so it travels in the pack's bundle).
        Issuance("auditor-irma", "DueDiligenceCredential", _due_diligence(
            b, item_id(PACK_1), "automaker", "Nordwagen AG battery supply chain due "
            "diligence, EBS-80", "https://nordwagen.example/dd", "2026-06-30"), 3),
        # The artisanal site's licence and due diligence, naming the site: it resolves the
        # high-risk artisanal source (not the cooperative's own words on its extraction).
        Issuance("auditor-irma", "DueDiligenceCredential", _due_diligence(
            b, b.facility_id("kambove-asm"), "coop", "Due diligence of the Kambove ASM site "
            "(ZEA Kambove-Ouest, licensed artisanal exploitation zone)",
            "https://kambove-coop.example/dd", "2026-01-31"), 3),
        Issuance("certifier-carbon", "CarbonFootprintCredential",
                 _carbon(b, PACK_1, 61.4, (38.2, 19.6, 1.9, 1.7), "B"), 10),
        Issuance("certifier-carbon", "RecycledContentCredential", _recycled(
            b, PACK_1, "WCW-2026-B1", ["rec-coso4-FR-2026-01", "rec-li2co3-FR-2026-01",
                                       "rec-niso4-FR-2026-01"], post=False), 10),
        Issuance("laboratory", "RecyclingEfficiencyCredential", {
            **_attestation(b, b.facility_id("fredrikstad-recycling"), "Recycling efficiency "
                           "of the Fredrikstad plant, 2038-2039", "recycler", "verification"),
            "reportingPeriod": {"startDate": "2038-07-01", "endDate": "2039-06-30"},
            "batteryChemistry": "lithium-based",
            "inputMass": {"value": 18500, "unit": "TNE"}, "recyclingEfficiency": 74.5,
            # The plant's statement covers its whole input, which includes the 12 V lead-acid
            # auxiliary batteries collected with end-of-life vehicles' packs.
            "materialRecovery": [{"material": m, "recoveryRate": r} for m, r in (
                ("Cobalt", 96.2), ("Nickel", 95.8), ("Copper", 97.1), ("Lead", 95.4),
                ("Lithium", 81.5))],
            "processRoute": ["mechanical-pretreatment", "hydrometallurgy"],
            "energySource": {"renewableShare": 98, "description": "Norwegian hydropower"},
        }, 2),
        Issuance("pack-maker", "BatteryPassportCredential",
                 _passport(b, PACK_1, "WCW-2026-B1", "2026-08-21"), 15),
        Issuance("certifier-carbon", "CarbonFootprintCredential",
                 _carbon(b, PACK_2, 44.8, (24.1, 17.9, 1.6, 1.2), "A"), 10),
        Issuance("certifier-carbon", "RecycledContentCredential", _recycled(
            b, PACK_2, "WCW-2039-B7", ["rec-coso4-FR-2039-07", "rec-li2co3-FR-2039-07",
                                       "rec-niso4-FR-2039-07"], post=True), 10),
        Issuance("pack-maker", "BatteryPassportCredential",
                 _passport(b, PACK_2, "WCW-2039-B7", "2039-05-21"), 15),
    ]


def accreditation(b: Builders, issuer: str, subject: str, types: Sequence[str], *,
                  may_accredit: bool, valid_from: str, valid_until: str) -> dict[str, Any]:
    """An unsigned AccreditationCredential: `issuer` accredits `subject` (names) for `types`."""
    return accreditation_document(
        id=f"urn:uuid:{uuid.uuid4()}", issuer=party(b, issuer)["id"],
        subject=party(b, subject)["id"], credential_types=types, valid_from=valid_from,
        valid_until=valid_until, may_accredit=may_accredit)
