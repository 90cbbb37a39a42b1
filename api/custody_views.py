"""Read views of custody state: lots, items, their history and trace, registry rows.

The CLI (`lot show`, `item trace`, ...) and the HTTP routers return the same views.
"""

from __future__ import annotations

from typing import Any


def all_rows(conn: Any, table: str) -> list[Any]:
    from batterytrace.ledger.custody_store import decode_value, ensure_schema, state_table
    from sqlalchemy import select

    ensure_schema(conn)
    t = state_table()
    rows = conn.execute(select(t.c.value).where(t.c.tbl == table).order_by(t.c.key))
    return [decode_value(table, v) for (v,) in rows]


def history(conn: Any, subject: str) -> list[dict[str, Any]]:
    from batterytrace.ledger.custody_store import rows_with_prefix

    rows = rows_with_prefix(conn, "history", subject)
    return sorted(({"event": key[1], "seq": seq} for key, seq in rows), key=lambda r: r["seq"])


def links(conn: Any, table: str, subject: str) -> list[str]:
    from batterytrace.ledger.custody_store import rows_with_prefix

    return [key[1] for key, _ in rows_with_prefix(conn, table, subject)]


def plain_value(value: Any) -> Any:
    """JSON of a state value, Decimals as strings (exact)."""
    from batterytrace.ledger.custody_store import plain_json as plain

    def fix(v: Any) -> Any:
        if isinstance(v, dict):
            return v["$d"] if v.keys() == {"$d"} else {k: fix(x) for k, x in v.items()}
        return [fix(x) for x in v] if isinstance(v, list) else v

    return fix(plain(value))


def lot_view(conn: Any, state: Any, lot_id: str) -> dict[str, Any]:
    from batterytrace.ledger.custody_errors import UnknownLotError
    from batterytrace.ledger.custody_store import rows_with_prefix

    lot = state.lot(lot_id)
    if lot is None:
        raise UnknownLotError(f"lot {lot_id} is unknown")
    holders = [{"holder": key[1], "kg": str(kg)} for key, kg in
               rows_with_prefix(conn, "holding", lot_id)]
    return {"id": lot_id, "composition": plain_value(lot.composition), "createdBy": lot.created_by,
            "details": plain_value(lot.details), "holders": holders,
            "history": history(conn, lot_id)}


def item_view(conn: Any, state: Any, item_id: str) -> dict[str, Any]:
    from batterytrace.ledger.custody_errors import UnknownItemError

    item = state.item(item_id)
    if item is None:
        raise UnknownItemError(f"item {item_id} is unknown")
    root = state.root(item)
    return {**plain_value(item), "holder": root.holder, "status": root.status,
            "history": history(conn, item_id)}


def trace(conn: Any, subject: str) -> dict[str, Any]:
    """Upstream (sources, recursively) and downstream (products, recursively)."""
    def walk(table: str) -> list[str]:
        seen: list[str] = []
        stack = [subject]
        while stack:
            for nxt in links(conn, table, stack.pop()):
                if nxt not in seen:
                    seen.append(nxt)
                    stack.append(nxt)
        return seen

    return {"upstream": walk("source"), "downstream": walk("edge")}
