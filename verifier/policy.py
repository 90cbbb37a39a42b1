"""Policy files: dated, sourced rules judged against a battery's provenance.

A policy is a TOML file (`version = 1`, docs/policy.md) of `[[rule]]` tables. Every rule has an
id, a title, a jurisdiction, a source (the legal reference) and effective dates, and is judged
at a *policy date* (by default the battery's placing on the market) to PASS, FAIL or
NOT_EVALUATED, with the evidence it used. `all-of` / `any-of` rules compose others (an empty
`all-of` fails). The rule types live in policy_rules.py. Unknown keys or rule types are a
PolicyFormatError (exit 2): a misspelt threshold must not silently pass.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from batterytrace.credentials.errors import InputError

from .policy_rules import RULE_TYPES
from .provenance import Provenance, parse_day
from .report import literal

POLICY_VERSION = 1
PASS, FAIL, NOT_EVALUATED = "PASS", "FAIL", "NOT_EVALUATED"
COMBINATORS = ("all-of", "any-of")
_COMMON = frozenset({"id", "type", "title", "jurisdiction", "source", "effective_from",
                     "effective_until", "description", "tier", "rules", "delegated_act",
                     "months_after_delegated_act"})
_TIER_COMMON = frozenset({"from"})


class PolicyFormatError(InputError):
    """The policy file is not a valid version 1 policy (exit 2)."""

    code = "POLICY_FORMAT"
    title = "Malformed policy file"


@dataclass(frozen=True)
class Rule:
    """One rule: its identity and dates, its parameters, its tiers and (combinators) parts."""

    id: str
    type: str
    title: str
    jurisdiction: str
    source: str
    effective_from: date | None
    effective_until: date | None
    params: Mapping[str, Any] = field(default_factory=dict)
    tiers: tuple[tuple[date, Mapping[str, Any]], ...] = ()
    rules: tuple[Rule, ...] = ()
    description: str = ""
    # A date that depends on a delegated act: "from effective_from or N months after the act
    # enters into force, whichever is later". `delegated_act` is that entry into force (a
    # setting of the policy file; absent while the act is not adopted).
    delegated_act: date | None = None
    months_after_delegated_act: int | None = None


@dataclass(frozen=True)
class Policy:
    name: str
    title: str
    rules: tuple[Rule, ...]
    path: str = ""


@dataclass(frozen=True)
class RuleOutcome:
    rule_id: str
    title: str
    status: str
    reason: str
    evidence: Mapping[str, Any]
    jurisdiction: str
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "title": self.title, "status": self.status,
                "reason": self.reason, "evidence": dict(self.evidence),
                "jurisdiction": self.jurisdiction, "source": self.source}


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    policy_date: date | None
    outcomes: tuple[RuleOutcome, ...]
    # Where the date came from ("--policy-date" or "ledger receipt of the placing on the
    # market") and both days of the placing on the market: the ledger's and its signer's.
    date_basis: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(o.status == FAIL for o in self.outcomes)

    @property
    def not_evaluated(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == NOT_EVALUATED)

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy,
                "policy_date": self.policy_date.isoformat() if self.policy_date else None,
                "policy_date_basis": dict(self.date_basis),
                "failed": self.failed, "outcomes": [o.to_json() for o in self.outcomes]}

    def render(self, console: Any) -> None:
        """Print the outcomes with rich (imported here)."""
        from rich.table import Table

        when = self.policy_date.isoformat() if self.policy_date else "no date"
        basis = self.date_basis
        console.print(f"[bold]Policy[/] {literal(self.policy)} at {when} "
                      f"({basis.get('source', 'no date')}; placed on the market: ledger "
                      f"receipt {basis.get('placed_on_market') or 'none'}, signer's time "
                      f"{basis.get('placed_on_market_event_time') or 'none'})", highlight=False)
        table = Table("rule", "status", "reason", "source")
        colour = {PASS: "green", FAIL: "red", NOT_EVALUATED: "yellow"}
        for o in self.outcomes:
            # reasons name sites, parties and credential ids from the bundle: printed literally
            table.add_row(literal(o.rule_id), f"[{colour[o.status]}]{o.status}[/]",
                          literal(o.reason), literal(o.source))
        console.print(table)


# --- loading --------------------------------------------------------------------------------


def policy_names() -> list[str]:
    """Names of the policies shipped in verifier/data/policies/."""
    folder = resources.files(__package__).joinpath("data/policies")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_policy(path: str | Path) -> Policy:
    """Load a policy file, or a shipped policy by name (`eu-2023-1542`)."""
    text: str | None = None
    candidate = Path(path)
    if candidate.is_file():
        text = candidate.read_text(encoding="utf-8")
    elif str(path) in policy_names():
        text = resources.files(__package__).joinpath(
            f"data/policies/{path}.toml").read_text(encoding="utf-8")
    if text is None:
        raise PolicyFormatError(f"no policy file {path} (shipped: {', '.join(policy_names())})",
                                path=str(path))
    return parse_policy(text, str(path))


def parse_policy(text: str, where: str = "policy") -> Policy:
    """Parse the TOML text of a policy, checking every key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFormatError(f"{where}: not TOML: {exc}") from None
    if data.get("version") != POLICY_VERSION:
        raise PolicyFormatError(f"{where}: unsupported policy version {data.get('version')!r} "
                                f"(expected version = {POLICY_VERSION})")
    extra = set(data) - {"version", "name", "title", "rule"}
    if extra:
        raise PolicyFormatError(f"{where}: unknown keys {', '.join(sorted(extra))}")
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise PolicyFormatError(f"{where}: rules are [[rule]] tables")
    seen: set[str] = set()
    rules = tuple(_rule(r, f"{where} rule {i + 1}", None, seen) for i, r in enumerate(raw_rules))
    return Policy(str(data.get("name", Path(where).stem)), str(data.get("title", "")), rules,
                  where)


