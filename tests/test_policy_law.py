"""The shipped rules against the law's own dates and figures (issue 19): each legal date with a
day on either side, the regulation's figures, and no PASS where the law or the evidence gives
none (a rule without its inputs is NOT_EVALUATED, a rule without its delegated act too)."""

from __future__ import annotations

import copy
from datetime import date, timedelta

import pytest
from batterytrace.verifier.policy import (
    FAIL,
    NOT_EVALUATED,
    PASS,
    PolicyFormatError,
    evaluate_policy,
    load_policy,
    parse_policy,
    policy_names,
)
from test_policy import BASE, _passing, load_text

DAY = timedelta(days=1)


def judge(policy: str, rule: str, data: dict, when: date, *, accredited: bool = True):
    result = evaluate_policy(load_policy(policy), data, policy_date=when,
                             issuers_accredited=accredited)
    return next(o for o in result.outcomes if o.rule_id == rule)


def judge_text(text: str, data: dict, when: date, rule: str | None = None):
    result = evaluate_policy(parse_policy(text), data, policy_date=when,
                             issuers_accredited=True)
    return next(o for o in result.outcomes if rule is None or o.rule_id == rule)


# --- no PASS without inputs -----------------------------------------------------------------

EMPTY = {
    "subject": "https://id/items/x", "elements": {}, "countries": {}, "artisanal_share": 0.0,
    "route": [], "lifecycle": {k: False for k in ("production", "sale", "use", "end_of_life",
                                                  "recycling")},
    "carbon_footprint": None,
    "recycled_content": {"claimed": None, "computed": {}, "credential": None,
                         "backing_lots": [], "backing_lots_in_history": []},
    "recycling_efficiency": [], "model": None, "state_of_health": None,
    "state_of_health_readings": [], "second_life": [], "placed_on_market": None,
    "placed_on_market_event_time": None, "placed_on_market_by": None,
    "placed_on_market_seq": None, "passport_credential": None, "passport_fields": [],
    "due_diligence": [], "not_in_force": [],
}


def _dates(policy: str) -> list[date]:
    """Every date a shipped policy names, a day either side, and some later days."""
    days = {date(2031, 9, 1), date(2040, 1, 1), date(2024, 1, 1)}
    for rule in load_policy(policy).rules:
        for day in [rule.effective_from, rule.effective_until, *(t[0] for t in rule.tiers)]:
            if day is not None:
                days |= {day - DAY, day, day + DAY}
    return sorted(days)


@pytest.mark.parametrize("policy", policy_names())
@pytest.mark.parametrize("data", [EMPTY, {}], ids=["empty", "nothing"])
def test_no_shipped_rule_passes_when_its_inputs_are_absent(policy, data):
    for when in _dates(policy):
        for accredited in (True, False):
            result = evaluate_policy(load_policy(policy), copy.deepcopy(data), policy_date=when,
                                     issuers_accredited=accredited)
            for outcome in result.outcomes:
                assert outcome.status != PASS, (policy, outcome.rule_id, when, outcome.reason)
                if outcome.status == NOT_EVALUATED:
                    assert outcome.reason  # says what is missing


def test_the_only_fail_without_inputs_is_a_missing_declaration_or_passport_in_scope():
    """With nothing in the bundle nothing fails either, except what the law requires to be
    there: a passport of a battery whose scope is known (here: an EV battery)."""
    ev = {**EMPTY, "model": {"category": "ev"}}
    outcomes = evaluate_policy(load_policy("eu-2023-1542"), ev,
                               policy_date=date(2031, 9, 1)).outcomes
    assert {o.rule_id for o in outcomes if o.status == FAIL} == {"eu-art77-passport"}
    [passport] = [o for o in outcomes if o.rule_id == "eu-art77-passport"]
    assert "no BatteryPassportCredential" in passport.reason


# --- Art. 8: recycled content -----------------------------------------------------------------


@pytest.mark.parametrize(("when", "status", "figure"), [
    (date(2031, 8, 17), NOT_EVALUATED, None),
    (date(2031, 8, 18), PASS, 16),      # Co 20 % >= 16 %
    (date(2036, 8, 17), PASS, 16),
    (date(2036, 8, 18), FAIL, 26),      # Co 20 % < 26 %
])
def test_art8_recycled_content_either_side_of_its_dates(when, status, figure):
    outcome = judge("eu-2023-1542", "eu-art8-recycled-content", _passing(), when)
    assert outcome.status == status, outcome.reason
    if figure:
        assert outcome.evidence["figures"]["Co"]["minimum"] == figure / 100


