"""`batterytrace trust|accreditation|status-list` and the ledger-backed credential commands."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from batterytrace.api import cli, cli_trust
from batterytrace.credentials.keys import Ed25519Key, write_key_file
from test_credential_types import EXAMPLES
from typer.testing import CliRunner

if "trust" not in {g.name for g in cli.app.registered_groups}:
    cli_trust.register(cli.app)  # until api/cli.py registers the module itself

RUNNER = CliRunner()
ROOT = Ed25519Key.from_seed(b"\x41" * 32)
BODY = Ed25519Key.from_seed(b"\x42" * 32)


def run(home: Path, *args: object, ok: bool = True):
    result = RUNNER.invoke(cli.app, ["--home", str(home), *map(str, args)])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def code(result) -> str:
    return getattr(result.exception, "code", repr(result.exception))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    run(home, "init", "--public-url", "https://ledger.example")
    for name, key in (("root", ROOT), ("body", BODY)):
        write_key_file(key, tmp_path / f"{name}.json")
    subject = copy.deepcopy(EXAMPLES["MineralOriginCredential"]["credentialSubject"])
    (tmp_path / "subject.json").write_text(json.dumps(subject))
    return home


def _issue(home: Path, tmp: Path) -> dict:
    out = run(home, "credential", "issue", "--type", "MineralOriginCredential", "--subject",
              tmp / "subject.json", "--key", tmp / "body.json",
              "--valid-from", "2025-10-02T00:00:00Z").output
    signed = json.loads(out)
    (tmp / "cred.json").write_text(out)
    return signed


def _status_args(paths: list[Path]) -> list[object]:
    return [arg for p in paths for arg in ("--status", p)]


def _publish_lists(home: Path, tmp: Path, signed: dict) -> list[Path]:
    paths = []
    for n, entry in enumerate(signed["credentialStatus"]):
        url = entry["statusListCredential"]
        out = run(home, "status-list", "publish", url, "--key", tmp / "body.json", "--json")
        path = tmp / f"list{n}.json"
        path.write_text(out.output)
        paths.append(path)
    return paths


def test_issue_find_status_lists_and_revoke(home: Path, tmp_path: Path) -> None:
    signed = _issue(home, tmp_path)
    assert [e["statusPurpose"] for e in signed["credentialStatus"]] == ["revocation",
                                                                        "suspension"]
    subject = signed["credentialSubject"]["id"]
    found = json.loads(run(home, "credential", "find", "--subject", subject, "--json").output)
    assert [c["id"] for c in found] == [signed["id"]]
    shown = json.loads(run(home, "credential", "show", signed["id"]).output)
    assert shown == signed
    lists = _publish_lists(home, tmp_path, signed)
    checked = json.loads(run(home, "credential", "check", tmp_path / "cred.json",
                             *_status_args(lists), "--json").output)
    assert checked["issuer_status"] == "NOT_EVALUATED" and "status" in checked["checks"]

    out = json.loads(run(home, "credential", "suspend", signed["id"], "--key",
                         tmp_path / "body.json", "--json").output)
    assert out["action"] == "suspension"
    run(home, "credential", "reinstate", signed["id"], "--key", tmp_path / "body.json")
    run(home, "credential", "revoke", signed["id"], "--key", tmp_path / "body.json")
    url = signed["credentialStatus"][0]["statusListCredential"]
    lists[0].write_text(run(home, "status-list", "show", url).output)
    failed = run(home, "credential", "check", tmp_path / "cred.json",
                 *_status_args(lists), ok=False)
    assert code(failed) == "CREDENTIAL_STATUS_REVOKED"
    again = run(home, "credential", "reinstate", signed["id"], "--key", tmp_path / "body.json",
                ok=False)
    assert code(again) == "ANCHOR_STATE_ERROR"
    table = json.loads(run(home, "status-list", "show", "--json").output)
    assert {t["purpose"] for t in table} == {"revocation", "suspension"}
    assert not any(t["stale"] for t in table)


def test_bad_input_writes_nothing(home: Path, tmp_path: Path) -> None:
    size = json.loads(run(home, "ledger", "info", "--json").output)["size"]
    (tmp_path / "bad.json").write_text(json.dumps({"mineral": "unobtainium"}))
    bad = run(home, "credential", "issue", "--type", "MineralOriginCredential", "--subject",
              tmp_path / "bad.json", "--key", tmp_path / "body.json", ok=False)
    assert code(bad) == "CREDENTIAL_SUBJECT_ERROR" and "credentialSubject.id" in str(bad.exception)
    unknown = run(home, "credential", "issue", "--type", "NoSuchCredential", "--subject",
                  tmp_path / "subject.json", "--key", tmp_path / "body.json", ok=False)
    assert code(unknown) == "UNKNOWN_CREDENTIAL_TYPE"
    signed = _issue(home, tmp_path)
    wrong_key = run(home, "credential", "publish", tmp_path / "cred.json", "--key",
                    tmp_path / "root.json", ok=False)
    assert code(wrong_key) == "ANCHOR_SIGNER_ERROR"
    assert json.loads(run(home, "ledger", "info", "--json").output)["size"] == size + 1
    dup = json.loads(run(home, "credential", "show", signed["id"]).output)
    assert dup["id"] == signed["id"]


def test_trust_file_accreditation_and_checks(home: Path, tmp_path: Path) -> None:
    trust = tmp_path / "trust.toml"
    run(home, "trust", "init", trust, "--from-ledger")
    run(home, "trust", "add", trust, "--governance-root", ROOT.did_key, "--name", "Board")
    shown = json.loads(run(home, "trust", "show", trust, "--json").output)
    assert shown["governanceRoots"][0]["did"] == ROOT.did_key and len(shown["ledgers"]) == 1
    _issue(home, tmp_path)
    untrusted = run(home, "credential", "check", tmp_path / "cred.json", "--trust", trust,
                    "--require-trust", ok=False)
    assert code(untrusted) == "UNTRUSTED_ISSUER" and untrusted.exception.exit_code == 1
    acc = run(home, "accreditation", "issue", "--subject", BODY.did_key, "--type",
              "MineralOriginCredential", "--mineral", "cobalt", "--region", "ZM",
              "--valid-from", "2025-01-01T00:00:00Z", "--valid-until", "2030-01-01T00:00:00Z",
              "--key", tmp_path / "root.json").output
    (tmp_path / "acc.json").write_text(acc)
    info = json.loads(run(home, "accreditation", "show", tmp_path / "acc.json", "--json").output)
    assert info["minerals"] == ["cobalt"] and info["issuer"] == ROOT.did_key
    result = json.loads(run(home, "credential", "check", tmp_path / "cred.json", "--trust",
                            trust, "--accreditation", tmp_path / "acc.json", "--require-trust",
                            "--json").output)
    assert result["issuer_status"] == "TRUSTED" and result["trust_root"] == ROOT.did_key
    missing = run(home, "credential", "check", tmp_path / "cred.json", "--require-status",
                  ok=False)
    assert code(missing) == "STATUS_RETRIEVAL_ERROR"
    types = json.loads(run(home, "credential", "types", "--json").output)
    assert "MineralOriginCredential" in {t["name"] for t in types}
