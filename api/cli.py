"""The `batterytrace` command line (Typer + rich).

Each area registers its commands from its own module (`cli_credentials`, `cli_ledger`, ...);
those modules import heavy parts inside the commands, so `batterytrace --help` stays fast.
Exit codes: 0 ok, 1 verification failed, 2 unusable input, always with a one-line reason.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from batterytrace.credentials.errors import BatterytraceError

from . import (
    cli_bundle,
    cli_credentials,
    cli_custody,
    cli_epcis,
    cli_labels,
    cli_ledger,
    cli_serve,
    cli_transparency,
    cli_trust,
    cli_trust_registry,
    cli_untp,
    cli_witness,
)
from .console import fail
from .settings import DATABASE_URL_ENV, HOME_ENV, Settings

STRICT_KEYS_ENV = "BATTERYTRACE_STRICT_KEYS"  # also read as credentials.keys.STRICT_KEYS_ENV

app = typer.Typer(
    name="batterytrace",
    help="Traceability ledger with verifiable credentials for the EV battery supply chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", envvar=HOME_ENV, help="Ledger home folder \\[default: ./.batterytrace]."
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", envvar=DATABASE_URL_ENV, help="SQLAlchemy URL of the database."
    ),
    mirror: str | None = typer.Option(
        None, "--mirror", envvar="BATTERYTRACE_MIRROR",
        help="Read a C2SP tiles mirror (URL or directory) instead of the database: ledger "
        "prove, consistency, verify."),
    trust: Path | None = typer.Option(
        None, "--trust", help="Trust file for --mirror (log key, witnesses, quorum)."),
    mirror_cache: Path | None = typer.Option(
        None, "--mirror-cache", envvar="BATTERYTRACE_MIRROR_CACHE",
        help="Keep the tiles read from --mirror here (tile paths name fixed bytes)."),
    strict_keys: bool = typer.Option(
        False,
        "--strict-keys",
        envvar=STRICT_KEYS_ENV,
        help="Refuse secret key files readable by group or others (default: warn).",
    ),
) -> None:
    from batterytrace.credentials.keys import set_strict_keys

    set_strict_keys(strict_keys)
    ctx.obj = replace(Settings.resolve(home, database_url), mirror=mirror, trust=trust,
                      mirror_cache=mirror_cache)


for _module in (cli_credentials, cli_ledger, cli_custody, cli_trust, cli_bundle, cli_labels,
                cli_epcis, cli_trust_registry, cli_untp, cli_transparency, cli_witness):
    _module.register(app)
cli_serve.register(app)


@app.command()
def demo(
    demo_home: Path | None = typer.Option(
        None, "--demo-home", help="Keep the demo network here \\[default: a fresh temp folder]."
    ),
) -> None:
    """Run the mine-to-recycler demo network on embedded SQLite and verify it offline."""
    import tempfile

    from .console import console
    from .demo import run_demo

    if demo_home is None:
        demo_home = Path(tempfile.mkdtemp(prefix="batterytrace-demo-"))
    run_demo(demo_home, console)


def main() -> None:
    """Console-script entry point: typed errors become a one-line reason and an exit code."""
    try:
        app()
    except BatterytraceError as error:
        try:
            fail(error)
        except typer.Exit as exit_:
            raise SystemExit(exit_.exit_code) from None


if __name__ == "__main__":
    main()
