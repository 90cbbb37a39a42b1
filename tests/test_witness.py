"""C2SP tlog-witness: a witness cosigns consistent checkpoints only, durably and atomically
(a fork and a rollback are refused with the spec's status codes, across concurrent requests
and a restart); the ledger collects cosignatures from the witnesses of its settings."""

from __future__ import annotations

import base64
import hashlib
import shutil
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from batterytrace.api.cli import app
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.ledger.checkpoint import Checkpoint, sign_checkpoint
from batterytrace.ledger.cosignature import (
    check_quorum,
    format_add_checkpoint,
    parse_cosigner_key,
    verify_cosignatures,
)
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.witness import (
    InconsistentCheckpointError,
    LogSignatureError,
    OldSizeError,
    SizeConflictError,
    UnknownLogError,
    Witness,
    init_witness,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from transparency_support import served_witness
from typer.testing import CliRunner

ORIGIN = "ledger.test/witnessed"
runner = CliRunner()


def _events(n, start=0):
    return [Submission("event", {"n": i}) for i in range(start, start + n)]


@pytest.fixture
def ledger(tmp_path):
    led = Ledger.init(tmp_path / "home", None, ORIGIN, "https://ledger.test")
    yield led
    led.close()


def _request(led, old, size=None):
    size = led.size if size is None else size
    note = led.checkpoint_note(size)
    proof = led.consistency_proof(old, size) if 0 < old < size else []
    return format_add_checkpoint(old, proof, note)


def test_witness_cosigns_and_refuses_rollback_fork_and_strangers(tmp_path, ledger):
    key = Ed25519Key.generate()
    cosigner = init_witness(tmp_path / "w", "witness.test/w1", key, [ledger.verifier.vkey])
    witness = Witness(tmp_path / "w", clock=lambda: 1_700_000_000)
    ledger.append(_events(5))
    line = witness.add_checkpoint(_request(ledger, 0)).decode()
    # the cosignature, checked from the tlog-cosignature text (not the project's code)
    name, blob = line[2:].rstrip("\n").split(" ")
    blob = base64.b64decode(blob)
    assert name == "witness.test/w1"
    assert blob[:4] == hashlib.sha256(name.encode() + b"\n\x04" + key.public_key).digest()[:4]
    assert int.from_bytes(blob[4:12], "big") == 1_700_000_000
    body = ledger.checkpoint_note(6).split(b"\n\n")[0] + b"\n"
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(
        blob[12:], b"cosignature/v1\ntime 1700000000\n" + body)
    assert parse_cosigner_key(cosigner.vkey) == cosigner

    ledger.append(_events(3, 5))
    witness.add_checkpoint(_request(ledger, 6))  # consistent growth: 6 -> 9
    assert witness.state(ORIGIN)[0] == 9
    with pytest.raises(SizeConflictError) as conflict:  # a client behind: told the size
        witness.add_checkpoint(_request(ledger, 6))
    assert conflict.value.details["size"] == 9 and conflict.value.http_status == 409
    with pytest.raises(OldSizeError):  # rollback: the older checkpoint of size 6
        witness.add_checkpoint(_request(ledger, 9, 6))
    # a fork: another root for size 9, signed by the log key
    forked = sign_checkpoint(Checkpoint(ORIGIN, 9, b"\x11" * 32), ORIGIN, ledger.home.log_key())
    with pytest.raises(InconsistentCheckpointError) as fork:
        witness.add_checkpoint(format_add_checkpoint(9, [], forked))
    assert fork.value.http_status == 422
    # a fork further on, with a proof that does not hold
    ahead = sign_checkpoint(Checkpoint(ORIGIN, 12, b"\x22" * 32), ORIGIN, ledger.home.log_key())
    with pytest.raises(InconsistentCheckpointError):
        witness.add_checkpoint(format_add_checkpoint(9, ledger.consistency_proof(6, 9), ahead))
    # not the log's key: 403; another origin: 404
    stolen = sign_checkpoint(Checkpoint(ORIGIN, 12, b"\x22" * 32), ORIGIN, Ed25519Key.generate())
    with pytest.raises(LogSignatureError) as bad_sig:
        witness.add_checkpoint(format_add_checkpoint(9, [], stolen))
    assert bad_sig.value.http_status == 403
    other = sign_checkpoint(Checkpoint("other.test/log", 1, b"\x00" * 32), "other.test/log",
                            Ed25519Key.generate())
    with pytest.raises(UnknownLogError):
        witness.add_checkpoint(format_add_checkpoint(0, [], other))
    assert witness.state(ORIGIN)[0] == 9  # nothing refused moved the state
    witness.close()


def _fork(tmp_path, ledger):
    """Two copies of one ledger, grown apart: same size, different roots, each consistent
    with the common past."""
    ledger.append(_events(4))
    common = ledger.size
    ledger.close()
    shutil.copytree(tmp_path / "home", tmp_path / "fork")
    a = Ledger.open(tmp_path / "home")
    b = Ledger.open(tmp_path / "fork")
    a.append(_events(3, 100))
    b.append(_events(3, 200))
    assert a.size == b.size and a.root() != b.root()
    return common, a, b


def test_concurrent_forks_get_one_root_cosigned_across_a_restart(tmp_path, ledger):
    init_witness(tmp_path / "w", "witness.test/w1", None, [ledger.verifier.vkey])
    witness = Witness(tmp_path / "w")
    common, a, b = _fork(tmp_path, ledger)
    try:
        witness.add_checkpoint(_request(a, 0, common))
        witness.close()
        bodies = [_request(a, common), _request(b, common)] * 8
        with served_witness(tmp_path / "w") as url, httpx.Client() as client:
            def post(body):
                return client.post(url + "/add-checkpoint", content=body)

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(post, bodies))
        ok = [bodies[i] for i, r in enumerate(answers) if r.status_code == 200]
        assert len(ok) == 1, [r.status_code for r in answers]
        assert {r.status_code for r in answers} == {200, 409}
        conflict = next(r for r in answers if r.status_code == 409)
        assert conflict.headers["content-type"].startswith("text/x.tlog.size")
        assert conflict.text == f"{a.size}\n"
        winner, loser = (a, b) if ok[0] == bodies[0] else (b, a)
        # after a restart, the loser's root at the same size is refused, the winner's is not
        with served_witness(tmp_path / "w") as url:
            refused = httpx.post(url + "/add-checkpoint", content=_request(loser, loser.size,
                                                                           loser.size))
            assert refused.status_code == 422
            assert refused.json()["code"] == "WITNESS_INCONSISTENT"
            again = httpx.post(url + "/add-checkpoint", content=_request(winner, winner.size))
            assert again.status_code == 200 and again.text.startswith("\u2014 witness.test/w1 ")
            assert httpx.post(url + "/add-checkpoint", content=b"junk").status_code == 400
            big = httpx.post(url + "/add-checkpoint", content=b"x" * (2 * 1024 * 1024))
            assert big.status_code == 413
    finally:
        a.close()
        b.close()


