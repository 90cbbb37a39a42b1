"""GB/T 34014-2017 traction battery codes: structure, and the letters checked against what the
code claims to name.

A code is 24 characters (manufacturer 3, product type 1, battery type 1, specification 2,
traceability 7, production date 3, serial 7) or, for a battery in cascade utilisation, 19
(the same without the traceability part, then `R` and the product type after repurposing).
`PATTERN` is the Catena-X TractionBatteryCode regular expression, verbatim
(../shared/domain/samples/china/). The letter tables (`PRODUCT_TYPES`, `BATTERY_TYPES`) are the
standard's code tables as secondary sources reproduce them (docs/events.md, "GB/T 34014 battery
codes"); the standard's text itself is not in this repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PATTERN = (
    r"(^[A-Z0-9]{3}[PMC]{1}[A-GZ]{1}[A-Z0-9]{2}[A-Z0-9]{7}[1-9A-GH-NPR-Y]{1}[1-9A-C]{1}"
    r"[0-9A-GH-NPR-Y]{1}[0-9]{7}$)|(^[A-Z0-9]{3}[PMC]{1}[A-GZ]{1}[A-Z0-9]{2}[1-9A-GH-NPR-Y]{1}"
    r"[1-9A-C]{1}[0-9A-GH-NPR-Y]{1}[0-9]{7}[R]{1}[PMC]{1}$)"
)
CODE = re.compile(PATTERN)
LENGTH, REUSED_LENGTH = 24, 19

# Position 4: the product type (what the code names).
PRODUCT_TYPES = {"P": "pack", "M": "module", "C": "cell"}
# Position 5: the battery type (chemistry).
BATTERY_TYPES = {
    "A": "nickel-metal hydride",
    "B": "lithium iron phosphate",
    "C": "lithium manganese oxide",
    "D": "lithium cobalt oxide",
    "E": "ternary (nickel cobalt manganese or aluminium)",
    "F": "supercapacitor",
    "G": "lithium titanate",
    "Z": "other",
}
# Declared chemistry names (short names first) -> battery type letter. Order matters: a
# ternary name also contains "manganese" or "cobalt".
_CHEMISTRY_LETTERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("lfp", "lifepo4", "iron phosphate"), "B"),
    (("nmc", "ncm", "nca", "ternary", "nickel manganese cobalt", "nickel cobalt"), "E"),
    (("lto", "titanate"), "G"),
    (("lmo", "limn2o4", "manganese oxide"), "C"),
    (("lco", "licoo2", "cobalt oxide"), "D"),
    (("nimh", "ni-mh", "metal hydride"), "A"),
    (("supercapacitor", "super capacitor", "edlc"), "F"),
)


@dataclass(frozen=True)
class BatteryCode:
    """The parts of a GB/T 34014 code."""

    code: str
    manufacturer: str
    product_type: str
    battery_type: str
    specification: str
    traceability: str | None
    production_date: str
    serial: str
    reused_as: str | None  # product type after cascade utilisation (19-character code)


def parse_code(code: str) -> BatteryCode | None:
    """The parts of `code`, or None when it does not match the structure."""
    if not isinstance(code, str) or not CODE.match(code):
        return None
    head = code[:3], code[3], code[4], code[5:7]
    if len(code) == LENGTH:
        return BatteryCode(code, *head, code[7:14], code[14:17], code[17:24], None)
    return BatteryCode(code, *head, None, code[7:10], code[10:17], code[18])


def chemistry_letter(chemistry: str | None) -> str | None:
    """The battery type letter of a declared chemistry (`NMC811` -> E, `LFP` -> B), or None
    when the name is not one the table knows (nothing to check it against)."""
    if not chemistry:
        return None
    name = chemistry.lower()
    for words, letter in _CHEMISTRY_LETTERS:
        if any(word in name for word in words):
            return letter
    return None


def code_problems(code: str, *, chemistry: str | None = None,
                  category: str | None = None) -> list[str]:
    """What is wrong with `code` for a battery of `chemistry` whose item category (cell,
    module, pack) is `category`; empty when nothing is. An unknown chemistry is not checked;
    a category outside cell/module/pack cannot carry a code."""
    parsed = parse_code(code)
    if parsed is None:
        return [f"{code!r} is not a GB/T 34014 code ({LENGTH} characters, or {REUSED_LENGTH} "
                "for cascade utilisation)"]
    problems = []
    if category is not None:
        named = PRODUCT_TYPES[parsed.product_type]
        if category not in PRODUCT_TYPES.values():
            problems.append(f"a {category} carries no GB/T 34014 code (cells, modules and "
                            "packs do)")
        elif named != category:
            problems.append(f"product type {parsed.product_type} ({named}) but the item is a "
                            f"{category}")
    wanted = chemistry_letter(chemistry)
    if wanted is not None and parsed.battery_type != wanted:
        problems.append(f"battery type {parsed.battery_type} "
                        f"({BATTERY_TYPES[parsed.battery_type]}) but the chemistry is "
                        f"{chemistry} ({wanted}: {BATTERY_TYPES[wanted]})")
    return problems


__all__ = ["BATTERY_TYPES", "CODE", "LENGTH", "PATTERN", "PRODUCT_TYPES", "REUSED_LENGTH",
           "BatteryCode", "chemistry_letter", "code_problems", "parse_code"]
