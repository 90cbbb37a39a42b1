"""The UNTP Digital Product Passport credential of a battery, built from its verified evidence
bundle (verifier/untp_dpp.py, `bundle untp-passport`), valid against the pinned UNTP DPP
schema, its blocks traceable to what the verifier established."""

from __future__ import annotations

import hashlib
import json
import re
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


# --- the BatteryPassportCredential itself carries the UNTP blocks (issue 21) ---------------

BLOCKS = ("conformityClaim", "traceabilityInformation", "materialsProvenance",
          "emissionsScorecard")


def issue_passport(network: dict[str, Any], item: str, tmp: Path, *extra: str) -> Any:
    """`credential issue --type BatteryPassportCredential` at the ledger's home, the way a
    manufacturer issues one: the documented subject, the maker's key, `extra` options."""
    from batterytrace.api.cli import app
    from batterytrace.credentials.keys import write_key_file
    from test_passport import MODEL, example_subject, participant_key
    from typer.testing import CliRunner

    subject = example_subject("BatteryPassportCredential")
    subject.pop("gbt34014Code", None)
    subject["id"] = subject["product"]["id"] = item
    subject["product"]["name"] = MODEL
    (tmp / "subject.json").write_text(json.dumps(subject))
    key = tmp / "maker.json"
    write_key_file(participant_key(network["maker"]), key)
    return CliRunner().invoke(app, [
        "--home", str(network["home"]), "credential", "issue",
        "--type", "BatteryPassportCredential", "--subject", str(tmp / "subject.json"),
        "--key", str(key), "--issuer", network["maker"], "--issuer-name", "Pack maker",
        "--json", *extra]), subject


@pytest.fixture(scope="module")
def passport(issued: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, Any]:
    network = issued["network"]
    result, subject = issue_passport(network, issued["item"],
                                     tmp_path_factory.mktemp("passport-untp"),
                                     "--trust", str(network["home"] / "trust.toml"))
    assert result.exit_code == 0, (result.output, result.exception)
    return {**issued, "passport": json.loads(result.output)["credential"], "subject": subject}


def test_the_issued_passport_validates_against_both_schemas_with_every_block(
        passport: dict[str, Any]) -> None:
    from batterytrace.credentials.credential_types import validate_credential_document

    credential = passport["passport"]
    assert "BatteryPassportCredential" in credential["type"]
    assert untp_schema_errors({k: v for k, v in credential.items() if k != "proof"}) == []
    validate_credential_document(credential)
    subject = credential["credentialSubject"]
    for block in BLOCKS:  # each block present and not empty
        assert subject.get(block), block
    for name, value in passport["subject"].items():  # the Battery Pass attributes stay
        assert subject[name] == value, name


def test_the_passport_and_the_untp_passport_share_one_builder(
        passport: dict[str, Any]) -> None:
    mine = passport["passport"]["credentialSubject"]
    plain = passport["credential"]["credentialSubject"]  # `bundle untp-passport`
    for block in ("traceabilityInformation", "materialsProvenance", "emissionsScorecard"):
        assert mine[block] == plain[block], block
    # the same rules judged; only the passport rule differs: it judges the passport issued
    assert [c["id"] for c in mine["conformityClaim"]] == \
        [c["id"] for c in plain["conformityClaim"]]
    differ = [a["id"].rsplit("#claim-", 1)[1] for a, b in
              zip(mine["conformityClaim"], plain["conformityClaim"], strict=True)
              if a["verdict"] != b["verdict"]]
    assert set(differ) <= {"eu-art77-passport"}


def test_the_passport_rule_judges_the_passport_being_issued(passport: dict[str, Any]) -> None:
    from batterytrace.verifier.policy import evaluate_policy, load_policy
    from batterytrace.verifier.provenance import trace_provenance
    from batterytrace.verifier.provenance_facts import with_draft_passport

    lines = passport["bundle"].read_bytes().splitlines(keepends=True)
    facts = with_draft_passport(trace_provenance(lines, passport["item"]).to_json(),
                                passport["passport"])
    outcomes = evaluate_policy(load_policy("eu-2023-1542"), facts).outcomes
    claims = passport["passport"]["credentialSubject"]["conformityClaim"]
    assert [c["verdict"] for c in claims] == [o.status for o in outcomes]
    assert facts["passport_credential"] == passport["passport"]["id"]


MALFORMED = {
    "conformityClaim": [
        lambda c: c.update(verdict="MAYBE"),
        lambda c: c.update(conformance=c.get("conformance") is not True),  # against verdict
        lambda c: c.pop("referenceRegulation"),
        lambda c: c.update(conformityTopic="governance.vibes"),
    ],
    "traceabilityInformation": [
        lambda g: g.update(traceabilityEvent=[]),
        lambda g: g.update(verifiedRatio=1.5),
        lambda g: g["traceabilityEvent"][0].update(hashDigest="not-a-digest"),
    ],
    "materialsProvenance": [
        lambda m: m.update(recycledMassFraction=8.0),  # a percentage where UNTP has 0..1
        lambda m: m.update(originCountry="Congo"),
        lambda m: m.pop("name"),
    ],
    "emissionsScorecard": [
        lambda e: e.pop("carbonFootprint"),
        lambda e: e.update(operationalScope="CradleToCradle"),
        lambda e: e.update(primarySourcedRatio=-0.1),
    ],
}


