"""The demo network's story: cobalt, lithium, nickel and graphite to two battery packs.

`story(b)` is the history `make demo` appends, one signed credential per `Step`: the mines, the
refiners, cathode material (a first batch's scrap recycled into the pack's batch), cells,
modules and the first-life pack (`PACK_1`), its life in a fleet, second life and recycling, and
its recovered cobalt and lithium in a second pack (`PACK_2`). `recycled_shares` are the
recycled-content figures that follow from the story's quantities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from batterytrace.ledger.events import BizStep

from .demo_builders import DEMO, Builders

PACK_1 = "pack-EBS80-000117"  # the first-life pack: its bundle is the demo's subject
PACK_2 = "pack-EBS80-004512"  # the new pack made with pack 1's recovered cobalt and lithium
VEHICLE = "vehicle-WNW-4Z100117"
BATTERY_MODEL = "EBS-80 NMC811"
CELL_MODEL = "WCW-NMC811-230Ah"
CELLS_PER_MODULE, MODULES_PER_PACK = 12, 8
CELL_KG = 3.3
# Mass fractions of one cell: cathode active material NMC811 (LiNi0.8Mn0.1Co0.1O2) is 30 % of
# the cell, spherical graphite 18 %. Manganese is not traced in the demo.
CELL_COMPOSITION = {"Li": 0.0216, "Ni": 0.144, "Co": 0.018, "graphite": 0.18}
CAM_COMPOSITION = {"Li": 0.072, "Ni": 0.48, "Co": 0.06}  # NMC811 active material
COSO4, NISO4, LI2CO3 = {"Co": 0.2}, {"Ni": 0.22}, {"Li": 0.188}


# GB/T 34014 production date letters (as secondary sources give the table: the VIN year
# code, then months 1-9 A-C and days 1-9 A-Y without I, O, Q); batterytrace checks the
# structure and the product and battery type letters, not the date (docs/events.md).
_YEARS = dict(zip(range(2010, 2040), "ABCDEFGHJKLMNPRSTVWXY123456789", strict=True))
_DAYS = "123456789ABCDEFGHJKLMNPRSTUVWXY"


def battery_code(maker: str, kind: str, spec: str, trace: str, day: str, serial: int) -> str:
    """A GB/T 34014 code (24 characters): maker (3), product type (P, M, C), battery type E
    (ternary: the demo's NMC811), specification (2), traceability (7), production date (3),
    serial (7)."""
    year, month, dom = int(day[:4]), int(day[5:7]), int(day[8:10])
    date_code = _YEARS[year] + "123456789ABC"[month - 1] + _DAYS[dom - 1]
    return f"{maker}{kind}E{spec}{trace}{date_code}{serial:07d}"


def pack_code(pack: str, month: str) -> str:
    """The code of a pack made in `month` (YYYY-MM), for its production event and passport."""
    return battery_code("EBS", "P", "80", f"SZG{month[2:4]}{month[5:7]}", f"{month}-20",
                        int(pack.rsplit("-", 1)[-1]))


@dataclass(frozen=True)
class Step:
    """One signed credential of the story: its chapter, issuer and events."""

    chapter: str
    issuer: str
    events: tuple[dict[str, Any], ...]


def recycled_shares() -> dict[str, dict[str, float]]:
    """Recycled share (percent of element mass) in the cathode material of each pack, from the
    quantities of `story`: pre-consumer (manufacturing scrap) in pack 1, post-consumer (pack 1
    itself) in pack 2. The RecycledContentCredentials declare these figures."""
    def share(recycled_kg: float, virgin_kg: float) -> float:
        return round(100 * recycled_kg / (recycled_kg + virgin_kg), 1)

    return {
        PACK_1: {"Cobalt": share(15 * 0.2, 172.5 * 0.2),
                 "Lithium": share(20 * 0.188, 230 * 0.188),
                 "Nickel": share(120 * 0.22, 1380 * 0.22)},
        PACK_2: {"Cobalt": share(27 * 0.2, 75 * 0.2),
                 "Lithium": share(29 * 0.188, 160 * 0.188),
                 "Nickel": share(196 * 0.22, 1100 * 0.22)},
    }


def _pack_production(b: Builders, add: Any, chapter: str, *, batch: str, pack: str,
                     cam_lot: str, month: str) -> list[str]:
    """Cells (cell maker), modules and a pack (pack maker) from 100 kg of `cam_lot`, in the
    month `month` (YYYY-MM)."""
    cells = [f"cell-{batch}-{n:03d}" for n in range(CELLS_PER_MODULE * MODULES_PER_PACK)]
    modules = [f"module-{batch}-{m}" for m in range(MODULES_PER_PACK)]
    # GB/T 34014 codes on every cell, module and pack (the China model of the platform):
    # unique per ledger, letters checked against category and chemistry at append.
    trace = f"WRO{month[2:4]}{month[5:7]}"
    add(chapter, "cell-maker", b.transformation(
        "wroclaw-cells", [(cam_lot, 100), ("spherical-graphite-JX-2026-40", 60)],
        output_items=[(c, "cell", CELL_KG, CELL_COMPOSITION) for c in cells],
        battery_codes={c: battery_code("WCW", "C", "23", trace, f"{month}-10", n + 1)
                       for n, c in enumerate(cells)},
        processType="cell manufacture", cellModel=CELL_MODEL, chemistry="NMC811",
        time=f"{month}-10T08:00:00Z"))
    add(chapter, "cell-maker", b.transformation(
        "wroclaw-cells", output_items=[(m, "module", 6.0, {}) for m in modules],
        battery_codes={m: battery_code("WCW", "M", "12", trace, f"{month}-11", n + 1)
                       for n, m in enumerate(modules)},
        chemistry="NMC811", time=f"{month}-11T08:00:00Z"))
    add(chapter, "cell-maker", *[
        b.assembly("wroclaw-cells", m, cells[i * CELLS_PER_MODULE:(i + 1) * CELLS_PER_MODULE],
                   time=f"{month}-12T08:00:00Z")
        for i, m in enumerate(modules)])
    ship = add(chapter, "cell-maker", b.shipping(
        "wroclaw-cells", "cell-maker", "pack-maker", "salzgitter-pack", items=modules,
        time=f"{month}-15T08:00:00Z"))
    add(chapter, "pack-maker", b.receiving(ship, "salzgitter-pack", f"{month}-17T08:00:00Z"))
    add(chapter, "pack-maker", b.transformation(
        "salzgitter-pack", output_items=[(pack, "pack", 95.0, {})],
        battery_codes={pack: pack_code(pack, month)}, batteryModel=BATTERY_MODEL,
        chemistry="NMC811", batteryCategory="ev", ratedEnergy=80.6,
        time=f"{month}-20T08:00:00Z"))
    add(chapter, "pack-maker", b.assembly("salzgitter-pack", pack, modules,
                                         time=f"{month}-21T08:00:00Z"))
    return modules


def story(b: Builders = DEMO) -> list[Step]:
    """The demo network's history, valid in this order (each step one signed credential)."""
    steps: list[Step] = []

    def add(chapter: str, issuer: str, *events: dict[str, Any]) -> dict[str, Any]:
        steps.append(Step(chapter, issuer, tuple(events)))
        return events[0]

    def ship(chapter: str, source: str, site: str, dest: str, dest_site: str,
             lots: Sequence[tuple[str, Any]] = (), items: Sequence[str] = (), *,
             time: str, arrive: str, **options: Any) -> None:
        sent = add(chapter, source, b.shipping(site, source, dest, dest_site, lots, items,
                                               time=time, **options))
        add(chapter, dest, b.receiving(sent, dest_site, arrive))

    # Cobalt, DRC to China: industrial (IRMA 75) and artisanal through a licensed trader.
    add("cobalt", "mine-kolwezi", b.extraction(
        "kolwezi-mine", "co-hydroxide-KZ-2026-014", 20000, {"Co": 0.32, "Cu": 0.04},
        extractionMethod="industrial", mineral="cobalt", time="2026-03-02T06:00:00Z"))
    add("cobalt", "coop", b.extraction(
        "kambove-asm", "heterogenite-ASM-2026-031", 2000, {"Co": 0.12, "Cu": 0.06},
        extractionMethod="artisanal", mineral="cobalt", legalStatus="ZEA Kambove-Ouest",
        time="2026-03-05T09:00:00Z"))
    ship("cobalt", "coop", "kambove-asm", "trader", "likasi-depot",
         [("heterogenite-ASM-2026-031", 2000)], time="2026-03-09T07:00:00Z",
         arrive="2026-03-09T15:00:00Z")
    add("cobalt", "trader", b.transformation(
        "likasi-depot", [("heterogenite-ASM-2026-031", 2000)],
        [("likasi-blend-2026-07", 1950, {"Co": 0.12, "Cu": 0.06})],
        custody_model="massBalance", time="2026-03-12T10:00:00Z"))
    ship("cobalt", "trader", "likasi-depot", "refiner", "quzhou-refinery",
         [("likasi-blend-2026-07", 1950)], mode="sea", time="2026-03-20T10:00:00Z",
         arrive="2026-05-02T10:00:00Z")
    ship("cobalt", "mine-kolwezi", "kolwezi-mine", "refiner", "quzhou-refinery",
         [("co-hydroxide-KZ-2026-014", 20000)], mode="sea", time="2026-03-18T10:00:00Z",
         arrive="2026-04-30T10:00:00Z")
    add("cobalt", "refiner", b.transformation(
        "quzhou-refinery", [("co-hydroxide-KZ-2026-014", 20000), ("likasi-blend-2026-07", 1950)],
        [("coso4-QZ-2026-0815", 30000, COSO4)], biz_step=BizStep.REFINING,
        custody_model="massBalance", time="2026-05-15T10:00:00Z"))
    ship("cobalt", "refiner", "quzhou-refinery", "cathode-maker", "kokkola-cathode",
         [("coso4-QZ-2026-0815", 1000)], mode="sea", time="2026-05-20T10:00:00Z",
         arrive="2026-06-30T10:00:00Z")

    # Lithium brine in Chile (IRMA Transparency only), nickel in Indonesia, graphite in China.
    add("lithium", "mine-atacama", b.extraction(
        "atacama-brine", "li-concentrate-SA-2026-05", 50000, {"Li": 0.06},
        extractionMethod="brine", mineral="lithium", time="2026-02-10T12:00:00Z"))
    add("lithium", "mine-atacama", b.transformation(
        "la-negra-plant", [("li-concentrate-SA-2026-05", 50000)],
        [("li2co3-LN-2026-112", 10000, LI2CO3)], biz_step=BizStep.REFINING,
        time="2026-03-01T12:00:00Z"))
    ship("lithium", "mine-atacama", "la-negra-plant", "cathode-maker", "kokkola-cathode",
         [("li2co3-LN-2026-112", 1500)], mode="sea", time="2026-03-10T12:00:00Z",
         arrive="2026-04-25T12:00:00Z")
    add("nickel", "mine-morowali", b.extraction(
        "morowali-mine", "laterite-MW-2026-220", 100000, {"Ni": 0.015},
        extractionMethod="industrial", mineral="nickel", time="2026-02-15T03:00:00Z"))
    add("nickel", "mine-morowali", b.transformation(
        "morowali-hpal", [("laterite-MW-2026-220", 100000)],
        [("niso4-MW-2026-031", 5000, NISO4)], biz_step=BizStep.REFINING,
        route="high-pressure acid leach", time="2026-03-01T03:00:00Z"))
    ship("nickel", "mine-morowali", "morowali-hpal", "cathode-maker", "kokkola-cathode",
         [("niso4-MW-2026-031", 5000)], mode="sea", time="2026-03-05T03:00:00Z",
         arrive="2026-04-20T03:00:00Z")
    add("graphite", "mine-jixi", b.extraction(
        "jixi-mine", "graphite-flake-JX-2026-40", 20000, {"graphite": 0.94},
        extractionMethod="industrial", mineral="natural-graphite", time="2026-02-20T01:00:00Z"))
    add("graphite", "mine-jixi", b.transformation(
        "jixi-spheronising", [("graphite-flake-JX-2026-40", 20000)],
        [("spherical-graphite-JX-2026-40", 9000, {"graphite": 0.9995})],
        biz_step=BizStep.REFINING, time="2026-03-15T01:00:00Z"))
    ship("graphite", "mine-jixi", "jixi-spheronising", "cell-maker", "wroclaw-cells",
         [("spherical-graphite-JX-2026-40", 1000)], mode="rail", time="2026-03-20T01:00:00Z",
         arrive="2026-04-28T01:00:00Z")

    # Cathode material: a first batch's scrap is recycled (pre-consumer) into the pack's batch.
    add("cathode", "cathode-maker", b.transformation(
        "kokkola-cathode", [("coso4-QZ-2026-0815", 300), ("niso4-MW-2026-031", 1500),
                            ("li2co3-LN-2026-112", 500)],
        [("cam-KK-2026-B0", 600, CAM_COMPOSITION), ("cam-scrap-KK-2026-B0", 60, CAM_COMPOSITION)],
        custody_model="massBalance", processType="precursor co-precipitation and calcination",
        time="2026-07-02T08:00:00Z"))
    ship("cathode", "cathode-maker", "kokkola-cathode", "recycler", "fredrikstad-recycling",
         [("cam-scrap-KK-2026-B0", 60)], purpose="recycling", time="2026-07-06T08:00:00Z",
         arrive="2026-07-09T08:00:00Z")
    add("cathode", "recycler", b.transformation(
        "fredrikstad-recycling", [("cam-scrap-KK-2026-B0", 60)],
        [("rec-niso4-FR-2026-01", 120, NISO4), ("rec-li2co3-FR-2026-01", 20, LI2CO3),
         ("rec-coso4-FR-2026-01", 15, COSO4)], biz_step=BizStep.RECYCLING,
        route="hydrometallurgical", wasteOrigin="pre-consumer", time="2026-07-20T08:00:00Z"))
    ship("cathode", "recycler", "fredrikstad-recycling", "cathode-maker", "kokkola-cathode",
         [("rec-niso4-FR-2026-01", 120), ("rec-li2co3-FR-2026-01", 20),
          ("rec-coso4-FR-2026-01", 15)], time="2026-07-25T08:00:00Z",
         arrive="2026-07-28T08:00:00Z")
    add("cathode", "cathode-maker", b.transformation(
        "kokkola-cathode", [("coso4-QZ-2026-0815", 172.5), ("rec-coso4-FR-2026-01", 15),
                            ("niso4-MW-2026-031", 1380), ("rec-niso4-FR-2026-01", 120),
                            ("li2co3-LN-2026-112", 230), ("rec-li2co3-FR-2026-01", 20)],
        [("cam-KK-2026-B1", 600, CAM_COMPOSITION)], custody_model="massBalance",
        processType="precursor co-precipitation and calcination", time="2026-08-03T08:00:00Z"))
    ship("cathode", "cathode-maker", "kokkola-cathode", "cell-maker", "wroclaw-cells",
         [("cam-KK-2026-B1", 100)], time="2026-08-05T08:00:00Z", arrive="2026-08-08T08:00:00Z")

    # Cells, modules and the first-life pack; the automaker places it on the EU market.
    modules_1 = _pack_production(b, add, "cells and pack", batch="WCW-2026-B1", pack=PACK_1,
                                 cam_lot="cam-KK-2026-B1", month="2026-08")
    ship("vehicle", "pack-maker", "salzgitter-pack", "automaker", "zwickau-plant",
         items=[PACK_1], time="2026-08-25T08:00:00Z", arrive="2026-08-26T08:00:00Z")
    add("vehicle", "automaker", b.transformation(
        "zwickau-plant", output_items=[(VEHICLE, "vehicle", 1650, {})],
        time="2026-08-28T08:00:00Z"))
    add("vehicle", "automaker", b.assembly(
        "zwickau-plant", VEHICLE, [PACK_1], kind="AssociationEvent",
        biz_step=BizStep.INSTALLING, time="2026-08-29T08:00:00Z"))
    add("vehicle", "automaker", b.observation(
        "zwickau-plant", items=[VEHICLE, PACK_1], biz_step=BizStep.RETAIL_SELLING,
        market="EU", time="2026-09-01T08:00:00Z",
        passport=f"{b.public_url}/passports/{PACK_1}"))
    ship("use", "automaker", "zwickau-plant", "fleet", "rotterdam-depot", items=[VEHICLE],
         time="2026-09-02T08:00:00Z", arrive="2026-09-04T08:00:00Z")

    # First life in a fleet, second life in stationary storage, collection as waste.
    add("use", "fleet", b.soh_reading("rotterdam-depot", PACK_1, 96, "2028-09-01T08:00:00Z"))
    add("use", "fleet", b.soh_reading("rotterdam-depot", PACK_1, 88, "2031-09-01T08:00:00Z"))
    add("use", "fleet", b.soh_reading("rotterdam-depot", PACK_1, 79, "2034-03-01T08:00:00Z"))
    add("use", "fleet", b.assembly(
        "rotterdam-depot", VEHICLE, [PACK_1], action="delete", kind="AssociationEvent",
        biz_step=BizStep.REMOVING, time="2034-03-10T08:00:00Z"))
    ship("second life", "fleet", "rotterdam-depot", "second-life", "eemshaven-storage",
         items=[PACK_1], purpose="secondUse", time="2034-03-20T08:00:00Z",
         arrive="2034-03-21T08:00:00Z")
    add("second life", "second-life", b.observation(
        "eemshaven-storage", items=[PACK_1], biz_step=BizStep.REPURPOSING,
        producerResponsibility=b.did_for("second-life"), newApplication="stationary",
        time="2034-04-01T08:00:00Z"))
    add("second life", "second-life", b.soh_reading("eemshaven-storage", PACK_1, 61,
                                                     "2039-02-01T08:00:00Z"))
    # Collection as declared waste at the recycler's collection point, dismantled there.
    ship("end of life", "second-life", "eemshaven-storage", "recycler", "moerdijk-collection",
         items=[PACK_1], purpose="recycling", waste=True, time="2039-03-01T08:00:00Z",
         arrive="2039-03-02T08:00:00Z")
    add("end of life", "recycler", b.assembly("moerdijk-collection", PACK_1, modules_1,
                                              action="delete", time="2039-03-15T08:00:00Z"))

    # Hydrometallurgical recycling: recovered cobalt, lithium and nickel lots.
    add("recycling", "recycler", b.transformation(
        "fredrikstad-recycling", input_items=modules_1,
        outputs=[("rec-coso4-FR-2039-07", 27, COSO4), ("rec-li2co3-FR-2039-07", 29, LI2CO3),
                 ("rec-niso4-FR-2039-07", 196, NISO4)],
        biz_step=BizStep.RECYCLING, route="hydrometallurgical", wasteOrigin="post-consumer",
        time="2039-04-02T08:00:00Z"))
    add("recycling", "recycler", b.observation(
        "moerdijk-collection", items=[PACK_1], action="delete", biz_step=BizStep.DESTROYING,
        disposition="https://ref.gs1.org/cbv/Disp-disposed", time="2039-04-03T08:00:00Z"))

    # The recovered cobalt and lithium (and nickel) go into a new cathode batch, cell and pack.
    ship("new pack", "recycler", "fredrikstad-recycling", "cathode-maker", "kokkola-cathode",
         [("rec-coso4-FR-2039-07", 27), ("rec-li2co3-FR-2039-07", 29),
          ("rec-niso4-FR-2039-07", 196)], time="2039-04-10T08:00:00Z",
         arrive="2039-04-13T08:00:00Z")
    add("new pack", "cathode-maker", b.transformation(
        "kokkola-cathode", [("coso4-QZ-2026-0815", 75), ("rec-coso4-FR-2039-07", 27),
                            ("niso4-MW-2026-031", 1100), ("rec-niso4-FR-2039-07", 196),
                            ("li2co3-LN-2026-112", 160), ("rec-li2co3-FR-2039-07", 29)],
        [("cam-KK-2039-B7", 300, CAM_COMPOSITION)], custody_model="massBalance",
        processType="precursor co-precipitation and calcination", time="2039-05-02T08:00:00Z"))
    ship("new pack", "cathode-maker", "kokkola-cathode", "cell-maker", "wroclaw-cells",
         [("cam-KK-2039-B7", 100)], time="2039-05-05T08:00:00Z", arrive="2039-05-08T08:00:00Z")
    _pack_production(b, add, "new pack", batch="WCW-2039-B7", pack=PACK_2, cam_lot="cam-KK-2039-B7",
                     month="2039-05")
    return steps
