"""`batterytrace key|credential|presentation`: outputs and exit codes (0 ok, 1 failed, 2 input)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from batterytrace.api.cli import app
from batterytrace.api.cli_credentials import credential_app
from batterytrace.credentials.keys import Ed25519Key, write_key_file
from conftest import W3C
from typer.testing import CliRunner

RUNNER = CliRunner()
UNSIGNED = W3C / "vc-di-eddsa" / "unsigned.json"
SIGNED_JCS = W3C / "vc-di-eddsa" / "eddsa-jcs-2022" / "signedJCS.json"


def run(*args: str):
    return RUNNER.invoke(app, [str(a) for a in args])


def cli(*args: str) -> subprocess.CompletedProcess:
    """The real console entry point (api/cli.main), for exit codes and the one-line reason."""
    return subprocess.run(
        [sys.executable, "-m", "batterytrace.api.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture()
def issuer(tmp_path: Path) -> tuple[Ed25519Key, Path]:
    key = Ed25519Key.from_seed(b"\x31" * 32)
    path = tmp_path / "issuer.json"
    write_key_file(key, path)
    return key, path


def _credential(tmp_path: Path, key: Ed25519Key) -> Path:
    doc = json.loads(UNSIGNED.read_text())
    doc["issuer"] = key.did_key
    path = tmp_path / "unsigned.json"
    path.write_text(json.dumps(doc))
    return path


def test_key_new_writes_a_private_multikey(tmp_path: Path):
    out = tmp_path / "k.json"
    result = run("key", "new", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["didKey"].startswith("did:key:z6Mk") and "secretKeyMultibase" not in data
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert Ed25519Key.from_multikey(json.loads(out.read_text())).did_key == data["didKey"]
    again = run("key", "new", "--out", out)
    assert again.exit_code != 0 and again.exception.code == "INPUT_ERROR"


def test_sign_reproduces_the_w3c_vector(tmp_path: Path):
    key_file = tmp_path / "vector.json"
    keypair = json.loads((W3C / "vc-di-eddsa" / "keyPair.json").read_text())
    write_key_file(Ed25519Key.from_multikey(keypair), key_file)
    expected = json.loads(SIGNED_JCS.read_text())
    result = run(
        "credential", "sign", UNSIGNED, "--key", key_file,
        "--created", expected["proof"]["created"],
        "--verification-method", expected["proof"]["verificationMethod"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == expected


def test_sign_verify_tamper(tmp_path: Path, issuer):
    key, key_file = issuer
    signed = run("credential", "sign", _credential(tmp_path, key), "--key", key_file)
    assert signed.exit_code == 0, signed.output
    good = tmp_path / "signed.json"
    good.write_text(signed.output)
    ok = run("credential", "verify", good, "--json")
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.output)
    assert report["ok"] and report["issuer"] == key.did_key and "validity" in report["checks"]
    human = run("credential", "verify", good)
    assert human.exit_code == 0 and "valid" in human.output and key.did_key in human.output
    doc = json.loads(good.read_text())
    doc["credentialSubject"]["alumniOf"] = "Forged University"
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(doc))
    failed = run("credential", "verify", bad, "--json")
    assert failed.exception.code == "PROOF_VERIFICATION_ERROR"
    assert json.loads(failed.output)["error"]["code"] == "PROOF_VERIFICATION_ERROR"
    early = run("credential", "verify", good, "--at", "2022-12-31")
    assert early.exception.code == "NOT_YET_VALID_ERROR"


def test_exit_codes_through_the_console_entry_point(tmp_path: Path):
    ok = cli("credential", "verify", SIGNED_JCS, "--proof-only")
    assert ok.returncode == 0, ok.stderr
    bound = cli("credential", "verify", SIGNED_JCS)  # example issuer: cannot be bound
    assert bound.returncode == 1 and "VERIFICATION_METHOD_ERROR" in bound.stderr
    assert len(bound.stderr.strip().splitlines()) == 1
    doc = json.loads(SIGNED_JCS.read_text())
    doc["name"] = "Changed"
    tampered = tmp_path / "t.json"
    tampered.write_text(json.dumps(doc))
    failed = cli("credential", "verify", tampered, "--proof-only")
    assert failed.returncode == 1 and "PROOF_VERIFICATION_ERROR" in failed.stderr
    missing = cli("credential", "verify", tmp_path / "missing.json")
    assert missing.returncode == 2 and "PARSING_ERROR" in missing.stderr
    bad_time = cli("credential", "verify", SIGNED_JCS, "--at", "soon")
    assert bad_time.returncode == 2


def test_error_line_prints_did_key_verbatim():
    # rich turns the ":key:" of "did:key:" into an emoji unless emoji codes are disabled
    bound = cli("credential", "verify", SIGNED_JCS)
    assert "did:key:z6Mk" in bound.stderr


def test_presentation_create_and_verify(tmp_path: Path, issuer):
    key, key_file = issuer
    signed = tmp_path / "vc.json"
    signed.write_text(
        run("credential", "sign", _credential(tmp_path, key), "--key", key_file).output
    )
    holder_file = tmp_path / "holder.json"
    write_key_file(Ed25519Key.from_seed(b"\x32" * 32), holder_file)
    created = run(
        "presentation", "create", signed, "--key", holder_file,
        "--challenge", "c-77", "--domain", "https://buyer.example",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    vp = tmp_path / "vp.json"
    vp.write_text(created.output)
    ok = run(
        "presentation", "verify", vp, "--challenge", "c-77",
        "--domain", "https://buyer.example", "--json",
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["credentials"][0]["issuer"] == key.did_key
    wrong = run("presentation", "verify", vp, "--challenge", "c-78")
    assert wrong.exception.code == "INVALID_CHALLENGE_ERROR"


def test_did_web_documents_are_handed_in(tmp_path: Path, issuer):
    key, key_file = issuer
    web = "did:web:assay.example"
    did_doc = {
        "id": web,
        "verificationMethod": [
            {"id": "#k1", "type": "Multikey", "controller": web,
             "publicKeyMultibase": key.public_multibase}
        ],
        "assertionMethod": ["#k1"],
    }  # fmt: skip
    doc_file = tmp_path / "did.json"
    doc_file.write_text(json.dumps([did_doc]))
    unsigned = json.loads(UNSIGNED.read_text())
    unsigned["issuer"] = web
    source = tmp_path / "web.json"
    source.write_text(json.dumps(unsigned))
    signed = tmp_path / "signed.json"
    signed.write_text(
        run("credential", "sign", source, "--key", key_file,
            "--verification-method", f"{web}#k1").output
    )  # fmt: skip
    assert run("credential", "verify", signed, "--did-document", doc_file).exit_code == 0
    offline = run("credential", "verify", signed)
    assert offline.exception.code == "DID_RESOLUTION_ERROR"


def test_credential_group_is_extensible():
    @credential_app.command("noop-for-test")
    def _noop() -> None:
        print("extended")

    try:
        assert run("credential", "noop-for-test").output.strip() == "extended"
    finally:
        credential_app.registered_commands.pop()