def test_art8_a_claim_above_the_ledger_fails_with_both_figures():
    data = _passing()
    data["recycled_content"]["claimed"]["Co"] = 0.30  # the ledger shows 20 %
    outcome = judge("eu-2023-1542", "eu-art8-recycled-content", data, date(2031, 9, 1))
    assert outcome.status == FAIL
    assert "Co claimed 30.00 %, the ledger proves 20.00 %" in outcome.reason
    assert outcome.evidence["figures"]["Co"]["claimed"] == 0.30
    assert outcome.evidence["figures"]["Co"]["ledger"] == 0.20


# --- Annex XII: recycling efficiency by chemistry, material recovery ------------------------


@pytest.mark.parametrize(("chemistry", "when", "rate", "status"), [
    ("lithium-based", date(2025, 12, 30), 10, NOT_EVALUATED),
    ("lithium-based", date(2025, 12, 31), 65, PASS),
    ("lithium-based", date(2025, 12, 31), 64.9, FAIL),
    ("lithium-based", date(2030, 12, 30), 69, PASS),
    ("lithium-based", date(2030, 12, 31), 69, FAIL),
    ("lithium-based", date(2030, 12, 31), 70, PASS),
    ("lead-acid", date(2025, 12, 31), 74, FAIL),
    ("lead-acid", date(2025, 12, 31), 75, PASS),
    ("lead-acid", date(2030, 12, 30), 79, PASS),
    ("lead-acid", date(2030, 12, 31), 79, FAIL),
    ("lead-acid", date(2030, 12, 31), 80, PASS),
    ("other", date(2025, 12, 31), 50, PASS),
    ("other", date(2030, 12, 31), 49, FAIL),
    ("nickel-cadmium", date(2025, 12, 31), 79, FAIL),
    (None, date(2031, 1, 1), 99, NOT_EVALUATED),  # a statement that names no chemistry
])
def test_annex12_recycling_efficiency_by_chemistry(chemistry, when, rate, status):
    data = copy.deepcopy(BASE)
    data["recycling_efficiency"][0].update(chemistry=chemistry, recycling_efficiency=rate)
    outcome = judge("eu-2023-1542", "eu-annex12-recycling-efficiency", data, when)
    assert outcome.status == status, outcome.reason


@pytest.mark.parametrize(("when", "lithium", "status"), [
    (date(2027, 12, 30), 50, NOT_EVALUATED),
    (date(2027, 12, 31), 50, PASS),
    (date(2027, 12, 31), 49, FAIL),
    (date(2031, 12, 30), 79, PASS),
    (date(2031, 12, 31), 79, FAIL),
])
def test_annex12_material_recovery_either_side_of_its_dates(when, lithium, status):
    data = copy.deepcopy(BASE)
    data["recycling_efficiency"][0]["material_recovery"].update(Li=lithium)
    outcome = judge("eu-2023-1542", "eu-annex12-material-recovery", data, when)
    assert outcome.status == status, outcome.reason


# --- Art. 7: carbon footprint -----------------------------------------------------------------

CARBON = ("eu-art7-1-carbon-footprint-declaration", "eu-art7-2-carbon-footprint-class",
          "eu-art7-3-carbon-footprint-maximum")


@pytest.mark.parametrize("when", [date(2025, 2, 17), date(2025, 2, 18), date(2028, 2, 18),
                                  date(2031, 9, 1), date(2040, 1, 1)])
def test_art7_without_a_delegated_act_is_never_judged(when):
    for rule in CARBON:
        outcome = judge("eu-2023-1542", rule, BASE, when)
        assert outcome.status == NOT_EVALUATED, (rule, outcome.reason)
    maximum = judge("eu-2023-1542", CARBON[2], BASE, when)
    if when >= date(2028, 2, 18):
        assert maximum.reason.startswith("no maximum adopted")
    rules = {r.id: r for r in load_policy("eu-2023-1542").rules}
    assert "whichever is the latest" in rules[CARBON[0]].source  # the regulation's wording
    assert rules[CARBON[2]].params.get("maximum") is None


def _with_act(act: str) -> str:
    return load_text("eu-2023-1542").replace(
        "# delegated_act = YYYY-MM-DD", f"delegated_act = {act}").replace(
        "months_after_delegated_act = 18\n", f"months_after_delegated_act = 18\n"
                                              f"delegated_act = {act}\n")


@pytest.mark.parametrize(("act", "rule", "first_day"), [
    # 12 months after an act of 1 Mar 2026 is later than 18 Feb 2025
    ("2026-03-01", CARBON[0], date(2027, 3, 1)),
    # an act early enough: the regulation's own date is the later one
    ("2023-06-01", CARBON[0], date(2025, 2, 18)),
    ("2026-03-01", CARBON[1], date(2027, 9, 1)),
    ("2025-01-31", CARBON[1], date(2026, 8, 18)),
])
def test_art7_dates_follow_the_delegated_act_whichever_is_later(act, rule, first_day):
    text = _with_act(act)
    before = judge_text(text, BASE, first_day - DAY, rule)
    assert before.status == NOT_EVALUATED and "not in force" in before.reason
    assert judge_text(text, BASE, first_day, rule).status == PASS
    missing = {**BASE, "carbon_footprint": None}
    status = judge_text(text, missing, first_day, rule).status
    assert status == (FAIL if rule == CARBON[0] else NOT_EVALUATED)


