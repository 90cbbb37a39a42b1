"""Tamper with every derived table of a small custody ledger (sqlite3 on the file, no mocks):
`ledger verify` fails naming the table, every time; `ledger repair --from-entries` restores
it and `ledger verify` passes again (issue 18)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from batterytrace.api.cli import app
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger import anchors as an
from batterytrace.ledger.anchor_store import anchor_validators
from batterytrace.ledger.credential_store import CredentialStore
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.validators import validators_for
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    did_for,
    extraction,
    key_for,
    participant_doc,
    sign_admin,
    signed_credential,
    standard_registry_docs,
)
from test_anchors import credential
from typer.testing import CliRunner

runner = CliRunner()
AUDITOR = "auditor"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A ledger with registry entries, events and an anchor; its home is copied per test."""
    home = tmp_path_factory.mktemp("derived") / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, None, "ledger.example/test", PUBLIC_URL)
    led.validators.update(validators_for(led))
    led.validators.update(anchor_validators(led))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    led.append([Submission("registry", sign_admin(participant_doc(
        AUDITOR, "Auditor Inc", ["auditor"], "CA")))])
    for n in range(3):
        led.append([Submission("event", signed_credential(
            "miner", [extraction("kolwezi-mine", f"ore-{n}", 1000 + n, {"Co": 0.3})]))])
    key = key_for(AUDITOR)
    cred = credential(did_for(AUDITOR), key, 1)
    led.append([Submission("anchor", an.sign_anchor(an.build_anchor(cred, an.ISSUANCE), key,
                                                    created="2026-01-15T08:00:00Z"))])
    store = CredentialStore(led)  # a credential stored with its anchor: credential_record
    store.issue({"@context": ["https://www.w3.org/ns/credentials/v2"],
                 "id": "urn:uuid:00000000-0000-4000-8000-000000000099",
                 "type": ["VerifiableCredential", "ExampleCredential"],
                 "issuer": did_for(AUDITOR),
                 "credentialSubject": {"id": "https://id.example.com/lots/lot-9"}}, key)
    led.close()
    return home


@pytest.fixture
def home(built, tmp_path):
    import shutil

    copy = tmp_path / "home"
    shutil.copytree(built, copy)
    return copy


def run(home, *args):
    result = runner.invoke(app, ["--home", str(home), *args])
    if isinstance(result.exception, BatterytraceError):
        return result.exception.exit_code, result
    return result.exit_code, result


def sql(home, statement, params=()):
    db = sqlite3.connect(home / "ledger.sqlite", isolation_level=None)
    try:
        return db.execute(statement, params).fetchall()
    finally:
        db.close()


def flip(value):
    data = bytearray(value.encode() if isinstance(value, str) else value)
    i = len(data) // 2
    data[i] = data[i] ^ 0x01 if isinstance(value, bytes) else (
        ord("7") if data[i] != ord("7") else ord("8"))
    return bytes(data) if isinstance(value, bytes) else data.decode()


# table -> (key columns, value column)
TABLES = {
    "ledger_tree_tiles": (("key",), "hashes"),
    "ledger_checkpoints": (("size",), "root"),
    "ledger_sequencer": (("id",), "root"),
    "custody_state": (("tbl", "key"), "value"),
    "credential_anchor": (("tbl", "key"), "value"),
}


def _rows(home, table):
    keys, value = TABLES[table]
    return sql(home, f"SELECT {', '.join(keys)}, {value} FROM {table} "
               f"ORDER BY {', '.join(keys)}")


def change_byte(home, table):
    keys, value = TABLES[table]
    *key, old = _rows(home, table)[-1]
    where = " AND ".join(f"{k} = ?" for k in keys)
    sql(home, f"UPDATE {table} SET {value} = ? WHERE {where}", (flip(old), *key))


def delete_row(home, table):
    keys, _ = TABLES[table]
    if table == "ledger_checkpoints":
        # An older row deleted cannot be told from one never signed: the largest row is
        # compared with checkpoint.txt (pytest.skip below for the older ones).
        *key, _ = _rows(home, table)[-1]
    else:
        *key, _ = _rows(home, table)[0]
    where = " AND ".join(f"{k} = ?" for k in keys)
    sql(home, f"DELETE FROM {table} WHERE {where}", tuple(key))


