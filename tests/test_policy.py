"""Policy files and rules: every shipped rule with a PASS, a FAIL and a NOT_EVALUATED case on
hand-built provenance documents; loading errors; composition."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from batterytrace.verifier.policy import (
    FAIL,
    NOT_EVALUATED,
    PASS,
    PolicyFormatError,
    evaluate_policy,
    load_policy,
    parse_policy,
)
from batterytrace.verifier.policy_rules import batterypass_fields

MINE, ASM, PLANT = "https://x/facilities/mine", "https://x/facilities/asm", "https://x/recycler"


def source(site, share, kg, *, country="CD", artisanal=False, recycled=False, irma=None,
           operator="did:web:x:miner", processed=("CN",)):
    return {"site": site, "site_name": site.rsplit("/", 1)[-1], "operator": operator,
            "operator_name": operator, "country": country, "mass_kg": kg, "share": share,
            "artisanal": artisanal, "recycled": recycled, "irma_level": irma,
            "custody_models": ["massBalance"], "processed_in": list(processed),
            "processors": ["did:web:x:refiner"], "high_risk": False, "risk_resolution": None,
            "lots": []}


BASE = {
    "subject": "https://id/items/pack",
    "elements": {
        "Co": {"mass_kg": 10.0, "recycled_mass_kg": 2.0, "recycled_share": 0.2,
               "artisanal_share": 0.1, "sources": [
                   source(MINE, 0.7, 7.0, irma="IRMA 75"),
                   source(ASM, 0.1, 1.0, artisanal=True),
                   source(PLANT, 0.2, 2.0, country="NO", recycled=True)]},
        "Li": {"mass_kg": 5.0, "recycled_mass_kg": 0.0, "recycled_share": 0.0,
               "artisanal_share": 0.0, "sources": [
                   source("https://x/salar", 1.0, 5.0, country="CL", irma="IRMA 50")]},
    },
    "countries": {"CD": 0.53, "CL": 0.33, "NO": 0.13}, "artisanal_share": 0.07,
    "route": [{"seq": 9, "time": "t", "biz_step": "shipping", "from_country": "NL",
               "to_country": "NO", "mode": "road", "purpose": "recycling", "waste": True,
               "to_site": PLANT, "to_recycler": True}],
    "lifecycle": {"production": 1, "sale": 2, "use": 3, "end_of_life": 4, "recycling": 5},
    "carbon_footprint": {"value": 80.0, "unit": "kgCO2e/kWh", "class": "B"},
    "recycled_content": {"claimed": {"Co": 0.2, "Li": 0.07}, "computed": {"Co": 0.2, "Li": 0.0}},
    "recycling_efficiency": [{"facility": PLANT, "recycling_efficiency": 72,
                              "chemistry": "lithium-based",
                              "material_recovery": {"Co": 96, "Ni": 96, "Cu": 96, "Pb": 96,
                                                    "Li": 85}}],
    "state_of_health": {"value": 70, "time": "t"},
    "second_life": [{"seq": 7, "time": "t", "decision": "repurpose", "state_of_health": 70}],
    "placed_on_market": "2031-09-01",
    "placed_on_market_event_time": "2031-08-30",
    "placed_on_market_by": "did:web:x:automaker",
    "due_diligence": [{"credential": "urn:uuid:dd", "subject": "https://id/items/pack",
                       "issued_to": "did:web:x:automaker", "issuer": "did:key:auditor"}],
    "model": {"name": "EBS-80", "chemistry": "NMC811", "category": "ev",
              "rated_energy_kwh": 80.0},
    "passport_credential": "urn:uuid:passport",
    "passport_fields": ["batteryCarbonFootprint", "carbonFootprintPerLifecycleStage",
                        "carbonFootprintPerformanceClass", "carbonFootprintStudy",
                        "batteryChemistry", "batteryMaterials", "hazardousSubstances",
                        "dueDiligenceCredential", "id", "product.id", "batteryCategory",
                        "product.producedByParty", "product.productionDate", "batteryStatus",
                        "batteryMass", "product.producedAtFacility", "puttingIntoService",
                        "ratedCapacity", "stateOfHealth", "warrantyPeriod",
                        *batterypass_fields()["sections"]["MandatoryAttributes"]],
}


def outcome(policy: str, rule: str, data: dict, when: date | None = None):
    result = evaluate_policy(load_policy(policy), data, policy_date=when,
                             issuers_accredited=True)
    return next(o for o in result.outcomes if o.rule_id == rule)


def changed(path: str, value) -> dict:
    data = copy.deepcopy(BASE)
    *keys, last = path.split(".")
    node = data
    for key in keys:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


# (policy, rule, a change that makes BASE fail)
CASES = [
    ("eu-2023-1542", "eu-art8-recycled-content", ("recycled_content.computed.Co", 0.1)),
    ("eu-2023-1542", "eu-annex12-material-recovery",
     ("recycling_efficiency.0.material_recovery.Li", 40)),
    ("eu-2023-1542", "eu-annex12-recycling-efficiency",
     ("recycling_efficiency.0.recycling_efficiency", 60)),
    ("eu-2023-1542", "eu-art52-artisanal-sources", ("elements.Co.sources.1.risk_resolution",
                                                    None)),
    ("eu-2023-1542", "eu-art48-due-diligence", ("due_diligence.0.issued_to", "did:web:x:o")),
    ("soh-routing-example", "example-second-life-routing",
     ("second_life.0.state_of_health", 50)),
    ("eu-2023-1542", "eu-waste-shipments", ("route.0.to_recycler", False)),
    ("eu-2023-1542", "eu-art77-passport", ("passport_fields", ["batteryMaterials"])),
    ("irma-cobalt", "irma-minimum-level", ("elements.Co.sources.0.irma_level", "IRMA 50")),
    ("us-ira-30d", "us-ira-critical-minerals", ("elements.Co.sources.0.processed_in", ["CN"])),
]


def _passing() -> dict:
    data = copy.deepcopy(BASE)
    data["elements"]["Co"]["sources"][1]["risk_resolution"] = {
        "credential": "urn:uuid:dd-site", "types": ["DueDiligenceCredential"],
        "issuer": "did:key:auditor"}
    data["elements"]["Co"]["sources"][1]["irma_level"] = "IRMA 75"
    for element in data["elements"].values():
        for src in element["sources"]:
            src["processed_in"] = ["KR"]  # processed in an FTA country, none of concern (IRA)
    data["recycled_content"]["computed"]["Li"] = 0.07  # the ledger proves the claim
    return data


@pytest.mark.parametrize(("policy", "rule", "change"), CASES, ids=[c[1] for c in CASES])
def test_every_shipped_rule_passes_fails_and_is_not_evaluated(policy, rule, change):
    when = date(2025, 6, 1) if policy == "us-ira-30d" else None  # IRA ended 30 Sep 2025
    good = _passing()
    first = outcome(policy, rule, good, when)
    assert first.status == PASS, first.reason
    path, value = change
    bad = copy.deepcopy(good)
    *keys, last = path.split(".")
    node = bad
    for key in keys:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value
    failed = outcome(policy, rule, bad, when)
    assert failed.status == FAIL and failed.reason and failed.source
    # no placing on the market and no --policy-date: a dated rule cannot be judged
    undated = {**good, "placed_on_market": None}
    assert outcome(policy, rule, undated).status == NOT_EVALUATED


def test_recycled_content_tiers_and_basis():
    data = changed("recycled_content.computed.Li", 0.07)
    assert outcome("eu-2023-1542", "eu-art8-recycled-content", data).status == PASS
    later = outcome("eu-2023-1542", "eu-art8-recycled-content", data, date(2036, 9, 1))
    assert later.status == FAIL and "Co 20.00 % < 26" in later.reason
    before = outcome("eu-2023-1542", "eu-art8-recycled-content", data, date(2030, 1, 1))
    assert before.status == NOT_EVALUATED and "not in force" in before.reason
    # the default basis is the ledger's: BASE claims 7 % lithium the ledger does not show
    result = outcome("eu-2023-1542", "eu-art8-recycled-content", BASE)
    assert result.status == FAIL and result.evidence["basis"] == "ledger"
    assert "Li 0.00 % < 6 %" in result.reason and "Li claimed 7.00 %, the ledger proves " \
        "0.00 %" in result.reason
    text = load_text("eu-2023-1542").replace('basis = "ledger"', 'basis = "claimed"')
    result = evaluate_policy(parse_policy(text), BASE)
    assert result.outcomes[0].status == PASS  # a buyer's own trust in the claim


def load_text(name: str) -> str:
    from importlib import resources

    return resources.files("batterytrace.verifier").joinpath(
        f"data/policies/{name}.toml").read_text()


def test_ira_is_not_evaluated_after_the_credit_ended_and_feoc_from_2025():
    good = _passing()
    late = outcome("us-ira-30d", "us-ira-critical-minerals", good, date(2025, 10, 1))
    assert late.status == NOT_EVALUATED and "2025-09-30" in late.reason
    feoc = copy.deepcopy(good)
    feoc["elements"]["Co"]["sources"][0]["processors"] = ["Jiangsu Cobalt Refining Co., Ltd."]
    assert outcome("us-ira-30d", "us-ira-critical-minerals", feoc, date(2024, 6, 1)).status \
        == PASS
    hit = outcome("us-ira-30d", "us-ira-critical-minerals", feoc, date(2025, 2, 1))
    assert hit.status == FAIL and "foreign entity" in hit.reason
    # by value: Li (CL, FTA) 5 kg x 12 = 60; Co 2 kg recycled in NO (not North America)
    assert hit.evidence["by_element"]["Li"] == {"value": 60.0, "qualifying": 60.0}


def test_second_life_without_a_reading_is_not_evaluated():
    data = changed("second_life.0.state_of_health", None)
    assert outcome("soh-routing-example", "example-second-life-routing", data).status \
        == NOT_EVALUATED
    # the bands are an example, not EU law: not in the EU policy
    assert "second-life-routing" not in {r.type for r in load_policy("eu-2023-1542").rules}


POLICY_HEAD = 'version = 1\nname = "t"\n'
LEAF = ('{ id = "%s", type = "waste-shipments", title = "w", jurisdiction = "EU", '
        'source = "s", effective_from = 2020-01-01 }')


def test_all_of_and_any_of():
    text = POLICY_HEAD + f"""