def _date(value: Any, where: str) -> date | None:
    # a TOML date-time is a datetime, a date subclass that cannot be compared with a date
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    raise PolicyFormatError(f"{where} must be a TOML date (YYYY-MM-DD)")


def _rule(raw: Any, where: str, parent: Rule | None, seen: set[str]) -> Rule:
    if not isinstance(raw, dict):
        raise PolicyFormatError(f"{where} must be a table")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        raise PolicyFormatError(f"{where}: id is required")
    where = f"{where.rsplit(' rule ', 1)[0]} rule {rid}"
    if rid in seen:
        raise PolicyFormatError(f"{where}: duplicate rule id")
    seen.add(rid)
    kind = raw.get("type")
    if kind not in RULE_TYPES and kind not in COMBINATORS:
        raise PolicyFormatError(f"{where}: unknown rule type {kind!r} (known: "
                                f"{', '.join([*COMBINATORS, *RULE_TYPES])})", rule=rid)
    allowed = RULE_TYPES[kind].params if kind in RULE_TYPES else frozenset()
    extra = set(raw) - _COMMON - allowed
    if extra:
        raise PolicyFormatError(f"{where}: unknown keys {', '.join(sorted(extra))} for type {kind}",
                                rule=rid)
    inherited = {k: getattr(parent, k) if parent else None for k in (
        "jurisdiction", "source", "effective_from", "effective_until")}
    values = {k: raw.get(k, inherited[k]) for k in inherited}
    for key in ("title", "jurisdiction", "source"):
        value = raw.get(key) if key == "title" else values[key]
        if not isinstance(value, str) or not value:
            raise PolicyFormatError(f"{where}: {key} is required", rule=rid)
    start = _date(values["effective_from"], f"{where}.effective_from")
    if start is None and kind not in COMBINATORS:
        raise PolicyFormatError(f"{where}: effective_from is required (every rule is dated)")
    tiers: list[tuple[date, Mapping[str, Any]]] = []
    for i, tier in enumerate(raw.get("tier", [])):
        if not isinstance(tier, dict) or "from" not in tier:
            raise PolicyFormatError(f"{where}: tier {i + 1} needs `from`")
        bad = set(tier) - _TIER_COMMON - allowed
        if bad:
            raise PolicyFormatError(f"{where}: tier {i + 1}: unknown keys {', '.join(sorted(bad))}")
        tier_from = _date(tier["from"], f"{where}.tier.from")
        if tier_from is None:  # TOML has no null: unreachable from a policy file
            raise PolicyFormatError(f"{where}: tier {i + 1} needs `from`")
        tiers.append((tier_from, {k: v for k, v in tier.items() if k != "from"}))
    params = {k: v for k, v in raw.items() if k in allowed}
    months = raw.get("months_after_delegated_act")
    if months is not None and (type(months) is not int or months < 0):
        raise PolicyFormatError(f"{where}: months_after_delegated_act is a whole number")
    act = _date(raw.get("delegated_act"), f"{where}.delegated_act")
    if act is not None and months is None:
        raise PolicyFormatError(f"{where}: delegated_act needs months_after_delegated_act")
    rule = Rule(rid, kind, raw["title"], str(values["jurisdiction"]), str(values["source"]), start,
                _date(values["effective_until"], f"{where}.effective_until"), params,
                tuple(sorted(tiers, key=lambda t: t[0])), (), str(raw.get("description", "")),
                act, months)
    if kind in RULE_TYPES:  # every tier, as it will be merged at its dates
        for merged in ([{**params, **t[1]} for t in tiers] or [params]):
            problem = RULE_TYPES[kind].validate(merged)
            if problem:
                raise PolicyFormatError(f"{where}: {problem}")
    if kind in COMBINATORS:
        parts = raw.get("rules", [])
        if not isinstance(parts, list):
            raise PolicyFormatError(f"{where}: rules of {kind} are a list of rule tables")
        rule = Rule(**{**rule.__dict__, "rules": tuple(
            _rule(p, f"{where} rule {i + 1}", rule, seen) for i, p in enumerate(parts))})
    elif "rules" in raw:
        raise PolicyFormatError(f"{where}: only all-of / any-of have rules")
    return rule


