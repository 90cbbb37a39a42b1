"""The real `batterytrace bundle verify` runs air-gapped: the installed console script, in a
subprocess whose `sitecustomize` (put first on PYTHONPATH) makes importing sqlmodel,
sqlalchemy, fastapi, httpx or requests raise and every socket fail. It must still verify a
bundle (exit 0), reject a tampered one (exit 1) and refuse a truncated one (exit 2)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.keys import Ed25519Key, write_key_file
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.validators import validators_for
from batterytrace.verifier.trust import TrustConfig, TrustedLedger, write_trust
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    facility_id,
    item_id,
    lifecycle,
    signed_credential,
    standard_registry_docs,
)

FORBIDDEN = ("sqlmodel", "sqlalchemy", "fastapi", "httpx", "requests")

SITECUSTOMIZE = f'''
"""Test harness: no storage or web libraries, no network."""
import socket
import sys

_FORBIDDEN = {FORBIDDEN!r}


class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _FORBIDDEN:
            raise ImportError(f"{{name}} is blocked: the offline verifier must not need it")
        return None


class _NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        raise OSError("the network is unavailable")


def _no_network(*args, **kwargs):
    raise OSError("the network is unavailable")


sys.meta_path.insert(0, _Blocked())
socket.socket = _NoSocket
socket.create_connection = _no_network
socket.getaddrinfo = _no_network
'''


def _command() -> list[str]:
    script = Path(sys.executable).parent / "batterytrace"
    return [str(script)] if script.exists() else [sys.executable, "-m",
                                                 "batterytrace.api.cli"]


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """(bundle bytes, trust file path, environment of the air-gapped subprocess)."""
    root = tmp_path_factory.mktemp("offline")
    home = root / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, None, "ledger.example/offline", PUBLIC_URL)
    led.validators.update(validators_for(led))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    for _, issuer, event in lifecycle():
        led.append([Submission("event", signed_credential(issuer, [event]))])
    auditor = Ed25519Key.from_seed(b"\x41" * 32)
    audit = sign({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"], "id": "urn:uuid:0ff11e00-0000-4000-8000-000000000001",
        "issuer": auditor.did_key, "validFrom": "2020-01-01T00:00:00Z",
        "credentialSubject": {"id": facility_id("kolwezi-mine"), "audited": True},
    }, auditor)
    buf = io.BytesIO()
    export_bundle(led, buf, item=item_id("pack-p1"), credentials=[audit])
    trust = root / "trust.toml"
    write_trust(TrustConfig(ledgers=(TrustedLedger(led.origin, led.verifier.vkey),)), trust)
    led.close()
    harness = root / "harness"
    harness.mkdir()
    (harness / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": str(harness), "COLUMNS": "200"}
    return buf.getvalue(), trust, env


def _run(env, *args):
    return subprocess.run([*_command(), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_the_harness_blocks_what_it_claims(offline):
    _, _, env = offline
    for name in FORBIDDEN:
        run = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                             text=True, env=env, timeout=60)
        assert run.returncode != 0 and "is blocked" in run.stderr, name
    run = subprocess.run([sys.executable, "-c", "import socket; socket.socket()"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode != 0 and "network is unavailable" in run.stderr


def test_bundle_verify_offline(offline, tmp_path):
    data, trust, env = offline
    bundle = tmp_path / "pack.jsonl"
    bundle.write_bytes(data)
    run = _run(env, "bundle", "verify", str(bundle), "--trust", str(trust), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] and report["credentials_verified"] == 1 and report["replayed"] > 20
    human = _run(env, "bundle", "verify", str(bundle), "--trust", str(trust))
    assert human.returncode == 0 and "VERIFIED" in human.stdout, human.stderr


def test_bundle_verify_offline_failures_and_exit_codes(offline, tmp_path):
    data, trust, env = offline
    lines = data.splitlines(keepends=True)
    record = json.loads(lines[20])
    record["entry"]["received"] = "2020-01-01T00:00:00Z"
    lines[20] = json.dumps(record).encode() + b"\n"
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"".join(lines))
    run = _run(env, "bundle", "verify", str(broken), "--trust", str(trust))
    assert run.returncode == 1, run.stderr
    assert "BUNDLE_INCLUSION_PROOF" in run.stdout
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_bytes(b"".join(lines[:-1]))
    run = _run(env, "bundle", "verify", str(truncated), "--trust", str(trust))
    assert run.returncode == 2 and "BUNDLE_TRUNCATED" in run.stderr + run.stdout
