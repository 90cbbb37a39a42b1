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
    # What the rule lacks while its delegated act is not adopted (the first words of its
    # NOT_EVALUATED reason then), or None.
    unadopted: Callable[[Mapping[str, Any]], str | None] = lambda p: None


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
    """Recycled content per element. Basis `ledger` (default): the share the ledger proves
    (recovered lots in the battery's history, through mass balance) must reach the minimum,
    and a claim above it FAILs with both figures. `claimed`, `computed` (= `ledger` without the
    claim check) and `both` (the lower) are kept for a buyer's own policy."""
    minimum: Mapping[str, float] = params.get("minimum", {})
    basis = params.get("basis", "ledger")
    rc = data.get("recycled_content") or {}
    claimed, computed = rc.get("claimed") or {}, rc.get("computed") or {}
    elements = data.get("elements") or {}
    shortfalls, overclaims, figures = [], [], {}
    for symbol, pct in sorted(minimum.items()):
        if symbol not in elements:
            continue  # not in the battery (lead in a lithium-ion one), or no composition known
        ledger = computed.get(symbol, 0.0)
        if basis == "claimed" and claimed.get(symbol) is None:
            continue  # nothing claimed for it: judged below as missing input
        share = {"claimed": claimed.get(symbol), "computed": ledger, "ledger": ledger,
                 "both": min(v for v in (claimed.get(symbol), ledger) if v is not None)}[basis]
        figures[symbol] = {"share": share, "minimum": pct / 100,
                           "claimed": claimed.get(symbol), "ledger": ledger}
        if share * 100 < pct - 1e-9:
            shortfalls.append(f"{symbol} {_pct(share)} < {pct} %")
        if basis == "ledger" and claimed.get(symbol) is not None and \
                claimed[symbol] > ledger + 1e-6:
            overclaims.append(f"{symbol} claimed {_pct(claimed[symbol])}, the ledger proves "
                              f"{_pct(ledger)}")
    evidence = {"basis": basis, "figures": figures, "credential": rc.get("credential")}
    if not figures:  # no composition known, or none of the elements: nothing was judged
        return NOT_EVALUATED, "the bundle shows none of the elements " + ", ".join(
            sorted(minimum)) + (" with a claimed share" if basis == "claimed" else "") + \
            " in the battery", evidence
    problems = []
    if shortfalls:
        problems.append("recycled content below the minimum: " + "; ".join(shortfalls))
    if overclaims:
        problems.append("claim above what the ledger supports: " + "; ".join(overclaims))
    if problems:
        return FAIL, "; ".join(problems), evidence
    return PASS, f"recycled content meets {len(figures)} minimum(s) ({basis})", evidence


# --- EU Annex XII: material recovery and recycling efficiency --------------------------------


