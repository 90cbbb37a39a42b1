"""The rule types a policy file can use, each a check over the provenance JSON.

A check returns (status, reason, evidence). Parameters come from the rule table merged with the
tier in force at the policy date (policy.py); `validate` names a malformed value when the
file is loaded. Percentages in policy files are percent (as in the regulations); shares in the
provenance are fractions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from .provenance import IRMA_LEVELS

Result = tuple[str, str, dict[str, Any]]
PASS, FAIL, NOT_EVALUATED = "PASS", "FAIL", "NOT_EVALUATED"
ROUTES = ("recycle", "repurpose", "reuse")  # in order of the state of health they need
# The element keys of lot and item compositions (DESIGN.md, Identifiers): a policy naming
# anything else (`Cobalt = 16`) would never match and silently pass, so it is refused.
SYMBOLS = frozenset({"Li", "Co", "Ni", "Mn", "graphite", "Cu", "Al", "Pb"})
# Who may receive a declared waste battery (ledger/registry.py roles).
WASTE_OPERATORS = frozenset({"collector", "dismantler", "recycler"})


@dataclass(frozen=True)
class RuleType:
    params: frozenset[str]
    check: Callable[[Mapping[str, Any], Mapping[str, Any], date], Result]
    # What is wrong with a rule's parameters (the policy parser reports it), or None.
    validate: Callable[[Mapping[str, Any]], str | None] = lambda p: None


def _number(value: Any, low: float = 0, high: float = float("inf")) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def _percent_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        k in SYMBOLS and _number(v, 0, 100) for k, v in value.items())


def _needs_percent_map(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    def validate(params: Mapping[str, Any]) -> str | None:
        if name in params and not _percent_map(params[name]):
            return f"{name} maps symbols ({', '.join(sorted(SYMBOLS))}) to percentages (0-100)"
        return None
    return validate


def _checks(**kinds: Callable[[Any], bool]) -> Callable[[Mapping[str, Any]], str | None]:
    """A validator: each named parameter, when given, must satisfy its predicate."""
    def validate(params: Mapping[str, Any]) -> str | None:
        bad = sorted(k for k, ok in kinds.items() if k in params and not ok(params[k]))
        return f"invalid value for {', '.join(bad)} (docs/policy.md)" if bad else None
    return validate


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) and x for x in value)


def _percent(value: Any) -> bool:
    return _number(value, 0, 100)


def _pct(share: float) -> str:
    return f"{share * 100:.2f} %"


# --- EU Art. 8: recycled content ------------------------------------------------------------


def recycled_content(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    minimum: Mapping[str, float] = params.get("minimum", {})
    basis = params.get("basis", "claimed")
    rc = data["recycled_content"]
    claimed, computed = rc.get("claimed") or {}, rc.get("computed") or {}
    present = set(data["elements"]) | set(claimed)
    shortfalls, figures = [], {}
    for symbol, pct in sorted(minimum.items()):
        if symbol not in present:
            continue  # the battery holds none of it (lead in a lithium-ion battery)
        options = {"claimed": [claimed.get(symbol)], "computed": [computed.get(symbol)],
                   "both": [claimed.get(symbol), computed.get(symbol)]}[basis]
        known = [v for v in options if v is not None] or [computed.get(symbol, 0.0)]
        share = min(known)
        figures[symbol] = {"share": share, "minimum": pct / 100,
                           "claimed": claimed.get(symbol), "computed": computed.get(symbol)}
        if share * 100 < pct - 1e-9:
            shortfalls.append(f"{symbol} {_pct(share)} < {pct} %")
    evidence = {"basis": basis, "figures": figures, "credential": rc.get("credential")}
    if not figures:  # no composition known, or none of the elements: nothing was judged
        return NOT_EVALUATED, "the bundle declares none of the elements " + ", ".join(
            sorted(minimum)) + " in the battery", evidence
    if shortfalls:
        return FAIL, "recycled content below the minimum: " + "; ".join(shortfalls), evidence
    return PASS, f"recycled content meets {len(figures)} minimum(s)", evidence


# --- EU Annex XII: material recovery and recycling efficiency --------------------------------


def _statements(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(data.get("recycling_efficiency") or ())


def material_recovery(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    statements = _statements(data)
    if not statements:
        return NOT_EVALUATED, "no RecyclingEfficiencyCredential in the bundle", {}
    minimum: Mapping[str, float] = params.get("minimum", {})
    present = set(data["elements"])
    shortfalls = []
    for s in statements:
        for symbol, pct in sorted(minimum.items()):
            rate = s["material_recovery"].get(symbol)
            if rate is None and symbol not in present:
                continue  # a lithium-ion recycler reports no lead: the battery holds none
            if rate is None or rate < pct:
                shortfalls.append(f"{s['facility']} {symbol} "
                                  f"{'not reported' if rate is None else f'{rate} %'} < {pct} %")
    evidence = {"statements": statements, "minimum": dict(minimum)}
    if shortfalls:
        return FAIL, "material recovery below target: " + "; ".join(shortfalls), evidence
    return PASS, f"material recovery targets met by {len(statements)} statement(s)", evidence


def recycling_efficiency(params: Mapping[str, Any], data: Mapping[str, Any], when: date
                         ) -> Result:
    statements = _statements(data)
    if not statements:
        return NOT_EVALUATED, "no RecyclingEfficiencyCredential in the bundle", {}
    minimum = float(params.get("minimum", 0))
    low = [f"{s['facility']} {s['recycling_efficiency']} %" for s in statements
           if (s["recycling_efficiency"] or 0) < minimum]
    evidence = {"statements": statements, "minimum": minimum}
    if low:
        return FAIL, f"recycling efficiency below {minimum} %: " + "; ".join(low), evidence
    return PASS, f"recycling efficiency at least {minimum} %", evidence


# --- IRMA -------------------------------------------------------------------------------------


def _rank(level: str | None) -> int:
    return IRMA_LEVELS.index(level) if level in IRMA_LEVELS else -1


def irma_level(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    minimum: Mapping[str, str] = params.get("minimum", {})
    below, checked = [], 0
    for symbol, element in sorted(data["elements"].items()):
        wanted = minimum.get(symbol, minimum.get("*"))
        if wanted is None:
            continue
        for source in element["sources"]:
            if source["recycled"]:
                continue  # recycled material has no mine site to audit
            checked += 1
            if _rank(source["irma_level"]) < _rank(wanted):
                below.append({"element": symbol, "site": source["site"],
                              "site_name": source["site_name"],
                              "irma_level": source["irma_level"], "share": source["share"],
                              "required": wanted})
    evidence = {"minimum": dict(minimum), "below": below, "sources_checked": checked}
    if below:
        text = "; ".join(f"{b['element']} from {b['site_name']} ({b['irma_level'] or 'no audit'}"
                         f", {_pct(b['share'])}) below {b['required']}" for b in below)
        return FAIL, text, evidence
    return PASS, f"{checked} mined source(s) at or above the minimum IRMA level", evidence


def _irma_validate(params: Mapping[str, Any]) -> str | None:
    levels = params.get("minimum", {})
    if not isinstance(levels, dict) or any(v not in IRMA_LEVELS for v in levels.values()):
        return f"minimum maps symbols (or \"*\") to one of {IRMA_LEVELS}"
    return None


# --- carbon footprint -------------------------------------------------------------------------


def carbon_footprint(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    cf = data.get("carbon_footprint")
    maximum = params.get("maximum")
    worst = params.get("maximum_class")
    if not cf:
        status = FAIL if params.get("require_declaration", False) else NOT_EVALUATED
        return status, "no CarbonFootprintCredential for the battery in the bundle", {}
    evidence = {"declared": cf, "maximum": maximum, "maximum_class": worst}
    problems = []
    if maximum is not None and (cf.get("value") is None or cf["value"] > maximum):
        problems.append(f"{cf.get('value')} {cf.get('unit')} above {maximum}")
    if worst is not None and (cf.get("class") or "Z") > worst:
        problems.append(f"class {cf.get('class')} worse than {worst}")
    if problems:
        return FAIL, "carbon footprint " + "; ".join(problems), evidence
    return PASS, f"declared {cf['value']} {cf.get('unit')} (class {cf.get('class')})", evidence


# --- US IRA critical minerals -----------------------------------------------------------------


def ira_critical_minerals(params: Mapping[str, Any], data: Mapping[str, Any], when: date
                          ) -> Result:
    prices: Mapping[str, float] = params.get("prices", {})
    fta = set(params.get("fta_countries", ()))
    recycling = set(params.get("recycling_countries", ("US", "CA", "MX")))
    feoc = set(params.get("foreign_entities_of_concern", ()))
    total = qualifying = 0.0
    by_element = {}
    entities: list[dict[str, Any]] = []
    for symbol, element in sorted(data["elements"].items()):
        price = prices.get(symbol)
        if price is None:
            continue
        value = ok = 0.0
        for source in element["sources"]:
            worth = source["mass_kg"] * price
            value += worth
            if (source["recycled"] and source["country"] in recycling) or (
                    not source["recycled"] and (source["country"] in fta or set(
                        source.get("processed_in", ())) & fta)):
                ok += worth
            named = {source["operator"], source.get("operator_name"),
                     *source.get("processors", ()), *source.get("processor_names", ())} & feoc
            if named:
                entities.append({"element": symbol, "site": source["site"],
                                 "entities": sorted(n for n in named if n)})
        total, qualifying = total + value, qualifying + ok
        by_element[symbol] = {"value": round(value, 2), "qualifying": round(ok, 2)}
    minimum = float(params.get("minimum", 0))
    if total <= 0:
        return NOT_EVALUATED, "no priced critical mineral in the battery", {"prices": prices}
    share = qualifying / total
    evidence = {"share": round(share, 6), "minimum": minimum / 100, "by_element": by_element,
                "foreign_entities": entities}
    feoc_from = params.get("feoc_from")
    if entities and (feoc_from is None or when >= feoc_from):
        return FAIL, "critical minerals from a foreign entity of concern: " + "; ".join(
            f"{e['element']} via {', '.join(e['entities'])}" for e in entities), evidence
    if share * 100 < minimum - 1e-9:
        return FAIL, (f"{_pct(share)} of critical-mineral value from the US, FTA countries or "
                      f"North American recycling, below {minimum} %"), evidence
    return PASS, f"{_pct(share)} of critical-mineral value qualifies (minimum {minimum} %)", \
        evidence


def _ira_validate(params: Mapping[str, Any]) -> str | None:
    prices = params.get("prices", {})
    if not isinstance(prices, dict) or any(
            not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0
            for v in prices.values()):
        return "prices map symbols to non-negative prices per kg"
    for key in ("fta_countries", "recycling_countries", "foreign_entities_of_concern"):
        if key in params and not (isinstance(params[key], list) and all(
                isinstance(x, str) for x in params[key])):
            return f"{key} is a list of strings"
    return None


# --- artisanal sources, second life, waste shipments -----------------------------------------


def artisanal_sources(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    risky = set(params.get("high_risk_countries", ()))
    found = []
    for symbol, element in sorted(data["elements"].items()):
        for source in element["sources"]:
            if source["artisanal"] and (source.get("high_risk") or source["country"] in risky):
                found.append({"element": symbol, "site": source["site"],
                              "site_name": source["site_name"], "share": source["share"],
                              "resolution": source.get("risk_resolution")})
    unresolved = [f for f in found if not f["resolution"]]
    evidence = {"high_risk_artisanal": found, "artisanal_share": data.get("artisanal_share")}
    if unresolved:
        return FAIL, "unresolved high-risk artisanal source: " + "; ".join(
            f"{u['element']} {_pct(u['share'])} from {u['site_name']}" for u in unresolved), \
            evidence
    if found:
        return PASS, f"{len(found)} high-risk artisanal source(s), each with a recorded " \
            "resolution", evidence
    return PASS, "no high-risk artisanal source", evidence


def second_life(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    reuse, repurpose = float(params.get("reuse_above", 85)), float(
        params.get("repurpose_above", 65))
    downgrade = bool(params.get("allow_downgrade", True))
    decisions = list(data.get("second_life") or ())
    if not decisions:
        return PASS, "no second-life routing decision in the history", {}
    wrong, unknown = [], []
    for d in decisions:
        soh = d.get("state_of_health")
        if soh is None:
            unknown.append(d)
            continue
        band = "reuse" if soh > reuse else "repurpose" if soh > repurpose else "recycle"
        if d["decision"] != band and not (downgrade and ROUTES.index(d["decision"])
                                          < ROUTES.index(band)):
            wrong.append({**d, "expected": band})
    evidence = {"decisions": decisions, "reuse_above": reuse, "repurpose_above": repurpose}
    if wrong:
        return FAIL, "; ".join(f"{w['decision']} at state of health {w['state_of_health']} % "
                               f"(entry {w['seq']}): expected {w['expected']}" for w in wrong), \
            evidence
    if unknown:
        return NOT_EVALUATED, "; ".join(f"{u['decision']} (entry {u['seq']}) without a state-"
                                        "of-health reading before it" for u in unknown), evidence
    return PASS, f"{len(decisions)} routing decision(s) consistent with the measured state " \
        "of health", evidence


def waste_shipments(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    legs = [leg for leg in data.get("route") or () if leg.get("waste")]
    bad = []
    for leg in legs:
        roles = set(leg.get("to_roles") or ()) | ({"recycler"} if leg.get("to_recycler")
                                                  else set())
        if leg.get("purpose") == "disposal" and "recycler" not in roles:
            bad.append((leg, "for disposal outside a recycling facility"))
        elif not roles & WASTE_OPERATORS:
            bad.append((leg, "to a site whose operator is no collector, dismantler or recycler"))
    evidence = {"waste_shipments": legs}
    if bad:
        return FAIL, "; ".join(f"waste battery shipped {why}: {b['purpose']} to {b['to_site']} "
                               f"(entry {b['seq']})" for b, why in bad), evidence
    return PASS, f"{len(legs)} waste shipment(s), all to collection, dismantling or " \
        "recycling operators and none for disposal elsewhere", evidence


# --- passport completeness --------------------------------------------------------------------


@cache
def batterypass_fields() -> dict[str, Any]:
    """Required fields of the Battery Pass 1.2 schemas and where the project carries them."""
    text = resources.files(__package__).joinpath(
        "data/batterypass/required-fields.json").read_text(encoding="utf-8")
    return json.loads(text)


def passport_completeness(params: Mapping[str, Any], data: Mapping[str, Any], when: date
                          ) -> Result:
    """The `required` fields of the chosen Battery Pass sections, each given by a credential
    or by the ledger (the table's aliases). No passport credential for the battery in the
    bundle (redacted, or never issued) is NOT_EVALUATED, or FAIL with `require_passport`."""
    table = batterypass_fields()
    sections = list(params["sections"])
    ignore = set(params.get("ignore", ()))
    available = set(data.get("passport_fields") or ())
    evidence: dict[str, Any] = {"sections": sections, "ignored": sorted(ignore),
                                "credential": data.get("passport_credential")}
    if not data.get("passport_credential"):
        status = FAIL if params.get("require_passport", False) else NOT_EVALUATED
        return status, "no BatteryPassportCredential for the battery in the bundle", evidence
    missing = {}
    for section in sections:
        gaps = [f for f in table["sections"][section] if f not in ignore and not (
            set(table["aliases"].get(f, [f])) & available)]
        if gaps:
            missing[section] = gaps
    evidence["missing"] = missing
    if missing:
        return FAIL, "passport incomplete: " + "; ".join(
            f"{s}: {', '.join(g)}" for s, g in missing.items()), evidence
    return PASS, f"every required field of {', '.join(sections)} is given" + (
        f" (ignored: {', '.join(sorted(ignore))})" if ignore else ""), evidence


def _passport_validate(params: Mapping[str, Any]) -> str | None:
    table = batterypass_fields()
    sections = params.get("sections")
    if not _strings(sections) or not sections:
        return "sections is a non-empty list of Battery Pass sections " \
            f"({', '.join(table['sections'])})"
    unknown = set(sections) - set(table["sections"])
    if unknown:
        return f"unknown Battery Pass sections {sorted(unknown)}"
    ignore = params.get("ignore", [])
    fields = {f for section in sections for f in table["sections"][section]}
    if not isinstance(ignore, list) or set(ignore) - fields:
        return f"ignore lists required fields of the chosen sections; not: " \
            f"{sorted(set(ignore) - fields) if isinstance(ignore, list) else ignore}"
    if not isinstance(params.get("require_passport", False), bool):
        return "require_passport is true or false"
    return None


RULE_TYPES: dict[str, RuleType] = {
    "recycled-content": RuleType(frozenset({"minimum", "basis"}), recycled_content,
                                 lambda p: _needs_percent_map("minimum")(p) or (
                                     None if p.get("basis", "claimed") in (
                                         "claimed", "computed", "both")
                                     else "basis is claimed, computed or both")),
    "material-recovery": RuleType(frozenset({"minimum"}), material_recovery,
                                  _needs_percent_map("minimum")),
    "recycling-efficiency": RuleType(frozenset({"minimum"}), recycling_efficiency,
                                     _checks(minimum=_percent)),
    "irma-level": RuleType(frozenset({"minimum"}), irma_level, _irma_validate),
    "carbon-footprint": RuleType(
        frozenset({"maximum", "maximum_class", "require_declaration"}), carbon_footprint,
        _checks(maximum=_number, require_declaration=lambda v: isinstance(v, bool),
                maximum_class=lambda v: isinstance(v, str) and v in tuple("ABCDEFG"))),
    "ira-critical-minerals": RuleType(
        frozenset({"minimum", "prices", "fta_countries", "recycling_countries",
                   "foreign_entities_of_concern", "feoc_from"}),
        ira_critical_minerals,
        lambda p: _ira_validate(p) or _checks(
            minimum=_percent, feoc_from=lambda v: type(v) is date)(p)),
    "artisanal-sources": RuleType(frozenset({"high_risk_countries"}), artisanal_sources,
                                  _checks(high_risk_countries=_strings)),
    "second-life-routing": RuleType(
        frozenset({"reuse_above", "repurpose_above", "allow_downgrade"}), second_life,
        lambda p: _checks(reuse_above=_percent, repurpose_above=_percent,
                          allow_downgrade=lambda v: isinstance(v, bool))(p) or (
            "reuse_above must be above repurpose_above"
            if p.get("reuse_above", 85) <= p.get("repurpose_above", 65) else None)),
    "waste-shipments": RuleType(frozenset(), waste_shipments),
    "passport-completeness": RuleType(
        frozenset({"sections", "ignore", "require_passport"}), passport_completeness,
        _passport_validate),
}