# --- evaluation -----------------------------------------------------------------------------


def evaluate_policy(policy: Policy, provenance: Provenance | Mapping[str, Any], *,
                    policy_date: date | None = None, issuers_accredited: bool = False
                    ) -> PolicyResult:
    """Judge every rule of `policy` at `policy_date` (default: the day the ledger received the
    battery's placing on the market, never the time its signer wrote; with neither, dated
    rules are NOT_EVALUATED). `issuers_accredited`: the bundle's credentials were checked
    against governance roots (an accreditation path for each), which some rules need."""
    data = provenance.to_json() if isinstance(provenance, Provenance) else dict(provenance)
    data["issuers_accredited"] = issuers_accredited
    when = policy_date or parse_day(data.get("placed_on_market"))
    basis = {"source": "--policy-date" if policy_date else
             "ledger receipt of the placing on the market" if when else "no date",
             "placed_on_market": data.get("placed_on_market"),
             "placed_on_market_event_time": data.get("placed_on_market_event_time")}
    outcomes = tuple(evaluate_rule(rule, data, when) for rule in policy.rules)
    return PolicyResult(policy.name, when, outcomes, basis)


def _outcome(rule: Rule, status: str, reason: str, evidence: Mapping[str, Any] | None = None
             ) -> RuleOutcome:
    return RuleOutcome(rule.id, rule.title, status, reason, dict(evidence or {}),
                       rule.jurisdiction, rule.source)


def evaluate_rule(rule: Rule, data: Mapping[str, Any], when: date | None) -> RuleOutcome:
    """One rule's outcome (combinators evaluate their parts first)."""
    if rule.type in COMBINATORS:
        return _combine(rule, [evaluate_rule(r, data, when) for r in rule.rules])
    if when is None:
        return _outcome(rule, NOT_EVALUATED, "no policy date: the placing on the market is not "
                        "recorded (give --policy-date)")
    if rule.effective_from and when < rule.effective_from:
        return _outcome(rule, NOT_EVALUATED, f"not in force on {when} (from "
                        f"{rule.effective_from})", {"policy_date": when.isoformat()})
    if rule.months_after_delegated_act is not None:
        if rule.delegated_act is None:
            pending = RULE_TYPES[rule.type].unadopted(rule.params) if \
                rule.type in RULE_TYPES else None
            return _outcome(rule, NOT_EVALUATED, (f"{pending}; " if pending else "") +
                            f"applies from {rule.effective_from} or "
                            f"{rule.months_after_delegated_act} months after the delegated act "
                            "enters into force, whichever is later: no delegated act adopted "
                            "(set `delegated_act` in the policy file)",
                            {"policy_date": when.isoformat(), "delegated_act": None})
        start = _add_months(rule.delegated_act, rule.months_after_delegated_act)
        if when < start:
            return _outcome(rule, NOT_EVALUATED, f"not in force on {when} (from {start}, "
                            f"{rule.months_after_delegated_act} months after the delegated "
                            f"act of {rule.delegated_act})", {"policy_date": when.isoformat()})
    if rule.effective_until and when > rule.effective_until:
        return _outcome(rule, NOT_EVALUATED, f"no longer in force on {when} (until "
                        f"{rule.effective_until})", {"policy_date": when.isoformat()})
    params = dict(rule.params)
    if rule.tiers:
        tier = [t for t in rule.tiers if t[0] <= when]
        if not tier:
            return _outcome(rule, NOT_EVALUATED, f"no tier in force on {when} (first from "
                            f"{rule.tiers[0][0]})")
        params.update(tier[-1][1])
        params["tier_from"] = tier[-1][0]
    status, reason, evidence = RULE_TYPES[rule.type].check(params, data, when)
    return _outcome(rule, status, reason, evidence)


def _add_months(day: date, months: int) -> date:
    """The same day `months` later (the last day of a shorter month)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _combine(rule: Rule, parts: Sequence[RuleOutcome]) -> RuleOutcome:
    statuses = [p.status for p in parts]
    evidence = {"rules": [p.to_json() for p in parts]}
    if not parts:
        return _outcome(rule, FAIL, f"an empty {rule.type} never holds", evidence)
    if rule.type == "all-of":
        status = FAIL if FAIL in statuses else NOT_EVALUATED if NOT_EVALUATED in statuses \
            else PASS
    else:
        status = PASS if PASS in statuses else NOT_EVALUATED if NOT_EVALUATED in statuses \
            else FAIL
    named = [f"{p.rule_id} {p.status}" for p in parts]
    return _outcome(rule, status, f"{rule.type}: " + ", ".join(named), evidence)


__all__ = ["FAIL", "NOT_EVALUATED", "PASS", "Policy", "PolicyFormatError", "PolicyResult",
           "Rule", "RuleOutcome", "evaluate_policy", "evaluate_rule", "load_policy",
           "parse_policy", "policy_names"]
