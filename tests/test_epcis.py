"""EPCIS 2.0 in and out: the mapping of every GS1 sample (../shared/domain/samples/epcis) to
DTE events and back, the import into a ledger (signed, one atomic batch, the custody rules
judging it), the export with ledger positions and inclusion proofs, validated against the
vendored GS1 EPCIS 2.0 JSON Schema and JSON-LD context."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from batterytrace.ledger import epcis as E
from batterytrace.ledger.epcis_schema import schema_errors, undefined_terms
from batterytrace.ledger.events import DTE_CONTEXTS, loads_exact, parse_credential
from custody_factory import BUILDERS, did_for, key_for, lot_id

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "shared" / "domain" / "samples"
                  / "epcis").glob("*.jsonld"))
IMPORTER = "importer"
SEED_TIME = "2000-01-01T00:00:00Z"
# The error-declaration sample declares an event erroneous that the ledger must hold already
# (EPCIS 2.0: a declaration repeats the erroneous event): the seed imports it first.


def load(path: Path) -> Any:
    return loads_exact(path.read_text(encoding="utf-8"))


def test_samples_are_present() -> None:
    assert len(SAMPLES) >= 8
    kinds = {e["type"] for p in SAMPLES for e in E.document_events(load(p))[0]}
    assert kinds == set(E.EPCIS_KINDS)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_mapping_round_trip(path: Path) -> None:
    """EPCIS -> DTE (a valid DTE credential) -> EPCIS: equal on the fields EPCIS defines; the
    exported document validates against the GS1 schema and context."""
    document = load(path)
    events, _ = E.document_events(document)
    mapped = E.dte_events_of(document, did_for(IMPORTER))
    parse_credential({"@context": list(DTE_CONTEXTS),
                      "type": ["DigitalTraceabilityEvent", "VerifiableCredential"],
                      "id": "urn:uuid:00000000-0000-4000-8000-000000000000",
                      "issuer": {"type": ["CredentialIssuer"], "id": did_for(IMPORTER),
                                 "name": "Importer GmbH"},
                      "credentialSubject": [m.event for m in mapped]})
    out = [E.epcis_event_of(m.event, {"position": i}) for i, m in enumerate(mapped)]
    contexts = [c for m in mapped for c in E.event_contexts(m.event)]
    exported = E.epcis_document(out, "2026-01-01T00:00:00.000Z", contexts)
    assert schema_errors(exported) == []
    assert undefined_terms(exported) == []
    assert [E.comparable(e) for e in out] == [E.comparable(e) for e in events]


def test_query_documents_are_read() -> None:
    document = load(SAMPLES[0])
    events, _ = E.document_events(document)
    query = {"@context": document["@context"], "type": "EPCISQueryDocument",
             "schemaVersion": "2.0", "creationDate": "2026-01-01T00:00:00Z",
             "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery",
                                            "resultsBody": {"eventList": events}}}}
    assert schema_errors(query) == []
    assert [m.event for m in E.dte_events_of(query, "did:example:x")] == [
        m.event for m in E.dte_events_of(document, "did:example:x")]


def test_unmappable_events_are_each_named_with_their_index() -> None:
    good = {"type": "ObjectEvent", "eventTime": "2026-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "epcList": ["urn:x:1"],
            "bizLocation": {"id": "urn:epc:id:sgln:0614141.00888.0"}}
    nowhere = {k: v for k, v in good.items() if k != "bizLocation"}
    pattern = {**good, "epcList": ["urn:epc:idpat:sgtin:4012345.066666.*"]}
    extended = {**good, "type": "https://example.org/MyEvent"}
    invalid = {**good, "action": "MAYBE"}
    document = {"@context": [E.EXPORT_CONTEXT[0]],
                "type": "EPCISDocument", "schemaVersion": "2.0",
                "creationDate": "2026-01-01T00:00:00Z",
                "epcisBody": {"eventList": [good, nowhere, pattern, extended, invalid]}}
    with pytest.raises(E.EpcisImportError) as caught:
        E.dte_events_of(document, "did:example:x")
    error = caught.value
    assert [e.index for e in error.errors] == [1, 2, 3, 4]
    assert all(e.code == "EPCIS_EVENT_UNMAPPABLE" for e in error.errors)
    assert "readPoint" in error.errors[0].reason and "pattern" in error.errors[1].reason
    assert error.to_problem()["details"]["events"][0]["index"] == 1
    for bad in ({"type": "EPCISDocument"}, {"type": "Other", "epcisBody": {}}, []):
        with pytest.raises(E.EpcisDocumentError):
            E.dte_events_of(bad, "did:example:x")


def test_export_never_shows_what_the_ledger_did_not_sign() -> None:
    """An `epcis` member that contradicts the signed DTE fields is overridden by them."""
    event = {"type": ["TransactionEvent", "Event"], "id": "urn:uuid:1",
             "eventTime": "2026-01-01T00:00:00Z", "action": "add",
             "bizLocation": "https://l.example/facilities/a",
             "sourceParty": "did:web:l.example:participants:a",
             "destinationParty": "did:web:l.example:participants:b",
             "epcis": {"fields": {
                 "sourceList": [{"type": "owning_party", "source": "did:web:evil"}],
                 "readPoint": {"id": "urn:evil"}, "epcList": ["urn:evil:item"],
                 "eventID": "urn:evil"}, "derived": ["bizLocation"]}}
    out = E.epcis_event_of(event)
    assert out["sourceList"] == [{"type": "owning_party",
                                  "source": "did:web:l.example:participants:a"}]
    assert out["bizLocation"] == {"id": "https://l.example/facilities/a"}
    assert "epcList" not in out and out["eventID"] == "urn:uuid:1"


# --- through a ledger -----------------------------------------------------------------------


def _facility(fid: str, kind: str) -> dict[str, Any]:
    doc = BUILDERS.facility_doc("x", IMPORTER, kind, "DE")
    doc["id"] = fid
    doc["name"] = fid
    return doc


def _augment(document: dict[str, Any]) -> dict[str, Any]:
    """The sample with what the ledger needs where an event creates things and EPCIS has no
    field for it: the custody model of a transformation and the declarations of the items and
    lots it makes (as `batterytrace:` members and ILMD entries; the comparison leaves them
    out)."""
    document = copy.deepcopy(document)
    for event in E.document_events(document)[0]:
        if event["type"] != "TransformationEvent":
            continue
        event["batterytrace:custodyModel"] = "segregated"
        ilmd = event.setdefault("ilmd", {})
        if event.get("outputEPCList"):
            ilmd["batterytrace:itemDeclarations"] = [
                {"id": i, "category": "component", "mass": {"value": 0.1, "uom": "KGM"},
                 "composition": {}} for i in event["outputEPCList"]]
        lots = [q["epcClass"] for q in event.get("outputQuantityList") or []
                if q.get("uom") in ("KGM", "TNE", "GRM") and ":idpat:" not in q["epcClass"]]
        if lots:
            ilmd["batterytrace:lotDeclarations"] = [{"id": x, "composition": {}} for x in lots]
    return document


ADDED = ("batterytrace:custodyModel", "batterytrace:itemDeclarations",
         "batterytrace:lotDeclarations")


def _without_added(event: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in E.comparable(event).items() if k not in ADDED}
    if "ilmd" in out:
        out["ilmd"] = {k: v for k, v in out["ilmd"].items() if k not in ADDED}
        if not out["ilmd"]:
            del out["ilmd"]
    return out


def _seed(mapped: list[E.MappedEvent]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Registry documents (the importer, its facilities: every location of the sample and a
    seed site) and the seed credentials that make the items and lots the sample uses before
    it creates them (an extraction, then a production)."""
    made: set[str] = set()
    items: list[str] = []
    lots: dict[str, float] = {}
    locations: list[str] = []
    for m in mapped:
        event = m.event
        if event["bizLocation"] not in locations:
            locations.append(event["bizLocation"])
        used = [x["id"] for name in ("epcList", "inputEPCList", "childEPCList")
                for x in event.get(name) or []]
        used += [event["parentEPC"]["id"]] if "parentEPC" in event else []
        for item in used:
            if item not in made and item not in items:
                items.append(item)
        for name in ("quantityList", "inputQuantityList"):
            for q in event.get(name) or []:
                if q["productId"] not in made:
                    lots[q["productId"]] = lots.get(q["productId"], 0) + float(q["quantity"])
        made.update(x["id"] for x in event.get("outputEPCList") or [])
        made.update(q["productId"] for q in event.get("outputQuantityList") or [])
    registry = [BUILDERS.sign_admin(BUILDERS.participant_doc(
        IMPORTER, "Importer GmbH", ["miner", "cell-maker", "pack-maker", "recycler"], "DE"))]
    seed_mine, seed_plant = "urn:test:seed-mine", "urn:test:seed-plant"
    registry += [BUILDERS.sign_admin(_facility(seed_mine, "mine")),
                 BUILDERS.sign_admin(_facility(seed_plant, "plant"))]
    registry += [BUILDERS.sign_admin(_facility(x, "plant")) for x in locations]
    seed_events: list[dict[str, Any]] = []
    base = "seed-ore"
    total = sum(lots.values()) * 2 + 10
    seed_events.append(BUILDERS.extraction("x", base, total, {}, time=SEED_TIME))
    seed_events[-1]["bizLocation"] = seed_mine
    for lot, kg in lots.items():
        production = BUILDERS.transformation("x", [(base, kg * 2)], [("y", kg * 2, {})])
        production["bizLocation"] = seed_plant
        production["eventTime"] = "2000-01-02T00:00:00Z"
        production["outputQuantityList"][0]["productId"] = lot
        production["lotDeclarations"][0]["id"] = lot
        seed_events.append(production)
    if items:
        production = BUILDERS.transformation(
            "x", [(base, 1)], output_items=[("z", "component", 0.1, {})])
        production["bizLocation"] = seed_plant
        production["eventTime"] = "2000-01-02T00:00:00Z"
        production["outputEPCList"] = [{"id": i, "name": i} for i in items]
        production["itemDeclarations"] = [
            {"id": i, "category": "component", "mass": {"value": 0.1, "uom": "KGM"},
             "composition": {}} for i in items]
        seed_events.append(production)
    return registry, [BUILDERS.signed_credential(IMPORTER, seed_events)]


