"""The ledger service: `create_app` builds the FastAPI application over one ledger home.

On startup it opens the ledger with every validator (`ledger.service.open_ledger`), the
credential store, the admin-request guard (api/admin_auth.py) and the app's one writer
(api/write_queue.py: event appends queue in order behind it, at most `write_queue_size`
waiting, then 503). Appends do not sign a checkpoint each: a background task has the writer
sign one every `checkpoint_interval` seconds when the tree grew (and once more at shutdown,
after the queued writes). Every router of api/routers/ is included; errors are RFC 9457
problems with a request id (api/problems.py, `ProblemGuard` outermost); body size and JSON
shape limits come next (api/limits.py). OpenAPI at /openapi.json, Swagger UI at /docs and ReDoc
at /redoc, both working offline: their scripts and styles are served from the installed
`fastapi-offline` package (under /static-offline-docs), never from a CDN.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batterytrace.ledger.pool import settle_after_startup
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from . import problems
from .limits import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, RequestLimits
from .read_cache import ReadCache
from .write_queue import DEFAULT_MAX_GROUP, DEFAULT_MAX_WAITING, WriteQueue

if TYPE_CHECKING:
    from batterytrace.ledger.log import Ledger

CHECKPOINT_INTERVAL_ENV = "BATTERYTRACE_CHECKPOINT_INTERVAL"
SERVER_TIMING_ENV = "BATTERYTRACE_SERVER_TIMING"
log = logging.getLogger("batterytrace.api")


def create_app(
    home: Path,
    database_url: str | None = None,
    *,
    checkpoint_interval: float = 5.0,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    write_queue_size: int = DEFAULT_MAX_WAITING,
    write_group: int = DEFAULT_MAX_GROUP,
    settle_collector: bool = False,
    server_timing: bool = False,
) -> FastAPI:
    """The HTTP API over the ledger in `home` (database `database_url`, default its SQLite).

    `write_queue_size`: appends that may wait for the writer (one more is a 503);
    `write_group`: at most this many documents of waiting appends written as one batch;
    `settle_collector`: freeze what startup built out of the collector's passes
    (ledger/pool.py), for a process that is this app's server (`batterytrace serve`), not
    for one that builds many apps (tests); `server_timing`: a `Server-Timing` header on every
    answer (api/server_timing.py)."""
    from .routers import (
        bundles,
        checkpoints,
        credentials,
        did_web,
        epcis,
        events,
        facilities,
        items,
        lots,
        participants,
        passports,
        proofs,
        resolver,
        settings,
        status,
        tiles,
        verify,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger, store = await run_in_threadpool(_open, Path(home), database_url)
        writer = WriteQueue(ledger, max_waiting=write_queue_size, max_group=write_group)
        app.state.read_cache = ReadCache(ledger, writer)
        app.state.ledger = ledger
        app.state.store = store
        app.state.writer = writer
        task = asyncio.create_task(_checkpoints(writer, ledger, checkpoint_interval,
                                                app.state.read_cache))
        if settle_collector:  # what startup built lives as long as the process
            settle_after_startup()
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await app.state.read_cache.close()
            try:
                await writer.run(lambda: _sign_if_grown(ledger), bounded=False)
            finally:
                await run_in_threadpool(writer.close)
                ledger.close()

    app = FastAPIOffline(
        title="batterytrace ledger service",
        version="1",
        description="Traceability ledger with verifiable credentials for EV batteries. "
                    "Errors are RFC 9457 problem details; see docs/api.md.",
        lifespan=lifespan,
    )
    app.state.home = Path(home)
    app.state.database_url = database_url
    # Every write (events, registry, settings, credential publication and status) runs on
    # the app's one writer thread (`write_queue.py`), one at a time, in arrival order.
    problems.install(app)

    for module in (participants, facilities, settings, events, lots, items, credentials,
                   status, checkpoints, tiles, proofs, bundles, verify, passports, resolver,
                   epcis, did_web):
        app.include_router(module.router)

    @app.get("/health", summary="Liveness: 200 while the service answers", tags=["service"])
    async def health() -> dict[str, str]:
        """A constant answer (no ledger access): for load balancers, and the yardstick of
        the read benchmarks (bench/bench_http_reads.py). Registered after every router, so
        its request walks the whole route table as the last router's routes do."""
        return {"status": "ok"}

    app.add_middleware(DocsPolicy)
    app.add_middleware(RequestLimits, max_body_bytes=max_body_bytes, max_depth=max_depth,
                       max_elements=max_elements)
    app.add_middleware(problems.ProblemGuard)
    if server_timing:
        from .server_timing import ServerTiming

        app.add_middleware(ServerTiming)  # added last: the outermost
    return app


