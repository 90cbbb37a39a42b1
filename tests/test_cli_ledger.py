"""`batterytrace init` and `batterytrace ledger ...` through the real command line."""

import json
import sqlite3

from batterytrace.api.cli import app
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.ledger import merkle
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.tlog_proof import verify_tlog_proof
from typer.testing import CliRunner

runner = CliRunner()


def _run(home, *args, db=None):
    url = ["--database-url", db] if db else []
    return runner.invoke(app, ["--home", str(home), *url, *args])


def _code(home, *args):
    """Exit code as `batterytrace` (api/cli.main) reports it for typed errors."""
    result = _run(home, *args)
    if isinstance(result.exception, BatterytraceError):
        return result.exception.exit_code
    return result.exit_code


def _json(home, *args, db=None):
    result = _run(home, *args, "--json", db=db)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_init_info_show_prove_consistency_verify(tmp_path, database_url):
    home = tmp_path / "home"
    info = _json(home, "init", "--origin", "cli.test/log", "--public-url", "https://x.test",
                 db=database_url)
    assert info["origin"] == "cli.test/log" and info["size"] == 1
    assert info["publicUrl"] == "https://x.test"
    led = Ledger.open(home, database_url)
    led.append([Submission("event", {"n": i}) for i in range(6)])
    led.close()

    info = _json(home, "ledger", "info", db=database_url)
    assert info["size"] == 7 and info["verifierKey"].startswith("cli.test/log+")
    shown = _json(home, "ledger", "show", "3", db=database_url)
    assert shown["entry"]["seq"] == 3 and shown["entry"]["document"] == {"n": 2}

    proof = _run(home, "ledger", "prove", "3", db=database_url)
    assert proof.exit_code == 0 and proof.stdout.startswith("c2sp.org/tlog-proof@v1\n")
    led = Ledger.open(home, database_url)
    verifier = led.verifier
    led.close()
    cp = verify_tlog_proof(proof.stdout.encode(), bytes.fromhex(shown["leafHash"]),
                           [verifier], "cli.test/log")
    assert cp.size == 7 and cp.root.hex() == info["root"]
    assert _json(home, "ledger", "prove", "0", "--size", "1", db=database_url)["index"] == 0

    cons = _json(home, "ledger", "consistency", "2", "7", db=database_url)
    import base64

    merkle.verify_consistency(2, 7, bytes.fromhex(cons["oldRoot"]), bytes.fromhex(cons["newRoot"]),
                              [base64.b64decode(h) for h in cons["proof"]])

    checkpoint = _json(home, "ledger", "checkpoint", db=database_url)
    assert checkpoint["size"] == 7 and "\n\n— cli.test/log " in checkpoint["note"]

    # raw test entries, not custody events: no replay
    ok = _json(home, "ledger", "verify", "--no-replay", db=database_url)
    assert ok["ok"] and ok["size"] == 7 and ok["checkpointsChecked"] == 2
    human = _run(home, "ledger", "verify", "--no-replay", db=database_url)
    assert human.exit_code == 0 and "ok" in human.stdout


def test_errors_have_exit_codes(tmp_path):
    home = tmp_path / "home"
    assert _code(home, "ledger", "info") == 2  # no ledger yet
    assert _code(home, "init") == 0
    assert _code(home, "init") == 2  # exists
    assert _code(home, "ledger", "show", "9") == 2
    assert _code(home, "ledger", "prove", "0", "--size", "5") == 2

    led = Ledger.open(home)
    led.append([Submission("event", {"n": i}) for i in range(4)])
    led.close()
    db = sqlite3.connect(home / "ledger.sqlite", isolation_level=None)
    (body,) = db.execute("SELECT body FROM ledger_entries WHERE seq=2").fetchone()
    db.execute("UPDATE ledger_entries SET body=? WHERE seq=2",
               (body.replace(b'"n":1', b'"n":7'),))
    db.close()
    result = _run(home, "ledger", "verify", "--no-replay")
    assert result.exception.exit_code == 1 and result.exception.seq == 2
    assert "LOG_CHAIN_BROKEN: entry 2" in str(result.exception)


def test_settings_are_shown_set_and_refused_when_unknown_or_out_of_range(tmp_path):
    home = tmp_path / "home"
    assert _run(home, "init").exit_code == 0
    assert _json(home, "ledger", "settings") == {}
    size = _json(home, "ledger", "info")["size"]
    for bad in ("evil=1", "massBalanceTolerance=1000", "massBalanceTolerance=abc", "noequals"):
        result = _run(home, "ledger", "settings", bad)
        assert isinstance(result.exception, BatterytraceError), result.output
        assert (result.exception.code, result.exception.exit_code) == ("SETTINGS_INVALID", 2)
    assert _json(home, "ledger", "info")["size"] == size  # nothing appended
    assert _json(home, "ledger", "settings", "massBalanceTolerance=0.02") == {
        "massBalanceTolerance": "0.02"}
    assert _json(home, "ledger", "info")["size"] == size + 1
    assert _run(home, "ledger", "verify").exit_code == 0


def test_verify_names_a_damaged_derived_table_and_a_lost_checkpoint_file(tmp_path):
    home = tmp_path / "home"
    assert _code(home, "init") == 0
    led = Ledger.open(home)
    led.append([Submission("event", {"n": i}) for i in range(4)])
    led.close()
    assert _code(home, "ledger", "verify", "--no-replay") == 0
    db = sqlite3.connect(home / "ledger.sqlite", isolation_level=None)

    # A flipped byte in a leaf hash of the tiles: the root at the checkpoint still folds from
    # higher subtrees, so only the recomputation sees it.
    (tile,) = db.execute("SELECT hashes FROM ledger_tree_tiles").fetchone()
    db.execute("UPDATE ledger_tree_tiles SET hashes=?",
               (bytes([tile[0] ^ 1]) + tile[1:],))
    result = _run(home, "ledger", "verify", "--no-replay")
    assert result.exception.code == "LEDGER_DERIVED_MISMATCH"
    assert result.exception.exit_code == 1
    assert result.exception.details["table"] == "ledger_tree_tiles"
    db.execute("UPDATE ledger_tree_tiles SET hashes=?", (tile,))

    # A zeroed checkpoint root (the note still verifies): named with its size.
    db.execute("UPDATE ledger_checkpoints SET root=zeroblob(32) WHERE size=1")
    result = _run(home, "ledger", "verify", "--no-replay", "--json")
    assert result.exception.code == "LEDGER_DERIVED_MISMATCH"
    assert json.loads(result.stdout)["derived"][0] == {
        **json.loads(result.stdout)["derived"][0], "table": "ledger_checkpoints",
        "key": "size=1"}
    db.close()

    # A lost checkpoint.txt: the file and the way to recover are named, not `init`.
    (home / "checkpoint.txt").unlink()
    result = _run(home, "ledger", "verify", "--no-replay")
    assert result.exception.code == "LEDGER_NOT_FOUND" and result.exception.exit_code == 2
    assert "checkpoint.txt is missing" in result.exception.message
    assert "ledger repair --from-entries" in result.exception.message
    assert _code(home, "init") == 2  # still refused: the ledger exists