def _erroneous_originals(document: dict[str, Any]) -> dict[str, Any] | None:
    """The events a document's error declarations name, as their issuer recorded them (the
    declarations without their errorDeclaration), or None when it declares none."""
    events = [{k: v for k, v in e.items() if k != "errorDeclaration"}
              for e in E.document_events(document)[0] if "errorDeclaration" in e]
    if not events:
        return None
    return {**document, "epcisBody": {"eventList": events}}


def _ledger_for(tmp_path: Path, mapped: list[E.MappedEvent]) -> Any:
    from batterytrace.ledger.log import Submission
    from batterytrace.ledger.service import open_ledger
    from test_api_support import make_home

    registry, seeds = _seed(mapped)
    home = make_home(tmp_path, None)
    ledger = open_ledger(home, None)
    ledger.append([Submission("registry", d) for d in registry])
    ledger.append([Submission("event", d) for d in seeds])
    return ledger


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_imports_exports_and_compares_equal(path: Path, tmp_path: Path) -> None:
    from batterytrace.ledger.epcis_io import export_epcis, import_epcis
    from batterytrace.ledger.merkle import verify_inclusion

    original = load(path)
    document = _augment(original)
    issuer = did_for(IMPORTER)
    ledger = _ledger_for(tmp_path, E.dte_events_of(document, issuer))
    try:
        erroneous = _erroneous_originals(document)
        if erroneous is not None:
            import_epcis(ledger, erroneous, key_for(IMPORTER), issuer)
        before = ledger.size
        result = import_epcis(ledger, document, key_for(IMPORTER), issuer,
                              events_per_credential=1)
        assert len(result.results) == len(result.events) and ledger.size == before + len(
            result.events)
        ledger.sign_checkpoint()
        exported = export_epcis(ledger, all_entries=True)
    finally:
        ledger.close()
    assert schema_errors(exported) == []
    assert undefined_terms(exported) == []
    events = exported["epcisBody"]["eventList"]
    imported = events[-len(result.events):]  # after the seed events
    augmented, _ = E.document_events(document)
    assert [E.comparable(e) for e in imported] == [E.comparable(e) for e in augmented]
    # Equal to the GS1 sample itself, but for the project fields the test added.
    assert [_without_added(e) for e in imported] == [
        _without_added(e) for e in E.document_events(original)[0]]
    # Each event's ledger reference proves its entry's inclusion in the signed tree.
    for event in imported:
        reference = event[E.LEDGER_FIELD]
        proof = reference["inclusionProof"]
        verify_inclusion(bytes.fromhex(reference["leafHash"]), reference["position"],
                         proof["treeSize"], [bytes.fromhex(h) for h in proof["hashes"]],
                         bytes.fromhex(proof["rootHash"]))


