"""Provenance from verified bundles: shares computed by hand on small networks (segregated, mass
balance, commingling of two mines, a recycling loop), IRMA levels at the extraction, the route
and lifecycle, and a property: source masses of an element add up to its total."""

from __future__ import annotations

import copy
import io
import json
import re

import pytest
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.events import BizStep
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.validators import validators_for
from batterytrace.verifier.bundle_verify import verify_bundle
from batterytrace.verifier.provenance import ProvenanceSubjectError, trace_provenance
from batterytrace.verifier.trust import TrustConfig, TrustedLedger
from conftest import ROOT
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    assembly,
    credential,
    extraction,
    facility_id,
    item_id,
    lot_id,
    observation,
    receiving,
    shipping,
    signed_credential,
    standard_registry_docs,
    transformation,
)
from hypothesis import given
from hypothesis import strategies as st

KOLWEZI, KAMBOVE = facility_id("kolwezi-mine"), facility_id("kambove-asm")


def network() -> list[tuple[str, list[dict]]]:
    """(issuer, events) in log order: two mines commingled by a trader (mass balance), refined
    (segregated) into cells of pack-1, which is recycled; recovered cobalt enters cell c3."""
    steps: list[tuple[str, list[dict]]] = []

    def add(issuer: str, *events: dict) -> dict:
        steps.append((issuer, list(events)))
        return events[-1]

    add("miner", extraction("kolwezi-mine", "ore-a", 100, {"Co": 0.3},
                            extractionMethod="industrial"))
    add("coop", extraction("kambove-asm", "asm-b", 50, {"Co": 0.2}, extractionMethod="artisanal",
                           legalStatus="ZEA Kambove-Ouest"))
    add("miner", extraction("kolwezi-mine", "ore-c", 10, {"Co": 0.5}))
    s = add("coop", shipping("kambove-asm", "coop", "trader", "likasi-depot", [("asm-b", 50)]))
    add("trader", receiving(s, "likasi-depot"))
    s = add("miner", shipping("kolwezi-mine", "miner", "trader", "likasi-depot", [("ore-a", 100)]))
    add("trader", receiving(s, "likasi-depot"))
    add("trader", transformation("likasi-depot", [("ore-a", 100), ("asm-b", 50)],
                                 [("blend", 150, {"Co": 0.25})], custody_model="massBalance"))
    s = add("trader", shipping("likasi-depot", "trader", "refiner", "nantong-refinery",
                               [("blend", 150)], mode="sea"))
    add("refiner", receiving(s, "nantong-refinery"))
    s = add("miner", shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery",
                              [("ore-c", 10)], mode="sea"))
    add("refiner", receiving(s, "nantong-refinery"))
    add("refiner", transformation("nantong-refinery", [("blend", 150)],
                                  [("coso4", 100, {"Co": 0.3})], biz_step=BizStep.REFINING))
    add("refiner", transformation("nantong-refinery", [("ore-c", 10)],
                                  [("coso4-s", 20, {"Co": 0.2})], biz_step=BizStep.REFINING))
    s = add("refiner", shipping("nantong-refinery", "refiner", "cellmaker", "wroclaw-plant",
                                [("coso4", 100)], mode="rail"))
    add("cellmaker", receiving(s, "wroclaw-plant"))
    add("cellmaker", transformation("wroclaw-plant", [("coso4", 10)], output_items=[
        ("c1", "cell", 1, {"Co": 0.1}), ("c2", "cell", 1, {"Co": 0.1}),
        ("pack-1", "pack", 20, {})], cellModel="WCW-60Ah", chemistry="NMC811"))
    add("cellmaker", assembly("wroclaw-plant", "pack-1", ["c1", "c2"]))
    add("cellmaker", observation("wroclaw-plant", items=["pack-1"],
                                 biz_step=BizStep.RETAIL_SELLING))
    add("cellmaker", observation("wroclaw-plant", items=["pack-1"],
                                 biz_step=BizStep.SENSOR_REPORTING, sensorElementList=[
                                     {"sensorReport": [{"time": "2030-05-01T08:00:00Z",
                                                        "sensorType": "https://batterytrace.dev/"
                                                        "vocab/stateOfHealth", "value": 60}]}]))
    s = add("cellmaker", shipping("wroclaw-plant", "cellmaker", "recycler", "fredrikstad-plant",
                                  items=["pack-1"], purpose="recycling", waste=True))
    add("recycler", receiving(s, "fredrikstad-plant"))
    add("recycler", transformation("fredrikstad-plant", input_items=["pack-1"],
                                   outputs=[("recovered-co", 0.1, {"Co": 0.9})],
                                   biz_step=BizStep.RECYCLING))
    s = add("recycler", shipping("fredrikstad-plant", "recycler", "cellmaker", "wroclaw-plant",
                                 [("recovered-co", 0.1)]))
    add("cellmaker", receiving(s, "wroclaw-plant"))
    add("cellmaker", transformation("wroclaw-plant", [("recovered-co", 0.1), ("coso4", 0.3)],
                                    output_items=[("c3", "cell", 1, {"Co": 0.15})]))
    return steps


