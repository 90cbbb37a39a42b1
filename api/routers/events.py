"""Traceability events: append signed DTE credentials (one or a batch), read entries.

An event authenticates itself by its proof: the ledger's event validator checks the signature
against the issuer's registered key at the entry's log position and the custody rules (the
issuer holds what it ships, transforms or assembles), in the write transaction. A batch is
all or nothing. Appends wait in order for the app's one writer (api/write_queue.py); when too
many are waiting the answer is 503 `WRITE_QUEUE_FULL` with `Retry-After`.
"""

from __future__ import annotations

from typing import Any

from batterytrace.credentials.errors import InputError
from batterytrace.ledger.custody_errors import UnknownItemError, UnknownLotError
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, Response

from ..read_cache import JSON_OBJECT, cached_json
from .common import (
    PROBLEMS,
    SeqPath,
    append_queued,
    created,
    ledger_of,
    results_json,
    with_state,
)

router = APIRouter(tags=["events"], responses=PROBLEMS)

MAX_BATCH = 1000


class BatchTooLargeError(InputError):
    code = "BATCH_TOO_LARGE"
    title = "Too many documents in one batch"
    http_status = 413


class EventNotFoundError(InputError):
    code = "EVENT_NOT_FOUND"
    title = "No such event"
    http_status = 404


def entry_json(entry: Any) -> dict[str, Any]:
    """An entry as `ledger show --json` prints it."""
    return {"seq": entry.seq, "entry": entry.to_json(), "hash": entry.hash.hex(),
            "leafHash": entry.leaf_hash.hex()}


@router.post("/events", status_code=201,
             summary="Append a signed DTE credential, or a list of them (atomic batch)")
async def append_events(
    request: Request,
    body: dict[str, Any] | list[dict[str, Any]] = Body(
        ..., description="A signed UNTP DigitalTraceabilityEvent credential or a list "
                         f"(at most {MAX_BATCH})"),
) -> JSONResponse:
    from batterytrace.ledger.log import Submission

    documents = body if isinstance(body, list) else [body]
    if len(documents) > MAX_BATCH:
        raise BatchTooLargeError(f"at most {MAX_BATCH} credentials per request",
                                 max=MAX_BATCH)
    if not documents:
        raise InputError("the batch is empty")
    results = await append_queued(request, [Submission("event", d) for d in documents])
    data = results_json(results)
    return created(data if isinstance(body, list) else data[0], results)


@router.get("/entries/{seq}", summary="Log entry at a sequence number",
            response_class=Response, responses=JSON_OBJECT)
async def get_entry(request: Request, seq: SeqPath) -> Response:
    """An entry never changes once written: cached, and sent as immutable with its ETag."""
    ledger = ledger_of(request)
    return await cached_json(request, ("entry", seq), lambda: entry_json(ledger.entry(seq)),
                             immutable=True)


@router.get("/events", summary="Entries of the events touching a lot or an item")
def events_of(
    request: Request,
    lot: str | None = Query(None, description="Lot URI"),
    item: str | None = Query(None, description="Item URI"),
) -> list[dict[str, Any]]:
    if (lot is None) == (item is None):
        raise InputError("give exactly one of ?lot= or ?item=")

    def rows_of(_l: Any, view: Any, _r: Any, state: Any) -> list[dict[str, Any]]:
        if lot is not None and state.lot(lot) is None:
            raise UnknownLotError(f"lot {lot} is unknown")
        if item is not None and state.item(item) is None:
            raise UnknownItemError(f"item {item} is unknown")
        return view.history(lot or item)

    rows = with_state(request, rows_of)
    ledger = ledger_of(request)
    return [{"event": r["event"], **entry_json(ledger.entry(r["seq"]))} for r in rows]


@router.get("/events/{event_id:path}", summary="The entry holding an event, by event id")
def get_event(request: Request, event_id: str) -> dict[str, Any]:
    used = with_state(request, lambda _l, _c, _r, state: state.get("event", event_id))
    if used is None:
        raise EventNotFoundError(f"no event {event_id} in the log", id=event_id)
    return {"event": event_id, **entry_json(ledger_of(request).entry(used.seq))}
