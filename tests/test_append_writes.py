"""The appender's path on each engine (on PostgreSQL: the lock and the reads in one
pipeline, one COPY fed as the entries are made, the rest and the COMMIT in one pipeline):
statements are announced to the engine's listeners, the reads return what separate queries
return and see the previous holder's commit, a driver error surfaces as SQLAlchemy's (typed
by `translate_db_errors`), and a failed batch leaves nothing behind."""

from __future__ import annotations

import threading
import time

import pytest
from batterytrace.ledger.log import Ledger, Submission, verify_ledger
from batterytrace.ledger.storage import (
    ENTRY_COLUMNS,
    TILE_BYTES,
    SqlStorage,
    appended_tiles,
)
from batterytrace.ledger.tables import ENTRIES
from batterytrace.ledger.tree_store import frontier_tiles
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

ORIGIN = "append-writes.test/log"


def _batch(tag: str, n: int) -> list[Submission]:
    return [Submission("event", {"t": tag, "i": i}) for i in range(n)]


def test_append_statements_are_announced_and_few(tmp_path, database_url):
    led = Ledger.init(tmp_path / "h", database_url, ORIGIN)
    led.append(_batch("warm", 300))
    seen: list[str] = []
    listener = lambda *a: seen.append(a[2])  # noqa: E731 (conn, cursor, statement, ...)
    event.listen(led.storage.engine, "before_cursor_execute", listener)
    try:
        led.append(_batch("one", 700))  # crosses tile boundaries, completes subtrees
    finally:
        event.remove(led.storage.engine, "before_cursor_execute", listener)
    text = "\n".join(seen)
    assert "ledger_entries" in text and "ledger_tree_tiles" in text
    assert "ledger_checkpoints" in text and "ledger_sequencer" in text
    # the lock, one read of tiles and checkpoint, the entries, tiles, head and checkpoint
    assert len(seen) <= 9, seen
    led.close()
    summary, claimed = verify_ledger(tmp_path / "h", database_url)
    assert summary.size == claimed == 1001


def test_a_driver_error_in_the_write_path_is_sqlalchemys_and_rolls_back(tmp_path,
                                                                        database_url):
    led = Ledger.init(tmp_path / "h", database_url, ORIGIN)
    led.append(_batch("warm", 3))
    with pytest.raises(IntegrityError), led.storage.write() as (session, _head):
        # entry 1 exists: the COPY (PostgreSQL) or INSERT (SQLite) of a duplicate seq fails
        led.storage.insert_rows(session, ENTRIES, ENTRY_COLUMNS,
                                [(1, "event", bytes(32), b"{}")])
    led.append(_batch("after", 2))  # the lock is free and the log unharmed
    led.close()
    summary, claimed = verify_ledger(tmp_path / "h", database_url)
    assert summary.size == claimed == 6


@pytest.mark.parametrize("sizes", [[1, 255, 1], [256, 300, 700], [1000, 3, 65]])
def test_the_append_transaction_reads_what_separate_queries_read(tmp_path, database_url, sizes):
    # The lock and the reads in one pipeline (PostgreSQL) return the head, every tile the
    # next append writes or its frontier lies in (as stored), and the latest checkpoint row.
    led = Ledger.init(tmp_path / "h", database_url, ORIGIN)
    for k, n in enumerate(sizes):
        led.append(_batch(f"b{k}", n))
        storage = led.storage
        size = storage.head().size
        needed = (appended_tiles(size, 300) | frontier_tiles(size)) & set(
            storage.tiles(appended_tiles(0, size)))
        with storage.append_transaction(True) as (session, head, tiles, latest):
            assert head == storage.head()
            assert {key: tiles[key] for key in needed} == storage.tiles(needed)
            assert latest == storage.latest_checkpoint_in(session)
        with storage.append_transaction(False) as (_session, head, tiles, latest):
            assert latest is None and needed <= set(tiles)
    led.close()


def test_an_error_while_the_entries_are_written_leaves_nothing(tmp_path, database_url):
    # entry_writer streams the rows (a COPY open on PostgreSQL): an error raised in its
    # block, after some rows went out, writes none of them, and the lock is free after.
    led = Ledger.init(tmp_path / "h", database_url, ORIGIN)
    led.append(_batch("warm", 3))
    with pytest.raises(RuntimeError, match="mid-batch"), \
            led.storage.append_transaction(True) as (session, head, _tiles, _latest):
        with led.storage.entry_writer(session) as put:
            for seq in range(head.size, head.size + 500):
                put((seq, "event", bytes(32), b"{}"))
            raise RuntimeError("mid-batch")
    assert led.storage.head().size == 4 and led.storage.entry_body(4) is None
    led.append(_batch("after", 2))
    led.close()
    summary, claimed = verify_ledger(tmp_path / "h", database_url)
    assert summary.size == claimed == 6


def test_reads_sent_with_the_lock_see_the_previous_holders_commit(tmp_path, postgres_url):
    # The reads go to the server with the lock request and wait behind it: each takes its
    # snapshot when it starts, after the lock is granted, so it sees what the holder
    # committed meanwhile (a snapshot taken with the request would not).
    led = Ledger.init(tmp_path / "h", postgres_url, ORIGIN)
    led.append(_batch("warm", 300))
    other = SqlStorage(postgres_url)
    seen: list[tuple[object, ...]] = []
    failed: list[BaseException] = []

    def waiter() -> None:
        try:
            with other.append_transaction(True) as (_session, head, tiles, latest):
                seen.append((head, tiles, latest))
        except BaseException as exc:  # reported by the main thread
            failed.append(exc)

    with led.storage.write() as (session, head):
        assert head is not None
        thread = threading.Thread(target=waiter)
        thread.start()
        _wait_for_a_lock_waiter(led.storage)
        conn = session.connection()
        conn.exec_driver_sql("UPDATE ledger_tree_tiles SET hashes = %s WHERE key = 1",
                             (b"\x07" * TILE_BYTES,))
        conn.exec_driver_sql("UPDATE ledger_sequencer SET size = 299")
        conn.exec_driver_sql("UPDATE ledger_checkpoints SET note = %s WHERE size = 301",
                             (b"marker",))
    thread.join(timeout=60)
    assert not failed and not thread.is_alive()
    (head, tiles, latest), = seen
    assert head.size == 299 and tiles[1] == b"\x07" * TILE_BYTES and latest.note == b"marker"
    other.close()
    led.close()


def _wait_for_a_lock_waiter(storage: SqlStorage) -> None:
    """Until a backend of the database waits on a lock (the other writer's request)."""
    deadline = time.monotonic() + 60
    with storage.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'").scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("no writer came to wait on the lock")
