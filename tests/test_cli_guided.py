"""The guided path to issue credentials and sign events, and verdicts that say exactly what
was checked: templates for every shipped type, every invalid field reported at once, expired
credentials refused, status lists republished on issue, `event sign` finding the key's
participant, `credential verify` without a trust file not claiming more than it checked."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from batterytrace.api.cli import run
from batterytrace.api.credential_templates import subject_template, template_types
from batterytrace.credentials.credential_types import credential_types, validate_subject
from test_credential_types import EXAMPLES
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
TYPES = [t.name for t in credential_types()]


def _run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    runner = CliRunner()
    with runner.isolation(input=stdin) as (out, err, _mixed):
        code = run([str(a) for a in argv])
        sys.stdout.flush()
        sys.stderr.flush()
        return code, out.getvalue().decode(), err.getvalue().decode()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("guided") / "home"
    code, _out, err = _run(["demo", "--demo-home", home])
    assert code == 0, err
    return home


@pytest.fixture
def home(demo: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(demo, copy)
    return copy


@pytest.mark.parametrize("type_name", TYPES)
def test_a_template_for_every_type_is_valid_and_complete(type_name: str) -> None:
    assert set(template_types()) == set(TYPES)
    code, out, err = _run(["credential", "template", "--type", type_name])
    assert code == 0, err
    subject = json.loads(out)
    assert subject == subject_template(type_name)
    assert subject == EXAMPLES[type_name]["credentialSubject"]  # the docs' example
    validate_subject(type_name, subject)
    required = (validate_subject.__globals__["credential_type"](type_name).model
                .model_json_schema(by_alias=True).get("required", []))
    assert set(required) <= set(subject), type_name
    code, out, err = _run(["credential", "schema", "--type", type_name])
    assert code == 0 and json.loads(out)["$schema"].endswith("2020-12/schema"), err


def test_issue_reports_every_invalid_field_at_once(home: Path, tmp_path: Path) -> None:
    subject = subject_template("IRMAAuditCredential")
    for field in ("achievementLevel", "countryOfOperation", "minerals"):
        del subject[field]
    subject["certified"] = "perhaps"
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(subject), encoding="utf-8")
    code, _out, err = _run(["--home", home, "credential", "issue", "--type",
                            "IRMAAuditCredential", "--subject", path, "--key",
                            home / "keys" / "auditor-irma.json"])
    assert code == 2 and len(err.splitlines()) == 1, err
    for field in ("achievementLevel", "countryOfOperation", "minerals", "certified"):
        assert f"credentialSubject.{field}" in err
    assert "more)" not in err


def test_an_expired_credential_needs_allow_expired(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(subject_template("IRMAAuditCredential")), encoding="utf-8")
    args = ["--home", home, "credential", "issue", "--type", "IRMAAuditCredential",
            "--subject", path, "--key", home / "keys" / "auditor-irma.json",
            "--valid-from", "2019-01-01", "--valid-until", "2020-01-01", "--json"]
    code, _out, err = _run(args)
    assert code == 2 and "--allow-expired" in err
    code, out, err = _run([*args, "--allow-expired"])
    assert code == 0, err
    assert json.loads(out)["credential"]["validUntil"] == "2020-01-01T00:00:00Z"


def test_issue_republishes_the_status_lists_for_an_offline_verify(home: Path,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(subject_template("IRMAAuditCredential")), encoding="utf-8")
    code, out, err = _run(["--home", home, "credential", "issue", "--type",
                           "IRMAAuditCredential", "--subject", path, "--key",
                           home / "keys" / "auditor-irma.json", "--json"])
    assert code == 0, err
    issued = json.loads(out)
    signed = tmp_path / "signed.json"
    signed.write_text(json.dumps(issued["credential"]), encoding="utf-8")
    urls = [e["statusListCredential"] for e in issued["credential"]["credentialStatus"]]
    assert sorted(issued["statusListsPublished"]) == sorted(urls)
    status_args: list[object] = []
    for n, url in enumerate(urls):
        code, out, err = _run(["--home", home, "status-list", "show", url])
        assert code == 0, err
        (tmp_path / f"list{n}.json").write_text(out, encoding="utf-8")
        status_args += ["--status", tmp_path / f"list{n}.json"]
    code, out, err = _run(["credential", "verify", signed, *status_args, "--require-status",
                           "--json"])
    assert code == 0, err
    decisions = json.loads(out)["status"]["decisions"]
    assert {d["source"] for d in decisions} == {"list"}
    # without the lists: nothing is claimed as read
    code, out, err = _run(["credential", "verify", signed, "--json"])
    verdict = json.loads(out)
    assert code == 0 and {d["source"] for d in verdict["status"]["decisions"]} == {
        "unavailable"}
    assert "status" not in verdict["checks"]
    code, out, err = _run(["credential", "verify", signed])
    first = out.splitlines()[0]
    assert "signature valid" in first and "issuer not checked against a trust list" in first
    assert "valid credential" not in out
    assert "status    not checked" in out
    code, _out, err = _run(["credential", "verify", signed, "--require-trust"])
    assert code == 1, err


def test_event_sign_finds_the_participant_of_the_key(home: Path) -> None:
    event = ROOT / "docs" / "examples" / "plain-event.json"
    code, out, err = _run(["--home", home, "event", "sign", event, "--key",
                           home / "keys" / "mine-kolwezi.json", "--json"])
    assert code == 0, err
    signed = json.loads(out)
    assert signed["issuer"].endswith(":participants:mine-kolwezi")
    code, out, err = _run(["--home", home, "event", "append", "-"],
                          stdin=json.dumps(signed["credential"]))
    assert code == 0, err
    code, out, _err = _run(["--home", home, "lot", "show",
                            "https://id.example.com/lots/co-hydroxide-KZ-2026-015", "--json"])
    assert code == 0 and json.loads(out)["history"]


def test_event_sign_with_an_unregistered_key_names_the_way_out(home: Path,
                                                                tmp_path: Path) -> None:
    key = tmp_path / "stranger.json"
    assert _run(["key", "new", "--out", key])[0] == 0
    code, _out, err = _run(["--home", home, "event", "sign",
                            ROOT / "docs" / "examples" / "plain-event.json", "--key", key])
    assert code == 2 and len(err.splitlines()) == 1
    assert "--issuer" in err and "participant list" in err


def test_bundle_verify_keeps_technical_notes_for_verbose(demo: Path) -> None:
    args = ["bundle", "verify", demo / "bundle.jsonl", "--trust", demo / "trust.toml"]
    code, out, err = _run(args)
    assert code == 0, err
    assert "ISSUED_LATER" not in out and "--verbose" in out
    code, out, err = _run([*args, "--verbose"])
    assert code == 0 and "ISSUED_LATER" in out
