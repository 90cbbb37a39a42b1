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
    shipping,
    sign_admin,
    signed_credential,
    standard_registry_docs,
)
from test_anchors import credential
from typer.testing import CliRunner

runner = CliRunner()
AUDITOR = "auditor"
STORED = "urn:uuid:00000000-0000-4000-8000-000000000099"
GS1_GTIN = "09506000134352"


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
    # Amounts written "1000.50": the append path and the replay store the same text.
    led.append([Submission("event", signed_credential(
        "miner", [extraction("kolwezi-mine", "ore-decimal", 1000.50, {"Co": 0.30})]))])
    # A lot with a GS1 key: the resolver's index row (custody_state, tbl gs1_key).
    led.append([Submission("event", signed_credential(
        "miner", [extraction("kolwezi-mine", "ore-gs1", 5.50, {"Cu": 0.10, "Co": 0.3},
                             gtin=GS1_GTIN, lotNumber="L-1")]))])  # the fingerprint: unsorted
    key = key_for(AUDITOR)
    cred = credential(did_for(AUDITOR), key, 1)
    led.append([Submission("anchor", an.sign_anchor(an.build_anchor(cred, an.ISSUANCE), key,
                                                    created="2026-01-15T08:00:00Z"))])
    store = CredentialStore(led)  # a credential stored with its anchor: credential_record
    store.issue({"@context": ["https://www.w3.org/ns/credentials/v2",
                              "https://www.w3.org/ns/credentials/examples/v2"],
                 "id": STORED,
                 "type": ["VerifiableCredential", "ExampleCredential"],
                 "issuer": did_for(AUDITOR),
                 "credentialSubject": {"id": "https://id.example.com/lots/lot-9"}}, key)
    store.change_status(STORED, "suspension", key)  # one bit set in a status list
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
    "status_list": (("url",), "bits"),
    "credential_subject": (("credential_id",), "subject_id"),
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
    *key, _ = _rows(home, table)[0]
    where = " AND ".join(f"{k} = ?" for k in keys)
    sql(home, f"DELETE FROM {table} WHERE {where}", tuple(key))


# table -> its columns, the key changed: what `duplicate_row` inserts.
COPY_UNDER_NEW_KEY = {
    "ledger_sequencer": "2, size, head, root",
    "ledger_tree_tiles": "key + 1000000, hashes",
    "ledger_checkpoints": "size + 100, root, note, previous, seal",
    "custody_state": "tbl, key || 'x', value, seal",
    "credential_anchor": "tbl, key || 'x', value",
    "status_list": "url || 'x', issuer, purpose, number, length, bits, allocated, "
                   "allocated_count, published, stale",
    "credential_subject": "subject_id || 'x', credential_id",
}


def duplicate_row(home, table):
    """Every derived table has a primary key, so an exact duplicate cannot be stored: the
    row is copied under a new key instead (an extra row)."""
    sql(home, f"INSERT INTO {table} SELECT {COPY_UNDER_NEW_KEY[table]} FROM {table} LIMIT 1")
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
    assert code == 0, (result.output, repr(result.exception))
    assert json.loads(result.stdout)["ok"]
    code, result = run(home, "ledger", "verify")
    assert code == 0, result.output


@pytest.mark.parametrize("edit", ["point elsewhere", "delete"])
def test_the_gs1_key_index_is_checked_and_repaired(home, edit):
    """The resolver's GS1 key index: a row pointed at another lot, or deleted, is named by
    `ledger verify` and rebuilt by `ledger repair --from-entries`."""
    key = f"/01/{GS1_GTIN}/10/L-1"
    [(value,)] = sql(home, "SELECT value FROM custody_state WHERE tbl = 'gs1_key' AND key = ?",
                     (key,))
    assert "ore-gs1" in value
    if edit == "delete":
        sql(home, "DELETE FROM custody_state WHERE tbl = 'gs1_key' AND key = ?", (key,))
    else:
        sql(home, "UPDATE custody_state SET value = ? WHERE tbl = 'gs1_key' AND key = ?",
            (value.replace("ore-gs1", "ore-0"), key))
    code, result = run(home, "ledger", "verify")
    assert code == 1 and result.exception.details["table"] == "custody_state", result.output
    assert "gs1_key" in str(result.exception.details["row"]), result.exception.details
    code, result = run(home, "ledger", "repair", "--from-entries", "--json")
    assert code == 0, (result.output, repr(result.exception))
    assert sql(home, "SELECT value FROM custody_state WHERE tbl = 'gs1_key' AND key = ?",
               (key,)) == [(value,)]
    assert run(home, "ledger", "verify")[0] == 0


