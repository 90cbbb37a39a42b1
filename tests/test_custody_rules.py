"""One test per custody rule: an accepting case and a rejecting case (nothing changed)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.ledger import custody_errors as errors
from batterytrace.ledger.custody import (
    ACTIVE,
    CONSUMED,
    DISPOSED,
    IN_TRANSIT,
    check_mass_balance,
    event_fingerprint,
)
from batterytrace.ledger.events import BizStep, parse_event
from custody_factory import (
    Network,
    assembly,
    credential,
    did_for,
    event_id,
    extraction,
    facility_id,
    item_id,
    lot_id,
    observation,
    receiving,
    shipping,
    transformation,
)

NMC = {"Li": 0.07, "Ni": 0.3, "Mn": 0.1, "Co": 0.1}


@pytest.fixture
def net() -> Network:
    net = Network.standard()
    net.events("miner", extraction("kolwezi-mine", "ore", 1000, {"Co": 0.3, "Cu": 0.1}))
    return net


def held(net: Network, lot: str, who: str) -> Decimal:
    return net.state.holding(lot_id(lot), did_for(who))


def _live(net: Network) -> dict:
    # A lookup caches "absent" as None: compare only the rows that exist.
    return {t: {k: v for k, v in rows.items() if v is not None}
            for t, rows in net.state.tables.items()}


def rejects(net: Network, code: str, issuer: str, *events) -> None:
    """The credential is rejected with `code` and the state is exactly as before."""
    before = copy.deepcopy(_live(net))
    with pytest.raises(BatterytraceError) as info:
        net.events(issuer, *events)
    assert info.value.code == code, info.value
    assert _live(net) == before


# --- extraction ---------------------------------------------------------------------------


def test_extraction_at_own_mine_creates_lot(net):
    assert held(net, "ore", "miner") == 1000
    assert net.state.lot(lot_id("ore")).composition == {"Co": Decimal("0.3"), "Cu": Decimal("0.1")}


def test_implausible_quantities_rejected(net):
    """settings.MAX_QUANTITY: a million tonnes in each unit; above it, QUANTITY_IMPLAUSIBLE."""
    rejects(net, "QUANTITY_IMPLAUSIBLE", "miner",
            extraction("kolwezi-mine", "huge", 1e300, {"Co": 0.3}))
    rejects(net, "QUANTITY_IMPLAUSIBLE", "miner",
            extraction("kolwezi-mine", "huge", 1_000_000_001, {"Co": 0.3}))
    in_tonnes = extraction("kolwezi-mine", "huge", 1_000_001, {"Co": 0.3})
    in_tonnes["quantityList"][0]["uom"] = "TNE"
    rejects(net, "QUANTITY_IMPLAUSIBLE", "miner", in_tonnes)
    # checked before holdings: a huge shipment is implausible, not merely not held
    rejects(net, "QUANTITY_IMPLAUSIBLE", "miner", shipping(
        "kolwezi-mine", "miner", "refiner", "nantong-refinery", lots=[("ore", 1e300)]))
    rejects(net, "QUANTITY_IMPLAUSIBLE", "miner", transformation(
        "kolwezi-mine", [("ore", 10)], output_items=[("brick", "component", 2e9, {})]))
    # the bound itself is accepted, in kilograms and in tonnes
    net.events("miner", extraction("kolwezi-mine", "big", 1_000_000_000, {"Co": 0.3}))
    in_tonnes["quantityList"][0]["quantity"] = 1_000_000
    in_tonnes["lotDeclarations"][0]["id"] = in_tonnes["quantityList"][0]["productId"] = lot_id(
        "big-t")
    net.events("miner", in_tonnes)
    assert held(net, "big", "miner") == held(net, "big-t", "miner") == Decimal(1_000_000_000)


def test_extraction_at_someone_elses_mine_rejected(net):
    rejects(net, "FACILITY_NOT_OPERATED", "coop", extraction("kolwezi-mine", "ore2", 5, {}))


def test_extraction_only_at_a_mine_site(net):
    rejects(net, "MATERIAL_CREATION_FORBIDDEN", "refiner",
            extraction("nantong-refinery", "fake", 5, {"Co": 0.5}))


def test_new_material_needs_extraction_bizstep(net):
    event = extraction("kolwezi-mine", "ore2", 5, {})
    event["bizStep"] = BizStep.COMMISSIONING
    rejects(net, "MATERIAL_CREATION_FORBIDDEN", "miner", event)


def test_extraction_of_existing_lot_rejected(net):
    rejects(net, "LOT_EXISTS", "miner", extraction("kolwezi-mine", "ore", 5, {"Co": 0.3}))


def test_lot_declares_composition_when_created(net):
    event = extraction("kolwezi-mine", "ore2", 5, {})
    del event["lotDeclarations"]
    rejects(net, "COMPOSITION_ERROR", "miner", event)


def test_items_not_created_by_object_event(net):
    event = observation("kolwezi-mine", items=["rock"], action="add", biz_step=BizStep.EXTRACTION)
    rejects(net, "ITEM_CREATION_FORBIDDEN", "miner", event)


def test_unknown_facility_rejected(net):
    event = extraction("kolwezi-mine", "ore2", 5, {})
    event["bizLocation"] = "https://ledger.example/facilities/nowhere"
    rejects(net, "UNKNOWN_FACILITY", "miner", event)


# --- event ids ----------------------------------------------------------------------------


def test_same_credential_again_returns_existing_position(net):
    doc = credential("miner", [extraction("kolwezi-mine", "ore2", 5, {})])
    assert net.apply(doc) is None
    first = net.position
    assert net.apply(doc) == first
    assert held(net, "ore2", "miner") == 5


def test_used_event_id_in_other_document_rejected(net):
    first = extraction("kolwezi-mine", "ore2", 5, {})
    net.events("miner", first)
    again = extraction("kolwezi-mine", "ore3", 5, {})
    again["id"] = first["id"]
    rejects(net, "DUPLICATE_EVENT_ID", "miner", again)


def test_used_credential_id_with_other_content_rejected(net):
    doc = credential("miner", [extraction("kolwezi-mine", "ore2", 5, {})])
    net.apply(doc)
    other = credential("miner", [extraction("kolwezi-mine", "ore3", 5, {})], doc["id"])
    before = net.state.holding(lot_id("ore3"), did_for("miner"))
    with pytest.raises(errors.DuplicateEventIdError):
        net.apply(other)
    assert net.state.holding(lot_id("ore3"), did_for("miner")) == before == 0


def test_issuer_must_be_signer(net):
    from batterytrace.ledger.custody import apply_credential
    from batterytrace.ledger.events import parse_credential

    parsed = parse_credential(credential("miner", [extraction("kolwezi-mine", "o", 1, {})]))
    with pytest.raises(errors.NotHolderError):
        apply_credential(net.state, parsed, did_for("coop"), 99, "d")


# --- shipments ----------------------------------------------------------------------------


def ship_ore(net, kg=400):
    s = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery", lots=[("ore", kg)],
                 mode="sea")
    net.events("miner", s)
    return s


def test_holder_ships_and_destination_receives(net):
    s = ship_ore(net)
    assert held(net, "ore", "miner") == 600
    assert net.state.shipment(s["id"]).received_by is None
    net.events("refiner", receiving(s, "nantong-refinery"))
    assert held(net, "ore", "refiner") == 400
    assert net.state.shipment(s["id"]).received_by is not None


def test_ship_more_than_held_rejected(net):
    s = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery", lots=[("ore", 1001)])
    rejects(net, "INSUFFICIENT_HOLDING", "miner", s)


def test_non_holder_cannot_ship(net):
    s = shipping("likasi-depot", "trader", "refiner", "nantong-refinery", lots=[("ore", 1)])
    rejects(net, "INSUFFICIENT_HOLDING", "trader", s)


def test_source_party_must_be_signer(net):
    s = shipping("kolwezi-mine", "coop", "refiner", "nantong-refinery", lots=[("ore", 1)])
    s["bizLocation"] = "https://ledger.example/facilities/kolwezi-mine"
    rejects(net, "SHIPMENT_INVALID", "miner", s)


def test_destination_must_be_registered(net):
    s = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery", lots=[("ore", 1)])
    s["destinationParty"] = did_for("nobody")
    rejects(net, "SHIPMENT_INVALID", "miner", s)


def test_transport_destination_must_be_receivers_site(net):
    s = shipping("kolwezi-mine", "miner", "refiner", "likasi-depot", lots=[("ore", 1)])
    rejects(net, "FACILITY_NOT_OPERATED", "miner", s)


def test_receipt_by_other_party_rejected(net):
    s = ship_ore(net)
    r = receiving(s, "likasi-depot")
    r["destinationParty"] = did_for("trader")
    rejects(net, "RECEIPT_MISMATCH", "trader", r)


def test_receipt_with_other_contents_rejected(net):
    s = ship_ore(net)
    r = receiving(s, "nantong-refinery")
    r["quantityList"][0]["quantity"] = 401
    rejects(net, "RECEIPT_MISMATCH", "refiner", r)


def test_receipt_twice_rejected(net):
    s = ship_ore(net)
    net.events("refiner", receiving(s, "nantong-refinery"))
    rejects(net, "RECEIPT_MISMATCH", "refiner", receiving(s, "nantong-refinery"))


def test_receipt_without_shipment_rejected(net):
    s = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery", lots=[("ore", 1)])
    rejects(net, "RECEIPT_MISMATCH", "refiner", receiving(s, "nantong-refinery"))


def test_transaction_other_than_shipping_or_receiving_observes(net):
    """EPCIS: a TransactionEvent ties objects to a business transaction; only shipping and
    receiving move custody. Any other bizStep is the holder's observation: nothing moves,
    no shipment opens, and only the holder records it."""
    s = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery", lots=[("ore", 1)])
    s["bizStep"] = "https://ref.gs1.org/cbv/BizStep-transporting"
    net.events("miner", s)
    assert held(net, "ore", "miner") == 1000 and held(net, "ore", "refiner") == 0
    assert net.state.shipment(s["id"]) is None
    assert net.state.get("history", (lot_id("ore"), s["id"])) is not None
    too_much = copy.deepcopy(s)
    too_much["id"] = event_id()
    too_much["quantityList"][0]["quantity"] = 1001
    rejects(net, "INSUFFICIENT_HOLDING", "miner", too_much)
    not_held = copy.deepcopy(s)
    not_held["id"] = event_id()
    not_held["bizLocation"] = facility_id("nantong-refinery")
    rejects(net, "INSUFFICIENT_HOLDING", "refiner", not_held)


def test_units_are_converted(net):
    s = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery", lots=[("ore", 0.25)])
    s["quantityList"][0]["uom"] = "TNE"
    net.events("miner", s)
    assert held(net, "ore", "miner") == 750


# --- transformations ----------------------------------------------------------------------


def test_transformation_within_mass_balance(net):
    net.events("miner", transformation("kolwezi-mine", [("ore", 100)],
                                       [("conc", 50, {"Co": 0.6})]))
    assert held(net, "ore", "miner") == 900 and held(net, "conc", "miner") == 50


def test_transformation_over_mass_balance_rejected(net):
    rejects(net, "MASS_BALANCE_EXCEEDED", "miner",
            transformation("kolwezi-mine", [("ore", 100)], [("conc", 50, {"Co": 0.61})]))


def test_tolerance_is_the_ledgers():
    net = Network.standard(tolerance="0.02")
    net.events("miner", extraction("kolwezi-mine", "ore", 100, {"Co": 0.3}))
    net.events("miner", transformation("kolwezi-mine", [("ore", 10)], [("c", 3.06, {"Co": 1})]))
    with pytest.raises(errors.MassBalanceError):
        net.events("miner", transformation("kolwezi-mine", [("ore", 10)],
                                           [("d", 3.07, {"Co": 1})]))


def test_mass_balance_function_per_element():
    check_mass_balance({"Co": Decimal(10)}, {"Co": Decimal(10)}, Decimal(0))
    with pytest.raises(errors.MassBalanceError) as info:
        check_mass_balance({"Co": Decimal(10)}, {"Ni": Decimal("0.1")}, Decimal("0.5"))
    assert info.value.details["element"] == "Ni"


def test_transformation_declares_custody_model(net):
    rejects(net, "CUSTODY_MODEL_MISSING", "miner",
            transformation("kolwezi-mine", [("ore", 1)], [("c", 1, {})], custody_model=None))


def test_transformation_cannot_consume_more_than_held(net):
    rejects(net, "INSUFFICIENT_HOLDING", "miner",
            transformation("kolwezi-mine", [("ore", 1000.5)], [("c", 1, {})]))


def test_transformation_needs_inputs(net):
    rejects(net, "MATERIAL_CREATION_FORBIDDEN", "miner",
            transformation("kolwezi-mine", [], [("c", 1, {})]))


def test_transformation_outputs_are_new(net):
    """An output lot that exists is refused, unless the event consumes it (in place)."""
    net.events("miner", extraction("kolwezi-mine", "other", 10, {"Co": 0.3}))
    rejects(net, "LOT_EXISTS", "miner",
            transformation("kolwezi-mine", [("ore", 1)], [("other", 1, {"Co": 0.3})]))


def test_processing_in_place_keeps_the_lot(net):
    """A transformation whose output lot is one of its inputs (drying, sieving a lot in
    place): the holder's input is consumed and the output added back; the lot keeps its
    declaration, which every holder of it shares."""
    ore = {"Co": 0.3, "Cu": 0.1}
    net.events("miner", transformation("kolwezi-mine", [("ore", 100)], [("ore", 90, ore)]))
    assert held(net, "ore", "miner") == 990
    assert net.state.get("edge", (lot_id("ore"), lot_id("ore"))) is None
    rejects(net, "COMPOSITION_ERROR", "miner",
            transformation("kolwezi-mine", [("ore", 100)], [("ore", 90, {"Co": 0.31})]))
    rejects(net, "INSUFFICIENT_HOLDING", "miner",
            transformation("kolwezi-mine", [("ore", 991)], [("ore", 900, ore)]))
    rejects(net, "MASS_BALANCE_EXCEEDED", "miner",
            transformation("kolwezi-mine", [("ore", 10)], [("ore", 20, ore)]))
    ship_ore(net, 400)
    rejects(net, "INSUFFICIENT_HOLDING", "refiner", transformation(
        "nantong-refinery", [("ore", 10)], [("ore", 10, ore)]))


# --- error declarations (EPCIS errorDeclaration) ------------------------------------------


def declaration(event, **changes):
    """The error declaration of `event`: the event restated under a new id, naming it."""
    out = {**copy.deepcopy(event), "id": event_id(), "erroneousEvent": event["id"]}
    out.update(changes)
    return out


def test_declaring_a_transformation_reverses_it_and_the_correction_applies(net):
    made = transformation("kolwezi-mine", [("ore", 100)], [("conc", 50, {"Co": 0.5})],
                          output_items=[("brick", "component", 2, {"Co": 0.1})])
    net.events("miner", made)
    assert held(net, "ore", "miner") == 900
    declared = declaration(made)
    net.events("miner", declared)
    assert held(net, "ore", "miner") == 1000 and held(net, "conc", "miner") == 0
    assert net.state.lot(lot_id("conc")) is None and net.state.item(item_id("brick")) is None
    assert net.state.get("erroneous", made["id"]) == declared["id"]
    assert net.state.get("edge", (lot_id("ore"), lot_id("conc"))) is None
    assert net.state.get("history", (lot_id("ore"), declared["id"])) is not None
    corrective = transformation("kolwezi-mine", [("ore", 100)], [("conc", 55, {"Co": 0.5})],
                                output_items=[("brick", "component", 2, {"Co": 0.1})])
    net.events("miner", corrective)
    assert held(net, "conc", "miner") == 55
    # a second declaration of the same event is refused
    rejects(net, "ERROR_ALREADY_DECLARED", "miner", declaration(made))
    # a declaration is not itself declared erroneous (it restates another event)
    rejects(net, "ERROR_DECLARATION_INVALID", "miner",
            {**copy.deepcopy(made), "id": event_id(), "erroneousEvent": declared["id"]})


def test_only_its_issuer_declares_an_event_erroneous_restating_it(net):
    made = transformation("kolwezi-mine", [("ore", 100)], [("conc", 50, {"Co": 0.5})])
    net.events("miner", made)
    rejects(net, "ERROR_DECLARATION_INVALID", "miner",
            declaration(made, eventTime="2026-02-02T10:00:00Z"))
    altered = declaration(made)
    altered["inputQuantityList"][0]["quantity"] = 200  # would give back more than it took
    rejects(net, "ERROR_DECLARATION_INVALID", "miner", altered)
    rejects(net, "ERROR_DECLARATION_INVALID", "miner", declaration(made, erroneousEvent=event_id()))
    # the fingerprint a declaration must match names the issuer: another participant's
    # restatement, word for word, never matches
    parsed = parse_event(made)
    assert event_fingerprint(parsed, did_for("miner")) == net.state.get("event", made["id"]).digest
    assert event_fingerprint(parsed, did_for("refiner")) != event_fingerprint(
        parsed, did_for("miner"))
    foreign = declaration(made)
    foreign["bizLocation"] = facility_id("nantong-refinery")
    rejects(net, "ERROR_DECLARATION_INVALID", "refiner", foreign)


def test_declaring_an_event_whose_outputs_moved_on_is_refused(net):
    made = transformation("kolwezi-mine", [("ore", 100)], [("conc", 50, {"Co": 0.5})])
    net.events("miner", made)
    net.events("miner", shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery",
                                 lots=[("conc", 1)]))
    rejects(net, "ERRONEOUS_EVENT_MOVED_ON", "miner", declaration(made))
    item = transformation("kolwezi-mine", [("ore", 10)],
                          output_items=[("cell", "cell", 1, {"Co": 0.1})])
    net.events("miner", item)
    net.events("miner", transformation("kolwezi-mine", input_items=["cell"],
                                       output_items=[("module", "module", 1, {"Co": 0.1})]))
    rejects(net, "ERRONEOUS_EVENT_MOVED_ON", "miner", declaration(item))


def test_declaring_a_shipment_before_and_after_its_receipt(net):
    first = ship_ore(net, 100)
    net.events("miner", declaration(first))
    assert held(net, "ore", "miner") == 1000 and net.state.shipment(first["id"]) is None
    rejects(net, "RECEIPT_MISMATCH", "refiner", receiving(first, "nantong-refinery"))
    second = ship_ore(net, 100)
    received = receiving(second, "nantong-refinery")
    net.events("refiner", received)
    rejects(net, "ERRONEOUS_EVENT_MOVED_ON", "miner", declaration(second))
    net.events("refiner", declaration(received))  # the receiver's own mistake
    assert held(net, "ore", "refiner") == 0
    assert net.state.shipment(second["id"]).received_by is None
    net.events("refiner", receiving(second, "nantong-refinery", time="2026-02-04T10:00:00Z"))
    assert held(net, "ore", "refiner") == 100


def test_declaring_an_extraction_and_an_assembly(net):
    net.events("miner", extraction("kolwezi-mine", "spill", 5, {"Cu": 0.1}))
    extracted = extraction("kolwezi-mine", "wrong", 5, {"Cu": 0.1})
    net.events("miner", extracted)
    net.events("miner", declaration(extracted))
    assert net.state.lot(lot_id("wrong")) is None
    net.events("miner", extraction("kolwezi-mine", "wrong", 6, {"Cu": 0.1}))
    net.events("miner", transformation("kolwezi-mine", [("ore", 10)], output_items=[
        ("p", "pack", 1, {"Co": 0.1}), ("c", "cell", 1, {"Co": 0.1})]))
    built = assembly("kolwezi-mine", "p", ["c"])
    net.events("miner", built)
    net.events("miner", declaration(built))
    assert net.state.item(item_id("c")).parent is None
    assert net.state.item(item_id("c")).holder == did_for("miner")
    assert net.state.item(item_id("p")).children == ()


def test_unknown_input_lot_rejected(net):
    rejects(net, "UNKNOWN_LOT", "miner",
            transformation("kolwezi-mine", [("nothing", 1)], [("c", 1, {})]))


# --- items and assembly -------------------------------------------------------------------


@pytest.fixture
def plant(net) -> Network:
    """The cell maker holds a cathode lot and has produced cells c1..c3, a module and a pack."""
    s = ship_ore(net, 1000)
    net.events("refiner", receiving(s, "nantong-refinery"))
    s2 = shipping("nantong-refinery", "refiner", "cellmaker", "wroclaw-plant",
                  lots=[("ore", 1000)])
    net.events("refiner", s2)
    net.events("cellmaker", receiving(s2, "wroclaw-plant"))
    net.events("cellmaker", transformation(
        "wroclaw-plant", [("ore", 100)], output_items=[
            ("c1", "cell", 2, {"Co": 1}), ("c2", "cell", 2, {"Co": 1}),
            ("c3", "cell", 2, {"Co": 1}), ("m1", "module", 5, {"Cu": 1}),
            ("m2", "module", 5, {"Cu": 1}), ("p1", "pack", 20, {}),
        ]))
    return net


def item(net, name):
    return net.state.item(item_id(name))


def test_items_created_by_production(plant):
    assert item(plant, "c1").holder == did_for("cellmaker")
    assert item(plant, "c1").mass_kg == 2


def test_item_outputs_need_declarations(plant):
    event = transformation("wroclaw-plant", [("ore", 1)], output_items=[("c9", "cell", 1, {})])
    del event["itemDeclarations"]
    rejects(plant, "COMPOSITION_ERROR", "cellmaker", event)


def test_item_created_twice_rejected(plant):
    rejects(plant, "ITEM_EXISTS", "cellmaker", transformation(
        "wroclaw-plant", [("ore", 1)], output_items=[("c1", "cell", 1, {})]))


def test_a_battery_code_is_unique_per_ledger(plant):
    code = "WCWCE23WRO2608T8A0000001"  # a cell (C) of ternary chemistry (E)
    plant.events("cellmaker", transformation(
        "wroclaw-plant", [("ore", 1)], output_items=[("c7", "cell", 1, {})],
        battery_codes={"c7": code}, chemistry="NMC811"))
    assert item(plant, "c7").battery_code == code
    rejects(plant, "BATTERY_CODE_ERROR", "cellmaker", transformation(
        "wroclaw-plant", [("ore", 1)], output_items=[("c8", "cell", 1, {})],
        battery_codes={"c8": code}, chemistry="NMC811"))
    # and the letters: this code names a cell of ternary chemistry, not an LFP cell
    rejects(plant, "BATTERY_CODE_ERROR", "cellmaker", transformation(
        "wroclaw-plant", [("ore", 1)], output_items=[("c8", "cell", 1, {})],
        battery_codes={"c8": code.replace("T8A0000001", "T8A0000002")}, chemistry="LFP"))


def test_aggregation_sets_one_parent(plant):
    plant.events("cellmaker", assembly("wroclaw-plant", "m1", ["c1", "c2"]))
    assert item(plant, "c1").parent == item_id("m1")
    assert item(plant, "m1").children == (item_id("c1"), item_id("c2"))
    rejects(plant, "ASSEMBLY_INVALID", "cellmaker", assembly("wroclaw-plant", "m2", ["c1"]))


def test_aggregation_cycle_rejected(plant):
    plant.events("cellmaker", assembly("wroclaw-plant", "m1", ["c1"]))
    plant.events("cellmaker", assembly("wroclaw-plant", "p1", ["m1"]))
    rejects(plant, "ASSEMBLY_INVALID", "cellmaker", assembly("wroclaw-plant", "c1", ["p1"]))


def test_disassembly_reverses(plant):
    plant.events("cellmaker", assembly("wroclaw-plant", "m1", ["c1", "c2"]))
    plant.events("cellmaker", assembly("wroclaw-plant", "m1", ["c1"], action="delete"))
    assert item(plant, "c1").parent is None and item(plant, "c1").holder == did_for("cellmaker")
    assert item(plant, "m1").children == (item_id("c2"),)
    rejects(plant, "ASSEMBLY_INVALID", "cellmaker",
            assembly("wroclaw-plant", "m1", ["c3"], action="delete"))


def test_child_cannot_be_shipped_alone(plant):
    plant.events("cellmaker", assembly("wroclaw-plant", "m1", ["c1"]))
    rejects(plant, "ASSEMBLY_INVALID", "cellmaker", shipping(
        "wroclaw-plant", "cellmaker", "automaker", "zwickau-plant", items=["c1"]))


def test_shipping_an_assembly_moves_its_members(plant):
    plant.events("cellmaker", assembly("wroclaw-plant", "m1", ["c1"]))
    s = shipping("wroclaw-plant", "cellmaker", "automaker", "zwickau-plant", items=["m1"])
    plant.events("cellmaker", s)
    assert item(plant, "m1").status == IN_TRANSIT
    rejects(plant, "NOT_HOLDER", "cellmaker", observation("wroclaw-plant", items=["c1"]))
    plant.events("automaker", receiving(s, "zwickau-plant"))
    plant.events("automaker", observation("zwickau-plant", items=["c1"]))
    assert plant.state.root(item(plant, "c1")).holder == did_for("automaker")


def test_association_installs_pack_in_vehicle(plant):
    plant.events("cellmaker", transformation(
        "wroclaw-plant", [("ore", 1)], output_items=[("car", "vehicle", 0.3, {})]))
    plant.events("cellmaker", assembly("wroclaw-plant", "car", ["p1"], kind="AssociationEvent",
                                       biz_step=BizStep.INSTALLING))
    assert item(plant, "p1").parent == item_id("car")
    plant.events("cellmaker", assembly("wroclaw-plant", "car", ["p1"], action="delete",
                                       kind="AssociationEvent", biz_step=BizStep.REMOVING))
    assert item(plant, "p1").parent is None


def test_consuming_an_assembly_counts_its_members(plant):
    plant.events("cellmaker", assembly("wroclaw-plant", "m1", ["c1", "c2"]))
    # m1 holds 4 kg Co through its cells and 5 kg Cu of its own
    plant.events("cellmaker", transformation(
        "wroclaw-plant", input_items=["m1"], outputs=[("black-mass", 9, {"Co": 0.44, "Cu": 0.5})]))
    assert item(plant, "m1").status == CONSUMED
    rejects(plant, "MASS_BALANCE_EXCEEDED", "cellmaker", transformation(
        "wroclaw-plant", input_items=["m2"], outputs=[("bm2", 5, {"Co": 0.1})]))


def test_disposal_removes_items_and_lots(plant):
    plant.events("cellmaker", observation("wroclaw-plant", items=["c3"], lots=[("ore", 5)],
                                          action="delete", biz_step=BizStep.DESTROYING))
    assert item(plant, "c3").status == DISPOSED
    rejects(plant, "NOT_HOLDER", "cellmaker", observation("wroclaw-plant", items=["c3"]))


def test_observation_needs_holder(plant):
    plant.events("cellmaker", observation("wroclaw-plant", items=["c1"], lots=[("ore", 1)]))
    rejects(plant, "INSUFFICIENT_HOLDING", "cellmaker",
            observation("wroclaw-plant", lots=[("ore", 10_000)]))
    rejects(plant, "UNKNOWN_ITEM", "cellmaker", observation("wroclaw-plant", items=["zz"]))


def test_repurposing_transfers_producer_responsibility(plant):
    event = observation("wroclaw-plant", items=["p1"], biz_step=BizStep.REPURPOSING,
                        producerResponsibility=did_for("fleet"))
    plant.events("cellmaker", event)
    assert item(plant, "p1").responsible == did_for("fleet")
    bad = observation("wroclaw-plant", items=["p1"], biz_step=BizStep.REPURPOSING,
                      producerResponsibility=did_for("ghost"))
    rejects(plant, "UNKNOWN_PARTICIPANT", "cellmaker", bad)


def test_credential_applies_atomically(plant):
    ok = observation("wroclaw-plant", items=["c1"])
    bad = observation("wroclaw-plant", items=["nope"])
    rejects(plant, "UNKNOWN_ITEM", "cellmaker", ok, bad)
    assert plant.state.get("event", ok["id"]) is None
    assert item(plant, "c1").status == ACTIVE


# --- plausibility: dates ------------------------------------------------------------------


def test_shipment_dated_before_the_lot_exists_rejected(net):
    s = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery", lots=[("ore", 100)])
    s["eventTime"] = "2001-01-01T00:00:00Z"
    rejects(net, "EVENT_BEFORE_LOT", "miner", s)


def test_receipt_dated_before_the_lot_rejected(net):
    s = ship_ore(net)
    r = receiving(s, "nantong-refinery")
    r["eventTime"] = "2001-01-01T00:00:00+02:00"
    rejects(net, "EVENT_BEFORE_LOT", "refiner", r)
    lot = net.state.lot(lot_id("ore"))
    assert lot.created_at is not None
    net.events("refiner", receiving(s, "nantong-refinery"))
    assert held(net, "ore", "refiner") == 400


def test_the_fingerprint_ignores_spelling_and_order_not_content():
    """The append path reads amounts as written, the replay from canonical JSON: the same
    event gives the same fingerprint; any other content (or issuer) another."""
    event = transformation("kolwezi-mine", [("ore", 100)], [("conc", 50, {"Co": 0.5, "Cu": 0.1})])
    respelled = copy.deepcopy(event)
    respelled["inputQuantityList"][0]["quantity"] = Decimal("100.0")
    respelled["lotDeclarations"][0]["composition"] = {"Cu": Decimal("0.10"), "Co": 0.5}
    miner = did_for("miner")
    assert event_fingerprint(parse_event(event), miner) == event_fingerprint(
        parse_event(respelled), miner)
    assert event_fingerprint(parse_event({**event, "id": event_id()}), miner) == \
        event_fingerprint(parse_event(event), miner)
    other = copy.deepcopy(event)
    other["lotDeclarations"][0]["composition"]["Cu"] = 0.11
    assert event_fingerprint(parse_event(other), miner) != event_fingerprint(
        parse_event(event), miner)
