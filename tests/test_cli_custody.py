"""The custody commands, end to end on a temporary ledger."""

from __future__ import annotations

import json

import pytest
import typer
from batterytrace.api import cli_custody
from batterytrace.api.settings import Settings
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.log import Ledger
from custody_factory import ADMIN_KEY, PUBLIC_URL, key_for, lot_id
from typer.testing import CliRunner


@pytest.fixture
def run(tmp_path):
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    Ledger.init(home, None, "ledger.example/cli", PUBLIC_URL).close()
    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = Settings.resolve(home)

    cli_custody.register(app)
    runner = CliRunner()

    def invoke(*args, input=None, code=0):
        result = runner.invoke(app, [str(a) for a in args], input=input)
        assert result.exit_code == code, (result.output, result.exception)
        return result

    key = tmp_path / "miner.json"
    write_key_file(key_for("miner"), key)
    invoke.key = key
    invoke.tmp = tmp_path
    return invoke


def test_register_sign_append_show(run):
    out = run("participant", "add", "miner", "--legal-name", "Lualaba Cobalt Mining SA",
              "--role", "miner", "--country", "CD", "--key", run.key, "--json").output
    did = json.loads(out)["id"]
    assert did == "did:web:ledger.example:participants:miner"
    run("facility", "add", f"{PUBLIC_URL}/facilities/kolwezi-mine", "--name", "Kolwezi",
        "--operator", "miner", "--kind", "mine", "--country", "CD")
    listed = json.loads(run("participant", "list", "--json").output)
    assert [p["id"] for p in listed] == [did]
    assert json.loads(run("facility", "list", "--json").output)[0]["kind"] == "mine"

    from custody_factory import extraction

    plain = run.tmp / "event.json"
    plain.write_text(json.dumps({"issuer": did, "issuerName": "Lualaba Cobalt Mining SA",
                                 "events": [extraction("kolwezi-mine", "ore", 12.5,
                                                       {"Co": 0.3})]}))
    signed = run("event", "sign", plain, "--key", run.key).output
    (run.tmp / "signed.jsonl").write_text(json.dumps(json.loads(signed)) + "\n")
    results = json.loads(run("event", "append", run.tmp / "signed.jsonl", "--json").output)
    assert results[0]["duplicate"] is False
    again = json.loads(run("event", "append", "-", "--json", input=signed).output)
    assert again[0] == {"seq": results[0]["seq"], "duplicate": True}

    lot = json.loads(run("lot", "show", lot_id("ore"), "--json").output)
    assert lot["holders"] == [{"holder": did, "kg": "12.5"}]
    assert lot["composition"] == {"Co": "0.3"}
    trace = json.loads(run("lot", "trace", lot_id("ore"), "--json").output)
    assert trace["upstream"] == [] and len(trace["history"]) == 1
    shown = json.loads(run("participant", "show", "miner", "--json").output)
    assert shown["didDocument"]["assertionMethod"] == [shown["keys"][0]["id"]]


def test_rotate_and_revoke(run):
    run("participant", "add", "miner", "--legal-name", "L", "--role", "miner",
        "--country", "CD", "--key", run.key)
    new = run.tmp / "new.json"
    write_key_file(key_for("miner-2"), new)
    run("participant", "rotate-key", "miner", "--current-key", run.key, "--new-key", new)
    shown = json.loads(run("participant", "show", "miner", "--json").output)
    assert [k["endedBy"] for k in shown["keys"]] == ["rotation", None]
    run("participant", "revoke-key", "miner", shown["keys"][1]["id"])
    shown = json.loads(run("participant", "show", "miner", "--json").output)
    assert shown["didDocument"]["verificationMethod"] == []


def test_unknown_lot_is_a_typed_error(run):
    result = run("lot", "show", "https://id.example.com/lots/none", code=1)
    assert result.exception.code == "UNKNOWN_LOT"


def test_append_in_batches_keeps_committed_batches_when_a_later_one_fails(run):
    run("participant", "add", "miner", "--legal-name", "L", "--role", "miner",
        "--country", "CD", "--key", run.key)
    run("facility", "add", f"{PUBLIC_URL}/facilities/kolwezi-mine", "--name", "Kolwezi",
        "--operator", "miner", "--kind", "mine", "--country", "CD")
    from custody_factory import extraction, signed_credential

    docs = [signed_credential("miner", [extraction("kolwezi-mine", f"ore-{i}", 10, {"Co": 0.3})])
            for i in range(3)]
    docs[2]["credentialSubject"][0]["quantityList"][0]["quantity"] = 11  # after signing
    (run.tmp / "three.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    failed = run("event", "append", run.tmp / "three.jsonl", "--batch", "1", code=1)
    assert failed.exception is not None
    # The first two batches were committed (pipelined checks do not change atomicity).
    for i in (0, 1):
        assert json.loads(run("lot", "show", lot_id(f"ore-{i}"), "--json").output)["holders"]
    missing = run("lot", "show", lot_id("ore-2"), "--json", code=1)
    assert missing.exception.code == "UNKNOWN_LOT"
