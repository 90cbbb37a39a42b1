"""The EPCIS rules of the custody layer through a real ledger, `ledger verify` and the offline
bundle verifier: an error declaration reverses the event it restates, a TransactionEvent that
is not a custody change observes, a lot is processed in place. Every path (append, rebuild,
`ledger verify`, bundle verify) applies the same rule: a refusal at append appends nothing,
and an entry the rules refuse, forced into a log without validators, fails the replay of
`ledger verify` and of the offline verifier with the same code."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.derived_check import check_derived
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.validators import validators_for
from batterytrace.verifier.bundle_verify import verify_bundle
from batterytrace.verifier.trust import TrustConfig, TrustedLedger
from custody_factory import (
    did_for,
    event_id,
    extraction,
    item_id,
    lot_id,
    registered_ledger,
    shipping,
    signed_credential,
    transformation,
)

ORE = {"Co": 0.3, "Cu": 0.1}


def declaration(event: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(event), "id": event_id(), "erroneousEvent": event["id"]}


def _story() -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """(issuer, event) in order, and the erroneous transformation they declare and correct."""
    erroneous = transformation("kolwezi-mine", [("ore", 100)], [("conc", 50, {"Co": 0.5})],
                               output_items=[("brick", "component", 2, {"Co": 0.1})])
    observed = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery",
                        lots=[("ore", 10)])
    observed["bizStep"] = "https://ref.gs1.org/cbv/BizStep-transporting"
    return [
        ("miner", extraction("kolwezi-mine", "ore", 1000, ORE)),
        ("miner", erroneous),
        ("miner", declaration(erroneous)),
        ("miner", transformation("kolwezi-mine", [("ore", 100)], [("conc", 55, {"Co": 0.5})],
                                 output_items=[("brick", "component", 2, {"Co": 0.1})])),
        ("miner", observed),
        ("miner", transformation("kolwezi-mine", [("ore", 200)], [("ore", 190, ORE)])),
    ], erroneous


def _ledger(path, *, rules: bool = True) -> Ledger:
    return registered_ledger(path / "home", None, rules=rules,
                             origin="ledger.example/corrections")


def _bundle(led: Ledger, **scope: Any) -> list[bytes]:
    led.sign_checkpoint()
    buffer = io.BytesIO()
    export_bundle(led, buffer, **scope)
    return buffer.getvalue().splitlines(keepends=True)


def _trust(led: Ledger) -> TrustConfig:
    return TrustConfig(ledgers=(TrustedLedger(led.origin, led.verifier.vkey),))


@pytest.fixture(scope="module")
def corrected(tmp_path_factory):
    led = _ledger(tmp_path_factory.mktemp("corrections"))
    story, erroneous = _story()
    for issuer, event in story:
        led.append([Submission("event", signed_credential(issuer, [event]))])
    yield led, erroneous
    led.close()


def test_the_ledger_applies_the_declaration_and_the_correction(corrected):
    from batterytrace.ledger.queries import read_state

    led, erroneous = corrected
    miner = did_for("miner")
    with read_state(led) as view:
        state = view.state
        assert state.holding(lot_id("conc"), miner) == 55  # the correction's, not 50 + 55
        assert state.holding(lot_id("ore"), miner) == 1000 - 100 - 200 + 190
        assert state.item(item_id("brick")) is not None
        assert state.get("erroneous", erroneous["id"]) is not None
        observed = _story()[0][4][1]
        assert state.shipment(observed["id"]) is None  # observed, not shipped


def test_refusals_at_append_append_nothing(corrected):
    led, erroneous = corrected
    size = led.size
    for event, code in ((declaration(erroneous), "ERROR_ALREADY_DECLARED"),
                        ({**declaration(erroneous), "erroneousEvent": event_id()},
                         "ERROR_DECLARATION_INVALID")):
        with pytest.raises(BatterytraceError) as caught:
            led.append([Submission("event", signed_credential("miner", [event]))])
        assert caught.value.code == code
    assert led.size == size


def test_ledger_verify_rebuild_and_bundles_reach_the_same_state(corrected):
    led, _ = corrected
    assert check_derived(led) == []  # the rebuild from the entries equals what append wrote
    trust = _trust(led)
    for scope in ({"all_entries": True}, {"item": item_id("brick")}, {"lot": lot_id("conc")}):
        report = verify_bundle(_bundle(led, **scope), trust)
        assert report.ok, (scope, report.failures)
        assert report.replayed >= 1


def test_provenance_of_a_corrected_item(corrected):
    """The provenance pass reads the declaration as a restatement, not a new production:
    the corrected brick's cobalt comes from the one ore lot."""
    from batterytrace.verifier.provenance import trace_provenance

    led, _ = corrected
    facts = trace_provenance(_bundle(led, item=item_id("brick"))).to_json()
    assert lot_id("ore") in json.dumps(facts)