def test_art7_class_fails_without_a_class_and_the_maximum_stays_unjudged_with_the_act():
    text = _with_act("2026-03-01")
    classless = {**BASE, "carbon_footprint": {**BASE["carbon_footprint"], "class": None}}
    assert judge_text(text, classless, date(2031, 1, 1), CARBON[1]).status == FAIL
    maximum = judge_text(text, BASE, date(2031, 1, 1), CARBON[2])
    assert maximum.status == NOT_EVALUATED and "no maximum adopted" in maximum.reason


def test_a_users_own_maximum_is_reported_as_that_policys():
    text = ('version = 1\nname = "buyer-2031"\n[[rule]]\nid = "buyer-cf-max"\n'
            'type = "carbon-footprint"\ntitle = "Our maximum"\njurisdiction = "contract"\n'
            'source = "Supply agreement 2031-7, clause 4"\neffective_from = 2030-01-01\n'
            'check = "maximum"\nmaximum = 75.0\n')
    low = judge_text(text, BASE, date(2031, 1, 1))  # BASE declares 80
    assert low.status == FAIL and "the maximum of this policy" in low.reason
    assert low.source == "Supply agreement 2031-7, clause 4" and low.jurisdiction == "contract"
    high = judge_text(text.replace("75.0", "90.0"), BASE, date(2031, 1, 1))
    assert high.status == PASS and high.source.startswith("Supply agreement")


def test_delegated_act_settings_are_checked_when_loading():
    head = ('version = 1\n[[rule]]\nid = "r"\ntype = "carbon-footprint"\ntitle = "t"\n'
            'jurisdiction = "EU"\nsource = "s"\neffective_from = 2025-02-18\n')
    for bad in ("delegated_act = 2026-01-01\n", "months_after_delegated_act = -1\n",
                "months_after_delegated_act = 1.5\n",
                "months_after_delegated_act = 12\ndelegated_act = 2026-01-01T00:00:00\n"):
        with pytest.raises(PolicyFormatError):
            parse_policy(head + bad)
    # month arithmetic: 18 months after 31 Aug 2026 is 28 Feb 2028
    rule = parse_policy(head + "months_after_delegated_act = 18\ndelegated_act = 2026-08-31\n")
    result = evaluate_policy(rule, BASE, policy_date=date(2028, 2, 27)).outcomes[0]
    assert "from 2028-02-29" in result.reason  # a leap year
    assert evaluate_policy(rule, BASE, policy_date=date(2028, 2, 29)).outcomes[0].status == PASS


# --- Art. 47-52: due diligence, from 18 Aug 2027 (Regulation (EU) 2025/1561) -----------------


@pytest.mark.parametrize("rule", ["eu-art48-due-diligence", "eu-art52-artisanal-sources"])
def test_due_diligence_starts_on_18_august_2027(rule):
    before = judge("eu-2023-1542", rule, _passing(), date(2027, 8, 17))
    assert before.status == NOT_EVALUATED and "2027-08-18" in before.reason
    assert judge("eu-2023-1542", rule, _passing(), date(2027, 8, 18)).status == PASS
    assert "2025/1561" in before.source


def test_due_diligence_credential_must_be_issued_to_who_placed_the_battery_on_the_market():
    when = date(2027, 8, 18)
    other = copy.deepcopy(_passing())
    other["due_diligence"][0]["issued_to"] = "did:web:x:refiner"
    failed = judge("eu-2023-1542", "eu-art48-due-diligence", other, when)
    assert failed.status == FAIL and "did:web:x:automaker" in failed.reason
    none = {**_passing(), "due_diligence": []}
    assert judge("eu-2023-1542", "eu-art48-due-diligence", none, when).status == FAIL
    unsold = {**_passing(), "placed_on_market_by": None}
    assert judge("eu-2023-1542", "eu-art48-due-diligence", unsold, when).status \
        == NOT_EVALUATED


def test_artisanal_source_is_resolved_only_by_an_accredited_credential_naming_the_site():
    when = date(2027, 8, 18)
    words = copy.deepcopy(_passing())
    words["elements"]["Co"]["sources"][1].update(risk_resolution=None,
                                                 declared_status="ZEA Kambove-Ouest")
    failed = judge("eu-2023-1542", "eu-art52-artisanal-sources", words, when)
    assert failed.status == FAIL and "no credential naming the site" in failed.reason
    unchecked = judge("eu-2023-1542", "eu-art52-artisanal-sources", _passing(), when,
                      accredited=False)
    assert unchecked.status == NOT_EVALUATED and "accreditation" in unchecked.reason


