"""`ledger publish` (C2SP tlog-tiles into a directory): the log as static files any web
server, object store or CDN can serve as a read replica. Thin: calls `ledger/publish.py`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from .cli_ledger import JSON_OPTION, ledger_app
from .console import emit
from .settings import Settings


def publish(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Directory to write the tiles into."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write the log as C2SP tlog-tiles into DIR: `checkpoint`, `tile/<L>/<N>[.p/<W>]` and
    `tile/entries/<N>[.p/<W>]`; only new tiles are written, full tiles never change."""
    from batterytrace.ledger.log import Ledger
    from batterytrace.ledger.publish import publish_ledger

    settings: Settings = ctx.obj
    ledger = Ledger.open(settings.home, settings.database_url)
    try:
        result = publish_ledger(ledger, out)
    finally:
        ledger.close()
    data = result.to_json()

    def human(console: Console) -> None:
        console.print(f"published size {result.size} to {out}: {result.tiles_written} tiles, "
                      f"{result.bundles_written} entry bundles written, {result.tiles_kept} "
                      f"kept, {result.bytes_written} bytes", highlight=False, soft_wrap=True,
                      markup=False)

    emit(data, as_json, human)


def register(app: typer.Typer) -> None:
    """Add the transparency commands to the `ledger` group (and, later, `witness`)."""
    ledger_app.command("publish")(publish)
