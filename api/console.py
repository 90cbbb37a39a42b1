"""Output of the command line: rich text for people, JSON for machines, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

import typer
from batterytrace.credentials.errors import BatterytraceError
from rich.console import Console

# emoji=False: rich would otherwise print the ":key:" of "did:key:" as an emoji.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def emit(data: Any, as_json: bool, human: Callable[[Console], None] | None = None) -> None:
    """Print `data` as JSON when asked, else through `human` (or as pretty JSON)."""
    if as_json or human is None:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        human(console)


def fail(error: BatterytraceError) -> NoReturn:
    """Print the error's one-line reason on stderr and exit with its exit code."""
    err_console.print(f"[bold red]error[/] {error.diagnostics()}", highlight=False, soft_wrap=True)
    raise typer.Exit(error.exit_code)


def read_json_file(path: str) -> Any:
    """Read a JSON document from a path ('-' for stdin), raising ParsingError when malformed."""
    import sys

    from batterytrace.credentials.errors import ParsingError

    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as exc:
        raise ParsingError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ParsingError(f"{path} is not UTF-8 text") from exc
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ParsingError(f"{path} is not valid JSON: {exc}") from exc
