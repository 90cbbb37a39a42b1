"""The two-pass provenance gives, byte for byte, what the one pass that keeps every event gives.

`trace_provenance` reads a one-shot iterator once, keeping every event (the provenance before
issue 23); a list of lines or a file path twice, replaying only the entries the subject's facts
need. Compared on every subject of every bundle the provenance tests build (the commingled
and recycled network with credentials and anchors, the error declarations, the demo), and on
random networks (hypothesis). Also: a bundle that changes between the passes is refused."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from batterytrace.api.demo_builders import item_id as demo_item_id
from batterytrace.api.demo_story import PACK_1, PACK_2
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.events import BizStep, parse_credential
from batterytrace.ledger.log import Ledger
from batterytrace.verifier.bundle import iter_file_lines
from batterytrace.verifier.errors import BundleFormatError, ProvenanceSubjectError
from batterytrace.verifier.provenance import _two_passes as two_passes
from batterytrace.verifier.provenance import trace_provenance
from batterytrace.verifier.provenance_closure import scan_closure
from custody_factory import (
    assembly,
    credential,
    extraction,
    facility_id,
    item_id,
    lot_id,
    observation,
    standard_registry_docs,
    transformation,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_custody_corrections import _bundle as corrected_bundle
from test_custody_corrections import corrected  # noqa: F401 (the fixture)
from test_provenance import _fake_bundle, _with_anchor, bundle, carbon, irma, world  # noqa: F401

KOLWEZI, KAMBOVE = facility_id("kolwezi-mine"), facility_id("kambove-asm")
PACK_1_ID, PACK_2_ID = demo_item_id(PACK_1), demo_item_id(PACK_2)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def _one_pass(lines: list[bytes], subject: str | None) -> bytes | str:
    """The provenance (or the error code) of the pass that keeps every event."""
    try:
        return _canonical(trace_provenance(iter(lines), subject).to_json())
    except ProvenanceSubjectError as error:
        return error.code


def _two_passes(lines: list[bytes], subject: str | None) -> bytes | str:
    """The two passes, whatever the bundle's scope (`trace_provenance` reads an item or lot
    bundle once: it is a closure already)."""
    try:
        return _canonical(two_passes(lambda: iter(lines), subject).to_json())
    except ProvenanceSubjectError as error:
        return error.code


def subjects(lines: list[bytes]) -> list[str]:
    """Every lot and item an event of the bundle names."""
    from batterytrace.ledger.bundle_format import event_subjects

    names: set[str] = set()
    for line in lines:
        record = json.loads(line)
        entry = record.get("entry") or {}
        if record["type"] == "entry" and entry.get("kind") == "event":
            for event in parse_credential(entry["document"], check_schema=False).events:
                names |= event_subjects(event)
    return sorted(names)


def assert_same(lines: list[bytes], names: list[str] | None = None, most: int = 0) -> int:
    """Both ways agree on every subject (at most `most`, spread over the sorted names, when
    given) and on a subject no event names; returns how many subjects were compared."""
    names = subjects(lines) if names is None else names
    if most and len(names) > most:
        names = names[::len(names) // most + 1]
    for subject in [*names, "https://nowhere.example/none"]:
        assert _two_passes(lines, subject) == _one_pass(lines, subject), subject
    return len(names)


def extra_credentials() -> list[dict[str, Any]]:
    """Credentials of every type the facts read, about subjects in and out of each closure."""
    def typed(kind: str, ident: str, subject: dict[str, Any]) -> dict[str, Any]:
        return {"id": ident, "type": ["VerifiableCredential", kind],
                "issuer": {"id": "did:web:issuer.example"}, "credentialSubject": subject}

    return [
        irma(KOLWEZI, "IRMA 75"), irma(KAMBOVE, "IRMA 50", "2021-01-01T00:00:00Z"),
        carbon(item_id("pack-1"), "WCW-60Ah", 65.0), carbon(lot_id("coso4"), "WCW-60Ah", 70.0),
        carbon(lot_id("blend"), "WCW-60Ah", 71.0), carbon(item_id("c3"), "other", 9.0),
        typed("RecycledContentCredential", "urn:rc:c3", {
            "id": item_id("c3"), "backingLots": [lot_id("recovered-co"), lot_id("ore-a")],
            "recycledContent": [{"recycledMaterial": "cobalt", "preConsumerShare": 10,
                                 "postConsumerShare": 5}]}),
        typed("RecycledContentCredential", "urn:rc:pack", {
            "id": item_id("pack-1"), "backingLots": [lot_id("recovered-co")]}),
        typed("MineralOriginCredential", "urn:mo:ore-a", {
            "id": lot_id("ore-a"), "productionType": "artisanal",
            "conflictAffectedHighRiskArea": True}),
        typed("MineralOriginCredential", "urn:mo:ore-c", {"id": lot_id("ore-c")}),
        typed("DueDiligenceCredential", "urn:dd:kambove", {
            "id": KAMBOVE, "issuedToParty": {"id": "did:web:coop"}}),
        typed("DueDiligenceCredential", "urn:dd:elsewhere", {"id": "https://elsewhere"}),
        typed("RecyclingEfficiencyCredential", "urn:re:1", {
            "id": facility_id("fredrikstad-plant"), "recyclingEfficiency": 0.7}),
        typed("BatteryPassportCredential", "urn:bp:pack", {
            "id": item_id("pack-1"), "product": {"name": "Pack One"},
            "batteryCategory": "EV"}),
    ]


def test_every_subject_of_the_network_all_bundle_with_credentials_and_anchors(world):  # noqa: F811
    led = world[0]
    lines = bundle(led, all_entries=True, credentials=extra_credentials())
    assert b"RecycledContentCredential" in b"".join(lines)
    assert assert_same(lines) >= 11  # 8 lots, 3 cells and packs
    for action, ident in (("revocation", "urn:cf:" + item_id("pack-1") + ":WCW-60Ah"),
                          ("suspension", "urn:rc:c3"), ("revocation", "urn:dd:kambove")):
        lines = _with_anchor(lines, action, ident)
    assert_same(lines)


def test_every_subject_of_the_network_item_and_lot_bundles(world):  # noqa: F811
    led = world[0]
    for scope in ({"item": item_id("pack-1")}, {"item": item_id("c3")},
                  {"lot": lot_id("coso4-s")}, {"lot": lot_id("ore-a")}):
        lines = bundle(led, credentials=extra_credentials(), **scope)
        assert_same(lines)
        assert _two_passes(lines, None) == _one_pass(lines, None)  # the bundle's subject


def test_error_declarations(corrected):  # noqa: F811
    led, _ = corrected
    for scope in ({"all_entries": True}, {"item": item_id("brick")}, {"lot": lot_id("conc")}):
        assert_same(corrected_bundle(led, **scope))


def test_a_list_or_a_path_of_an_all_bundle_is_read_twice(world, tmp_path, monkeypatch):  # noqa: F811
    from batterytrace.verifier import provenance

    lines = bundle(world[0], all_entries=True, credentials=extra_credentials())
    path = tmp_path / "all.jsonl"
    path.write_bytes(b"".join(lines))
    scans: list[str | None] = []
    real = provenance.scan_closure
    monkeypatch.setattr(provenance, "scan_closure",
                        lambda lines, subject: scans.append(subject) or real(lines, subject))
    expected = _one_pass(lines, item_id("pack-1"))
    assert _canonical(trace_provenance(lines, item_id("pack-1")).to_json()) == expected
    assert _canonical(trace_provenance(path, item_id("pack-1")).to_json()) == expected
    assert _canonical(trace_provenance(str(path), item_id("pack-1")).to_json()) == expected
    assert scans == [item_id("pack-1")] * 3
    trace_provenance(bundle(world[0], item=item_id("pack-1")))  # a closure: read once
    assert len(scans) == 3


def test_an_all_bundle_without_a_subject_is_refused_alike(world):  # noqa: F811
    lines = bundle(world[0], all_entries=True)
    assert _two_passes(lines, None) == _one_pass(lines, None) == "PROVENANCE_SUBJECT"


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("demo") / "home"
    run = subprocess.run([sys.executable, "-m", "batterytrace.api.cli", "demo", "--demo-home",
                          str(home)], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    return home


def test_the_demo_bundle_and_the_whole_demo_ledger(demo_home: Path):
    pack = demo_home / "bundle.jsonl"
    lines = list(iter_file_lines(str(pack)))
    assert _two_passes(lines, None) == _one_pass(lines, None)  # the pack
    assert assert_same(lines, most=12) >= 12  # of 231 lots and items (time)
    # the path is read twice too
    assert _canonical(trace_provenance(pack).to_json()) == _one_pass(lines, None)
    credentials = [json.loads(line)["credential"] for line in lines
                   if json.loads(line)["type"] == "credential"]
    assert credentials
    ledger = Ledger.open(demo_home)
    try:
        buf = io.BytesIO()
        export_bundle(ledger, buf, all_entries=True, credentials=credentials)
    finally:
        ledger.close()
    lines = buf.getvalue().splitlines(keepends=True)
    assert_same(lines, [*subjects(lines)[::25], PACK_1_ID, PACK_2_ID])


def test_the_second_pass_replays_only_the_subjects_history(world):  # noqa: F811
    lines = bundle(world[0], all_entries=True)
    entries = [i + 1 for i, line in enumerate(lines) if line.startswith(b'{"type":"entry"')]
    scan = scan_closure(lines, lot_id("coso4-s"))
    # ore-c's extraction, its shipment and receipt, and the refining into coso4-s (plus the
    # genesis and registry entries): not pack-1's production, use and recycling
    events = [line for line in scan.replay if b'"kind":"event"' in lines[line - 1]]
    assert len(events) == 4 and scan.named
    assert set(scan.replay) < set(entries)


class _Changing:
    """Lines that differ on their second reading (a file rewritten between the passes)."""

    def __init__(self, first: list[bytes], second: list[bytes]) -> None:
        self.reads = [first, first, second]  # the header, the first pass, the second

    def __iter__(self) -> Any:
        return iter(self.reads.pop(0))


def test_a_bundle_that_changes_between_the_passes_is_refused(world):  # noqa: F811
    lines = bundle(world[0], all_entries=True)
    changed = [line.replace(b'"Co":0.1', b'"Co":0.2') for line in lines]
    assert changed != lines
    with pytest.raises(BundleFormatError) as info:
        trace_provenance(_Changing(lines, changed), item_id("pack-1"))
    assert "changed between the two passes" in str(info.value)


# --- property: random networks of extractions, blends, productions, assemblies, sales,
# disassemblies and recycling, with credentials about random subjects


SITES = ("kolwezi-mine", "kambove-asm")
STEPS = st.sampled_from(["make", "assemble", "disassemble", "sell", "recycle"])


@st.composite
def networks(draw: Any) -> list[tuple[str, dict[str, Any]]]:
    docs: list[tuple[str, dict[str, Any]]] = [("registry", d) for d in standard_registry_docs()]
    lots: list[str] = []
    items: list[str] = []
    for i in range(draw(st.integers(1, 4))):
        site = draw(st.sampled_from(SITES))
        issuer = "miner" if site == "kolwezi-mine" else "coop"
        docs.append(("event", credential(issuer, [extraction(
            site, f"m{i}", draw(st.integers(1, 90)), {"Co": draw(st.integers(1, 9)) / 10},
            extractionMethod=draw(st.sampled_from(["industrial", "artisanal"])))])))
        lots.append(f"m{i}")
    for j, step in enumerate(draw(st.lists(STEPS, max_size=10))):
        site = draw(st.sampled_from(SITES))
        issuer = "miner" if site == "kolwezi-mine" else "coop"
        if step == "make" and lots:
            inputs = draw(st.lists(st.sampled_from(lots), min_size=1, max_size=3, unique=True))
            used = draw(st.lists(st.sampled_from(items), max_size=1)) if items else []
            event = transformation(
                site, [(lot, 1) for lot in inputs], [(f"b{j}", 2, {"Co": 0.2})],
                input_items=used, output_items=[(f"i{j}", "cell", 1, {"Co": 0.1})],
                custody_model=draw(st.sampled_from(["segregated", "massBalance"])),
                model=f"M{j % 2}")
            lots.append(f"b{j}")
            items.append(f"i{j}")
        elif step == "recycle" and items:
            event = transformation(site, input_items=[draw(st.sampled_from(items))],
                                   outputs=[(f"r{j}", 1, {"Co": 0.5})],
                                   biz_step=BizStep.RECYCLING)
            lots.append(f"r{j}")
        elif step in ("assemble", "disassemble") and len(items) >= 2:
            parent, *children = draw(st.lists(st.sampled_from(items), min_size=2, max_size=3,
                                              unique=True))
            event = assembly(site, parent, children,
                             action="add" if step == "assemble" else "delete")
        elif step == "sell" and items:
            event = observation(site, items=[draw(st.sampled_from(items))],
                                biz_step=BizStep.RETAIL_SELLING)
        else:
            continue
        docs.append(("event", credential(issuer, [event])))
    return docs


def _random_credentials(draw: Any, names: list[str]) -> list[dict[str, Any]]:
    out = []
    for n, kind in enumerate(draw(st.lists(st.sampled_from(
            ["CarbonFootprintCredential", "RecycledContentCredential",
             "IRMAAuditCredential", "MineralOriginCredential"]), max_size=6))):
        about = draw(st.sampled_from([*names, KOLWEZI, KAMBOVE]))
        subject: dict[str, Any] = {"id": about}
        if kind == "CarbonFootprintCredential":
            subject.update(batteryModelName=draw(st.sampled_from(["M0", "M1"])),
                           batteryCarbonFootprint=n)
        elif kind == "RecycledContentCredential":
            subject["backingLots"] = draw(st.lists(st.sampled_from(names), max_size=2))
        elif kind == "IRMAAuditCredential":
            subject["achievementLevel"] = "IRMA 50"
        out.append({"id": f"urn:x:{n}", "type": ["VerifiableCredential", kind],
                    "validFrom": "2020-01-01T00:00:00Z", "credentialSubject": subject})
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.data())
def test_random_networks_both_ways_alike(docs, data):
    names = subjects(_fake_bundle(docs))
    credentials = _random_credentials(data.draw, names)
    if credentials and data.draw(st.booleans()):
        docs = [*docs, ("anchor", {"action": "revocation", "credentialId": credentials[0]["id"]})]
    lines = _fake_bundle(docs)
    tail = [json.dumps({"type": "credential", "credential": c}).encode() + b"\n"
            for c in credentials]
    lines = [*lines[:-1], *tail,
             json.dumps({"type": "end", "records": len(lines) - 1 + len(tail)}).encode() + b"\n"]
    assert_same(lines, names)
