"""Servers for the tests: an ASGI app (the API, a witness) under uvicorn and a plain static
HTTP server (http.server) over a directory, all on loopback ports."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from batterytrace.api.cli_serve import bind_socket


@contextlib.contextmanager
def served_app(app: Any) -> Iterator[str]:
    """An ASGI app under uvicorn in a thread, on a loopback socket bound and listening before
    the server starts (so a client never races it); yields its base URL."""
    import uvicorn

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", loop="uvloop", http="httptools",
                                           access_log=False, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@contextlib.contextmanager
def served_witness(home: Path) -> Iterator[str]:
    """`witness serve` of the witness in `home`, in a thread; yields its URL."""
    from batterytrace.api.witness_app import create_witness_app

    with served_app(create_witness_app(home)) as url:
        yield url


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def static_http(root: Path) -> Iterator[str]:
    """A plain static file server (the standard library's) over `root`; yields its URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