def irma(site: str, level: str, valid_from: str = "2020-01-01T00:00:00Z") -> dict:
    """The IRMA example of docs/credentials.md about `site` (unsigned: provenance only reads)."""
    text = (ROOT / "docs" / "credentials.md").read_text(encoding="utf-8")
    block = re.search(r"^## IRMAAuditCredential\n.*?```json\n(.*?)\n```", text, re.S | re.M)
    doc = copy.deepcopy(json.loads(block.group(1)))
    doc["id"] = f"urn:irma:{site}:{level}:{valid_from}"
    doc["validFrom"], doc["validUntil"] = valid_from, "2099-12-31T00:00:00Z"
    doc["credentialSubject"].update(id=site, achievementLevel=level, certificationPeriod={
        "startDate": valid_from[:10], "endDate": "2099-12-31"})
    return doc


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("prov") / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, None, "ledger.example/prov", PUBLIC_URL)
    led.validators.update(validators_for(led))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    for issuer, events in network():
        led.append([Submission("event", signed_credential(issuer, events))])
    trust = TrustConfig(ledgers=(TrustedLedger(led.origin, led.verifier.vkey),))
    yield led, trust
    led.close()


def bundle(led, **kw) -> list[bytes]:
    buf = io.BytesIO()
    export_bundle(led, buf, **kw)
    return buf.getvalue().splitlines(keepends=True)


def shares(p, element="Co") -> dict[tuple[str, bool], float]:
    return {(s["site"], s["recycled"]): s["share"] for s in p["elements"][element]["sources"]}


def test_commingled_mass_balance_shares_by_hand(world):
    led, trust = world
    lines = bundle(led, item=item_id("pack-1"))
    assert verify_bundle(lines, trust).ok
    p = trace_provenance(lines)
    co = p["elements"]["Co"]
    # cells: 2 x 1 kg x 0.1 Co; the blend had 30 kg Co from Kolwezi, 10 kg from Kambove
    assert co["mass_kg"] == pytest.approx(0.2)
    assert shares(p) == pytest.approx({(KOLWEZI, False): 0.75, (KAMBOVE, False): 0.25})
    assert p["artisanal_share"] == pytest.approx(0.25) and p["countries"] == {"CD": 1.0}
    kambove = next(s for s in co["sources"] if s["site"] == KAMBOVE)
    # the cooperative's own words are shown, but resolve nothing: only a credential naming
    # the site does (tests/test_policy_law.py)
    assert kambove["artisanal"] and kambove["risk_resolution"] is None
    assert kambove["declared_status"] == "ZEA Kambove-Ouest"
    assert kambove["custody_models"] == ["massBalance", "segregated"]
    assert kambove["processed_in"] == ["CD", "CN", "PL"]
    assert sum(s["mass_kg"] for s in co["sources"]) == pytest.approx(co["mass_kg"])


