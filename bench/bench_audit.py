"""A whole-ledger audit at 10^5 and 10^6 entries: export, bundle verify, ledger verify,
provenance; wall time, rate and peak memory of each, beside the raw limits.

Workload: the custody ledger of bench_bundle (registry entries, then signed extraction
credentials, one ObjectEvent each, through the ledger's appends with every custody check),
built once into bench/.cache/bundle-home-<count> (not timed; at 10^6 it took 29 minutes on
this VM at a load of 8-12, see docs/performance.md). Each step runs in a fresh process, so
its peak RSS (VmHWM) is its own (pool workers forked from it are not counted):

- export: `export_bundle(all_entries=True)` of the whole ledger to a file (what
  `bundle export --all` does: the stored bytes of each entry written as they are, the root
  rebuilt from their leaves), against the raw SHA-256/s (one leaf per entry);
- bundle verify: `verify_bundle` of that file with `default_processes()` processes, against
  the raw Ed25519 verify rate of that many cores (one signature per entry);
- ledger verify: `batterytrace ledger verify --processes <n> --json` (one read of the
  entries feeding the chain, tiles, checkpoints and the replay of every signature and custody
  rule; the derived tables compared), against the same raw verify rate;
- provenance: `trace_provenance` of one lot over the whole bundle (the pass `bundle
  provenance` makes once the bundle verified), against the raw SHA-256/s.

At 10^6 each rate row also carries `rate_ratio_to_first_size`, its rate over the same step's at
10^5 (target >= 0.8); the peak RSS rows have the target 500 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.limits import sha256_per_s, verify_limit
from bench.run import row

CACHE = Path(__file__).parent / ".cache"
SIZES = tuple(int(n) for n in os.environ.get("BENCH_AUDIT_SIZES", "100000,1000000").split(","))

_CHILD = r"""
import json, sys, time
step, home, bundle, trust, processes = sys.argv[1:6]
processes = int(processes)
start = time.perf_counter()
entries = 0
if step == "export":
    from batterytrace.ledger.bundle_export import export_bundle
    from batterytrace.ledger.log import Ledger
    led = Ledger.open(home)
    try:
        with open(bundle, "wb") as out:
            export_bundle(led, out, all_entries=True)
        entries = led.size
    finally:
        led.close()
elif step == "bundle_verify":
    from batterytrace.verifier.bundle import iter_file_lines
    from batterytrace.verifier.bundle_verify import verify_bundle
    from batterytrace.verifier.trust import load_trust
    report = verify_bundle(iter_file_lines(bundle), load_trust(trust), processes=processes)
    if not report.ok:
        raise SystemExit(f"the bench bundle does not verify: {report.failures[:3]}")
    entries = report.entries
elif step == "ledger_verify":
    import contextlib, io
    from batterytrace.api.cli import run
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(["--home", home, "ledger", "verify", "--processes", str(processes), "--json"])
    if code != 0:
        raise SystemExit(f"ledger verify failed: {out.getvalue()[:300]}")
    entries = json.loads(out.getvalue())["size"]