def _statements(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(data.get("recycling_efficiency") or ())


def material_recovery(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    statements = _statements(data)
    if not statements:
        return NOT_EVALUATED, "no RecyclingEfficiencyCredential in the bundle", {}
    minimum: Mapping[str, float] = params.get("minimum", {})
    present = set(data.get("elements") or {})
    shortfalls, judged = [], 0
    for s in statements:
        for symbol, pct in sorted(minimum.items()):
            rate = s["material_recovery"].get(symbol)
            if rate is None and symbol not in present:
                continue  # a lithium-ion recycler reports no lead: the battery holds none
            judged += 1
            if rate is None or rate < pct:
                shortfalls.append(f"{s['facility']} {symbol} "
                                  f"{'not reported' if rate is None else f'{rate} %'} < {pct} %")
    evidence = {"statements": statements, "minimum": dict(minimum)}
    if not judged:
        return NOT_EVALUATED, "no statement reports any of " + ", ".join(sorted(minimum)), \
            evidence
    if shortfalls:
        return FAIL, "material recovery below target: " + "; ".join(shortfalls), evidence
    return PASS, f"material recovery targets met by {len(statements)} statement(s)", evidence


CHEMISTRIES = ("lead-acid", "lithium-based", "nickel-cadmium", "other")


def recycling_efficiency(params: Mapping[str, Any], data: Mapping[str, Any], when: date
                         ) -> Result:
    """Each statement against the target of its own chemistry (Annex XII Part B): `minimum`
    maps `lead-acid`, `lithium-based` and `other` to percent. A statement that names no
    chemistry cannot be judged."""
    statements = _statements(data)
    if not statements:
        return NOT_EVALUATED, "no RecyclingEfficiencyCredential in the bundle", {}
    minimum: Mapping[str, float] = params.get("minimum", {})
    low, unknown, judged = [], [], []
    for s in statements:
        target = minimum.get(s.get("chemistry") or "")
        if target is None or s.get("recycling_efficiency") is None:
            unknown.append(f"{s['facility']} ({s.get('chemistry') or 'no chemistry'})")
            continue
        judged.append(s)
        if s["recycling_efficiency"] < target:
            low.append(f"{s['facility']} {s['chemistry']} {s['recycling_efficiency']} % < "
                       f"{target} %")
    evidence = {"statements": statements, "minimum": dict(minimum), "not_judged": unknown}
    if low:
        return FAIL, "recycling efficiency below target: " + "; ".join(low), evidence
    if unknown:
        return NOT_EVALUATED, "statement(s) without a chemistry this rule has a target for: " \
            + "; ".join(unknown), evidence
    return PASS, "recycling efficiency at least the target of its chemistry: " + "; ".join(
        f"{s['chemistry']} {s['recycling_efficiency']} % >= {minimum[s['chemistry']]} %"
        for s in judged), evidence


def _chemistry_map(params: Mapping[str, Any]) -> str | None:
    value = params.get("minimum", {})
    if not isinstance(value, dict) or any(k not in CHEMISTRIES or not _percent(v)
                                          for k, v in value.items()):
        return f"minimum maps chemistries ({', '.join(CHEMISTRIES)}) to percentages (0-100)"
    return None


# --- IRMA -------------------------------------------------------------------------------------


def _rank(level: str | None) -> int:
    return IRMA_LEVELS.index(level) if level in IRMA_LEVELS else -1


def irma_level(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    minimum: Mapping[str, str] = params.get("minimum", {})
    below, checked = [], 0
    for symbol, element in sorted((data.get("elements") or {}).items()):
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
    if not checked:
        return NOT_EVALUATED, "no mined source of " + ", ".join(sorted(minimum)) + \
            " in the bundle", evidence
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


CARBON_CHECKS = ("declaration", "class", "maximum")


def carbon_footprint(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    """Art. 7: `check = "declaration"` (7(1): a declared footprint), `"class"` (7(2): a
    performance class, no worse than `maximum_class` when set) or `"maximum"` (7(3): at most
    `maximum`; without one, nothing to compare with: NOT_EVALUATED "no maximum adopted")."""
    cf = data.get("carbon_footprint")
    check = params.get("check", "declaration")
    maximum, worst = params.get("maximum"), params.get("maximum_class")
    evidence = {"check": check, "declared": cf, "maximum": maximum, "maximum_class": worst}
    if check == "maximum" and maximum is None:
        return NOT_EVALUATED, "no maximum adopted: the delegated act setting the maximum " \
            "life-cycle carbon footprint is not adopted (a policy of your own may set " \
            "`maximum`)", evidence
    if not cf:
        status = FAIL if check == "declaration" else NOT_EVALUATED
        return status, "no CarbonFootprintCredential for the battery or its model in the " \
            "bundle", evidence
    if check == "declaration":
        if cf.get("value") is None:
            return FAIL, "the CarbonFootprintCredential declares no value", evidence
        return PASS, f"declared {cf['value']} {cf.get('unit')}", evidence
    if check == "class":
        if not cf.get("class"):
            return FAIL, "the declaration gives no carbon footprint performance class", evidence
        if worst is not None and cf["class"] > worst:
            return FAIL, f"class {cf['class']} worse than {worst}", evidence
        return PASS, f"performance class {cf['class']}" + (
            f" (no worse than {worst})" if worst else ""), evidence
    if cf.get("value") is None:
        return NOT_EVALUATED, "the declaration gives no value to compare", evidence
    if cf["value"] > maximum:
        return FAIL, f"carbon footprint {cf['value']} {cf.get('unit')} above {maximum} (the " \
            "maximum of this policy)", evidence
    return PASS, f"declared {cf['value']} {cf.get('unit')}, at most {maximum} (the maximum " \
        "of this policy)", evidence


# --- US IRA critical minerals -----------------------------------------------------------------


def _value_added_share(source: Mapping[str, Any], fta: set[str],
                       split: Mapping[str, float]) -> float:
    """The share of a mined source's value added by extraction and processing that happened in
    the US or an FTA country (26 CFR 1.30D-3, 50 % value added test): extraction and
    processing carry `split` (percent), processing split evenly over its countries; a source
    never processed owes all its value added to its extraction."""
    places = list(source.get("processed_in") or ())
    extraction = 1.0 if not places else float(split.get("extraction", 50)) / 100
    share = extraction if source["country"] in fta else 0.0
    if places:
        processing = 1.0 - extraction
        share += processing * sum(1 for p in places if p in fta) / len(places)
    return share


def ira_critical_minerals(params: Mapping[str, Any], data: Mapping[str, Any], when: date
                          ) -> Result:
    prices: Mapping[str, float] = params.get("prices", {})
    fta = set(params.get("fta_countries", ()))
    recycling = set(params.get("recycling_countries", ("US", "CA", "MX")))
    feoc = set(params.get("foreign_entities_of_concern", ()))
    feoc_countries = set(params.get("feoc_countries", ()))
    split = params.get("value_added", {"extraction": 50, "processing": 50})
    threshold = float(params.get("value_added_minimum", 50)) / 100
    total = qualifying = 0.0
    by_element = {}
    entities: list[dict[str, Any]] = []
    for symbol, element in sorted((data.get("elements") or {}).items()):
        price = prices.get(symbol)
        if price is None:
            continue
        value = ok = 0.0
        for source in element["sources"]:
            worth = source["mass_kg"] * price
            value += worth
            if source["recycled"]:
                ok += worth if source["country"] in recycling else 0.0
            elif _value_added_share(source, fta, split) >= threshold - 1e-9:
                ok += worth
            named = {source["operator"], source.get("operator_name"),
                     *source.get("processors", ()), *source.get("processor_names", ())} & feoc
            located = ({source["country"]} if not source["recycled"] else set()) | set(
                source.get("processed_in", ()))
            located &= feoc_countries
            if named or located:
                entities.append({"element": symbol, "site": source["site"],
                                 "entities": sorted(n for n in named if n),
                                 "countries": sorted(located)})
        total, qualifying = total + value, qualifying + ok
        by_element[symbol] = {"value": round(value, 2), "qualifying": round(ok, 2)}
    minimum = float(params.get("minimum", 0))
    if total <= 0:
        return NOT_EVALUATED, "no priced critical mineral in the battery", {"prices": prices}
    share = qualifying / total
    evidence = {"share": round(share, 6), "minimum": minimum / 100, "by_element": by_element,
                "value_added": dict(split), "foreign_entities": entities}
    feoc_from = params.get("feoc_from")
    if entities and (feoc_from is None or when >= feoc_from):
        return FAIL, "critical minerals from a foreign entity of concern: " + "; ".join(
            f"{e['element']} via " + ", ".join([*e["entities"], *(
                f"extraction or processing in {c}" for c in e["countries"])])
            for e in entities), evidence
    if share * 100 < minimum - 1e-9:
        return FAIL, (f"{_pct(share)} of critical-mineral value qualifies (at least "
                      f"{threshold * 100:g} % of its value added in the US or FTA countries, "
                      f"or recycled in North America), below {minimum} %"), evidence
    return PASS, f"{_pct(share)} of critical-mineral value qualifies (minimum {minimum} %)", \
        evidence


def _ira_validate(params: Mapping[str, Any]) -> str | None:
    prices = params.get("prices", {})
    if not isinstance(prices, dict) or any(
            not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0
            for v in prices.values()):
        return "prices map symbols to non-negative prices per kg"
    split = params.get("value_added", {"extraction": 50, "processing": 50})
    if not isinstance(split, dict) or set(split) != {"extraction", "processing"} or not all(
            _percent(v) for v in split.values()) or abs(sum(split.values()) - 100) > 1e-9:
        return "value_added maps extraction and processing to percentages adding up to 100"
    for key in ("fta_countries", "recycling_countries", "foreign_entities_of_concern",
                "feoc_countries"):
        if key in params and not (isinstance(params[key], list) and all(
                isinstance(x, str) for x in params[key])):
            return f"{key} is a list of strings"
    return None


# --- artisanal sources, second life, waste shipments -----------------------------------------


def artisanal_sources(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    """Every high-risk artisanal source is resolved by a credential from an accredited issuer
    that names its site (provenance `risk_resolution`), never by the miner's own words."""
    risky = set(params.get("high_risk_countries", ()))
    elements = data.get("elements") or {}
    if not elements:
        return NOT_EVALUATED, "the bundle shows no element of the battery and its sources", {}
    accredited = bool(data.get("issuers_accredited"))
    found = []
    for symbol, element in sorted(elements.items()):
        for source in element["sources"]:
            if source["artisanal"] and (source.get("high_risk") or source["country"] in risky):
                found.append({"element": symbol, "site": source["site"],
                              "site_name": source["site_name"], "share": source["share"],
                              "resolution": source.get("risk_resolution"),
                              "declared_status": source.get("declared_status")})
    unresolved = [f for f in found if not f["resolution"]]
    evidence = {"high_risk_artisanal": found, "artisanal_share": data.get("artisanal_share"),
                "issuers_accredited": accredited}
    if unresolved:
        return FAIL, "unresolved high-risk artisanal source (no credential naming the site): " \
            + "; ".join(f"{u['element']} {_pct(u['share'])} from {u['site_name']}"
                        for u in unresolved), evidence
    if found and not accredited:
        return NOT_EVALUATED, f"{len(found)} high-risk artisanal source(s) with a credential " \
            "naming the site, but no governance root in the trust file: the issuers' " \
            "accreditation was not checked", evidence
    if found:
        return PASS, f"{len(found)} high-risk artisanal source(s), each resolved by a " \
            "credential of an accredited issuer naming the site", evidence
    return PASS, "no high-risk artisanal source among the battery's sources", evidence


def due_diligence(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    """Art. 47-52: a DueDiligenceCredential issued to the economic operator that placed the
    battery on the market (the operator of the site of its placing on the market), in the
    battery's bundle."""
    operator = data.get("placed_on_market_by")
    found = list(data.get("due_diligence") or ())
    evidence = {"operator": operator, "due_diligence": found}
    if not operator:
        return NOT_EVALUATED, "no placing on the market in the bundle: the economic operator " \
            "is not known", evidence
    mine = [d for d in found if d.get("issued_to") == operator]
    if not mine:
        return FAIL, f"no DueDiligenceCredential issued to {operator} (who placed the battery " \
            f"on the market) in the bundle ({len(found)} for others)", evidence
    return PASS, f"DueDiligenceCredential {mine[-1]['credential']} issued to {operator}", \
        evidence


def second_life(params: Mapping[str, Any], data: Mapping[str, Any], when: date) -> Result:
    reuse, repurpose = float(params.get("reuse_above", 85)), float(
        params.get("repurpose_above", 65))
    downgrade = bool(params.get("allow_downgrade", True))
    decisions = list(data.get("second_life") or ())
    if not decisions:
        return NOT_EVALUATED, "no second-life routing decision in the history", {}
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
    if not legs:
        return NOT_EVALUATED, "no shipment of a declared waste battery in the history", evidence
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


# Art. 77(1): a passport for each LMT battery, industrial battery over 2 kWh and EV battery.
PASSPORT_CATEGORIES = ("ev", "lmt")
PASSPORT_INDUSTRIAL = ("industrial", "stationary")  # stationary storage is industrial
PASSPORT_INDUSTRIAL_KWH = 2.0


def _passport_scope(data: Mapping[str, Any]) -> tuple[bool | None, str]:
    model = data.get("model") or {}
    category, energy = model.get("category"), model.get("rated_energy_kwh")
    if not category:
        return None, "no battery category recorded (passport or production event)"
    if category in PASSPORT_CATEGORIES:
        return True, f"category {category}"
    if category in PASSPORT_INDUSTRIAL:
        if energy is None:
            return None, f"category {category} without a rated energy"
        return energy > PASSPORT_INDUSTRIAL_KWH, f"category {category}, {energy} kWh"
    return False, f"category {category}"


def passport_completeness(params: Mapping[str, Any], data: Mapping[str, Any], when: date
                          ) -> Result:
    """The `required` fields of the chosen sections (Battery Pass 1.2 and the regulation's
    mandatory attributes), each given by a credential or by the ledger (the table's aliases).
    A battery in scope (EV, LMT, industrial over 2 kWh) without a passport credential FAILs
    (NOT_EVALUATED with `require_passport = false`); out of scope or unknown scope: no
    judgement."""
    table = batterypass_fields()
    sections = list(params["sections"])
    ignore = set(params.get("ignore", ()))
    available = set(data.get("passport_fields") or ())
    in_scope, why = _passport_scope(data)
    evidence: dict[str, Any] = {"sections": sections, "ignored": sorted(ignore),
                                "credential": data.get("passport_credential"),
                                "scope": why, "in_scope": in_scope}
    if in_scope is False:
        return NOT_EVALUATED, f"no passport obligation for this battery ({why})", evidence
    if not data.get("passport_credential"):
        if in_scope is None:
            return NOT_EVALUATED, f"no BatteryPassportCredential and the scope is unknown: " \
                f"{why}", evidence
        status = FAIL if params.get("require_passport", True) else NOT_EVALUATED
        return status, f"no BatteryPassportCredential for the battery in the bundle ({why})", \
            evidence
    missing = {}
    for section in sections:
        gaps = [f for f in table["sections"][section] if f not in ignore and not (
            set(table["aliases"].get(f, [f])) & available)]
        if gaps:
            missing[section] = gaps
    evidence["missing"] = missing
    if missing:
        return FAIL, "passport incomplete, missing: " + "; ".join(
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
                                     None if p.get("basis", "ledger") in (
                                         "ledger", "claimed", "computed", "both")
                                     else "basis is ledger, claimed, computed or both")),
    "material-recovery": RuleType(frozenset({"minimum"}), material_recovery,
                                  _needs_percent_map("minimum")),
    "recycling-efficiency": RuleType(frozenset({"minimum"}), recycling_efficiency,
                                     _chemistry_map),
    "irma-level": RuleType(frozenset({"minimum"}), irma_level, _irma_validate),
    "carbon-footprint": RuleType(
        frozenset({"check", "maximum", "maximum_class"}), carbon_footprint,
        _checks(maximum=_number, check=lambda v: v in CARBON_CHECKS,
                maximum_class=lambda v: isinstance(v, str) and v in tuple("ABCDEFG")),
        lambda p: "no maximum adopted" if p.get("check") == "maximum" and p.get(
            "maximum") is None else None),
    "ira-critical-minerals": RuleType(
        frozenset({"minimum", "prices", "fta_countries", "recycling_countries",
                   "foreign_entities_of_concern", "feoc_countries", "feoc_from",
                   "value_added", "value_added_minimum"}),
        ira_critical_minerals,
        lambda p: _ira_validate(p) or _checks(
            minimum=_percent, value_added_minimum=_percent,
            feoc_from=lambda v: type(v) is date)(p)),
    "artisanal-sources": RuleType(frozenset({"high_risk_countries"}), artisanal_sources,
                                  _checks(high_risk_countries=_strings)),
    "due-diligence": RuleType(frozenset(), due_diligence),
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