def test_segregated_chain_is_exact(world):
    p = trace_provenance(bundle(world[0], lot=lot_id("coso4-s")))
    co = p["elements"]["Co"]
    assert co["mass_kg"] == pytest.approx(4.0)  # 20 kg x 0.2
    assert [(s["site"], s["share"], s["custody_models"]) for s in co["sources"]] == [
        (KOLWEZI, 1.0, ["segregated"])]
    assert p["artisanal_share"] == 0.0


def test_recycling_loop_recovered_cobalt_in_a_new_cell(world):
    led, trust = world
    lines = bundle(led, item=item_id("c3"))
    assert verify_bundle(lines, trust).ok
    p = trace_provenance(lines)
    co = p["elements"]["Co"]
    # 0.09 kg recovered (0.1 x 0.9) + 0.09 kg from coso4 (0.3 x 0.3): 0.15 kg in the cell
    assert co["mass_kg"] == pytest.approx(0.15)
    assert co["recycled_share"] == pytest.approx(0.5)
    assert co["recycled_mass_kg"] == pytest.approx(0.075)
    recycled = facility_id("fredrikstad-plant")
    assert shares(p) == pytest.approx({(recycled, True): 0.5, (KOLWEZI, False): 0.375,
                                       (KAMBOVE, False): 0.125})
    assert p["countries"] == pytest.approx({"CD": 0.5, "NO": 0.5})
    assert p["recycled_content"]["computed"] == {"Co": pytest.approx(0.5)}


def test_route_lifecycle_and_state_of_health(world):
    lines = bundle(world[0], item=item_id("pack-1"))
    p = trace_provenance(lines)
    legs = [(r["from_country"], r["to_country"], r["mode"], r["purpose"]) for r in p["route"]]
    assert ("CD", "CN", "sea", "sale") in legs and ("CN", "PL", "rail", "sale") in legs
    waste = [r for r in p["route"] if r["waste"]]
    assert len(waste) == 1 and waste[0]["to_recycler"] and waste[0]["to_country"] == "NO"
    life = p["lifecycle"]
    assert all(isinstance(life[k], int) for k in ("production", "sale", "use", "end_of_life",
                                                  "recycling"))
    assert life["production"] < life["sale"] < life["use"] < life["recycling"]
    assert p["state_of_health"] == {"value": 60.0, "time": "2030-05-01T08:00:00Z"}
    assert [d["decision"] for d in p["second_life"]] == ["recycle", "recycle"]
    # the policy date is the day the ledger received the sale, not the day its signer wrote
    assert p["placed_on_market_event_time"] == "2026-02-01"
    sale = next(json.loads(line)["entry"] for line in lines if line.startswith(
        b'{"type":"entry"') and json.loads(line)["entry"]["seq"] == p["placed_on_market_seq"])
    assert p["placed_on_market"] == sale["received"][:10]
    assert p["model"] == {"name": "WCW-60Ah", "chemistry": "NMC811"}


def test_irma_level_valid_at_the_extraction(world):
    creds = [irma(KOLWEZI, "IRMA 75"), irma(KAMBOVE, "IRMA 100", "2090-01-01T00:00:00Z")]
    p = trace_provenance(bundle(world[0], item=item_id("pack-1"), credentials=creds))
    levels = {s["site"]: s["irma_level"] for s in p["elements"]["Co"]["sources"]}
    # the Kambove audit starts decades after the extraction: no level at that time
    assert levels == {KOLWEZI: "IRMA 75", KAMBOVE: None}
    # a later audit supersedes an earlier one that is still valid
    later = irma(KOLWEZI, "IRMA 50", "2021-01-01T00:00:00Z")
    p = trace_provenance(bundle(world[0], item=item_id("pack-1"), credentials=[*creds, later]))
    assert {s["site"]: s["irma_level"] for s in p["elements"]["Co"]["sources"]}[KOLWEZI] == \
        "IRMA 50"


