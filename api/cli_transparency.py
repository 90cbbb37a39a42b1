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


def compare(
    ctx: typer.Context,
    a: Path = typer.Argument(..., help="A checkpoint note or an evidence bundle."),
    b: Path = typer.Argument(..., help="Another, of the same log."),
    trust: Path | None = typer.Option(None, "--trust", help="Trust file naming the log."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Prove two checkpoints (or bundles) of one log consistent, or show the split view
    (exit 1). Different sizes need the consistency proof: from `--mirror` (tiles)."""
    from batterytrace.credentials.errors import InputError
    from batterytrace.verifier.gossip import (
        compare_checkpoints,
        read_checkpoint_file,
        trusted_ledger_of,
    )
    from batterytrace.verifier.trust import load_trust

    from .mirror import mirror_fetch

    settings: Settings = ctx.obj
    trust = trust or settings.trust
    if trust is None:
        raise InputError("compare needs --trust FILE (the log key)")
    notes = []
    for path in (a, b):
        try:
            notes.append(read_checkpoint_file(path.read_bytes()))
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
    ledger = trusted_ledger_of(notes[0], load_trust(trust))
    mirror = settings.mirror
    tiles = (lambda: mirror_fetch(mirror, settings.mirror_cache)) if mirror else None
    result = compare_checkpoints(notes[0], notes[1], ledger, tiles)
    emit(result.to_json(), as_json, lambda console: console.print(
        f"consistent: size {result.a.size} and size {result.b.size} ({result.how})",
        markup=False, highlight=False, soft_wrap=True))


def monitor(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="The mirror (URL or directory) to follow."),
    since: Path | None = typer.Option(None, "--since", help="A checkpoint you trust."),
    state: Path | None = typer.Option(
        None, "--state", help="Where the last verified checkpoint is kept between runs "
        "[default: <since>.verified]."),
    trust: Path | None = typer.Option(None, "--trust", help="Trust file naming the log."),
    processes: int = typer.Option(1, "--processes", min=1),
    as_json: bool = JSON_OPTION,
) -> None:
    """Follow a mirror: its checkpoint must be consistent with the last one verified (a
    rollback or fork fails, exit 1), every entry is replayed (signatures, custody rules;
    the first bad entry fails, exit 1); the new checkpoint is then kept in --state."""
    from batterytrace.credentials.errors import InputError

    from .mirror_read import monitor as run_monitor

    settings: Settings = ctx.obj
    if state is None:
        if since is None:
            raise InputError("give --since FILE or --state FILE")
        state = since.with_name(since.name + ".verified")
    result = run_monitor(url, trust or settings.trust, since, state, processes,
                         settings.mirror_cache)

    def human(console: Console) -> None:
        console.print(f"ok: size {result.previous_size} -> {result.size}, "
                      f"{result.entries_replayed} entries replayed, cosigned by "
                      f"{', '.join(result.cosigned) or 'no witness required'}; state {state}",
                      markup=False, highlight=False, soft_wrap=True)

    emit(result.to_json(), as_json, human)


def register(app: typer.Typer) -> None:
    """Add `publish`, `compare` and `monitor` to the `ledger` group."""
    ledger_app.command("publish")(publish)
    ledger_app.command("compare")(compare)
    ledger_app.command("monitor")(monitor)
