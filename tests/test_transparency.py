"""A log nobody has to trust: bundles verify only with their witness quorum; a mirror (a
plain static HTTP server over `ledger publish`'s directory) answers `ledger prove`,
`ledger consistency` and `ledger verify`, checked against the trusted checkpoint; `ledger
monitor` follows it and catches a rollback, a fork and a bad entry; `ledger compare` proves
two checkpoints consistent or shows the split view."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from batterytrace.api.cli import app
from batterytrace.api.witness_client import collect_cosignatures
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.checkpoint import Checkpoint, sign_checkpoint
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.publish import publish_ledger
from batterytrace.ledger.validators import validators_for
from batterytrace.ledger.witness import init_witness
from batterytrace.verifier.bundle_verify import verify_bundle
from batterytrace.verifier.trust import TrustConfig, TrustedLedger, write_trust
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    item_id,
    lifecycle,
    signed_credential,
    standard_registry_docs,
)
from transparency_support import served_witness, static_http
from typer.testing import CliRunner

PACK = item_id("pack-p1")
runner = CliRunner()
W1, W2 = "witness.test/w1", "witness.test/w2"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("transparency")
    home = base / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, None, "ledger.example/witnessed", PUBLIC_URL)
    led.validators.update(validators_for(led))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    events = lifecycle()
    for _, issuer, event in events[:-3]:
        led.append([Submission("event", signed_credential(issuer, [event]))])
    keys = [init_witness(base / name, name, None, [led.verifier.vkey]).vkey
            for name in ("w1", "w2")]
    with served_witness(base / "w1") as url1, served_witness(base / "w2") as url2:
        led.update_settings({"witnesses": [{"name": "w1", "url": url1, "key": keys[0]},
                                           {"name": "w2", "url": url2, "key": keys[1]}]})
        led.sign_checkpoint()
        early = collect_cosignatures(led)
        assert sorted(early.cosigned) == ["w1", "w2"], early.failed
        for _, issuer, event in events[-3:]:
            led.append([Submission("event", signed_credential(issuer, [event]))])
        led.sign_checkpoint()
        outcome = collect_cosignatures(led)
        assert sorted(outcome.cosigned) == ["w1", "w2"], outcome.failed
        trust = TrustConfig(ledgers=(TrustedLedger(led.origin, led.verifier.vkey,
                                                   tuple(keys), 2),))
        write_trust(trust, base / "trust.toml")
        mirror = base / "mirror"
        publish_ledger(led, mirror)
        with static_http(mirror) as mirror_url:
            yield {"led": led, "trust": trust, "trust_file": base / "trust.toml",
                   "keys": keys, "early": early.note, "mirror": mirror, "url": mirror_url,
                   "base": base}
    led.close()


def _export(led, **kw) -> bytes:
    buf = io.BytesIO()
    export_bundle(led, buf, **kw)
    return buf.getvalue()


def _cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_a_bundle_verifies_only_with_its_quorum(world):
    led, trust = world["led"], world["trust"]
    bundle = _export(led, item=PACK)
    report = verify_bundle(bundle.splitlines(keepends=True), trust)
    assert report.ok, report.failures
    assert report.witnesses == ["w1", "w2"]
    assert any(c.startswith("witness cosignatures 2 of 2") for c in report.checks)
    # the same bundle with one cosignature line removed: 1 of 2, fails closed
    header = json.loads(bundle.split(b"\n", 1)[0])
    lines = header["checkpoint"].rstrip("\n").split("\n")
    header["checkpoint"] = "\n".join(ln for ln in lines if not ln.startswith("\u2014 w2 ")) + "\n"
    stripped = json.dumps(header).encode() + b"\n" + bundle.split(b"\n", 1)[1]
    failed = verify_bundle(stripped.splitlines(keepends=True), trust)
    assert not failed.ok and {f.code for f in failed.failures} == {"WITNESS_QUORUM_NOT_MET"}
    assert "w1" in failed.failures[0].reason
    # a quorum of 1 accepts it, and a trust file without witnesses does not ask
    one = TrustConfig(ledgers=(TrustedLedger(led.origin, led.verifier.vkey,
                                             tuple(world["keys"]), 1),))
    assert verify_bundle(stripped.splitlines(keepends=True), one).ok
    plain = TrustConfig(ledgers=(TrustedLedger(led.origin, led.verifier.vkey),))
    assert verify_bundle(stripped.splitlines(keepends=True), plain).ok
    # the CLI reports who cosigned
    path = world["base"] / "pack.bundle"
    path.write_bytes(bundle)
    result = _cli("bundle", "verify", path, "--trust", world["trust_file"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["witnesses"] == ["w1", "w2"]


def test_read_side_commands_against_a_static_mirror(world):
    led, url, trust_file = world["led"], world["url"], world["trust_file"]
    local = _cli("--home", led.home.path, "ledger", "prove", 7, "--json")
    remote = _cli("--mirror", url, "--trust", trust_file, "ledger", "prove", 7, "--json")
    assert remote.exit_code == 0, remote.output
    assert json.loads(remote.stdout)["hashes"] == json.loads(local.stdout)["hashes"]
    assert json.loads(remote.stdout)["leafHash"] == led.entry(7).leaf_hash.hex()
    local = _cli("--home", led.home.path, "ledger", "consistency", 5, led.size, "--json")
    remote = _cli("--mirror", url, "--trust", trust_file, "ledger", "consistency", 5,
                  led.size, "--json")
    assert remote.exit_code == 0, remote.output
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    cache = world["base"] / "tile-cache"
    verified = _cli("--mirror", url, "--trust", trust_file, "--mirror-cache", cache, "ledger",
                    "verify", "--json")
    assert verified.exit_code == 0, verified.output
    assert len(list(cache.iterdir())) >= 2  # tiles and bundles kept for the next run
    data = json.loads(verified.stdout)
    assert data["size"] == led.size and data["cosignedBy"] == ["w1", "w2"]


def test_a_lying_mirror_is_caught(world, tmp_path):
    shutil.copytree(world["mirror"], tmp_path / "m")
    bundle = next(p for p in (tmp_path / "m" / "tile" / "entries").rglob("*") if p.is_file())
    data = bytearray(bundle.read_bytes())
    data[100] ^= 1
    bundle.write_bytes(bytes(data))
    result = _cli("--mirror", tmp_path / "m", "--trust", world["trust_file"], "ledger",
                  "verify")
    assert isinstance(result.exception, BatterytraceError), result.output
    assert result.exception.code == "TILE_ERROR" and result.exception.exit_code == 1


def test_monitor_follows_and_catches_rollback(world, tmp_path):
    since = tmp_path / "since.txt"
    since.write_bytes(world["early"])
    state = tmp_path / "state.txt"
    args = ("ledger", "monitor", world["url"], "--since", since, "--state", state,
            "--trust", world["trust_file"], "--json")
    first = _cli(*args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["size"] == world["led"].size
    assert state.read_bytes() == (world["mirror"] / "checkpoint").read_bytes()
    # a mirror rolled back to the earlier checkpoint: the state of the last run catches it
    shutil.copytree(world["mirror"], tmp_path / "old")
    (tmp_path / "old" / "checkpoint").write_bytes(world["early"])
    rolled = _cli("ledger", "monitor", tmp_path / "old", "--state", state,
                  "--trust", world["trust_file"])
    assert isinstance(rolled.exception, BatterytraceError), rolled.output
    assert rolled.exception.code == "LOG_ROLLBACK"


def _forked(world, tmp_path):
    """A copy of the ledger (same keys) that took a bad entry, published."""
    led = world["led"]
    shutil.copytree(led.home.path, tmp_path / "fork")
    fork = Ledger.open(tmp_path / "fork")
    try:
        fork.append([Submission("event", {"bogus": 1})])  # no validators: a bad entry
        publish_ledger(fork, tmp_path / "fork-mirror")
        return fork.latest_checkpoint()[1], fork.size
    finally:
        fork.close()


def test_monitor_names_the_first_bad_entry(world, tmp_path):
    _note, size = _forked(world, tmp_path)
    plain = TrustConfig(ledgers=(TrustedLedger(world["led"].origin,
                                               world["led"].verifier.vkey),))
    write_trust(plain, world["base"] / "plain.toml")
    result = _cli("ledger", "monitor", tmp_path / "fork-mirror", "--state",
                  tmp_path / "s.txt", "--trust", world["base"] / "plain.toml")
    assert isinstance(result.exception, BatterytraceError), result.output
    assert result.exception.exit_code == 1
    assert result.exception.details.get("seq") == size - 1
    assert not (tmp_path / "s.txt").exists()  # nothing verified: nothing kept


def test_compare_proves_consistency_and_shows_a_split_view(world, tmp_path):
    led, trust_file = world["led"], world["trust_file"]
    early, late = tmp_path / "early.txt", tmp_path / "late.txt"
    early.write_bytes(world["early"])
    late.write_bytes((world["mirror"] / "checkpoint").read_bytes())
    same = _cli("ledger", "compare", late, late, "--trust", trust_file, "--json")
    assert same.exit_code == 0 and json.loads(same.stdout)["consistent"]
    needs = _cli("ledger", "compare", early, late, "--trust", trust_file)
    assert needs.exit_code == 2 or getattr(needs.exception, "exit_code", 0) == 2
    proved = _cli("--mirror", world["url"], "ledger", "compare", early, late, "--trust",
                  trust_file, "--json")
    assert proved.exit_code == 0, proved.output
    assert "consistency proof" in json.loads(proved.stdout)["how"]
    # a bundle is compared by its checkpoint
    bundle = tmp_path / "pack.bundle"
    bundle.write_bytes(_export(led, item=PACK))
    assert _cli("ledger", "compare", bundle, late, "--trust", trust_file).exit_code == 0
    # a split view: the log key signs another root for the same size
    forged = sign_checkpoint(Checkpoint(led.origin, led.size, b"\x42" * 32), led.origin,
                             led.home.log_key())
    other = tmp_path / "other.txt"
    other.write_bytes(forged)
    split = _cli("ledger", "compare", late, other, "--trust", trust_file)
    assert isinstance(split.exception, BatterytraceError), split.output
    assert split.exception.code == "SPLIT_VIEW" and split.exception.exit_code == 1


def test_bundle_export_from_a_mirror_verifies(world, tmp_path):
    out = tmp_path / "pack.bundle"
    result = _cli("--mirror", world["url"], "--trust", world["trust_file"], "bundle",
                  "export", "--item", PACK, "--out", out)
    assert result.exit_code == 0, result.output
    local = _export(world["led"], item=PACK)
    # the same entries and proofs as the ledger's own export (credentials are not in tiles)
    entries = [ln for ln in out.read_bytes().splitlines() if b'"type":"entry"' in ln]
    assert len(entries) > 3
    assert entries == [ln for ln in local.splitlines() if b'"type":"entry"' in ln]
    report = verify_bundle(out.read_bytes().splitlines(keepends=True), world["trust"])
    assert report.ok, report.failures
    assert report.witnesses == ["w1", "w2"]
