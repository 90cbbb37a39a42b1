"""The appender's write path on each engine (one COPY and one pipeline on PostgreSQL):
statements are announced to the engine's listeners, a driver error surfaces as SQLAlchemy's
(typed by `translate_db_errors`), and a failed batch leaves nothing behind."""

from __future__ import annotations

import pytest
from batterytrace.ledger.log import Ledger, Submission, verify_ledger
from batterytrace.ledger.storage import ENTRY_COLUMNS
from batterytrace.ledger.tables import ENTRIES
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
