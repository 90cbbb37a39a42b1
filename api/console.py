"""Output of the command line: rich text for people, JSON for machines, one-line errors.

Every human renderer of the CLI prints through this module: `say` for a line whose
participant-supplied parts went through `literal` (markup escaped, ANSI / control / bidi
characters shown escaped), `emit` for JSON or human output, `fail` for a one-line error,
`progress` for a rich progress bar on a terminal (nothing when piped), `write_atomic` for files
(a temporary file renamed into place: never a half-written file).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from batterytrace.credentials.errors import BatterytraceError, InputError
from batterytrace.verifier.report import literal
from rich.console import Console

T = TypeVar("T")

# Piped output is not cut at 80 columns: rich falls back to 80 when it sees no terminal, so a
# wide width is set then (tables keep their natural width; they do not expand).
_PIPE_WIDTH = 4096


def _make_console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else _PIPE_WIDTH
    # emoji=False: rich would otherwise print the ":key:" of "did:key:" as an emoji.
    return Console(stderr=stderr, emoji=False, width=width, highlight=False)


console = _make_console(stderr=False)
err_console = _make_console(stderr=True)


class FileAccessError(InputError):
    """A file or folder the command reads or writes cannot be used (missing, read-only, full
    disk): exit 2, nothing half-written."""

    code = "FILE_ACCESS_ERROR"
    title = "File cannot be read or written"


class CommandUsageError(InputError):
    """The command line itself is wrong: unknown command or option, a missing or malformed
    value (exit 2)."""

    code = "USAGE_ERROR"
    title = "Command line not understood"


def say(out: Console, text: str) -> None:
    """Print one line of our own markup. Participant text in it must be `literal(...)`."""
    out.print(text, emoji=False, highlight=False, soft_wrap=True)


def show(value: Any) -> str:
    """A value for human output, without Python reprs: None is '-', lists are joined with
    ', ', mappings are 'key value' pairs, floats trimmed; then made `literal`."""
    return literal(_plain(value))


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_plain(v) for v in value) or "-"
    return str(value)


def emit(data: Any, as_json: bool, human: Callable[[Console], None] | None = None) -> None:
    """Print `data` as JSON when asked, else through `human` (or as pretty JSON)."""
    if as_json or human is None:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        human(console)


def print_document(doc: Any) -> None:
    """A JSON document (a signed credential, a list) on stdout, for a file or a pipe."""
    typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def note(text: str) -> None:
    """A line for the person at the terminal, on stderr, when stderr is a terminal (stdout
    carries a document; scripts read --json instead)."""
    if err_console.is_terminal:
        say(err_console, text)


def fail(error: BatterytraceError, exit_code: int | None = None) -> NoReturn:
    """Print the error's one-line reason on stderr and exit with its exit code."""
    say(err_console, f"[bold red]error[/] {literal(error.diagnostics())}")
    raise typer.Exit(error.exit_code if exit_code is None else exit_code)


def file_error(exc: OSError, action: str = "use") -> FileAccessError:
    """An OSError as a typed one-line error naming the file and the reason."""
    name = exc.filename if exc.filename is not None else "the output"
    reason = exc.strerror or exc.__class__.__name__
    return FileAccessError(f"cannot {action} {name}: {reason}", errno=exc.errno)


def read_text(path: str) -> str:
    """A text file's content ('-' for stdin), raising typed errors (never a traceback)."""
    from batterytrace.credentials.errors import ParsingError

    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except IsADirectoryError as exc:
        raise ParsingError(f"cannot read {path}: it is a folder") from exc
    except OSError as exc:
        raise ParsingError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ParsingError(f"{path} is not UTF-8 text") from exc


def read_json_file(path: str) -> Any:
    """Read a JSON document from a path ('-' for stdin), raising ParsingError when malformed."""
    from batterytrace.credentials.errors import ParsingError

    text = read_text(path)
    if not text.strip():
        raise ParsingError(f"{'stdin' if path == '-' else path} is empty")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ParsingError(f"{path} is not valid JSON: {exc}") from exc


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` through a temporary file in the same folder, renamed into place
    once complete: a missing folder, a read-only folder or a full disk leaves no file behind
    (FileAccessError, exit 2)."""
    path = Path(path)
    check_out_folder(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                        dir=path.parent if str(path.parent) else ".")
    except OSError as exc:
        exc.filename = exc.filename or str(path.parent)
        raise file_error(exc, "write") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        exc.filename = str(path)
        raise file_error(exc, "write") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_out_folder(path: Path) -> None:
    """Refuse (exit 2) an output path whose folder does not exist, before any work is done."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileAccessError(f"cannot write {path}: folder {folder} does not exist")
    if path.is_dir() or (path.exists() and not path.is_file()):
        raise FileAccessError(f"cannot write {path}: not a regular file")


@contextmanager
def progress(description: str, total: int | None = None,
             enabled: bool = True) -> Iterator[Callable[..., None]]:
    """A rich progress bar on stderr while the block runs, when stderr is a terminal and
    `enabled` (not with --json); nothing when piped. Yields `update(completed, description=)`."""
    if not (enabled and err_console.is_terminal):
        yield lambda *_args, **_kwargs: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)

        def update(completed: int | None = None, description: str | None = None,
                   total: int | None = None) -> None:
            changes: dict[str, Any] = {}
            if completed is not None:
                changes["completed"] = completed
            if description is not None:
                changes["description"] = description
            if total is not None:
                changes["total"] = total
            bar.update(task, **changes)

        yield update


def counted(items: Iterable[T], update: Callable[..., None], every: int = 64) -> Iterator[T]:
    """`items` as they are, reporting how many went by to a `progress` update."""
    n = 0
    for n, item in enumerate(items, 1):
        if n % every == 0:
            update(n)
        yield item
    update(n)


def count_lines(path: Path) -> int | None:
    """Lines in a file, for a progress bar's total (None when no bar is shown or unreadable)."""
    if not err_console.is_terminal:
        return None
    try:
        with open(path, "rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return None


__all__ = ["CommandUsageError", "FileAccessError", "check_out_folder", "console",
           "count_lines", "counted", "emit",
           "err_console", "fail", "file_error", "literal", "note", "print_document",
           "progress", "read_json_file", "read_text", "say", "show", "write_atomic"]
