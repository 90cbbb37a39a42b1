"""Provenance: tracing a battery whose history spans 10,000 ledger entries, and verify + trace.

Workload (built once through a real Ledger with the custody validators, cached in
bench/.cache/provenance-<lots>/): 3,300 cobalt ore lots extracted at an industrial mine and an
artisanal cooperative (4 in 5 industrial), each shipped to a trader and received (3 entries a
lot); the trader commingles them 50 at a time into blends (mass balance), ships the blends to a
refiner who refines them into cobalt sulphate (mass balance), shipped to a cell plant that makes
two cells and a pack, sold and read for state of health. The pack's evidence bundle (every entry
of that history with its inclusion proof) is exported once into the cache.

Measured on the cached bundle: `trace_provenance` (entries/s, best of 3; peak memory with
tracemalloc in a separate run, since tracing allocations slows the pass) beside the raw SHA-256/s,
and `verify_bundle` followed by `trace_provenance` (what `bundle provenance` does) beside the raw
Ed25519 verify/s: each entry carries at least one signature.
"""

from __future__ import annotations

import io
import shutil
import time
import tracemalloc
from pathlib import Path
from typing import Any

from batterytrace.api.demo_builders import STANDARD_PARTICIPANTS, Builders, item_id
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.events import BizStep
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.validators import validators_for
from batterytrace.verifier.bundle_verify import verify_bundle
from batterytrace.verifier.provenance import trace_provenance
from batterytrace.verifier.trust import TrustConfig, TrustedLedger, dump_trust, load_trust

from bench.limits import ed25519_verify_per_s, sha256_per_s
from bench.run import row

CACHE = Path(__file__).parent / ".cache"
ORIGIN = "bench.batterytrace/provenance"
B = Builders("https://ledger.example", "batterytrace-bench-provenance", STANDARD_PARTICIPANTS)
LOTS = 3300  # x 3 entries, plus blends, shipments and the battery's own events: ~10,100
BLEND = 50
PACK = "bench-pack"


def _history() -> list[tuple[str, list[dict[str, Any]]]]:
    """(issuer, events) in log order, one event per entry."""
    steps: list[tuple[str, list[dict[str, Any]]]] = []
    blends: list[tuple[str, float, float]] = []  # lot, kg, cobalt kg
    batch: list[tuple[str, float, float]] = []
    for i in range(LOTS):
        industrial = i % 5 != 4
        issuer, site = ("miner", "kolwezi-mine") if industrial else ("coop", "kambove-asm")
        lot, kg, co = f"ore-{i}", 1000.0, 0.1 + (i % 7) * 0.02
        steps.append((issuer, [B.extraction(site, lot, kg, {"Co": co, "Cu": 0.03},
                                            extractionMethod="industrial" if industrial
                                            else "artisanal")]))
        shipment = B.shipping(site, issuer, "trader", "likasi-depot", [(lot, kg)])
        steps.append((issuer, [shipment]))
        steps.append(("trader", [B.receiving(shipment, "likasi-depot")]))
        batch.append((lot, kg, kg * co))
        if len(batch) == BLEND or i == LOTS - 1:
            name = f"blend-{len(blends)}"
            total, cobalt = sum(b[1] for b in batch), sum(b[2] for b in batch)
            steps.append(("trader", [B.transformation(
                "likasi-depot", [(b[0], b[1]) for b in batch],
                [(name, total, {"Co": cobalt / total})], custody_model="massBalance")]))
            blends.append((name, total, cobalt))
            batch = []
    for name, kg, _ in blends:
        shipment = B.shipping("likasi-depot", "trader", "refiner", "nantong-refinery",
                              [(name, kg)], mode="sea")
        steps += [("trader", [shipment]), ("refiner", [B.receiving(shipment,
                                                                   "nantong-refinery")])]
    cobalt = sum(b[2] for b in blends)
    steps.append(("refiner", [B.transformation(
        "nantong-refinery", [(b[0], b[1]) for b in blends],
        [("coso4", cobalt / 0.2, {"Co": 0.2})], custody_model="massBalance",
        biz_step=BizStep.REFINING)]))
    shipment = B.shipping("nantong-refinery", "refiner", "cellmaker", "wroclaw-plant",
                          [("coso4", 1000)], mode="rail")
    steps += [("refiner", [shipment]), ("cellmaker", [B.receiving(shipment, "wroclaw-plant")])]
    steps.append(("cellmaker", [B.transformation(
        "wroclaw-plant", [("coso4", 100)], output_items=[
            ("bench-c1", "cell", 5, {"Co": 0.02}), ("bench-c2", "cell", 5, {"Co": 0.02}),
            (PACK, "pack", 40, {})], cellModel="BENCH-60Ah", chemistry="NMC811")]))
    steps.append(("cellmaker", [B.assembly("wroclaw-plant", PACK, ["bench-c1", "bench-c2"])]))
    steps.append(("cellmaker", [B.observation("wroclaw-plant", items=[PACK],
                                              biz_step=BizStep.RETAIL_SELLING)]))
    for n, soh in enumerate((97, 93, 90)):  # dated in the past: a ledger refuses events
        # dated more than maxEventTimeAhead after it receives them (EVENT_TIME_AHEAD)
        steps.append(("cellmaker", [B.soh_reading("wroclaw-plant", PACK, soh,
                                                  f"2026-{9 + n:02d}-01T08:00:00Z")]))
    return steps


