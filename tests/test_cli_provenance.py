"""`batterytrace bundle provenance` and `bundle verify --policy`, end to end on a real ledger."""

from __future__ import annotations

import json

import pytest
from batterytrace.api import cli
from batterytrace.verifier.trust import write_trust
from custody_factory import item_id
from test_provenance import bundle, world  # noqa: F401  (the module-scoped ledger fixture)
from typer.testing import CliRunner

RUNNER = CliRunner()


@pytest.fixture(scope="module")
def files(world, tmp_path_factory):  # noqa: F811
    led, trust = world
    folder = tmp_path_factory.mktemp("cli-prov")
    (folder / "bundle.jsonl").write_bytes(b"".join(bundle(led, item=item_id("pack-1"))))
    write_trust(trust, folder / "trust.toml")
    return folder


def run(*args: str):
    return RUNNER.invoke(cli.app, list(args))


def test_provenance_command_json_and_human(files):
    result = run("bundle", "provenance", str(files / "bundle.jsonl"), "--trust",
                 str(files / "trust.toml"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["elements"]["Co"]["mass_kg"] == pytest.approx(0.2)
    human = run("bundle", "provenance", str(files / "bundle.jsonl"), "--trust",
                str(files / "trust.toml"))
    assert human.exit_code == 0 and "Provenance of" in human.stdout and "CD 100.0%" in human.stdout


def test_verify_with_policy_fails_on_a_rule_and_warns(files):
    base = ("bundle", "verify", str(files / "bundle.jsonl"), "--trust", str(files / "trust.toml"))
    result = run(*base, "--policy", "eu-2023-1542", "--policy-date", "2031-09-01", "--json")
    assert result.exit_code == 1, result.output
    outcomes = {o["rule_id"]: o["status"] for o in json.loads(result.stdout)["policy"]["outcomes"]}
    # the cells hold no recycled cobalt and no claim: Art. 8 fails; no recycler statement
    assert outcomes["eu-art8-recycled-content"] == "FAIL"
    assert outcomes["eu-annex12-recycling-efficiency"] == "NOT_EVALUATED"
    assert outcomes["eu-waste-shipments"] == "PASS"
    human = run(*base, "--policy", "eu-2023-1542", "--policy-date", "2031-09-01")
    assert human.exit_code == 1 and "warning" in human.stdout
    # before any rule is in force: only warnings, the verification passes
    early = run(*base, "--policy", "eu-2023-1542", "--policy-date", "2020-01-01")
    assert early.exit_code == 0, early.output
    bad = run(*base, "--policy", "eu-2023-1542", "--policy-date", "2031-13-01")
    assert getattr(bad.exception, "exit_code", None) == 2  # cli.main turns it into exit 2


def test_provenance_of_a_tampered_bundle_exits_1(files, tmp_path):
    lines = (files / "bundle.jsonl").read_bytes().splitlines(keepends=True)
    lines[20] = lines[20].replace(b'"received":"', b'"received":"1')
    (tmp_path / "bad.jsonl").write_bytes(b"".join(lines))
    result = run("bundle", "provenance", str(tmp_path / "bad.jsonl"), "--trust",
                 str(files / "trust.toml"), "--json")
    assert result.exit_code == 1