# The docs pages may load nothing but this server's own assets: ReDoc's bundle would fetch its
# logo from a CDN, Swagger UI a validator badge. The browser refuses those before any network.
DOCS_PATHS = frozenset({"/docs", "/redoc"})
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' blob:; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
            "worker-src 'self' blob:; connect-src 'self'")


class DocsPolicy:
    """ASGI middleware: a Content-Security-Policy of same-origin assets on /docs and /redoc
    (every other request passes untouched)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") not in DOCS_PATHS:
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()),
                                      (b"content-security-policy", DOCS_CSP.encode())]
            await send(message)

        await self.app(scope, receive, with_policy)


def create_app_from_env() -> FastAPI:
    """`create_app` from BATTERYTRACE_HOME, BATTERYTRACE_DATABASE_URL,
    BATTERYTRACE_CHECKPOINT_INTERVAL and BATTERYTRACE_SERVER_TIMING (what `batterytrace
    serve` hands its workers), with the collector settled after startup."""
    from .settings import Settings

    settings = Settings.resolve()
    url = os.environ.get("BATTERYTRACE_DATABASE_URL")
    interval = float(os.environ.get(CHECKPOINT_INTERVAL_ENV, "5"))
    return create_app(settings.home, url or None, checkpoint_interval=interval,
                      settle_collector=True,
                      server_timing=os.environ.get(SERVER_TIMING_ENV) == "1")


def _open(home: Path, database_url: str | None) -> tuple[Any, Any]:
    from batterytrace.ledger.credential_store import CredentialStore
    from batterytrace.ledger.service import open_ledger

    from .admin_auth import install_admin_guard

    ledger = open_ledger(home, database_url)
    try:
        ledger.checkpoint_every_batch = False  # the background task signs at an interval
        store = CredentialStore(ledger)  # installs its anchor validator (stores credentials)
        install_admin_guard(ledger)  # after the store: it wraps the registry validator
    except BaseException:
        ledger.close()
        raise
    return ledger, store


def _sign_if_grown(ledger: Ledger) -> bool:
    """Sign a checkpoint when the log is larger than the latest one signed."""
    latest = ledger.storage.latest_checkpoint()
    if latest is not None and latest[0] >= ledger.size:
        return False
    ledger.sign_checkpoint()
    return True


async def _checkpoints(writer: WriteQueue, ledger: Ledger, interval: float,
                       cache: ReadCache) -> None:
    while True:
        await asyncio.sleep(interval)
        known = cache.known_generation()
        if known is not None and known[0] == known[1]:
            # The read cache has just read the log, and its latest checkpoint covers it: no
            # job for the writer, whose every job makes the cache re-read the log.
            continue
        try:  # on the writer: in order with the appends, never competing with them
            signed = await writer.run(lambda: _sign_if_grown(ledger), bounded=False)
            # The witnesses are asked off the writer (network round trips); the cosigned
            # note is kept on it (a write, in order with the appends).
            outcome = await run_in_threadpool(_witness, ledger) if signed else None
            if outcome is not None and outcome.cosigned:
                keep = functools.partial(ledger.keep_cosigned_note, outcome.checkpoint,
                                         outcome.note)
                await writer.run(keep, bounded=False)
        except Exception:  # keep signing later; the failure is in the server log
            log.exception("signing a checkpoint failed")


def _witness(ledger: Ledger) -> Any:
    """Send the new checkpoint to the witnesses of the settings (failures are logged);
    None when the settings name none."""
    from .witness_client import gather_cosignatures, witnesses_of

    if not witnesses_of(ledger):
        return None
    outcome = gather_cosignatures(ledger)
    for name, why in outcome.failed.items():
        log.warning("witness %s did not cosign size %d: %s", name, outcome.size, why)
    return outcome