def build_fixture() -> tuple[Path, Path]:
    """The pack's bundle and the trust file (built once into bench/.cache)."""
    home = CACHE / f"provenance-{LOTS}"
    bundle, trust = home / "bundle.jsonl", home / "trust.toml"
    if (home / "built").exists():
        return bundle, trust
    shutil.rmtree(home, ignore_errors=True)
    (home / "ledger" / "keys").mkdir(parents=True)
    write_key_file(B.admin_key, home / "ledger" / "keys" / "admin.json")
    led = Ledger.init(home / "ledger", None, ORIGIN, B.public_url)
    try:
        led.validators.update(validators_for(led))
        led.checkpoint_every_batch = False
        led.append([Submission("registry", d) for d in B.registry_docs()])
        steps = _history()
        for start in range(0, len(steps), 2000):
            led.append([Submission("event", B.signed_credential(issuer, events))
                        for issuer, events in steps[start:start + 2000]])
        led.sign_checkpoint()
        buf = io.BytesIO()
        export_bundle(led, buf, item=item_id(PACK))
        bundle.write_bytes(buf.getvalue())
        config = TrustConfig(ledgers=(TrustedLedger(led.origin, led.verifier.vkey),))
        trust.write_text(dump_trust(config), encoding="utf-8")
    finally:
        led.close()
    (home / "built").write_text("ok\n")
    return bundle, trust


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run() -> list[dict[str, object]]:
    bundle, trust_file = build_fixture()
    lines = bundle.read_bytes().splitlines(keepends=True)  # read once, not timed
    trust = load_trust(trust_file)
    entries = sum(1 for line in lines if line.startswith(b'{"type":"entry"'))
    trace_s = _best(lambda: trace_provenance(lines), 3)
    tracemalloc.start()
    provenance = trace_provenance(lines)
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    sources = len(provenance["elements"]["Co"]["sources"])
    start = time.perf_counter()
    report = verify_bundle(lines, trust)
    trace_provenance(lines)
    both_s = time.perf_counter() - start
    if not report.ok:  # pragma: no cover - the fixture is built to verify
        raise AssertionError(f"the provenance bench bundle does not verify: {report.failures}")

    sha, verify = sha256_per_s(), ed25519_verify_per_s()
    size_mb = round(bundle.stat().st_size / 2**20, 1)
    return [
        row("provenance_trace_1e4_entries_per_s", entries / trace_s, "entries/s",
            "sha256_per_s", sha, peak_memory_mb=round(peak_mb, 1), entries=entries,
            seconds=round(trace_s, 3), bundle_mb=size_mb, cobalt_sources=sources,
            note="trace_provenance of a verified pack bundle: 3,300 mined lots, mass balance"),
        row("provenance_verify_and_trace_1e4_entries_per_s", entries / both_s, "entries/s",
            "ed25519_verify_per_s", verify, entries=entries, seconds=round(both_s, 3),
            note="verify_bundle then trace_provenance (what `bundle provenance` runs)"),
    ]