# --- Art. 77: passport, from 18 Feb 2027 ------------------------------------------------------


@pytest.mark.parametrize(("model", "status"), [
    ({"category": "ev"}, FAIL),
    ({"category": "lmt"}, FAIL),
    ({"category": "industrial", "rated_energy_kwh": 2.5}, FAIL),
    ({"category": "stationary", "rated_energy_kwh": 100.0}, FAIL),
    ({"category": "industrial", "rated_energy_kwh": 2.0}, NOT_EVALUATED),  # not over 2 kWh
    ({"category": "industrial"}, NOT_EVALUATED),  # energy unknown
    (None, NOT_EVALUATED),  # category unknown
])
def test_a_missing_passport_fails_from_18_february_2027_for_batteries_in_scope(model, status):
    data = {**BASE, "passport_credential": None, "model": model}
    before = judge("eu-2023-1542", "eu-art77-passport", data, date(2027, 2, 17))
    assert before.status == NOT_EVALUATED
    outcome = judge("eu-2023-1542", "eu-art77-passport", data, date(2027, 2, 18))
    assert outcome.status == status, outcome.reason


def test_the_passport_rule_names_every_missing_mandatory_attribute():
    data = copy.deepcopy(BASE)
    gone = ["performance.roundtripEfficiency", "warrantyPeriod", "labels",
            "batteryMaterials.isCriticalRawMaterial", "operatorInformation.emailAddress"]
    data["passport_fields"] = [f for f in data["passport_fields"] if f not in gone]
    outcome = judge("eu-2023-1542", "eu-art77-passport", data, date(2027, 2, 18))
    assert outcome.status == FAIL
    assert sorted(outcome.evidence["missing"]["MandatoryAttributes"]) == sorted(gone)
    for name in gone:
        assert name in outcome.reason
    assert judge("eu-2023-1542", "eu-art77-passport", BASE, date(2027, 2, 18)).status == PASS


# --- US IRA 30D -------------------------------------------------------------------------------


def test_ira_ends_on_30_september_2025():
    assert judge("us-ira-30d", "us-ira-critical-minerals", _passing(),
                 date(2025, 9, 30)).status == PASS
    late = judge("us-ira-30d", "us-ira-critical-minerals", _passing(), date(2025, 10, 1))
    assert late.status == NOT_EVALUATED and "2025-09-30" in late.reason


@pytest.mark.parametrize(("where", "field"), [(["CN"], "processed_in"), ("RU", "country"),
                                              (["KR", "IR"], "processed_in"),
                                              ("KP", "country")])
def test_ira_feoc_by_extraction_or_processing_location_from_2025(where, field):
    data = _passing()
    data["elements"]["Co"]["sources"][0][field] = where
    before = judge("us-ira-30d", "us-ira-critical-minerals", data, date(2024, 12, 31))
    assert "foreign entity" not in before.reason
    hit = judge("us-ira-30d", "us-ira-critical-minerals", data, date(2025, 1, 1))
    assert hit.status == FAIL and "foreign entity of concern" in hit.reason
    assert hit.evidence["foreign_entities"][0]["countries"]


def test_ira_fta_test_counts_the_value_added():
    # cobalt mined in CD (no FTA): processing in KR alone is 50 % of the value added (qualifies)
    data = _passing()
    ok = judge("us-ira-30d", "us-ira-critical-minerals", data, date(2024, 6, 1))
    assert ok.evidence["by_element"]["Co"]["qualifying"] > 0
    # processed in CD and KR: a quarter of the value added in an FTA country, not enough,
    # though an FTA country touched it (the whole value no longer counts)
    for mined in data["elements"]["Co"]["sources"]:
        if not mined["recycled"]:
            mined["processed_in"] = ["CD", "KR"]
    low = judge("us-ira-30d", "us-ira-critical-minerals", data, date(2024, 6, 1))
    assert low.evidence["by_element"]["Co"]["qualifying"] == 0
    assert low.evidence["value_added"] == {"extraction": 50, "processing": 50}


def test_the_report_prints_reasons_from_the_bundle_literally():
    from rich.console import Console

    hostile = {**_passing(), "placed_on_market_by": "did:web:[bold]evil[/bold]",
               "placed_on_market_event_time": "2027-09-01"}
    result = evaluate_policy(load_policy("eu-2023-1542"), hostile,
                             policy_date=date(2027, 9, 1))
    console = Console(record=True, width=400, color_system=None)
    result.render(console)
    text = console.export_text()
    assert "did:web:[bold]evil[/bold]" in text
    assert "ledger receipt 2031-09-01, signer's time 2027-09-01" in text  # both days shown
