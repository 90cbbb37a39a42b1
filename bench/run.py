"""Run every benchmark module (`bench/bench_*.py`), print a table, write bench/results.json.

Each module exposes `run() -> list[dict]` returning rows
`{"metric", "value", "unit", "limit_metric", "limit_value", "ratio"}` (ratio = value/limit,
or None where the units differ and a ratio means nothing) and may add `"peak_memory_mb"`.
`python -m bench.run [NAME...]` runs only the named modules; each row records its module as
`"group"` (`python -m bench.docs_tables` refreshes docs/performance.md from them).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
RESULTS = HERE / "results.json"


def row(
    metric: str,
    value: float,
    unit: str,
    limit_metric: str,
    limit_value: float,
    ratio: float | None = None,
    **extra: object,
) -> dict[str, object]:
    """One result row; the ratio defaults to value / limit_value."""
    if ratio is None and limit_value:
        ratio = value / limit_value
    return {
        "metric": metric,
        "value": round(value, 3),
        "unit": unit,
        "limit_metric": limit_metric,
        "limit_value": round(limit_value, 3),
        "ratio": None if ratio is None else round(ratio, 4),
        **extra,
    }


def main(argv: list[str]) -> int:
    known = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    console = Console()
    if any(a in ("-h", "--help") for a in argv):
        console.print("usage: python -m bench.run [NAME...]   (names: " + ", ".join(known) + ")",
                      markup=False)
        return 0
    unknown = [a for a in argv if a not in known]
    if unknown:
        console.print(f"bench.run: no benchmark named {', '.join(unknown)} (names: "
                      + ", ".join(known) + ")", markup=False)
        return 2
    names = argv or known
    rows: list[dict[str, object]] = []
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        start = time.perf_counter()
        console.print(f"[bold]bench {name}[/] ...")
        rows.extend({**r, "group": name} for r in module.run())
        console.print(f"  done in {time.perf_counter() - start:.1f} s")
    if argv and RESULTS.exists():  # a partial run keeps the other modules' rows
        kept = [r for r in json.loads(RESULTS.read_text()) if r["metric"] not in
                {x["metric"] for x in rows}]
        rows = kept + rows
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    table = Table("metric", "value", "unit", "limit", "limit value", "ratio", "peak MB")
    for r in rows:
        table.add_row(
            str(r["metric"]), f"{r['value']:,}", str(r["unit"]), str(r["limit_metric"]),
            f"{r['limit_value']:,}", "" if r["ratio"] is None else f"{r['ratio']:.3f}",
            str(r.get("peak_memory_mb", "")),
        )
    console.print(table)
    console.print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
