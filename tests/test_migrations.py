"""Alembic: the migrated schema is exactly the models' metadata on both engines; upgrading
is idempotent; a home made before Alembic (create_all, per-node hashes) is stamped and
upgraded to tiles with its proofs and `ledger verify` intact."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from batterytrace.ledger import merkle
from batterytrace.ledger.log import Ledger, Submission, sqlite_url, verify_ledger
from batterytrace.ledger.migrations.schema import (
    alembic_config,
    head_revision,
    target_metadata,
)
from batterytrace.ledger.storage import SqlStorage
from sqlalchemy import inspect, text
from terminal_support import stderr_on_a_terminal

ORIGIN = "migrations.test/log"


def _diff(storage):
    with storage.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, target_metadata())


def test_migrated_schema_equals_the_models(tmp_path, database_url):
    storage = SqlStorage(database_url or sqlite_url(tmp_path))
    storage.create_schema()
    assert _diff(storage) == []
    assert storage.schema_revision() == head_revision()
    names = set(inspect(storage.engine).get_table_names())
    assert {"ledger_entries", "ledger_tree_tiles", "custody_state", "credential_anchor",
            "credential_record", "status_list"} <= names
    assert "ledger_tree_nodes" not in names
    storage.close()


def test_the_metadata_names_every_table_the_modules_create(tmp_path):
    """A module that creates its own table must also appear in target_metadata (and so get
    a migration): open the stores on a migrated database and look for strays."""
    from batterytrace.ledger.credential_store import CredentialStore

    led = Ledger.init(tmp_path / "h", None, ORIGIN)
    CredentialStore(led)  # creates (checkfirst) the tables of the custody and credential stores
    names = set(inspect(led.storage.engine).get_table_names()) - {"alembic_version"}
    assert names == set(target_metadata().tables)
    led.close()


def test_upgrading_an_existing_home_is_idempotent(tmp_path, database_url):
    home = tmp_path / "home"
    led = Ledger.init(home, database_url, ORIGIN)
    led.append([Submission("event", {"n": i}) for i in range(5)])
    root = led.root()
    for _ in range(2):
        led.storage.create_schema()
        assert led.storage.schema_revision() == head_revision()
    led.close()
    led = Ledger.open(home, database_url)  # open upgrades too: still a no-op
    assert led.size == 6 and led.root() == root
    led.close()
    assert verify_ledger(home, database_url)[0].size == 6


def test_a_pre_alembic_home_is_stamped_and_converted_to_tiles(tmp_path, database_url):
    home = tmp_path / "home"
    led = Ledger.init(home, database_url, ORIGIN, checkpoint_every_batch=False)
    for start in range(1, 600, 97):
        led.append([Submission("event", {"n": i}) for i in range(start, start + 97)])
    led.sign_checkpoint()
    leaves = [e.leaf_hash for e in led.iter_entries()]
    storage = led.storage
    # Back to the 0001 layout (one row per node), then forget Alembic was ever there: what
    # `create_all` left in homes made before migrations existed.
    with storage.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
    assert "ledger_tree_tiles" not in inspect(storage.engine).get_table_names()
    led.close()

    led = Ledger.open(home, database_url)
    assert led.storage.schema_revision() == head_revision()
    size = len(leaves)
    for index in (0, 255, 256, size - 1):
        assert led.inclusion_proof(index, size) == merkle.inclusion_proof(leaves, index)
    assert led.consistency_proof(300, size) == merkle.consistency_proof(leaves, 300)
    led.append([Submission("event", {"after": "upgrade"})])
    led.close()
    assert verify_ledger(home, database_url)[0].size == size + 1


def test_a_newer_schema_than_the_code_is_refused(tmp_path):
    led = Ledger.init(tmp_path / "h", None, ORIGIN)
    with led.storage.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    led.close()
    with pytest.raises(Exception) as info:
        Ledger.open(tmp_path / "h")
    assert getattr(info.value, "code", None) == "STORAGE_SCHEMA_ERROR"


def test_the_command_line_shows_each_migration_on_a_terminal_only(tmp_path):
    """An older database opened by a command: one line per revision applied on a terminal's
    stderr; nothing when piped (the library itself prints nothing)."""
    import subprocess
    import sys

    def older_home(name):
        home = tmp_path / name
        Ledger.init(home, None, ORIGIN).close()
        storage = Ledger.open(home).storage
        with storage.engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0003")
        storage.close()
        return home

    cli = [sys.executable, "-m", "batterytrace.api.cli"]
    code, seen = stderr_on_a_terminal([*cli, "--home", str(older_home("tty")), "ledger",
                                        "info"])
    assert code == 0, seen
    assert b"upgrading the database schema 1/3" in seen and b"0006" in seen
    piped = subprocess.run([*cli, "--home", str(older_home("piped")), "ledger", "info"],
                           capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and piped.stderr == ""
    assert Ledger.open(tmp_path / "piped").storage.schema_revision() == head_revision()
