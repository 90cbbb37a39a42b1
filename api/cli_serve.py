"""`batterytrace serve`: the HTTP API under uvicorn (uvloop, httptools).

The listening socket is bound here, with TCP_NODELAY set, and handed to uvicorn (and to every
worker process): Linux copies the option to each accepted connection. Uvicorn's own
multi-worker socket leaves Nagle's algorithm on, which delays small responses (issue 10
measured 6x slower). Workers get the home, database URL and checkpoint interval through the
environment and build the app with `api.app.create_app_from_env`, which settles the garbage
collector once startup is done (`settle_after_startup`, ledger/pool.py). `--server-timing`
adds a `Server-Timing` header to every answer (api/server_timing.py).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import typer

from .settings import DATABASE_URL_ENV, HOME_ENV, Settings

APP_FACTORY = "batterytrace.api.app:create_app_from_env"


def bind_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on (host, port) with SO_REUSEADDR and TCP_NODELAY set."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    checkpoint_interval: float = typer.Option(
        5.0, "--checkpoint-interval", min=0.01, help="Seconds between checkpoint signings."),
    access_log: bool = typer.Option(False, "--access-log/--no-access-log"),
    server_timing: bool = typer.Option(
        False, "--server-timing/--no-server-timing",
        help="Send a Server-Timing header (application and collector time) on every answer."),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) until interrupted."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from .app import CHECKPOINT_INTERVAL_ENV, SERVER_TIMING_ENV

    settings: Settings = ctx.obj
    os.environ[HOME_ENV] = str(settings.home.resolve())
    os.environ[DATABASE_URL_ENV] = settings.database_url
    os.environ[CHECKPOINT_INTERVAL_ENV] = str(checkpoint_interval)
    os.environ[SERVER_TIMING_ENV] = "1" if server_timing else "0"
    sock = bind_socket(host, port)
    for line in listening_lines(settings.home, host, sock.getsockname()[1]):
        typer.echo(line)
    config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, workers=workers,
                            loop="uvloop", http="httptools", access_log=access_log,
                            lifespan="on", timeout_graceful_shutdown=10)
    try:
        if workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def listening_lines(home: Path, host: str, port: int) -> list[str]:
    """What `serve` prints before it starts: the URL it listens on, and the passport URL of
    the item the home features (the demo's, when the home has one)."""
    from .passport import featured_item, page_path

    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    lines = [f"listening on {base} (API docs: {base}/docs)"]
    item = featured_item(home)
    if item is not None:
        # The item only as percent-encoded URL: no participant text reaches the terminal.
        lines.append(f"passport of the featured item: {base}{page_path(item)}")
    return lines


def register(app: typer.Typer) -> None:
    """Add `serve` to the root app."""
    app.command("serve")(serve)