@pytest.mark.parametrize("block", BLOCKS)
def test_a_missing_or_malformed_block_is_refused(passport: dict[str, Any], block: str) -> None:
    import copy

    from batterytrace.credentials.credential_types import validate_credential_document
    from batterytrace.credentials.errors import BatterytraceError

    good = copy.deepcopy(passport["passport"])
    good.pop("proof")
    validate_credential_document(good)
    missing = copy.deepcopy(good)
    del missing["credentialSubject"][block]
    assert block not in missing["credentialSubject"]  # the check of the first test fails
    for spoil in MALFORMED[block]:
        bad = copy.deepcopy(good)
        value = bad["credentialSubject"][block]
        spoil(value[0] if isinstance(value, list) else value)
        with pytest.raises(BatterytraceError):
            validate_credential_document(bad)
    # UNTP's own schema refuses what it defines: a Claim without its topic, a Material
    # without its name, an emissions scorecard without its footprint
    untp_bad = copy.deepcopy(good)
    first = untp_bad["credentialSubject"][block]
    target = first[0] if isinstance(first, list) else first
    target.pop({"conformityClaim": "conformityTopic", "materialsProvenance": "name",
                "emissionsScorecard": "carbonFootprint",
                "traceabilityInformation": "type"}[block])
    if block != "traceabilityInformation":  # UNTP requires no member of that one
        assert untp_schema_errors(untp_bad)


def test_a_passport_is_issued_only_from_a_verified_bundle_of_its_battery(
        passport: dict[str, Any], tmp_path: Path) -> None:
    from batterytrace.credentials.errors import InputError

    network = passport["network"]
    result, _ = issue_passport(network, passport["item"], tmp_path)  # no --trust
    assert isinstance(result.exception, InputError) and "--trust" in str(result.exception)
    other = tmp_path / "other"
    other.mkdir()
    result, _ = issue_passport(network, "https://id.example.com/items/not-this-one", other,
                               "--trust", str(network["home"] / "trust.toml"),
                               "--bundle", str(passport["bundle"]))
    assert getattr(result.exception, "code", None) == "UNTP_PASSPORT_INVALID"
    lines = passport["bundle"].read_bytes().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if b'"eventTime":"' in line)
    lines[at] = re.sub(rb'"eventTime":"(\d{4})', lambda m: b'"eventTime":"%d' % (
        int(m.group(1)) - 1), lines[at], count=1)  # an event dated a year earlier
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(b"".join(lines))
    third = tmp_path / "third"
    third.mkdir()
    result, _ = issue_passport(network, passport["item"], third, "--trust",
                               str(network["home"] / "trust.toml"), "--bundle", str(tampered))
    assert getattr(result.exception, "code", None) == "UNTP_PASSPORT_INVALID"
    assert "does not verify" in str(result.exception)


def test_the_passport_expands_with_the_bundled_contexts_and_drops_nothing(
        passport: dict[str, Any]) -> None:
    from test_credential_types import _expand, _scalars

    doc = {k: v for k, v in passport["passport"].items() if k != "proof"}
    expanded = _expand(doc)
    assert _scalars(expanded, expanded=True) == _scalars(doc, expanded=False)


def test_the_passport_page_shows_the_blocks_by_tier(passport: dict[str, Any]) -> None:
    from batterytrace.api.passport import build_passport, clear_cache
    from batterytrace.ledger.service import open_ledger

    network = passport["network"]
    clear_cache()
    ledger = open_ledger(network["home"], None)
    try:
        public = build_passport(ledger, passport["item"], tier="public")
        holder = build_passport(ledger, passport["item"], tier="legitimate-interest")
    finally:
        ledger.close()
    assert public.attributes.get("conformityClaim") and public.attributes.get(
        "emissionsScorecard")
    assert "materialsProvenance" not in public.attributes
    assert "traceabilityInformation" not in public.attributes
    assert holder.attributes["materialsProvenance"] == \
        passport["passport"]["credentialSubject"]["materialsProvenance"]


@pytest.mark.parametrize("case", ["garbage bundle", "not a bundle", "missing bundle",
                                  "unknown policy", "bad policy date"])
def test_bad_passport_inputs_are_refused_and_write_nothing(
        passport: dict[str, Any], tmp_path: Path, case: str) -> None:
    """Every input `credential issue --type BatteryPassportCredential` adds: a clear typed
    error (exit 2), and nothing appended to the ledger. A garbage bundle was a bare
    JSONDecodeError, a JSON bundle of the wrong shape an AttributeError."""
    from batterytrace.ledger.service import open_ledger

    network = passport["network"]
    trust = ["--trust", str(network["home"] / "trust.toml")]
    bad = tmp_path / "bad.jsonl"
    extra = {
        "garbage bundle": ["--bundle", str(bad)],
        "not a bundle": ["--bundle", str(bad)],
        "missing bundle": ["--bundle", str(tmp_path / "absent.jsonl")],
        "unknown policy": ["--policy", "no-such-policy"],
        "bad policy date": ["--policy-date", "2031-13-01"],
    }[case]
    bad.write_bytes(b"\x00\xff{not json\n" if case == "garbage bundle"
                    else b'{"type": "something else"}\n[1, 2]\n')
    ledger = open_ledger(network["home"], None)
    try:
        size = ledger.size
    finally:
        ledger.close()
    result, _ = issue_passport(network, passport["item"], tmp_path, *trust, *extra)
    # A typed error with its stable code, which the command line turns into exit 2.
    assert getattr(result.exception, "exit_code", None) == 2, (result.output, result.exception)
    assert getattr(result.exception, "code", None), result.exception
    assert "Traceback" not in result.output
    ledger = open_ledger(network["home"], None)
    try:
        assert ledger.size == size
    finally:
        ledger.close()
