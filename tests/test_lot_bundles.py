"""Honest bundles verify: the bundle of every lot and item of the demo, and of generated custody
graphs (merges, splits, cells assembled into packs, packs recycled into lots that feed new
cells), exports and verifies. A lot's closure reaches what the replay needs: its upstream back
to extraction, and downstream through the items its material was assembled into (recycling a
module recycles the subject's cells)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.bundle_export import _events_of, export_bundle
from batterytrace.ledger.custody_graph import CustodyGraph
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.validators import validators_for
from batterytrace.verifier.bundle_verify import verify_bundle
from batterytrace.verifier.trust import TrustConfig, TrustedLedger, load_trust
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    assembly,
    extraction,
    signed_credential,
    standard_registry_docs,
    transformation,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LOTS, ITEMS = "https://id.example.com/lots/", "https://id.example.com/items/"


def _subjects(led: Ledger) -> list[str]:
    graph = CustodyGraph()
    cp, _ = led.latest_checkpoint()
    for entry in led.iter_entries(0, cp.size):
        if entry.kind == "event":
            for event in _events_of(entry.document):
                graph.add(event)
    return sorted(s for s in graph.known if s.startswith((LOTS, ITEMS)))


def _failures(led: Ledger, trust: TrustConfig) -> dict[str, list[str]]:
    failed = {}
    for subject in _subjects(led):
        out = io.BytesIO()
        export_bundle(led, out, **{"lot" if subject.startswith(LOTS) else "item": subject})
        report = verify_bundle(out.getvalue().splitlines(keepends=True), trust)
        if not report.ok:
            failed[subject] = [f"{f.record} {f.code} {f.reason}" for f in report.failures]
    return failed


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("demo") / "home"
    result = subprocess.run([sys.executable, "-m", "batterytrace.api.cli", "demo",
                             "--demo-home", str(home)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return home


def test_every_lot_and_item_bundle_of_the_demo_verifies(demo: Path) -> None:
    led = Ledger.open(demo)
    try:
        subjects = _subjects(led)
        assert sum(s.startswith(LOTS) for s in subjects) == 20
        assert not _failures(led, load_trust(demo / "trust.toml"))
    finally:
        led.close()


# --- generated custody graphs: merges, splits, cells and packs, recycling loops

OPS = st.lists(st.tuples(st.sampled_from(["merge", "split", "cells", "recycle", "mine"]),
                         st.integers(0, 50)), min_size=3, max_size=14)


def _steps(ops: list[tuple[str, int]]) -> list[list[dict]]:
    """Events of one miner at one site: every lot carries Co 0.1 (extractions 0.2), so each
    step keeps (or loses) cobalt and the log is valid whatever the order."""
    site = "kolwezi-mine"
    steps: list[list[dict]] = [[extraction(site, "ore-0", 40, {"Co": 0.2})],
                               [extraction(site, "ore-1", 24, {"Co": 0.2})]]
    lots: list[tuple[str, float]] = [("ore-0", 40), ("ore-1", 24)]
    packs: list[tuple[str, float]] = []
    for n, (op, pick) in enumerate(ops):
        if op == "mine":
            steps.append([extraction(site, f"ore-x{n}", 8 + pick, {"Co": 0.2})])
            lots.append((f"ore-x{n}", 8 + pick))
        elif op == "merge" and len(lots) >= 2:
            a, b = lots.pop(pick % len(lots)), lots.pop(pick % len(lots) if lots else 0)
            steps.append([transformation(site, [a, b], [(f"mix{n}", a[1] + b[1], {"Co": 0.1})],
                                         custody_model="massBalance")])
            lots.append((f"mix{n}", a[1] + b[1]))
        elif op == "split" and lots:
            lot, kg = lots.pop(pick % len(lots))
            steps.append([transformation(site, [(lot, kg)], [(f"s{n}a", kg / 2, {"Co": 0.1}),
                                                             (f"s{n}b", kg / 2, {"Co": 0.1})])])
            lots += [(f"s{n}a", kg / 2), (f"s{n}b", kg / 2)]
        elif op == "cells" and lots:
            lot, kg = lots.pop(pick % len(lots))
            cells = [f"c{n}-{i}" for i in range(2)]
            steps.append([transformation(site, [(lot, kg)], output_items=[
                *[(c, "cell", kg / 2, {"Co": 0.1}) for c in cells], (f"pack{n}", "pack", 1, {})],
                cellModel="WCW-60Ah", chemistry="NMC811")])
            steps.append([assembly(site, f"pack{n}", cells)])
            packs.append((f"pack{n}", kg))
        elif op == "recycle" and packs:
            pack, kg = packs.pop(pick % len(packs))
            steps.append([transformation(site, input_items=[pack],
                                         outputs=[(f"rec{n}", kg / 2, {"Co": 0.1})])])
            lots.append((f"rec{n}", kg / 2))
    return steps


@pytest.fixture(scope="module")
def admin_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated")


@settings(max_examples=4, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(OPS)
def test_every_bundle_of_generated_custody_graphs_verifies(admin_home: Path,
                                                           ops: list[tuple[str, int]]) -> None:
    home = admin_home / f"h{len(list(admin_home.iterdir()))}"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, None, "ledger.example/lots", PUBLIC_URL)
    try:
        led.validators.update(validators_for(led))
        led.append([Submission("registry", d) for d in standard_registry_docs()])
        for events in _steps(ops):
            led.append([Submission("event", signed_credential("miner", events))])
        trust = TrustConfig(ledgers=(TrustedLedger(led.origin, led.verifier.vkey),))
        assert not _failures(led, trust)
    finally:
        led.close()