elif step == "provenance":
    import resource
    # Two passes over the file (the path is read twice), keeping only the lot's history:
    # still capped, so that a regression fails here with MemoryError instead of swapping.
    cap = int(sys.argv[6]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from batterytrace.verifier.provenance import trace_provenance
    from bench.bench_custody import event_credential
    lot = event_credential(0, "bundle")["credentialSubject"][0]["quantityList"][0]["productId"]
    trace_provenance(bundle, lot)
    entries = sum(1 for _ in open(bundle, "rb")) - 2
seconds = time.perf_counter() - start
hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
print(json.dumps({"entries": entries, "seconds": seconds, "maxrss_kb": hwm}))
"""

STEPS = tuple(os.environ.get("BENCH_AUDIT_STEPS",
                             "export,bundle_verify,ledger_verify,provenance").split(","))
PROVENANCE_CAP_MB = 3072  # address space of the provenance step (see _CHILD)


class OverCap(Exception):
    """The provenance step did not fit in PROVENANCE_CAP_MB."""


def measure(step: str, home: Path, bundle: Path, trust: Path, processes: int) -> dict[str, float]:
    """One step in a fresh process: {entries, seconds, maxrss_kb}."""
    run = subprocess.run([sys.executable, "-c", _CHILD, step, str(home), str(bundle),
                          str(trust), str(processes), str(PROVENANCE_CAP_MB)],
                         capture_output=True, text=True, check=False,
                         cwd=Path(__file__).parent.parent)
    if run.returncode != 0:
        if "MemoryError" in run.stderr:
            raise OverCap(step)
        raise RuntimeError(f"audit step {step} failed: {run.stderr[-2000:]}")
    result: dict[str, float] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def _ready(home: Path) -> None:
    """Not timed: a cached home built before the newest schema revision gets the one
    `ledger repair --from-entries` the revision asks for (derived rows in an older format,
    e.g. 0006's event fingerprints), once; a stamp names the revision it was repaired for."""
    versions = Path(__file__).parent.parent / "ledger" / "migrations" / "versions"
    head = max(p.stem for p in versions.glob("[0-9]*.py"))
    stamp = home / f"audit-ready-{head}"
    if stamp.exists():
        return
    run = subprocess.run([sys.executable, "-m", "batterytrace.api.cli", "--home", str(home),
                          "ledger", "repair", "--from-entries", "--json"],
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"ledger repair of the cached {home} failed: {run.stderr[-2000:]}")
    stamp.write_text("ok\n")


def _limit(step: str, processes: int) -> tuple[str, float]:
    if step in ("bundle_verify", "ledger_verify"):
        return verify_limit(processes)
    return "sha256_per_s", sha256_per_s.__wrapped__()


def run() -> list[dict[str, object]]:
    from batterytrace.ledger.pool import default_processes

    from bench.bench_bundle import build_bundle, build_home

    processes = default_processes()
    rows: list[dict[str, object]] = []
    rates: dict[tuple[str, int], float] = {}
    for count in SIZES:
        home = build_home(count)  # cached, not timed
        if "ledger_verify" in STEPS:
            _ready(home)
        cached, trust = build_bundle(count)
        # The bundle the export step writes; without that step, the cached export.
        bundle = CACHE / f"audit-{count}.jsonl" if "export" in STEPS else cached
        tag = f"1e{len(str(count)) - 1}"
        total = 0.0
        try:
            for step in STEPS:
                uses = processes if step in ("bundle_verify", "ledger_verify") else 1
                name, before = _limit(step, uses)
                try:
                    result = measure(step, home, bundle, trust, uses)
                except OverCap:
                    rows.append(row(f"audit_{step}_{tag}_peak_rss_mb", PROVENANCE_CAP_MB, "MB",
                                    "target", 500, exceeded=True,
                                    note=f"MemoryError: more than the {PROVENANCE_CAP_MB} MB "
                                         "address space it is given (not measured)"))
                    continue
                after = _limit(step, uses)[1]
                rate = result["entries"] / result["seconds"]
                rates[(step, count)] = rate
                total += result["seconds"]
                extra: dict[str, object] = {}
                if count != SIZES[0] and (step, SIZES[0]) in rates:
                    extra = {"rate_ratio_to_first_size": round(rate / rates[(step, SIZES[0])], 4),
                             "target_rate_ratio": 0.8}
                rows.append(row(f"audit_{step}_{tag}_entries_per_s", rate, "entries/s", name,
                                (before + after) / 2, entries=int(result["entries"]),
                                seconds=round(result["seconds"], 1), processes=uses,
                                peak_memory_mb=round(result["maxrss_kb"] / 1024, 1), **extra))
                rows.append(row(f"audit_{step}_{tag}_peak_rss_mb", result["maxrss_kb"] / 1024,
                                "MB", "target", 500,
                                note="VmHWM (peak RSS) of the process of this step alone"))
        finally:
            if bundle != cached:
                bundle.unlink(missing_ok=True)
        rows.append(row(f"audit_total_{tag}_seconds", total, "s", "target", 900,
                        note="export + bundle verify + ledger verify + provenance, fixture "
                             "cached (not timed)"))
    return rows


if __name__ == "__main__":
    for item in run():
        print(json.dumps(item))
