"""`ledger repair --from-entries` in bounded memory (`api.cli_ledger.repair_from_entries`):
one pass over the entries for the chain and the tree, one replay handed to the rebuild and to
the check of what was written, rows streamed in chunks. On SQLite and PostgreSQL, with the
replayed state spilled to its temporary file after every entry (threshold forced to 1 row)
and kept in memory, it writes the same rows as the rebuild that replays the entries itself,
and a bad entry still changes nothing."""

from __future__ import annotations

import pytest
from batterytrace.api.cli_ledger import repair_from_entries
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.ledger import anchors as an
from batterytrace.ledger import derived_check
from batterytrace.ledger.anchor_store import anchor_validators
from batterytrace.ledger.credential_store import CredentialStore
from batterytrace.ledger.derived_check import check_derived, open_view, rebuild_derived
from batterytrace.ledger.log import Submission
from batterytrace.ledger.tables import (
    CHECKPOINTS,
    CREDENTIAL_ANCHOR,
    CREDENTIAL_SUBJECT,
    CUSTODY_STATE,
    ENTRIES,
    SEQUENCER,
    STATUS_LIST,
    TILES,
)
from custody_factory import (
    did_for,
    extraction,
    key_for,
    participant_doc,
    registered_ledger,
    sign_admin,
    signed_credential,
)
from sqlalchemy import delete, select, update
from test_anchors import credential

AUDITOR = "auditor"
STORED = "urn:uuid:00000000-0000-4000-8000-000000000077"
DERIVED = (TILES, CHECKPOINTS, SEQUENCER, CUSTODY_STATE, CREDENTIAL_ANCHOR, STATUS_LIST,
           CREDENTIAL_SUBJECT)


@pytest.fixture
def home(tmp_path, database_url):
    """A ledger with registry entries, events, an anchor, a stored credential and a status
    list bit, on the engine of `database_url`; returns (home, database_url)."""
    path = tmp_path / "home"
    led = registered_ledger(path, database_url)
    led.validators.update(anchor_validators(led))
    led.append([Submission("registry", sign_admin(participant_doc(
        AUDITOR, "Auditor Inc", ["auditor"], "CA")))])
    for n in range(4):
        led.append([Submission("event", signed_credential(
            "miner", [extraction("kolwezi-mine", f"ore-{n}", 1000 + n, {"Co": 0.3})]))])
    key = key_for(AUDITOR)
    led.append([Submission("anchor", an.sign_anchor(
        an.build_anchor(credential(did_for(AUDITOR), key, 1), an.ISSUANCE), key,
        created="2026-01-15T08:00:00Z"))])
    store = CredentialStore(led)
    store.issue({"@context": ["https://www.w3.org/ns/credentials/v2",
                              "https://www.w3.org/ns/credentials/examples/v2"],
                 "id": STORED, "type": ["VerifiableCredential", "ExampleCredential"],
                 "issuer": did_for(AUDITOR),
                 "credentialSubject": {"id": "https://id.example.com/lots/lot-7"}}, key)
    store.change_status(STORED, "suspension", key)
    led.close()
    return path, database_url


def _dump(view) -> dict[str, list[tuple]]:
    """Every row of every derived table, in key order."""
    with view.storage.engine.connect() as connection:
        return {t.name: sorted(tuple(r) for r in connection.execute(select(t)))
                for t in DERIVED}


def _tamper(view) -> None:
    """A deleted tile and latest checkpoint row (checkpoint.txt's note restores it), changed
    and deleted custody rows, no anchors."""
    with view.storage.engine.begin() as connection:
        first_tile = connection.execute(select(TILES.c.key).limit(1)).scalar_one()
        connection.execute(delete(TILES).where(TILES.c.key == first_tile))
        connection.execute(delete(CHECKPOINTS).where(
            CHECKPOINTS.c.size == select(CHECKPOINTS.c.size)
            .order_by(CHECKPOINTS.c.size.desc()).limit(1).scalar_subquery()))
        keys = connection.execute(select(CUSTODY_STATE.c.tbl, CUSTODY_STATE.c.key)
                                  .order_by(CUSTODY_STATE.c.tbl, CUSTODY_STATE.c.key)).all()
        for tbl, key in keys[::3]:
            connection.execute(delete(CUSTODY_STATE).where(
                CUSTODY_STATE.c.tbl == tbl, CUSTODY_STATE.c.key == key))
        tbl, key = keys[1]
        connection.execute(update(CUSTODY_STATE).where(
            CUSTODY_STATE.c.tbl == tbl, CUSTODY_STATE.c.key == key).values(value="1"))
        connection.execute(delete(CREDENTIAL_ANCHOR))


@pytest.mark.parametrize("spill_rows", [1, None], ids=["spilled-every-entry", "in-memory"])
def test_the_streamed_repair_writes_the_rows_the_replaying_rebuild_writes(home, spill_rows,
                                                                          monkeypatch):
    path, url = home
    view = open_view(path, url)
    try:
        original = _dump(view)
        assert len(original[CUSTODY_STATE.name]) > 20 and original[CREDENTIAL_ANCHOR.name]
        _tamper(view)
        assert check_derived(view)
        # Chunks of 2 rows and 1 tile: every streamed write runs many times.
        monkeypatch.setattr(derived_check, "WRITE_CHUNK", 2)
        monkeypatch.setattr(derived_check, "TILE_CHUNK", 1)
        done = repair_from_entries(view, processes=1, spill_rows=spill_rows)
        assert done.remaining == [] and not done.checkpoint_file_written
        streamed = _dump(view)
        assert streamed == original
        assert done.counts[CUSTODY_STATE.name] == len(original[CUSTODY_STATE.name])
        assert done.counts[CREDENTIAL_ANCHOR.name] == len(original[CREDENTIAL_ANCHOR.name])
        assert done.counts[TILES.name] == len(original[TILES.name])
        # The rebuild that reads and replays the entries itself writes the same rows.
        _tamper(view)
        assert rebuild_derived(view) == done.counts
        assert _dump(view) == streamed
        assert check_derived(view) == []
    finally:
        view.close()


def test_a_bad_entry_changes_nothing(home):
    path, url = home
    view = open_view(path, url)
    try:
        _tamper(view)
        with view.storage.engine.begin() as connection:
            seq, body = connection.execute(
                select(ENTRIES.c.seq, ENTRIES.c.body).where(ENTRIES.c.kind == "event")
                .order_by(ENTRIES.c.seq).limit(1)).one()
            connection.execute(update(ENTRIES).where(ENTRIES.c.seq == seq).values(
                body=bytes(body).replace(b"ore-0", b"ore-9")))
        tampered = _dump(view)
        with pytest.raises(BatterytraceError) as caught:
            repair_from_entries(view, processes=1, spill_rows=1)
        assert caught.value.exit_code == 1
        assert caught.value.details.get("seq") == seq
        assert _dump(view) == tampered
    finally:
        view.close()


def test_a_failing_rewrite_changes_nothing(home, monkeypatch):
    """The rewrite is one transaction: an error after the first rows were written (here a
    status list rebuild that fails) leaves every table as it was."""
    path, url = home
    view = open_view(path, url)
    try:
        _tamper(view)
        tampered = _dump(view)

        def fail(*_args, **_kwargs):
            raise RuntimeError("disk gone")

        monkeypatch.setattr(derived_check, "rebuild_status_lists", fail)
        with pytest.raises(RuntimeError):
            repair_from_entries(view, processes=1, spill_rows=1)
        assert _dump(view) == tampered
    finally:
        view.close()