def test_ledger_checkpoint_collects_cosignatures_from_its_witnesses(tmp_path, ledger):
    keys = []
    for n in (1, 2):
        cosigner = init_witness(tmp_path / f"w{n}", f"witness.test/w{n}", None,
                                [ledger.verifier.vkey])
        keys.append(cosigner.vkey)
    ledger.append(_events(3))
    home = str(tmp_path / "home")
    ledger.close()
    with served_witness(tmp_path / "w1") as url1, served_witness(tmp_path / "w2") as url2:
        witnesses = [{"name": "witness.test/w1", "url": url1, "key": keys[0]},
                     {"name": "witness.test/w2", "url": url2, "key": keys[1]}]
        import json
        result = runner.invoke(app, ["--home", home, "ledger", "settings",
                                     f"witnesses={json.dumps(witnesses)}"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["--home", home, "ledger", "checkpoint", "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert sorted(data["cosigned"]) == ["witness.test/w1", "witness.test/w2"]
        note = (tmp_path / "home" / "checkpoint.txt").read_bytes()
        cosigners = [parse_cosigner_key(k) for k in keys]
        assert sorted(verify_cosignatures(note, cosigners)) == sorted(data["cosigned"])
        check_quorum(note, cosigners, 2)
        # the next checkpoint goes to the witnesses with a consistency proof from the last
        led = Ledger.open(tmp_path / "home")
        led.append(_events(2, 10))
        led.close()
        result = runner.invoke(app, ["--home", home, "ledger", "checkpoint", "--json"])
        assert len(json.loads(result.output)["cosigned"]) == 2, result.output
        again = runner.invoke(app, ["--home", home, "ledger", "checkpoint", "--json"])
        assert json.loads(again.output)["note"] == json.loads(result.output)["note"]
    with pytest.raises(Exception, match="WITNESS_QUORUM_NOT_MET"):
        check_quorum(ledger.checkpoint_note(1), cosigners, 1)


def test_witness_cli_init_and_state(tmp_path, ledger):
    import json

    key = tmp_path / "wkey.json"
    from batterytrace.credentials.keys import write_key_file

    write_key_file(Ed25519Key.generate(), key)
    home = tmp_path / "w"
    made = runner.invoke(app, ["witness", "init", "--home", str(home), "--name",
                               "witness.test/cli", "--key", str(key), "--log",
                               ledger.verifier.vkey, "--json"])
    assert made.exit_code == 0, made.output
    vkey = json.loads(made.stdout)["cosignerKey"]
    assert parse_cosigner_key(vkey).name == "witness.test/cli"
    again = runner.invoke(app, ["witness", "init", "--home", str(home), "--name", "x"])
    assert again.exception.exit_code == 2  # a home holds one witness
    witness = Witness(home)
    witness.add_checkpoint(_request(ledger, 0))
    witness.close()
    state = runner.invoke(app, ["witness", "state", "--home", str(home), "--json"])
    assert json.loads(state.stdout)["logs"][ORIGIN]["size"] == ledger.size


def test_the_service_sends_new_checkpoints_to_its_witnesses(tmp_path):
    import time

    from test_api_support import api_client, make_home

    home = make_home(tmp_path, None)
    led = Ledger.open(home, checkpoint_every_batch=False)
    keys = [init_witness(tmp_path / f"w{n}", f"witness.test/w{n}", None,
                         [led.verifier.vkey]).vkey for n in (1, 2)]
    with served_witness(tmp_path / "w1") as url1, served_witness(tmp_path / "w2") as url2:
        led.update_settings({"witnesses": [
            {"name": "witness.test/w1", "url": url1, "key": keys[0]},
            {"name": "witness.test/w2", "url": url2, "key": keys[1]}]})
        size = led.size
        led.close()  # the settings entry is not checkpointed yet: the service signs it
        with api_client(home, None) as client:
            deadline = time.monotonic() + 30
            while True:
                note = client.get("/checkpoint").content
                found = verify_cosignatures(note, [parse_cosigner_key(k) for k in keys])
                if len(found) == 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert sorted(found) == ["witness.test/w1", "witness.test/w2"]
            assert note.split(b"\n")[1] == str(size).encode()
            bundle_cp = client.get("/checkpoints/latest").json()["note"].encode()
            assert len(verify_cosignatures(bundle_cp, [parse_cosigner_key(k)
                                                       for k in keys])) == 2


def test_a_command_that_appends_sends_its_checkpoint_to_the_witnesses(tmp_path, ledger):
    """The command line, like the service, sends each new checkpoint to the witnesses of the
    ledger's settings as a writing command ends; a witness that is down is a warning on
    stderr, and the command's own result stands."""
    import json

    cosigner = init_witness(tmp_path / "w1", "witness.test/w1", None, [ledger.verifier.vkey])
    home = str(tmp_path / "home")
    ledger.close()
    with served_witness(tmp_path / "w1") as url:
        witnesses = [{"name": "witness.test/w1", "url": url, "key": cosigner.vkey}]
        result = runner.invoke(app, ["--home", home, "ledger", "settings",
                                     f"witnesses={json.dumps(witnesses)}"])
        assert result.exit_code == 0, result.output
        note = (tmp_path / "home" / "checkpoint.txt").read_bytes()
        assert list(verify_cosignatures(note, [parse_cosigner_key(cosigner.vkey)])) == [
            "witness.test/w1"]
    # The witness is gone: the next write still succeeds, and says who did not cosign.
    result = runner.invoke(app, ["--home", home, "ledger", "settings",
                                 "massBalanceTolerance=0.01"])
    assert result.exit_code == 0, result.output
    assert "not cosigned by witness.test/w1" in result.output