def carbon(subject: str, model: str, value: float) -> dict:
    """A CarbonFootprintCredential about `subject` (unsigned: provenance only reads)."""
    return {"id": f"urn:cf:{subject}:{model}", "type": ["VerifiableCredential",
                                                        "CarbonFootprintCredential"],
            "credentialSubject": {"id": subject, "batteryModelName": model,
                                  "batteryCarbonFootprint": value,
                                  "carbonFootprintPerformanceClass": "B",
                                  "manufacturingPlant": {"id": "https://x/plant"}}}


def test_carbon_footprint_of_the_battery_or_its_model_never_another_model(world):
    # c3 holds cobalt recovered from pack-1: pack-1's footprint travels in c3's bundle
    old_pack = carbon(item_id("pack-1"), "WCW-60Ah", 50.0)
    lines = bundle(world[0], item=item_id("c3"), credentials=[old_pack])
    assert any(b"urn:cf:" in line for line in lines)
    assert trace_provenance(lines)["carbon_footprint"] is None  # was: pack-1's 50.0
    # a declaration for the battery's model (by name) counts; the battery's own comes first
    model = carbon(lot_id("coso4"), "WCW-60Ah", 70.0)
    p = trace_provenance(bundle(world[0], item=item_id("pack-1"), credentials=[model]))
    assert p["carbon_footprint"]["value"] == 70.0
    own = carbon(item_id("pack-1"), "WCW-60Ah", 65.0)
    p = trace_provenance(bundle(world[0], item=item_id("pack-1"), credentials=[own, model]))
    assert p["carbon_footprint"]["value"] == 65.0


def _with_anchor(lines: list[bytes], action: str, credential_id: str) -> list[bytes]:
    """`lines` with a status anchor entry after the last entry (provenance reads, never
    checks: the verifier checked the bundle before)."""
    last = max(i for i, line in enumerate(lines) if line.startswith(b'{"type":"entry"'))
    seq = json.loads(lines[last])["entry"]["seq"] + 1
    entry = {"type": "entry", "entry": {"seq": seq, "kind": "anchor", "received":
                                        "2031-01-01T00:00:00Z", "document": {
                                            "action": action, "credentialId": credential_id}}}
    out = [*lines[:last + 1], json.dumps(entry).encode() + b"\n", *lines[last + 1:-1]]
    return [*out, json.dumps({"type": "end", "records": len(out)}).encode() + b"\n"]


@pytest.mark.parametrize("action, status", [("revocation", "REVOKED"),
                                            ("suspension", "SUSPENDED")])
def test_a_credential_not_in_force_at_the_checkpoint_is_evidence_for_nothing(world, action,
                                                                              status):
    own = carbon(item_id("pack-1"), "WCW-60Ah", 65.0)
    lines = bundle(world[0], item=item_id("pack-1"), credentials=[own])
    assert trace_provenance(lines)["carbon_footprint"]["value"] == 65.0
    p = trace_provenance(_with_anchor(lines, action, own["id"]))
    assert p["carbon_footprint"] is None  # no policy rule can use its 65.0
    [standing] = p["not_in_force"]
    assert standing["id"] == own["id"] and standing["status"] == status
    # and so no policy rule judges with it: the carbon rule finds no declaration
    from datetime import date

    from batterytrace.verifier.policy import FAIL, evaluate_policy, parse_policy

    declaration = parse_policy('version = 1\n[[rule]]\nid = "cf"\ntype = "carbon-footprint"\n'
                               'title = "t"\njurisdiction = "EU"\nsource = "Art. 7(1)"\n'
                               'effective_from = 2025-02-18\ncheck = "declaration"\n')
    [carbon_rule] = evaluate_policy(declaration, p, policy_date=date(2031, 1, 1)).outcomes
    assert carbon_rule.status == FAIL and "65" not in carbon_rule.reason