[[rule]]
id = "both"
type = "all-of"
title = "both"
jurisdiction = "EU"
source = "s"
rules = [{LEAF % "a"}, {LEAF % "b"}]

[[rule]]
id = "empty"
type = "all-of"
title = "empty"
jurisdiction = "EU"
source = "s"
rules = []

[[rule]]
id = "either"
type = "any-of"
title = "either"
jurisdiction = "EU"
source = "s"
rules = [{LEAF % "c"}]
"""
    result = evaluate_policy(parse_policy(text), BASE)
    assert [o.status for o in result.outcomes] == [PASS, FAIL, PASS]
    assert result.failed and [r["rule_id"] for r in result.outcomes[0].evidence["rules"]] == [
        "a", "b"]
    bad = evaluate_policy(parse_policy(text), changed("route.0.to_recycler", False))
    assert [o.status for o in bad.outcomes] == [FAIL, FAIL, FAIL]


@pytest.mark.parametrize("text", [
    "version = 2",
    POLICY_HEAD + "colour = 1",
    POLICY_HEAD + "[[rule]]\n" + LEAF[2:-2].replace(", ", "\n") + '\nthreshold = 3',
    POLICY_HEAD + "[[rule]]\n" + LEAF[2:-2].replace(", ", "\n").replace("waste-shipments",
                                                                        "no-such-rule"),
    POLICY_HEAD + "[[rule]]\n" + LEAF[2:-2].replace(", ", "\n").replace(
        "effective_from = 2020-01-01", ""),
    POLICY_HEAD + '[[rule]]\nid = "r"\ntype = "irma-level"\ntitle = "t"\njurisdiction = "x"\n'
    'source = "s"\neffective_from = 2020-01-01\nminimum = { Co = "IRMA 60" }',
])
def test_malformed_policies_are_input_errors(text):
    with pytest.raises(PolicyFormatError) as info:
        parse_policy(text % "r" if "%s" in text else text)
    assert info.value.exit_code == 2 and info.value.code == "POLICY_FORMAT"


def test_unknown_policy_name():
    with pytest.raises(PolicyFormatError):
        load_policy("no-such-policy")


# --- review fixes ---------------------------------------------------------------------------


def rule_text(kind: str, body: str, rid: str = "r") -> str:
    return (POLICY_HEAD + f'[[rule]]\nid = "{rid}"\ntype = "{kind}"\ntitle = "t"\n'
            f'jurisdiction = "EU"\nsource = "s"\neffective_from = 2020-01-01\n{body}\n')


@pytest.mark.parametrize("text", [
    # a TOML date-time cannot be compared with the policy date: refused when loading
    POLICY_HEAD + "[[rule]]\n" + LEAF[2:-2].replace(", ", "\n").replace(
        "2020-01-01", "2020-01-01T00:00:00"),
    # a malformed later tier is caught when loading, not when its date comes
    rule_text("material-recovery", "[[rule.tier]]\nfrom = 2027-12-31\nminimum = { Co = 90 }\n"
              "[[rule.tier]]\nfrom = 2031-12-31\nminimum = { Co = 950 }"),
    # a misspelt element would never match and silently pass
    rule_text("recycled-content", "minimum = { Cobalt = 16 }"),
    rule_text("recycling-efficiency", 'minimum = "sixty-five"'),
    rule_text("carbon-footprint", 'maximum_class = "H"'),
    rule_text("second-life-routing", "reuse_above = 60\nrepurpose_above = 65"),
    rule_text("passport-completeness", "sections = []"),
    rule_text("passport-completeness", 'sections = ["Labels"]\nignore = ["warrentyPeriod"]'),
])
def test_review_malformed_values_are_refused_when_loading(text):
    with pytest.raises(PolicyFormatError):
        parse_policy(text)


def test_recycled_content_without_any_known_element_is_not_evaluated():
    data = {**changed("recycled_content.claimed", {}), "elements": {}}
    result = outcome("eu-2023-1542", "eu-art8-recycled-content", data)
    assert result.status == NOT_EVALUATED and "shows none" in result.reason


def test_material_recovery_skips_lead_for_a_battery_without_lead():
    data = copy.deepcopy(_passing())
    del data["recycling_efficiency"][0]["material_recovery"]["Pb"]  # a lithium-ion recycler
    assert outcome("eu-2023-1542", "eu-annex12-material-recovery", data).status == PASS
    del data["recycling_efficiency"][0]["material_recovery"]["Co"]  # the battery holds cobalt
    failed = outcome("eu-2023-1542", "eu-annex12-material-recovery", data)
    assert failed.status == FAIL and "Co not reported" in failed.reason


@pytest.mark.parametrize(("purpose", "roles", "status"), [
    ("recycling", ["collector"], PASS),  # take-back through a collection point
    ("disposal", ["collector"], FAIL),  # disposal outside a recycling facility
    ("disposal", ["recycler"], PASS),
    ("sale", ["fleet"], FAIL),  # a waste battery to an operator that handles no waste
])
def test_waste_shipments_by_purpose_and_destination(purpose, roles, status):
    data = copy.deepcopy(BASE)
    data["route"][0].update(purpose=purpose, to_roles=roles, to_recycler="recycler" in roles)
    assert outcome("eu-2023-1542", "eu-waste-shipments", data).status == status


def test_passport_sections_are_configurable_and_a_missing_passport_is_not_evaluated():
    rule = 'sections = ["%s"]\n%s'
    general = rule_text("passport-completeness", rule % ("GeneralProductInformation", ""))
    data = {**BASE, "passport_fields": [f for f in BASE["passport_fields"]
                                        if f != "warrantyPeriod"]}
    result = evaluate_policy(parse_policy(general), data).outcomes[0]
    assert result.status == FAIL and result.evidence["missing"] == {
        "GeneralProductInformation": ["warrentyPeriod"]}
    ignored = rule_text("passport-completeness", rule % (
        "GeneralProductInformation", 'ignore = ["warrentyPeriod"]'))
    assert evaluate_policy(parse_policy(ignored), data).outcomes[0].status == PASS
    labels = rule_text("passport-completeness", rule % ("Labels", ""))
    result = evaluate_policy(parse_policy(labels), BASE).outcomes[0]
    assert result.status == FAIL and "resultOfTestReport" in result.reason
    # no passport credential in the bundle (redacted or never issued): an EV battery FAILs,
    # unless the rule asks only for the passports it is shown
    bare = {**BASE, "passport_credential": None}
    assert evaluate_policy(parse_policy(ignored), bare).outcomes[0].status == FAIL
    lenient = rule_text("passport-completeness", rule % (
        "CarbonFootprint", "require_passport = false"))
    assert evaluate_policy(parse_policy(lenient), bare).outcomes[0].status == NOT_EVALUATED


def test_the_examples_of_docs_policy_md_parse():
    import re

    from conftest import ROOT

    text = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    tiers = parse_policy(blocks[0]).rules[0].tiers
    assert [t[0] for t in tiers] == [date(2031, 8, 18), date(2036, 8, 18)]
    combined = parse_policy("version = 1\n" + blocks[1]).rules[0]
    assert [r.effective_from for r in combined.rules] == [date(2026, 1, 1)] * 2
