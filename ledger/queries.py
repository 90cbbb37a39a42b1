"""The reads the command line and the HTTP service make: views of the stored registry and
custody state (lots, items, their holders, history and trace, registry rows) and the log's
size, so that neither opens a connection nor writes SQL. The CLI (`lot show`, `item trace`,
...) and the routers return the same views.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection

from .custody import CustodyState
from .custody_errors import UnknownItemError, UnknownLotError
from .custody_store import all_values, open_state, plain_json, rows_with_prefix
from .log import Ledger
from .registry import Registry
from .storage import SqlStorage


def plain_value(value: Any) -> Any:
    """JSON of a state value, Decimals as strings (exact)."""
    def fix(v: Any) -> Any:
        if isinstance(v, dict):
            return v["$d"] if v.keys() == {"$d"} else {k: fix(x) for k, x in v.items()}
        return [fix(x) for x in v] if isinstance(v, list) else v

    return fix(plain_json(value))


class StateView:
    """Read-only registry and custody state over one connection (see `read_state`)."""

    def __init__(self, connection: Connection, registry: Registry, state: CustodyState) -> None:
        self.connection = connection
        self.registry = registry
        self.state = state

    def rows(self, table: str) -> list[Any]:
        """Every value of a registry or custody table ("participant", "facility", ...), by key."""
        return all_values(self.connection, table)

    def history(self, subject: str) -> list[dict[str, Any]]:
        """The events naming a lot or item: {"event", "seq"} in log order."""
        rows = rows_with_prefix(self.connection, "history", subject)
        return sorted(({"event": key[1], "seq": seq} for key, seq in rows),
                      key=lambda r: r["seq"])

    def history_positions(self, subject: str) -> list[int]:
        """The log positions of the events naming a lot or item."""
        return [seq for _, seq in rows_with_prefix(self.connection, "history", subject)]

    def links(self, table: str, subject: str) -> list[str]:
        """Direct links of a subject: "source" (what it came from) or "edge" (products)."""
        return [key[1] for key, _ in rows_with_prefix(self.connection, table, subject)]

    def holders(self, lot_id: str) -> list[dict[str, Any]]:
        return [{"holder": key[1], "kg": str(kg)} for key, kg in
                rows_with_prefix(self.connection, "holding", lot_id)]

    def lot(self, lot_id: str) -> dict[str, Any]:
        """A lot: composition, creator, details, holders and history (UnknownLotError)."""
        lot = self.state.lot(lot_id)
        if lot is None:
            raise UnknownLotError(f"lot {lot_id} is unknown")
        return {"id": lot_id, "composition": plain_value(lot.composition),
                "createdBy": lot.created_by, "details": plain_value(lot.details),
                "holders": self.holders(lot_id), "history": self.history(lot_id)}

    def item(self, item_id: str) -> dict[str, Any]:
        """An item with its holder and status (those of its top assembly) and history."""
        item = self.state.item(item_id)
        if item is None:
            raise UnknownItemError(f"item {item_id} is unknown")
        root = self.state.root(item)
        return {**plain_value(item), "holder": root.holder, "status": root.status,
                "history": self.history(item_id)}

    def trace(self, subject: str) -> dict[str, Any]:
        """Upstream (sources, recursively) and downstream (products, recursively)."""
        def walk(table: str) -> list[str]:
            seen: list[str] = []
            stack = [subject]
            while stack:
                for nxt in self.links(table, stack.pop()):
                    if nxt not in seen:
                        seen.append(nxt)
                        stack.append(nxt)
            return seen

        return {"upstream": walk("source"), "downstream": walk("edge")}


@contextmanager
def read_state(ledger: Ledger) -> Iterator[StateView]:
    """A `StateView` of the ledger's stored state, on a connection held for the block."""
    with ledger.storage.engine.connect() as connection:
        registry, state = open_state(connection, ledger)
        yield StateView(connection, registry, state)


def stored_log_size(database_url: str) -> int | None:
    """The size the database's sequencer row records, or None when it holds no ledger
    (read without opening the ledger, whose checks would stop at a damaged entry)."""
    storage = SqlStorage(database_url)
    try:
        head = storage.head() if storage.has_schema() else None
    finally:
        storage.close()
    return None if head is None else head.size


__all__ = ["StateView", "plain_value", "read_state", "stored_log_size"]