@pytest.mark.parametrize("which", ["oldest", "middle", "newest"])
def test_a_deleted_checkpoint_row_breaks_the_chain(home, which):
    """Each checkpoint row names the row before it, under its seal: a deleted row is named
    wherever it was (the newest is also compared with checkpoint.txt)."""
    sizes = [size for (size,) in sql(home, "SELECT size FROM ledger_checkpoints ORDER BY size")]
    assert len(sizes) >= 4
    gone = {"oldest": sizes[0], "middle": sizes[len(sizes) // 2], "newest": sizes[-1]}[which]
    sql(home, "DELETE FROM ledger_checkpoints WHERE size = ?", (gone,))
    code, result = run(home, "ledger", "verify")
    assert code == 1, result.output
    assert result.exception.details["table"] == "ledger_checkpoints"
    assert str(gone) in result.exception.message
    assert run(home, "ledger", "repair", "--from-entries")[0] == 0
    assert run(home, "ledger", "verify")[0] == 0


def test_a_rechained_checkpoint_row_fails_its_seal(home):
    """Deleting a row and re-pointing the next one at the row before: the seal covers
    `previous`, so the edit shows."""
    sizes = [size for (size,) in sql(home, "SELECT size FROM ledger_checkpoints ORDER BY size")]
    sql(home, "DELETE FROM ledger_checkpoints WHERE size = ?", (sizes[1],))
    sql(home, "UPDATE ledger_checkpoints SET previous = ? WHERE size = ?", (sizes[0], sizes[2]))
    code, result = run(home, "ledger", "verify")
    assert code == 1
    assert result.exception.details["row"] == f"size={sizes[2]}"
    assert "seal" in result.exception.message


def _raise_holding(home):
    [(key, value)] = [(k, v) for k, v in sql(home, "SELECT key, value FROM custody_state "
                                                   "WHERE tbl = 'holding'") if "ore-0" in k]
    raised = json.loads(value)
    raised["$d"] = "50000"
    sql(home, "UPDATE custody_state SET value = ? WHERE tbl = 'holding' AND key = ?",
        (json.dumps(raised, separators=(",", ":")), key))


def test_event_append_refuses_a_raised_holding(home):
    """A holding raised in the database (1,000 kg -> 50,000 kg) is refused by the next append
    that reads it, naming the row, before any rule trusts it; nothing is appended."""
    _raise_holding(home)
    size = sql(home, "SELECT count(*) FROM ledger_entries")[0][0]
    led = Ledger.open(home)
    led.validators.update(validators_for(led))
    try:
        with pytest.raises(BatterytraceError) as info:
            led.append([Submission("event", signed_credential("miner", [shipping(
                "kolwezi-mine", "miner", "refiner", "nantong-refinery",
                lots=[("ore-0", 40000)])]))])
    finally:
        led.close()
    assert info.value.code == "LEDGER_DERIVED_TAMPERED"
    assert "holding" in info.value.message and "ore-0" in info.value.message
    assert "ledger repair --from-entries" in info.value.message
    assert sql(home, "SELECT count(*) FROM ledger_entries")[0][0] == size
    code, result = run(home, "ledger", "verify")
    assert code == 1 and result.exception.details["table"] == "custody_state"


def test_a_signed_checkpoint_row_edited_is_refused_before_signing(home):
    """The newest checkpoint row with a zeroed root: the next append refuses, naming the row
    as changed outside the ledger (not a LEDGER_FORK of the log)."""
    [(size,)] = sql(home, "SELECT max(size) FROM ledger_checkpoints")
    sql(home, "UPDATE ledger_checkpoints SET root = zeroblob(32) WHERE size = ?", (size,))
    led = Ledger.open(home)
    led.validators.update(validators_for(led))
    try:
        with pytest.raises(BatterytraceError) as info:
            led.append([Submission("event", signed_credential(
                "miner", [extraction("kolwezi-mine", "ore-new", 10, {"Co": 0.3})]))])
    finally:
        led.close()
    assert info.value.code == "LEDGER_DERIVED_TAMPERED"
    assert f"'{size}'" in info.value.message


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


def _suspension_list(home):
    [(url, bits, allocated)] = sql(home, "SELECT url, bits, allocated FROM status_list "
                                         "WHERE purpose = 'suspension'")
    return url, bytearray(bits), bytearray(allocated)


def _first_set(data):
    return next(i * 8 + (7 - b) for i, byte in enumerate(data) for b in range(7, -1, -1)
                if byte >> b & 1)


@pytest.mark.parametrize("edit", ["clear the suspended bit", "set a free bit",
                                  "free an anchored index", "change the issuer"])
def test_status_list_edits_are_named_and_repaired(home, edit):
    url, bits, allocated = _suspension_list(home)
    index = _first_set(bits)
    if edit == "clear the suspended bit":
        bits[index // 8] &= ~(0x80 >> index % 8) & 0xFF
        sql(home, "UPDATE status_list SET bits = ? WHERE url = ?", (bytes(bits), url))
    elif edit == "set a free bit":
        other = (index + 1) % (len(bits) * 8)
        bits[other // 8] |= 0x80 >> other % 8
        sql(home, "UPDATE status_list SET bits = ? WHERE url = ?", (bytes(bits), url))
    elif edit == "free an anchored index":
        allocated[index // 8] &= ~(0x80 >> index % 8) & 0xFF
        sql(home, "UPDATE status_list SET allocated = ? WHERE url = ?", (bytes(allocated), url))
    else:
        sql(home, "UPDATE status_list SET issuer = 'did:example:someone-else' WHERE url = ?",
            (url,))
    code, result = run(home, "ledger", "verify")
    assert code == 1, result.output
    assert result.exception.details["table"] == "status_list"
    assert url in result.exception.details["row"]
    code, result = run(home, "ledger", "repair", "--from-entries")
    if edit == "change the issuer":  # not in the log: reported, not rewritten
        assert code == 1 and result.exception.details["table"] == "status_list"
        return
    assert code == 0, result.output
    assert run(home, "ledger", "verify")[0] == 0
    assert _suspension_list(home)[1][index // 8] & (0x80 >> index % 8)


def test_an_older_schema_is_sealed_on_open_and_by_one_repair(home):
    """A database from before schema 0005: opening it chains and seals the checkpoint rows;
    the custody rows need the replay, so appends are refused (naming the unsealed row) until
    `ledger repair --from-entries` has run once."""
    from alembic import command
    from batterytrace.ledger.migrations.schema import alembic_config
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{home / 'ledger.sqlite'}")
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0004")
    engine.dispose()
    assert "seal" not in str(sql(home, "SELECT sql FROM sqlite_master "
                                       "WHERE name = 'custody_state'"))

    def append_one(lot):
        led = Ledger.open(home)
        led.validators.update(validators_for(led))
        try:
            led.append([Submission("event", signed_credential(
                "miner", [extraction("kolwezi-mine", lot, 10, {"Co": 0.3})]))])
        finally:
            led.close()

    with pytest.raises(BatterytraceError) as info:
        append_one("after-upgrade")
    assert info.value.code == "LEDGER_DERIVED_TAMPERED"
    assert "before schema 0005" in info.value.message
    assert not sql(home, "SELECT size FROM ledger_checkpoints WHERE seal IS NULL")
    assert run(home, "ledger", "repair", "--from-entries")[0] == 0
    append_one("after-repair")
    assert run(home, "ledger", "verify")[0] == 0


def _flip_seal(home, table):
    *key, seal = sql(home, f"SELECT tbl, key, seal FROM {table} ORDER BY tbl, key")[-1]
    sql(home, f"UPDATE {table} SET seal = ? WHERE tbl = ? AND key = ?", (flip(seal), *key))


@pytest.mark.parametrize("tamper", [None, change_byte, delete_row, duplicate_row, _flip_seal])
def test_the_stored_rows_digested_in_a_worker_give_the_same_verdict(home, tamper, monkeypatch):
    """`ledger verify --processes 2` digests the stored custody rows in a worker and
    compares them row by row only when the digests differ: the same verdict as with one
    process, and no row by row comparison of custody_state for a sound ledger."""
    from batterytrace.ledger import derived_check

    compared: list[str] = []
    real = derived_check._compare_rows

    def spy(table, expected, found):
        compared.append(table)
        return real(table, expected, found)

    monkeypatch.setattr(derived_check, "_compare_rows", spy)
    if tamper is not None:
        tamper(home, "custody_state")
    verdicts = []
    for processes in ("1", "2"):
        compared.clear()
        code, result = run(home, "ledger", "verify", "--processes", processes, "--json")
        verdicts.append((code, json.loads(result.stdout).get("derived")))
    assert verdicts[0] == verdicts[1]
    assert (verdicts[0][0] == 0) is (tamper is None), verdicts
    if tamper in (None, _flip_seal):  # the values agree: the digests matched
        assert compared == ["credential_anchor"]
    else:
        assert "custody_state" in compared
    if tamper is not None:
        assert verdicts[0][1][0]["table"] == "custody_state"
    if tamper is _flip_seal:  # the worker's seal check
        assert "seal" in verdicts[0][1][0]["found"]
