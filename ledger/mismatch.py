"""A difference between a derived table and its recomputation from the entries.

`ledger verify` (`derived_check.py`, `status_check.py`) reports the first one of each table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REPR = 80


def short(value: Any) -> str:
    """A value as short text for a report: bytes in hex, long text cut."""
    if value is None:
        return "(no row)"
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        text = data.hex()
        return text if len(text) <= REPR else f"{text[:REPR - 12]}... ({len(data)} bytes)"
    text = str(value)
    return text if len(text) <= REPR else f"{text[:REPR - 3]}..."


@dataclass(frozen=True)
class DerivedMismatch:
    """The first difference found in one derived table: `key` names the row."""

    table: str
    key: str
    expected: str
    found: str

    def to_json(self) -> dict[str, str]:
        return {"table": self.table, "key": self.key, "expected": self.expected,
                "found": self.found}

    def __str__(self) -> str:
        return (f"{self.table} row {self.key}: expected {self.expected}, found {self.found}")


__all__ = ["DerivedMismatch", "short"]
