"""An opt-in `Server-Timing` header (`batterytrace serve --server-timing`): how long the
application took to start its answer, and how much of that the garbage collector took.

`Server-Timing: app;dur=0.412, gc;dur=0.000` (milliseconds, W3C Server Timing): browsers show
it in their developer tools, and bench/bench_http_reads.py reads it to split a request's
latency into the server's part and the rest (the network, the event loop's wait, the client).
Off by default: the header tells anyone how long the server worked.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from batterytrace.ledger.pool import collector_seconds, time_collector

Message = MutableMapping[str, Any]
_clock = time.perf_counter


class ServerTiming:
    """ASGI middleware (outermost): the `Server-Timing` header on every HTTP answer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        time_collector()

    async def __call__(self, scope: Any, receive: Any,
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, collecting = _clock(), collector_seconds()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = (f"app;dur={(_clock() - began) * 1000:.3f}, "
                         f"gc;dur={(collector_seconds() - collecting) * 1000:.3f}")
                message["headers"] = [*message.get("headers", ()),
                                      (b"server-timing", value.encode())]
            await send(message)

        await self.app(scope, receive, timed)