def test_a_lot_processed_in_place_holds_back_the_declaration_of_its_making(tmp_path):
    """Processing in place gives the lot back whole, so its holding cannot say it was used:
    the event that made it cannot be declared erroneous until the processing is."""
    from batterytrace.ledger.queries import read_state

    led = _ledger(tmp_path)
    made = extraction("kolwezi-mine", "ore", 10, ORE)
    processed = transformation("kolwezi-mine", [("ore", 10)], [("ore", 10, ORE)])
    for event in (made, processed):
        led.append([Submission("event", signed_credential("miner", [event]))])
    size = led.size
    with pytest.raises(BatterytraceError) as caught:
        led.append([Submission("event", signed_credential("miner", [declaration(made)]))])
    assert caught.value.code == "ERRONEOUS_EVENT_MOVED_ON"
    assert led.size == size
    for event in (processed, made):  # the later event first: then its maker
        led.append([Submission("event", signed_credential("miner", [declaration(event)]))])
    with read_state(led) as view:
        assert view.state.lot(lot_id("ore")) is None
        assert view.state.get("processed", lot_id("ore")) is None
    assert check_derived(led) == []
    led.close()


@pytest.mark.parametrize("case", ["again", "moved-on"])
def test_a_forced_bad_declaration_fails_every_replay(tmp_path, case):
    """Appended without validators, a declaration the rules refuse: `ledger verify` and the
    offline verifier name it with the code the append would have answered."""
    from batterytrace.api.cli import app
    from typer.testing import CliRunner

    led = _ledger(tmp_path, rules=False)
    story, erroneous = _story()
    events = story[:3]
    if case == "again":
        events.append(("miner", declaration(erroneous)))
        code = "ERROR_ALREADY_DECLARED"
    else:
        moved = shipping("kolwezi-mine", "miner", "refiner", "nantong-refinery",
                         lots=[("conc", 1)])
        events = [*story[:2], ("miner", moved), ("miner", declaration(erroneous))]
        code = "ERRONEOUS_EVENT_MOVED_ON"
    for issuer, event in events:
        led.append([Submission("event", signed_credential(issuer, [event]))])
    bad = led.size - 1
    report = verify_bundle(_bundle(led, all_entries=True), _trust(led))
    assert [(f.code, f.seq) for f in report.failures] == [(code, bad)], report.failures
    home = led.home.path
    led.close()
    result = CliRunner().invoke(app, ["--home", str(home), "ledger", "verify", "--json"])
    assert isinstance(result.exception, BatterytraceError), result.output
    assert result.exception.code == code and result.exception.exit_code == 1


def _ledger_at_schema_0005(tmp_path) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    """The home of a ledger holding a story's first two events, downgraded to schema 0005
    (event rows as a ledger written before 0006 holds them), and that story."""
    from alembic import command
    from batterytrace.ledger.migrations.schema import alembic_config

    led = _ledger(tmp_path)
    story, _ = _story()
    for issuer, event in story[:2]:
        led.append([Submission("event", signed_credential(issuer, [event]))])
    home = led.home.path
    with led.storage.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0005")
    led.close()
    return home, story


def test_event_rows_from_before_schema_0006_need_one_repair(tmp_path):
    """Schema 0006 unseals the event rows written before it (they held the credential's
    digest, not the event's fingerprint): a declaration that reads one is refused until
    `ledger repair --from-entries` has rebuilt them; then it applies."""
    from batterytrace.api.cli import app
    from typer.testing import CliRunner

    home, story = _ledger_at_schema_0005(tmp_path)

    def declare() -> None:
        opened = Ledger.open(home)
        opened.validators.update(validators_for(opened))
        try:
            opened.append([Submission("event", signed_credential("miner", [story[2][1]]))])
        finally:
            opened.close()

    with pytest.raises(BatterytraceError) as caught:
        declare()
    assert caught.value.code == "LEDGER_DERIVED_TAMPERED" and "0006" in caught.value.message
    runner = CliRunner()
    assert runner.invoke(app, ["--home", str(home), "ledger", "repair", "--from-entries"]
                         ).exit_code == 0
    declare()
    assert runner.invoke(app, ["--home", str(home), "ledger", "verify"]).exit_code == 0


def test_a_repair_on_a_schema_0005_ledger_is_the_only_one_needed(tmp_path):
    """`ledger repair` run first on a ledger still at schema 0005 brings the schema to the
    newest revision before it rebuilds: otherwise the 0006 migration, run by the next
    command, would unseal the event rows it had just rebuilt (a second repair needed)."""
    from batterytrace.api.cli import app
    from typer.testing import CliRunner

    home, _ = _ledger_at_schema_0005(tmp_path)
    runner = CliRunner()
    repaired = runner.invoke(app, ["--home", str(home), "ledger", "repair", "--from-entries"])
    assert repaired.exit_code == 0, repaired.output
    Ledger.open(home).close()  # what every writing command does first: the newest schema
    verified = runner.invoke(app, ["--home", str(home), "ledger", "verify", "--json"])
    assert verified.exit_code == 0, verified.output
