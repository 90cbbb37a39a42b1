"""The documented lifecycle: one event for every stage of REQUIREMENTS 3.3, mine to recycler.

`lifecycle(b)` lists (stage, issuer, event) with the STANDARD_PARTICIPANTS of the builders `b`,
valid in this order; docs/events.md is generated from it and the custody tests replay it.
"""

from __future__ import annotations

import uuid
from typing import Any

from batterytrace.ledger.events import BizStep

from .demo_builders import SOH_SENSOR, Builders, item_ref

NMC811 = {"Li": 0.072, "Ni": 0.48, "Mn": 0.056, "Co": 0.06}


def lifecycle(b: Builders) -> list[tuple[str, str, dict[str, Any]]]:
    """(stage, issuer, event) for every stage of REQUIREMENTS 3.3, valid in this order, with
    the STANDARD_PARTICIPANTS of `b`."""
    steps: list[tuple[str, str, dict[str, Any]]] = []

    def add(stage: str, issuer: str, event: dict[str, Any]) -> dict[str, Any]:
        event["id"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'bt-docs/' + stage)}"
        steps.append((stage, issuer, event))
        return event

    add("Extraction at an industrial mine site", "miner", b.extraction(
        "kolwezi-mine", "co-hydroxide-2026-001", 40, {"Co": 0.32, "Cu": 0.04},
        extractionMethod="industrial", mineral="cobalt"))
    add("Extraction at an artisanal site", "coop", b.extraction(
        "kambove-asm", "heterogenite-asm-017", 2, {"Co": 0.12, "Cu": 0.06},
        extractionMethod="artisanal", legalStatus="ZEA Kambove-Ouest"))
    asm = add("ASM purchase: the cooperative ships to a licensed trader", "coop", b.shipping(
        "kambove-asm", "coop", "trader", "likasi-depot", [("heterogenite-asm-017", 2)]))
    add("ASM purchase: the trader receives", "trader", b.receiving(asm, "likasi-depot"))
    add("Aggregation at the trader (commingling, mass balance)", "trader", b.transformation(
        "likasi-depot", [("heterogenite-asm-017", 2)],
        [("likasi-blend-2026-02", 2, {"Co": 0.12, "Cu": 0.06})], custody_model="massBalance"))
    sea = add("Transport by sea to the refiner", "miner", b.shipping(
        "kolwezi-mine", "miner", "refiner", "nantong-refinery",
        [("co-hydroxide-2026-001", 40)], mode="sea"))
    add("Arrival at the refinery", "refiner", b.receiving(sea, "nantong-refinery"))
    add("Refining to cobalt sulphate", "refiner", b.transformation(
        "nantong-refinery", [("co-hydroxide-2026-001", 40)],
        [("coso4-2026-0042", 60, {"Co": 0.2})], biz_step=BizStep.REFINING,
        custody_model="segregated"))
    cathode = add("Shipment of refined material to the cathode and cell maker", "refiner",
                  b.shipping("nantong-refinery", "refiner", "cellmaker", "wroclaw-plant",
                             [("coso4-2026-0042", 60)], mode="rail"))
    add("Receipt at the cell plant", "cellmaker", b.receiving(cathode, "wroclaw-plant"))
    add("Cathode and cell production (model, plant, chemistry)", "cellmaker", b.transformation(
        "wroclaw-plant", [("coso4-2026-0042", 10)],
        output_items=[("cell-a1", "cell", 0.9, {"Co": 0.06}),
                      ("cell-a2", "cell", 0.9, {"Co": 0.06})],
        processType="cell manufacture", cellModel="WCW-NMC811-60Ah", chemistry="NMC811"))
    add("Module housing production", "cellmaker", b.transformation(
        "wroclaw-plant", [("coso4-2026-0042", 1)],
        output_items=[("module-m1", "module", 2.5, {}), ("pack-p1", "pack", 30, {})]))
    add("Module assembly", "cellmaker", b.assembly("wroclaw-plant", "module-m1",
                                                   ["cell-a1", "cell-a2"]))
    add("Pack assembly", "cellmaker", b.assembly("wroclaw-plant", "pack-p1", ["module-m1"]))
    pack = add("Shipment of the pack to the automaker", "cellmaker", b.shipping(
        "wroclaw-plant", "cellmaker", "automaker", "zwickau-plant", items=["pack-p1"]))
    add("Receipt at the vehicle plant", "automaker", b.receiving(pack, "zwickau-plant"))
    add("Vehicle production (body without tracked material)", "automaker", b.transformation(
        "zwickau-plant", output_items=[("vehicle-vin-wnw0001", "vehicle", 1650, {})]))
    add("Installation of the pack in the vehicle", "automaker", b.assembly(
        "zwickau-plant", "vehicle-vin-wnw0001", ["pack-p1"], kind="AssociationEvent",
        biz_step=BizStep.INSTALLING))
    add("Placing on the market", "automaker", b.observation(
        "zwickau-plant", items=["vehicle-vin-wnw0001"], biz_step=BizStep.RETAIL_SELLING,
        market="EU", passport="https://id.example.com/dpp/vehicle-vin-wnw0001"))
    sale = add("Sale and delivery to a fleet", "automaker", b.shipping(
        "zwickau-plant", "automaker", "fleet", "rotterdam-depot",
        items=["vehicle-vin-wnw0001"]))
    add("Delivery received by the fleet", "fleet", b.receiving(sale, "rotterdam-depot"))
    add("State-of-health reading (BMS sensor report)", "fleet", b.observation(
        "rotterdam-depot", items=["pack-p1"], biz_step=BizStep.SENSOR_REPORTING,
        sensorElementList=[{"sensorMetadata": {"device": item_ref("pack-p1")},
                            "sensorReport": [{"time": "2030-05-01T08:00:00Z",
                                              "sensorType": SOH_SENSOR, "value": 78,
                                              "uom": "P1"}]}]))
    add("Removal of the pack", "fleet", b.assembly(
        "rotterdam-depot", "vehicle-vin-wnw0001", ["pack-p1"], action="delete",
        kind="AssociationEvent", biz_step=BizStep.REMOVING))
    add("Repair", "fleet", b.observation("rotterdam-depot", items=["pack-p1"],
                                         biz_step=BizStep.REPAIRING, partsReplaced=["BMS"]))
    add("Repurposing to second life (producer responsibility transferred)", "fleet",
        b.observation("rotterdam-depot", items=["pack-p1"], biz_step=BizStep.REPURPOSING,
                      producerResponsibility=b.did_for("fleet"), newApplication="stationary"))
    waste = add("Collection: transport of a declared waste battery", "fleet", b.shipping(
        "rotterdam-depot", "fleet", "recycler", "fredrikstad-plant", items=["pack-p1"],
        purpose="recycling", waste=True))
    add("Collection received by the recycler", "recycler",
        b.receiving(waste, "fredrikstad-plant"))
    add("Dismantling (pack to module)", "recycler", b.assembly(
        "fredrikstad-plant", "pack-p1", ["module-m1"], action="delete"))
    add("Recycling with recovered-material lots", "recycler", b.transformation(
        "fredrikstad-plant", input_items=["module-m1"],
        outputs=[("recovered-co-2031-001", 0.1, {"Co": 0.99})], biz_step=BizStep.RECYCLING,
        custody_model="segregated", route="hydrometallurgical"))
    add("Disposal of the empty pack housing", "recycler", b.observation(
        "fredrikstad-plant", items=["pack-p1"], action="delete", biz_step=BizStep.DESTROYING,
        disposition="https://ref.gs1.org/cbv/Disp-disposed"))
    return steps
