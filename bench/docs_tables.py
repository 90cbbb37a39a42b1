"""Refresh the tables of docs/performance.md from bench/results.json.

Each `<!-- table:NAME -->` marker in the document is followed by a Markdown table of the rows
that bench module NAME (`bench/bench_NAME.py`) wrote in the last run; this rewrites those
tables and leaves the prose around them alone. `python -m bench.docs_tables`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from bench.run import RESULTS

DOC = Path(__file__).parent.parent / "docs" / "performance.md"
HEADER = ("| metric | value | unit | limit | limit value | ratio | peak MB |\n"
          "|---|---:|---|---|---:|---:|---:|\n")
_MARKER = re.compile(r"<!-- table:(\w+) -->\n")


def number(value: float | int | None) -> str:
    """Thousands separators from 100 up, three significant digits below."""
    if value is None or value == "":
        return ""
    if abs(value) >= 100:
        return f"{round(value):,}"
    return f"{value:.3g}"


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        f"| `{r['metric']}` | {number(r['value'])} | {r['unit']} | "
        + (f"`{r['limit_metric']}`" if r["limit_metric"] not in ("", "none") else "")
        + f" | {number(r['limit_value']) if r['limit_metric'] != 'none' else ''} | "
        + ("" if r["ratio"] is None else f"{r['ratio']:.3f}")
        + f" | {number(r.get('peak_memory_mb'))} |"
        for r in rows
    ]
    return HEADER + "\n".join(lines) + "\n"


def refresh(text: str, rows: list[dict[str, object]]) -> str:
    """`text` with every marked table replaced by its module's rows (kept when none)."""
    out, pos = [], 0
    for match in _MARKER.finditer(text):
        start = match.end()
        end = start
        while text.startswith("|", end):  # the old table: consecutive lines starting "|"
            end = text.index("\n", end) + 1
        group = [r for r in rows if r.get("group") == match.group(1)]
        out.append(text[pos:start] + (table(group) if group else text[start:end]))
        pos = end
    return "".join(out) + text[pos:]


def main() -> int:
    rows = json.loads(RESULTS.read_text())
    DOC.write_text(refresh(DOC.read_text(), rows))
    print(f"refreshed {DOC} from {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
