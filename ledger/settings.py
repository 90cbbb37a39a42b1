"""The ledger settings an admin may sign: a closed list, each with its type and range.

A settings entry (`{"type": "LedgerSettings", "settings": {...}}`) changes how later entries are
judged, so an admin key alone must not be able to switch a rule off: a key not listed here, a
value of the wrong type or out of range is refused with a typed error, at append and at every
replay (the engine calls `check_settings_document`). docs/formats.md lists the settings.

Two settings are plausibility bounds of the custody rules (`custody.Limits`):
`maxQuantityKg` lowers the bound on any one quantity or item mass below the fixed ceiling
`MAX_QUANTITY` (no admin entry can raise it above), and `maxEventTimeAheadHours` bounds how far
an event's `eventTime` may lie after the ledger's receipt of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from batterytrace.credentials.errors import InputError

SETTINGS_TYPE = "LedgerSettings"


class SettingsError(InputError):
    code = "SETTINGS_INVALID"
    title = "Ledger settings refused"


@dataclass(frozen=True)
class NumberSetting:
    """A number in [minimum, maximum], given as a JSON number or a decimal string."""

    minimum: Decimal
    maximum: Decimal
    meaning: str

    def check(self, name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise SettingsError(f"setting {name} must be a number, not {type(value).__name__}")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise SettingsError(f"setting {name} must be a number") from None
        if not number.is_finite() or not self.minimum <= number <= self.maximum:
            raise SettingsError(f"setting {name} must be within [{self.minimum}, "
                                f"{self.maximum}] ({self.meaning})", setting=name)


@dataclass(frozen=True)
class WitnessListSetting:
    """The witnesses the ledger asks to cosign its checkpoints: a list of
    {"name", "url", "key"} (key: the witness's C2SP cosigner key, signature type 0x04).
    Verifiers do not take this list on trust: their own trust file names the witnesses."""

    meaning: str

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, list) or len(value) > 32:
            raise SettingsError(f"setting {name} must be a list of at most 32 witnesses")
        names = set()
        for item in value:
            if not isinstance(item, dict) or set(item) != {"name", "url", "key"} or not all(
                    isinstance(v, str) and v for v in item.values()):
                raise SettingsError(f"setting {name}: each witness is {{name, url, key}}")
            if not item["url"].startswith(("http://", "https://")):
                raise SettingsError(f"setting {name}: witness url must be http(s)")
            if not item["key"].startswith(item["name"] + "+") or item["name"] in names:
                raise SettingsError(f"setting {name}: key must be the named witness's, "
                                    "names unique", setting=name)
            names.add(item["name"])


# Plausibility ceiling per UNECE Rec 20 mass unit (the units `events.KG_PER_UNIT` counts): an
# amount above it in one quantity element or item declaration is refused by the custody rules
# (QUANTITY_IMPLAUSIBLE), at append and at every replay. A million tonnes in each unit: far above
# any single lot, shipment or item, far below what would make the arithmetic meaningless. The
# `maxQuantityKg` setting may only lower it.
MAX_QUANTITY: Mapping[str, Decimal] = {
    "KGM": Decimal("1e9"),
    "TNE": Decimal("1e6"),
    "GRM": Decimal("1e12"),
}
# An item declares its mass in any of these units and is kept in kilograms.
MAX_ITEM_KG = MAX_QUANTITY["KGM"]
DEFAULT_EVENT_TIME_AHEAD_HOURS = Decimal(24)

SETTINGS: Mapping[str, NumberSetting | WitnessListSetting] = {
    # A measurement tolerance, not a licence: 5 % covers weighing and assay uncertainty of
    # bulk material; more would let a transformation create metal.
    "massBalanceTolerance": NumberSetting(
        Decimal(0), Decimal("0.05"),
        "the fraction by which a transformation's output of an element may exceed its input"),
    "maxQuantityKg": NumberSetting(
        Decimal(1), MAX_ITEM_KG,
        "the largest quantity or item mass one event may declare, in kg (default 1e9, the "
        "ceiling)"),
    # Clocks drift and time zones get mixed up; a week is the most a signer's clock may run
    # ahead of the ledger's before an event dated in the future is taken as backdating's twin.
    "maxEventTimeAheadHours": NumberSetting(
        Decimal(0), Decimal(168),
        "how many hours an event's eventTime may lie after the ledger received it (default 24)"),
    "witnesses": WitnessListSetting(
        "the witnesses asked to cosign each new checkpoint (C2SP tlog-witness)"),
}


def check_settings_document(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The settings of a LedgerSettings document, each known and in range; raises
    SettingsError naming the first that is not."""
    values = document.get("settings")
    if document.get("type") != SETTINGS_TYPE or not isinstance(values, dict) or not values:
        raise SettingsError(f"a settings document is a {SETTINGS_TYPE} with non-empty `settings`")
    for name, value in values.items():
        setting = SETTINGS.get(name)
        if setting is None:
            known = ", ".join(sorted(SETTINGS))
            raise SettingsError(f"unknown setting {name!r:.80} (known: {known})",
                                setting=str(name)[:80])
        setting.check(name, value)
    return values
