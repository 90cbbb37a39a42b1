"""What the routers share: the opened ledger and store, read views, response helpers.

Read handlers are plain `def` functions (FastAPI runs them in its thread pool): the ledger is
safe to share between threads and each call borrows a pooled database connection for its
duration only. Appends are `async`: they await the app's one writer (`append_queued`, see
api/write_queue.py) and hold neither a thread nor a connection while they wait.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from batterytrace.ledger.queries import StateView, read_state
from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse

from ..problems import problem_schema

T = TypeVar("T")

# Sequence numbers and tree sizes are SQL BIGINTs: larger values are refused as 400 problems
# before they reach the database (SQLite raises OverflowError on them).
SEQ_MAX = 2**63 - 1
SeqPath = Annotated[int, Path(ge=0, le=SEQ_MAX)]
SeqQuery = Annotated[int, Query(ge=0, le=SEQ_MAX)]
OptionalSeqQuery = Annotated[int | None, Query(ge=0, le=SEQ_MAX)]

# Documented on every operation: any failure is a problem-details object.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: problem_schema() for status in (400, 404, 409, 413, 422, 500, 503)
}


def ledger_of(request: Request) -> Any:
    """The ledger the app opened at startup."""
    return request.app.state.ledger


def writer_of(request: Request) -> Any:
    """The app's one writer (api/write_queue.py)."""
    return request.app.state.writer


async def append_queued(request: Request, submissions: list[Any]) -> list[Any]:
    """Append `submissions` as one atomic batch through the app's writer, in arrival order;
    WriteQueueFullError (503) when too many writes are already waiting."""
    results: list[Any] = await writer_of(request).append(submissions)
    return results


def store_of(request: Request) -> Any:
    """The credential store over the app's ledger."""
    return request.app.state.store


def with_state(request: Request, fn: Callable[[Any, StateView, Any, Any], T]) -> T:
    """Run `fn(ledger, view, registry, state)` over the ledger's read-only registry and
    custody views (`ledger.queries.read_state`, as the CLI's show and trace commands)."""
    ledger = ledger_of(request)
    with read_state(ledger) as view:
        return fn(ledger, view, view.registry, view.state)


def all_rows(request: Request, table: str) -> list[Any]:
    """Every value of a registry or custody table, ordered by key."""
    return with_state(request, lambda _l, view, _r, _s: view.rows(table))


def results_json(results: list[Any]) -> list[dict[str, Any]]:
    """AppendResults as JSON: where each submission landed."""
    return [{"seq": r.seq, "hash": r.entry_hash.hex(), "duplicate": r.duplicate}
            for r in results]


def created(data: Any, results: list[Any]) -> JSONResponse:
    """201 when something was appended, 200 when every submission was already there."""
    return JSONResponse(data, status_code=200 if all(r.duplicate for r in results) else 201)
