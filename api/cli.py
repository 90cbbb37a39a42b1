"""The `batterytrace` command line (Typer + rich).

Each area registers its commands from its own module (`cli_credentials`, `cli_ledger`, ...);
those modules import heavy parts inside the commands, so `batterytrace --help` stays fast.
Exit codes: 0 ok, 1 verification failed, 2 unusable input, always with a one-line reason.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

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
    if mirror is None and ctx.invoked_subcommand not in ("demo", "witness", "serve"):
        _cosign_when_done(ctx)


def _cosign_when_done(ctx: typer.Context) -> None:
    """When the command has signed a new checkpoint (an append), send it to the witnesses
    the ledger's settings name, as the service does after every write; a witness that does
    not cosign is reported on stderr (the command's own result stands)."""
    from batterytrace.ledger.home import Home

    settings = ctx.obj
    before = Home(settings.home).checkpoint_size()

    def send() -> None:
        if Home(settings.home).checkpoint_size() <= before:
            return  # nothing signed: no witness client (httpx) is even imported
        from .console import err_console, literal, say
        from .witness_client import cosign_after_writes

        try:
            outcome = cosign_after_writes(settings.home, settings.database_url, before)
        except (BatterytraceError, OSError) as error:
            reason = error.message if isinstance(error, BatterytraceError) else str(error)
            say(err_console, f"[yellow]warning[/] checkpoint not sent to the witnesses: "
                             f"{literal(reason)}")
            return
        for name, why in sorted((outcome.failed if outcome else {}).items()):
            say(err_console, f"[yellow]warning[/] checkpoint of size {outcome.size} not "
                             f"cosigned by {literal(name)}: {literal(why)}")

    ctx.call_on_close(send)


for _module in (cli_credentials, cli_ledger, cli_custody, cli_trust, cli_bundle, cli_labels,
                cli_epcis, cli_trust_registry, cli_untp, cli_transparency, cli_witness):
    _module.register(app)
cli_serve.register(app)


@app.command()
def demo(
    demo_home: Path | None = typer.Option(
        None, "--demo-home", help="Keep the demo network here \\[default: a fresh temp folder]."
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Remove the previous demo home at --demo-home first (only a "
        "folder an earlier demo made)."),
) -> None:
    """Run the mine-to-recycler demo network on embedded SQLite and verify it offline."""
    import tempfile

    from .console import console, literal, say
    from .demo import remove_demo_home, run_demo

    if demo_home is None:
        demo_home = Path(tempfile.mkdtemp(prefix="batterytrace-demo-"))
    elif replace:
        remove_demo_home(demo_home)
    say(console, f"demo home: {literal(str(demo_home))}")
    run_demo(demo_home, console)


# Commands whose answer is a verdict: there a VerificationError means "verification failed"
# (exit 1). Everywhere else a refused input (a subject that fails its schema, an unknown lot,
# a custody rule an event breaks) is unusable input: exit 2.
VERIFYING_COMMANDS = frozenset({
    ("credential", "verify"), ("credential", "check"), ("presentation", "verify"),
    ("bundle", "verify"), ("bundle", "provenance"), ("ledger", "verify"),
    ("ledger", "repair"), ("ledger", "compare"), ("ledger", "monitor"),
})


def command_path(argv: list[str]) -> tuple[str, ...]:
    """The command names in `argv` (global options skipped), e.g. ('bundle', 'verify')."""
    from typer.core import TyperGroup

    node: Any = typer.main.get_command(app)
    path: list[str] = []
    for token in argv:
        if not isinstance(node, TyperGroup):
            break
        sub = node.commands.get(token)
        if sub is not None:
            path.append(token)
            node = sub
    return tuple(path)


def run(argv: list[str] | None = None) -> int:
    """Run the command line on `argv` and return its exit code: typed errors, usage errors
    and file errors become one line on stderr (exit 2, or 1 for a failed verification),
    never a traceback."""
    import sys

    from batterytrace.ledger.migrations.observers import observe_migrations
    from typer._click import exceptions as click  # typer vendors click

    from .console import CommandUsageError, err_console, file_error, literal, say

    args = list(sys.argv[1:] if argv is None else argv)
    stop_observing = observe_migrations(_show_migration)
    try:
        # standalone_mode=False: click returns an Exit's code instead of raising it.
        code = app(args=args, prog_name="batterytrace", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except typer.Exit as exit_:
        return exit_.exit_code
    except click.NoArgsIsHelpError as help_:
        typer.echo(help_.ctx.get_help() if help_.ctx else str(help_))
        return 0
    except click.UsageError as error:
        where = f"{error.ctx.command_path}: " if error.ctx else ""
        return _failed(CommandUsageError(where + error.format_message()), args)
    except click.ClickException as error:
        return _failed(CommandUsageError(error.format_message()), args)
    except (typer.Abort, KeyboardInterrupt):
        say(err_console, "[bold red]error[/] interrupted")
        return 130
    except BatterytraceError as error:
        return _failed(error, args)
    except BrokenPipeError:  # `batterytrace ... | head`: the reader left, nothing to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:
        return _failed(file_error(error), args)
    except Exception as error:  # a bug: still one line, the traceback only when asked for
        import os

        if os.environ.get("BATTERYTRACE_TRACEBACK"):
            raise
        say(err_console, f"[bold red]error[/] INTERNAL_ERROR: {literal(type(error).__name__)}: "
                         f"{literal(str(error))} (a bug; set BATTERYTRACE_TRACEBACK=1 to see "
                         "where)")
        return 3
    finally:
        stop_observing()


def _show_migration(revision: str, step: int, steps: int, title: str) -> None:
    """A line on a terminal's stderr per schema revision applied (nothing when piped)."""
    from .console import err_console, literal, say

    if err_console.is_terminal:
        say(err_console, f"[dim]upgrading the database schema {step}/{steps}:[/] "
                         f"{literal(revision)} {literal(title)}")


def _failed(error: BatterytraceError, args: list[str]) -> int:

    code = error.exit_code
    if code == 1 and command_path(args) not in VERIFYING_COMMANDS:
        code = 2
    try:
        fail(error, code)
    except typer.Exit as exit_:
        return exit_.exit_code


def main() -> None:
    """Console-script entry point: exit with the code of `run`."""
    raise SystemExit(run())


if __name__ == "__main__":
    main()
