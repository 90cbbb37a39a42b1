"""The UNTP Digital Product Passport credential of a battery, built from its verified evidence
bundle (verifier/untp_dpp.py, `bundle untp-passport`), valid against the pinned UNTP DPP
schema, its blocks traceable to what the verifier established."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from batterytrace.credentials.canonical import canonicalize
from batterytrace.verifier.untp_dpp import untp_schema_errors

UNTP = Path(__file__).resolve().parents[2] / "shared" / "domain" / "samples" / "untp"


def test_the_pinned_schema_accepts_untps_own_instance_and_refuses_a_broken_one() -> None:
    instance = json.loads((UNTP / "data-models-working" / "untp-dpp-instance.json").read_text())
    assert untp_schema_errors(instance) == []
    broken = {**instance, "type": ["VerifiableCredential"]}
    assert untp_schema_errors(broken)


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from batterytrace.api.cli import app
    from batterytrace.api.passport import export_item_bundle
    from batterytrace.credentials.keys import write_key_file
    from batterytrace.ledger.service import open_ledger
    from custody_factory import key_for
    from test_passport import build_network
    from typer.testing import CliRunner

    tmp = tmp_path_factory.mktemp("untp")
    network = build_network(tmp, None)
    ledger = open_ledger(network["home"], None)
    try:
        ledger.sign_checkpoint()
        bundle = tmp / "bundle.jsonl"
        bundle.write_bytes(export_item_bundle(ledger, network["item"]))
    finally:
        ledger.close()
    key = tmp / "cellmaker.json"
    write_key_file(key_for("cellmaker"), key)
    out = tmp / "untp.json"
    result = CliRunner().invoke(app, [
        "bundle", "untp-passport", str(bundle), "--trust", str(network["home"] / "trust.toml"),
        "--policy", "eu-2023-1542", "--key", str(key), "--name", "Wroclaw Cell Works",
        "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    return {"credential": json.loads(out.read_text()), "bundle": bundle,
            "item": network["item"], "network": network}


def test_the_passport_validates_and_has_the_four_blocks(issued: dict[str, Any]) -> None:
    credential = issued["credential"]
    assert untp_schema_errors({k: v for k, v in credential.items() if k != "proof"}) == []
    assert credential["type"] == ["DigitalProductPassport", "VerifiableCredential"]
    subject = credential["credentialSubject"]
    assert subject["id"] == issued["item"] and subject["granularityLevel"] == "item"
    for block in ("conformityClaim", "traceabilityInformation", "materialsProvenance"):
        assert subject[block], block
    assert credential["proof"]["cryptosuite"] == "eddsa-jcs-2022"


def test_claims_carry_the_verdicts_sources_and_backing_credentials(
        issued: dict[str, Any]) -> None:
    from batterytrace.verifier.policy import evaluate_policy, load_policy
    from batterytrace.verifier.provenance import trace_provenance

    lines = issued["bundle"].read_bytes().splitlines(keepends=True)
    outcomes = evaluate_policy(load_policy("eu-2023-1542"),
                               trace_provenance(lines, issued["item"]).to_json()).outcomes
    claims = issued["credential"]["credentialSubject"]["conformityClaim"]
    assert [c["verdict"] for c in claims] == [o.status for o in outcomes]
    assert [c["referenceRegulation"]["name"] for c in claims] == [o.source for o in outcomes]
    for claim in claims:  # conformance only where the rule was evaluated
        assert ("conformance" in claim) == (claim["verdict"] != "NOT_EVALUATED")
    credentials = {}
    for line in lines:
        record = json.loads(line)
        if record["type"] == "credential":
            credentials[record["credential"]["id"]] = record["credential"]
    backed = [c for c in claims if "conformityEvidence" in c]
    assert backed, "a claim names the credential backing it"
    for claim in backed:
        link = claim["conformityEvidence"]
        cid = link["linkName"].removeprefix("credential ")
        assert link["hashDigest"] == hashlib.sha256(canonicalize(credentials[cid])).hexdigest()


def test_traceability_materials_and_emissions_come_from_the_bundle(
        issued: dict[str, Any]) -> None:
    lines = issued["bundle"].read_bytes().splitlines(keepends=True)
    events = [e for line in lines if json.loads(line)["type"] == "entry"
              for e in (json.loads(line)["entry"]["document"].get("credentialSubject") or [])
              if json.loads(line)["entry"]["kind"] == "event"]
    subject = issued["credential"]["credentialSubject"]
    links = [link for group in subject["traceabilityInformation"]
             for link in group["traceabilityEvent"]]
    assert len(links) == len(events)
    assert all(g["verifiedRatio"] == 1.0 for g in subject["traceabilityInformation"])
    fractions = [m["massFraction"] for m in subject["materialsProvenance"]]
    assert all(0 < f <= 1 for f in fractions) and sum(fractions) <= 1
    assert all(m.get("originCountry") for m in subject["materialsProvenance"])
    scorecard = subject.get("emissionsScorecard")
    if scorecard is not None:  # from the carbon-footprint credential about the battery
        assert scorecard["carbonFootprint"] > 0 and scorecard["declaredUnit"] == "KWH"
