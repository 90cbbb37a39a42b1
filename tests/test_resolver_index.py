"""The resolver's GS1 key index (custody state table `gs1_key`): a Digital Link on another
host, a declared gtin with serial or lot number, resolve by one keyed read on SQLite and
PostgreSQL, without reading every item or lot row; an item un-made by an error declaration
leaves the index, and the one made again by the correction takes its key."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from batterytrace.api.routers.resolver import UnresolvedIdentifierError, find_subject
from batterytrace.ledger import resolver_links as rl
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.queries import read_state
from custody_factory import (
    event_id,
    extraction,
    item_id,
    lot_id,
    registered_ledger,
    signed_credential,
    transformation,
)
from sqlalchemy import event as sa_event

GTIN = "09506000134352"
ON_ANOTHER_HOST = f"https://brand.example/products/01/{GTIN}/21/SN-42"


@pytest.fixture
def ledger(tmp_path, database_url):
    led = registered_ledger(tmp_path / "home", database_url)
    yield led
    led.close()


def _make_items(extra: int) -> list[dict[str, Any]]:
    """An extraction (its lot declared with gtin and lotNumber) and a production of `extra`
    plain cells, one cell on another host's Digital Link, one declaring gtin + serial."""
    ore = extraction("kolwezi-mine", "ore", 1000, {"Co": 0.3}, gtin=GTIN, lotNumber="L-7")
    names = [f"cell-{n}" for n in range(extra)] + ["linked", "declared"]
    made = transformation("kolwezi-mine", [("ore", 10)],
                          output_items=[(n, "cell", 0.1, {"Co": 0.3}) for n in names])
    made["outputEPCList"][-2] = {"id": ON_ANOTHER_HOST, "name": "linked"}
    made["itemDeclarations"][-2]["id"] = ON_ANOTHER_HOST
    made["itemDeclarations"][-1].update(gtin=GTIN, serialNumber="PK-0001")
    return [ore, made]


@contextmanager
def _statements(ledger: Ledger) -> Iterator[list[str]]:
    """The SQL statements run on the ledger's engine inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa_event.listen(ledger.storage.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(ledger.storage.engine, "before_cursor_execute", record)


def _resolve(ledger: Ledger, link: rl.DigitalLink) -> tuple[str, list[str]]:
    with _statements(ledger) as seen, read_state(ledger) as view:
        found = find_subject(ledger, view, link=link).id
    return found, seen


def _reads_whole_table(statement: str) -> bool:
    """A read of custody_state rows with no condition on the key: a scan of a table."""
    text = " ".join(statement.split()).lower()
    if "from custody_state" not in text or not text.startswith("select"):
        return False
    where = text.split(" where ", 1)[1].split(" order by ")[0] if " where " in text else ""
    return "key" not in where


def test_gs1_keys_resolve_by_index(ledger):
    ledger.append([Submission("event", signed_credential("miner", _make_items(30)))])
    cases = {rl.DigitalLink(GTIN, "21", "SN-42"): ON_ANOTHER_HOST,
             rl.DigitalLink(GTIN, "21", "PK-0001"): item_id("declared"),
             rl.DigitalLink(GTIN, "10", "L-7"): lot_id("ore")}
    for link, subject in cases.items():
        found, statements = _resolve(ledger, link)
        assert found == subject
        assert statements and not [s for s in statements if _reads_whole_table(s)], statements
    with read_state(ledger) as view, pytest.raises(UnresolvedIdentifierError):
        find_subject(ledger, view, link=rl.DigitalLink(GTIN, "21", "SN-43"))


def test_the_scan_detector_sees_a_scan(ledger):
    """The check above would see the old lookup: reading every item row is a scan."""
    ledger.append([Submission("event", signed_credential("miner", _make_items(2)))])
    with _statements(ledger) as seen, read_state(ledger) as view:
        rows = view.rows("item")
    assert len(rows) == 4 and any(_reads_whole_table(s) for s in seen)


def test_an_unmade_item_leaves_the_index(ledger):
    events = _make_items(0)
    ledger.append([Submission("event", signed_credential("miner", events[:1]))])
    made = events[1]
    ledger.append([Submission("event", signed_credential("miner", [made]))])
    declared = {**copy.deepcopy(made), "id": event_id(), "erroneousEvent": made["id"]}
    ledger.append([Submission("event", signed_credential("miner", [declared]))])
    link = rl.DigitalLink(GTIN, "21", "SN-42")
    with read_state(ledger) as view, pytest.raises(UnresolvedIdentifierError):
        find_subject(ledger, view, link=link)
    again = {**copy.deepcopy(made), "id": event_id()}
    ledger.append([Submission("event", signed_credential("miner", [again]))])
    assert _resolve(ledger, link)[0] == ON_ANOTHER_HOST