def duplicate_row(home, table):
    """Every derived table has a primary key, so an exact duplicate cannot be stored: the
    row is copied under a new key instead (an extra row)."""
    if table == "ledger_sequencer":
        sql(home, "INSERT INTO ledger_sequencer (id, size, head, root) "
                  "SELECT 2, size, head, root FROM ledger_sequencer WHERE id = 1")
    elif table == "ledger_tree_tiles":
        sql(home, "INSERT INTO ledger_tree_tiles (key, hashes) "
                  "SELECT key + 1000000, hashes FROM ledger_tree_tiles LIMIT 1")
    elif table == "ledger_checkpoints":
        sql(home, "INSERT INTO ledger_checkpoints (size, root, note) "
                  "SELECT size + 100, root, note FROM ledger_checkpoints LIMIT 1")
    else:
        sql(home, f"INSERT INTO {table} (tbl, key, value) "
                  f"SELECT tbl, key || 'x', value FROM {table} LIMIT 1")
    with pytest.raises(sqlite3.IntegrityError):  # the exact duplicate is refused
        sql(home, f"INSERT INTO {table} SELECT * FROM {table} LIMIT 1")


def test_the_untouched_ledger_verifies(home):
    code, result = run(home, "ledger", "verify", "--json")
    assert code == 0, result.output
    assert json.loads(result.stdout)["ok"]


@pytest.mark.parametrize("table", list(TABLES))
@pytest.mark.parametrize("tamper", [change_byte, delete_row, duplicate_row])
def test_tamper_is_named_and_repaired(home, table, tamper):
    assert _rows(home, table), f"{table} is empty in the test ledger"
    tamper(home, table)
    code, result = run(home, "ledger", "verify")
    assert code == 1, result.output
    error = result.exception
    assert error.code == "LEDGER_DERIVED_MISMATCH", error
    assert error.details["table"] == table and error.details["row"], error.details
    assert table in error.message

    code, result = run(home, "ledger", "verify", "--json")
    assert code == 1
    listed = json.loads(result.stdout)["derived"]
    assert listed[0]["table"] == table

    code, result = run(home, "ledger", "repair", "--from-entries", "--json")
    assert code == 0, result.output
    assert json.loads(result.stdout)["ok"]
    code, result = run(home, "ledger", "verify")
    assert code == 0, result.output


def test_an_older_checkpoint_row_deleted_is_not_detected(home):
    pytest.skip("which sizes were signed is not recorded in the entries: an older "
                "checkpoint row deleted cannot be told from one never signed")


def test_bad_entries_are_not_repaired(home):
    before = _rows(home, "custody_state")
    sql(home, "UPDATE custody_state SET value = '1' WHERE rowid = 1")
    [(seq, body)] = [(seq, body) for seq, body in sql(home, "SELECT seq, body FROM "
                     "ledger_entries") if b"ore-0" in body]
    sql(home, "UPDATE ledger_entries SET body = ? WHERE seq = ?",
        (body.replace(b"ore-0", b"ore-9"), seq))
    tampered = _rows(home, "custody_state")
    code, result = run(home, "ledger", "repair", "--from-entries")
    assert code == 1, result.output
    assert result.exception.details.get("seq") == seq
    assert _rows(home, "custody_state") == tampered != before


def test_missing_checkpoint_file_is_named_and_repaired(home):
    (home / "checkpoint.txt").unlink()
    code, result = run(home, "ledger", "verify")
    assert code == 2
    message = result.exception.message
    assert "checkpoint.txt is missing" in message
    assert "ledger repair --from-entries" in message
    code, result = run(home, "ledger", "repair", "--from-entries", "--json")
    assert code == 0, result.output
    assert json.loads(result.stdout)["checkpointFileWritten"]
    assert (home / "checkpoint.txt").exists()
    assert run(home, "ledger", "verify")[0] == 0


def test_credential_record_edits_are_named_and_not_repaired_silently(home):
    """credential_record is checked against the anchors, but its bodies are not in the log:
    repair reports what it cannot rebuild (exit 1) instead of claiming success."""
    [(cid, body)] = sql(home, "SELECT id, body FROM credential_record")
    sql(home, "UPDATE credential_record SET body = ? WHERE id = ?",
        (body.replace("lot-9", "lot-8"), cid))
    code, result = run(home, "ledger", "verify")
    assert code == 1 and result.exception.details["table"] == "credential_record"
    assert result.exception.details["row"] == cid
    code, result = run(home, "ledger", "repair", "--from-entries")
    assert code == 1 and result.exception.details["table"] == "credential_record"
    sql(home, "UPDATE credential_record SET body = ? WHERE id = ?", (body, cid))
    assert run(home, "ledger", "verify")[0] == 0

    sql(home, "INSERT INTO credential_record SELECT id || 'x', issuer, types, digest, "
              "anchored_at, body FROM credential_record")
    code, result = run(home, "ledger", "verify")
    assert code == 1 and result.exception.details["table"] == "credential_record"


def test_credential_record_deleted_is_not_detected(home):
    pytest.skip("an anchor may be appended without its credential stored: a deleted "
                "credential_record row cannot be told from one never stored")


def test_status_list_is_not_checked(home):
    pytest.skip("status_list is the issuer's store (allocation, publication), not derived "
                "from the entries: not checked yet")
