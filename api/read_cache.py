"""Cached answers of the hot reads (an entry, an inclusion proof, a passport's JSON), with
ETags and Cache-Control.

An answer is cached under what it depends on, so it can never outlive its data:
- immutable answers (an entry by sequence number, a proof or checkpoint at an explicit tree
  size) are keyed by their arguments alone and sent `Cache-Control: public, max-age=31536000,
  immutable` (an append-only log never changes them);
- answers about "now" (a proof against the latest checkpoint, a passport) are keyed also by
  the log's generation: its size and its latest checkpoint's size. They are sent
  `Cache-Control: no-cache` with their ETag, so a client revalidates and gets a 304.

The generation is re-read from the database when the app's writer has written since it was
read (api/write_queue.py counts its writes, and counts each before answering the writer's
caller, so a client that appended never reads the log as it was before), and at least every
`probe_interval` seconds (writes of other workers or processes on the same database). Past
half that age a read starts the re-read in the background and answers with the generation it
has (refresh ahead), so steady reads never wait for the database or a thread.

The cache itself is a bounded LRU of encoded bodies (`max_items`); a hit is answered on the
event loop without a thread or a database connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
DEFAULT_MAX_ITEMS = 4096
DEFAULT_PROBE_INTERVAL = 0.1  # seconds
log = logging.getLogger("batterytrace.api")


class ReadCache:
    """Encoded read answers keyed by what they depend on (see the module docstring)."""

    def __init__(self, ledger: Any, writer: Any, *, max_items: int = DEFAULT_MAX_ITEMS,
                 probe_interval: float = DEFAULT_PROBE_INTERVAL) -> None:
        self.ledger = ledger
        self.writer = writer
        self.max_items = max_items
        self.probe_interval = probe_interval
        self._items: OrderedDict[Hashable, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()
        # (generation, writer's writes when read, monotonic time when read): one tuple, so a
        # reader never pairs a generation with another read's count.
        self._known: tuple[tuple[int, int], int, float] | None = None
        self._probing: asyncio.Lock | None = None  # one re-read at a time (event loop side)
        self._refresh: asyncio.Task[None] | None = None  # a refresh ahead in flight

    def known_generation(self) -> tuple[int, int] | None:
        """(log size, latest checkpoint size) when still known to be current, else None."""
        known = self._known
        if (known is None or known[1] != self.writer.writes
                or time.monotonic() - known[2] >= self.probe_interval):
            return None
        return known[0]

    async def current_generation(self) -> tuple[int, int]:
        """The generation, re-read (in the thread pool) only when it may have changed; the
        requests that find it stale meanwhile wait for the one re-read in flight. Past half
        `probe_interval` a request still gets the known generation at once and starts the
        re-read in the background (refresh ahead): under steady reads no request waits for
        the database or a thread, and none gets an answer older than `probe_interval`."""
        known = self._known
        if known is not None and known[1] == self.writer.writes:
            age = time.monotonic() - known[2]
            if age < self.probe_interval:
                if age >= self.probe_interval / 2 and self._refresh is None:
                    self._refresh = asyncio.get_running_loop().create_task(self._reread())
                return known[0]
        if self._probing is None:
            self._probing = asyncio.Lock()
        async with self._probing:
            found = self.known_generation()
            if found is not None:
                return found
            return await run_in_threadpool(self.read_generation)

    async def _reread(self) -> None:
        """The background re-read of refresh ahead (a failure is left to the next request
        that finds the generation stale: it re-reads, and answers the error)."""
        try:
            if self._probing is None:
                self._probing = asyncio.Lock()
            async with self._probing:
                await run_in_threadpool(self.read_generation)
        except Exception:  # the next synchronous re-read reports it
            log.debug("background re-read of the log's generation failed", exc_info=True)
        finally:
            self._refresh = None

    def read_generation(self) -> tuple[int, int]:
        """(log size, latest checkpoint size) read from the database (blocking)."""
        writes = self.writer.writes  # before reading: a write meanwhile forces a re-read
        began = time.monotonic()  # its age counts from before the read: the conservative end
        size = self.ledger.size
        latest = self.ledger.storage.latest_checkpoint()
        generation = (size, latest[0] if latest is not None else 0)
        self._known = (generation, writes, began)
        return generation

    def get(self, key: Hashable) -> tuple[bytes, str] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: Hashable, body: bytes) -> tuple[bytes, str]:
        """Store `body`; returns it with its ETag (a digest of the body)."""
        value = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return value

    async def close(self) -> None:
        """Stop a refresh ahead in flight (the app's shutdown, before the ledger closes)."""
        task = self._refresh
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
        self._known = None


def read_cache_of(request: Request) -> ReadCache:
    """The app's read cache (api/app.py)."""
    cache: ReadCache = request.app.state.read_cache
    return cache


async def generation(request: Request) -> tuple[int, int]:
    """The log's current (size, latest checkpoint size), re-read only when it may differ."""
    return await read_cache_of(request).current_generation()


async def cached_json(request: Request, key: Hashable, compute: Callable[[], Any], *,
                      immutable: bool) -> Response:
    """The JSON answer of `compute()` (run in the thread pool on a miss), cached under `key`
    (which must name everything the answer depends on), with its ETag; a 304 when the
    request's If-None-Match names it. Errors of `compute` are raised, never cached."""
    cache = read_cache_of(request)
    found = cache.get(key)
    if found is None:
        content = await run_in_threadpool(compute)
        found = cache.put(key, JSONResponse(content).body)
    body, etag = found
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE if immutable else REVALIDATE}
    matches = _etags(request.headers.get("if-none-match"))
    if etag in matches or "*" in matches:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _etags(header: str | None) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compared as strong: RFC 9110
    uses the weak comparison for If-None-Match)."""
    if not header:
        return set()
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return tags


JSON_OBJECT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": {"type": "object"}}},
          "headers": {"ETag": {"schema": {"type": "string"}}}},
    304: {"description": "Not modified (If-None-Match named the current ETag)"},
}