def test_ira_foreign_entity_named_by_legal_name_through_a_processor(world):
    from datetime import date

    from batterytrace.verifier.policy import FAIL, evaluate_policy, load_policy

    p = trace_provenance(bundle(world[0], item=item_id("pack-1")))
    kolwezi = next(s for s in p["elements"]["Co"]["sources"] if s["site"] == KOLWEZI)
    assert "Jiangsu Cobalt Refining Co., Ltd." in kolwezi["processor_names"]
    policy = load_policy("us-ira-30d")
    # the refiner is on the policy's list by legal name; its DID is what the events carry
    hit = evaluate_policy(policy, p, policy_date=date(2025, 6, 1)).outcomes[0]
    assert hit.status == FAIL and "foreign entity" in hit.reason
    assert {e["site"] for e in hit.evidence["foreign_entities"]} == {KOLWEZI, KAMBOVE}
    before = evaluate_policy(policy, p, policy_date=date(2024, 6, 1)).outcomes[0]
    assert before.status == FAIL and "foreign entity" not in before.reason  # 0 % from FTA
    assert p["passport_credential"] is None
    waste = [r for r in p["route"] if r["waste"]]
    assert waste[0]["to_roles"] == ["collector", "dismantler", "recycler"]


def test_unknown_subject_is_an_input_error(world):
    with pytest.raises(ProvenanceSubjectError) as info:
        trace_provenance(bundle(world[0], item=item_id("c3")), item_id("nothing"))
    assert info.value.exit_code == 2


# --- property: random mass-balance networks, no ledger (trace_provenance reads, never checks)


def _fake_bundle(docs: list[dict]) -> list[bytes]:
    lines = [{"type": "header", "version": 1, "origin": "test", "scope": {"kind": "all"},
              "checkpoint": "x"},
             {"type": "entry", "entry": {"seq": 0, "kind": "genesis", "received": "",
                                         "document": {"publicUrl": PUBLIC_URL}}}]
    lines += [{"type": "entry", "entry": {"seq": i + 1, "kind": kind, "document": doc,
                                          "received": "2026-01-01T00:00:00Z"}}
              for i, (kind, doc) in enumerate(docs)]
    lines.append({"type": "end", "records": len(lines)})
    return [json.dumps(x).encode() + b"\n" for x in lines]


@given(st.lists(st.tuples(st.sampled_from(["kolwezi-mine", "kambove-asm"]),
                          st.integers(1, 500), st.integers(1, 60)), min_size=1, max_size=6),
       st.lists(st.integers(0, 5), min_size=1, max_size=4), st.integers(1, 100))
def test_source_masses_add_up_in_random_mass_balance_networks(mined, picks, keep):
    docs = [("registry", d) for d in standard_registry_docs()]
    pool: list[tuple[str, float, float, str]] = []  # lot, kg, Co fraction
    for i, (site, kg, pct) in enumerate(mined):
        issuer = "miner" if site == "kolwezi-mine" else "coop"
        event = extraction(site, f"m{i}", kg, {"Co": pct / 100})
        docs.append(("event", credential(issuer, [event])))
        pool.append((f"m{i}", kg, pct / 100, issuer))
    # blends at the mines' own sites: each consumes some lots whole, keeping keep% of the cobalt
    for j, pick in enumerate(picks):
        issuer = pool[pick % len(pool)][3]
        mine = [p for p in pool if p[3] == issuer]
        chosen = mine[: 1 + pick % len(mine)]
        kg = sum(p[1] for p in chosen)
        co = sum(p[1] * p[2] for p in chosen) * keep / 100
        site = "kolwezi-mine" if issuer == "miner" else "kambove-asm"
        docs.append(("event", credential(issuer, [transformation(
            site, [(p[0], p[1]) for p in chosen], [(f"b{j}", kg, {"Co": co / kg})],
            custody_model="massBalance")])))
        pool = [p for p in pool if p not in chosen] + [(f"b{j}", kg, co / kg, issuer)]
    target = pool[-1]
    p = trace_provenance(_fake_bundle(docs), lot_id(target[0])).to_json()
    co = p["elements"]["Co"]
    assert co["mass_kg"] == pytest.approx(target[1] * target[2], rel=1e-6)
    assert sum(s["mass_kg"] for s in co["sources"]) == pytest.approx(co["mass_kg"], rel=1e-5)
    assert sum(s["share"] for s in co["sources"]) == pytest.approx(1.0, abs=1e-5)