def test_a_refused_event_appends_nothing(tmp_path: Path) -> None:
    """An import the custody rules refuse at its last event appends none of its events."""
    from batterytrace.credentials.errors import BatterytraceError
    from batterytrace.ledger.epcis_io import import_epcis

    document = load(next(p for p in SAMPLES if p.name == "Example_9.6.1-ObjectEvent.jsonld"))
    issuer = did_for(IMPORTER)
    mapped = E.dte_events_of(document, issuer)
    ledger = _ledger_for(tmp_path, mapped)
    try:
        document["epcisBody"]["eventList"][1]["epcList"] = ["urn:epc:id:sgtin:0614141.1.404"]
        before = ledger.size
        with pytest.raises(BatterytraceError) as caught:
            import_epcis(ledger, document, key_for(IMPORTER), issuer, events_per_credential=1)
        assert caught.value.code == "UNKNOWN_ITEM"
        assert ledger.size == before
    finally:
        ledger.close()


def test_cli_import_and_export(tmp_path: Path) -> None:
    """`event import` then `event export --item --format epcis`, as a user runs them; an
    unmappable document exits 2 naming each event."""
    from batterytrace.api.cli import app
    from batterytrace.credentials.keys import write_key_file
    from typer.testing import CliRunner

    path = next(p for p in SAMPLES if p.name == "Example_9.6.1-ObjectEvent.jsonld")
    issuer = did_for(IMPORTER)
    ledger = _ledger_for(tmp_path, E.dte_events_of(load(path), issuer))
    home = ledger.home.path
    ledger.close()
    key = tmp_path / "importer.json"
    write_key_file(key_for(IMPORTER), key)
    runner = CliRunner()
    result = runner.invoke(app, ["--home", str(home), "event", "import", str(path), "--key",
                                 str(key), "--issuer", issuer, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert json.loads(result.output)["events"] == 2
    out = tmp_path / "out.jsonld"
    item = "urn:epc:id:sgtin:0614141.107346.2018"
    result = runner.invoke(app, ["--home", str(home), "event", "export", "--item", item,
                                 "--format", "epcis", "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    exported = json.loads(out.read_text())
    assert schema_errors(exported) == [] and undefined_terms(exported) == []
    ids = [e.get("eventID") for e in exported["epcisBody"]["eventList"]]
    assert ids[-2:] == [e["eventID"] for e in load(path)["epcisBody"]["eventList"]]
    bad = tmp_path / "bad.jsonld"
    bad.write_text(json.dumps({"type": "EPCISDocument", "schemaVersion": "2.0",
                               "creationDate": "2026-01-01T00:00:00Z", "@context": [],
                               "epcisBody": {"eventList": [{"type": "Nope"}]}}))
    result = runner.invoke(app, ["--home", str(home), "event", "import", str(bad), "--key",
                                 str(key)])
    assert result.exception.code == "EPCIS_IMPORT_REFUSED"
    assert result.exception.exit_code == 2
    assert lot_id("x")  # the factory's ids stay URIs
