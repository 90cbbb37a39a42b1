"""DTE credentials: packaged schema, project fields, exact quantities, GB/T 34014 codes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.errors import SchemaValidationError
from batterytrace.ledger import custody_errors as errors
from batterytrace.ledger.event_schema import validate_dte_schema
from batterytrace.ledger.events import (
    GBT_34014_CODE,
    decimal_of,
    loads_exact,
    parse_credential,
)
from conftest import DOMAIN_SAMPLES, load_json
from custody_factory import credential, extraction, transformation
from hypothesis import given
from hypothesis import strategies as st

UNTP = DOMAIN_SAMPLES / "untp" / "data-models-working"


def test_packaged_schema_is_the_pinned_untp_schema():
    from batterytrace.ledger.event_schema import dte_schema

    assert dte_schema() == load_json(UNTP / "untp-dte-schema.json")


def test_untp_sample_validates_but_needs_project_context():
    sample = load_json(UNTP / "untp-dte-instance.json")
    validate_dte_schema(sample)
    with pytest.raises(errors.EventFormatError):
        parse_credential(sample)


def test_factory_credential_parses():
    doc = credential("miner", [extraction("kolwezi-mine", "ore", 12.5, {"Co": 0.3})])
    parsed = parse_credential(doc)
    [event] = parsed.events
    assert event.kind == "ObjectEvent" and event.quantities[0].kg == Decimal("12.5")
    assert event.lots[0].composition == {"Co": Decimal("0.3")}


def test_closed_quantity_element_rejects_extra_properties():
    doc = credential("miner", [extraction("kolwezi-mine", "ore", 1, {})])
    doc["credentialSubject"][0]["quantityList"][0]["composition"] = {"Co": 0.3}
    with pytest.raises(SchemaValidationError):
        parse_credential(doc)


def test_event_needs_time_and_place():
    doc = credential("miner", [extraction("kolwezi-mine", "ore", 1, {})])
    del doc["credentialSubject"][0]["eventTime"]
    with pytest.raises(errors.EventFormatError):
        parse_credential(doc)


@pytest.mark.parametrize("uom,kg", [("KGM", "2"), ("TNE", "2000"), ("GRM", "0.002")])
def test_units_convert_to_kg(uom, kg):
    doc = credential("miner", [extraction("kolwezi-mine", "ore", 2, {})])
    doc["credentialSubject"][0]["quantityList"][0]["uom"] = uom
    assert parse_credential(doc).events[0].quantities[0].kg == Decimal(kg)


def test_count_units_rejected():
    doc = credential("miner", [extraction("kolwezi-mine", "ore", 2, {})])
    doc["credentialSubject"][0]["quantityList"][0]["uom"] = "NAR"
    with pytest.raises(errors.UnsupportedUnitError):
        parse_credential(doc)


def test_quantity_beyond_double_precision_rejected():
    text = json.dumps(credential("miner", [extraction("kolwezi-mine", "ore", 1, {})]))
    exact = text.replace('"quantity": 1', '"quantity": 1.25')
    assert loads_exact(exact)["credentialSubject"][0]["quantityList"][0]["quantity"] == 1.25
    lossy = text.replace('"quantity": 1', '"quantity": 0.1000000000000000055511151231257827')
    with pytest.raises(errors.QuantityPrecisionError):
        loads_exact(lossy)  # the double's exact value, but JCS signs "0.1"
    with pytest.raises(errors.QuantityPrecisionError):
        loads_exact(text.replace('"quantity": 1', '"quantity": 12345678.123456789012'))
    with pytest.raises(errors.QuantityPrecisionError):
        decimal_of(Decimal("1.00000000000000001"))
    with pytest.raises(errors.QuantityPrecisionError):
        decimal_of(2**53 + 1)


@given(st.floats(min_value=1e-9, max_value=1e12, allow_nan=False))
def test_decimal_of_a_float_is_what_jcs_signs(value):
    assert decimal_of(value) == Decimal(canonicalize(value).decode())


@pytest.mark.parametrize("composition", [{"Co": 1.2}, {"Co": 0.6, "Ni": 0.6}, {"cobalt": 0.1}])
def test_bad_composition_rejected(composition):
    with pytest.raises(errors.CompositionError):
        parse_credential(credential("miner", [extraction("kolwezi-mine", "o", 1, composition)]))


def test_battery_codes():
    sample = load_json(DOMAIN_SAMPLES / "china" / "catenax-traction-battery-code-regex.json")
    assert GBT_34014_CODE.match(sample["exampleValue"])
    # the Catena-X example names a module (M) of lithium manganese oxide (C)
    event = transformation("wroclaw-plant", [("ore", 1)],
                           output_items=[("p", "module", 1, {})])
    event["itemDeclarations"][0]["batteryCode"] = sample["exampleValue"]
    assert parse_credential(credential("cellmaker", [event])).events[0].items[0].battery_code
    event["itemDeclarations"][0]["batteryCode"] = "X12MCPM27KLPCLX2M238232O"
    with pytest.raises(errors.BatteryCodeError):
        parse_credential(credential("cellmaker", [event]))


@pytest.mark.parametrize(("category", "chemistry", "problem"), [
    ("pack", None, "product type M (module) but the item is a pack"),
    ("module", "NMC811", "battery type C (lithium manganese oxide) but the chemistry is NMC811"),
    ("module", "LFP", "battery type C"),
    ("vehicle", None, "a vehicle carries no GB/T 34014 code"),
])
def test_battery_code_letters_are_checked_against_category_and_chemistry(category, chemistry,
                                                                         problem):
    sample = load_json(DOMAIN_SAMPLES / "china" / "catenax-traction-battery-code-regex.json")
    fields = {"chemistry": chemistry} if chemistry else {}
    event = transformation("wroclaw-plant", [("ore", 1)],
                           output_items=[("p", category, 1, {})], **fields)
    event["itemDeclarations"][0]["batteryCode"] = sample["exampleValue"]
    with pytest.raises(errors.BatteryCodeError) as info:
        parse_credential(credential("cellmaker", [event]))
    assert problem in str(info.value)
    # the item's own chemistry wins over the event's
    event["itemDeclarations"][0]["chemistry"] = "LMO"
    if category == "module":
        assert parse_credential(credential("cellmaker", [event])).events[0].items[0].battery_code


def test_transport_fields_checked():
    from custody_factory import shipping

    event = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery", lots=[("o", 1)])
    assert parse_credential(credential("miner", [event])).events[0].transport.mode == "road"
    event["transport"]["mode"] = "teleport"
    with pytest.raises(errors.EventFormatError):
        parse_credential(credential("miner", [event]))


@pytest.mark.parametrize("member", ["erroneousEvent", "shipmentEvent",
                                    "producerResponsibility"])
@pytest.mark.parametrize("value", [7, ["urn:x"], {"id": "urn:x"}, True])
def test_event_references_must_be_uri_strings(member, value):
    doc = credential("miner", [extraction("kolwezi-mine", "ore", 1, {})])
    doc["credentialSubject"][0][member] = value
    with pytest.raises(errors.EventFormatError, match=member):
        parse_credential(doc)
