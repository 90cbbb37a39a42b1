"""The position-independent work on an `all` bundle's entry lines, in worker processes.

What one entry line costs that does not depend on the entries before it runs here, a window
of raw lines at a time: the JSON, the record and entry fields, the entry's hash and Merkle
leaf, and for an event its schema, its fields (`parse_credential`) and its signature by the
key its verification method names. The verifying process keeps what must run in log order
(`ledger.log_verify.LogChain`, the registry key valid at the position, the replay) and reads only
the compact result of each line.

A line earns a result only when everything checked here passed; any other line (malformed,
re-serialized, a bad signature, an unknown shape) comes back as None and the verifying
process checks it itself, in order, with the reference code of `bundle_verify`: failures are
found and reported exactly as with one process. So this module is an accelerator, never a
judge.

With `processes` = n > 1, n - 1 forked workers take windows as the reader submits them; the
verifying process replays each window once checked and, while the one it needs next is not,
checks the last window no worker has started (work stealing), so both cores stay busy
whatever the replay costs. Windows in flight are bounded (`AHEAD`): memory stays independent
of the bundle's length.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from batterytrace.credentials.canonical import compact_is_canonical
from batterytrace.credentials.secured_bytes import compact
from batterytrace.ledger import merkle, pool
from batterytrace.ledger.bundle_format import (
    ENTRY_LINE_END,
    ENTRY_LINE_START,
    MAX_LINE,
    entry_of_line,
)
from batterytrace.ledger.engine import EventCheck, check_event_documents
from batterytrace.ledger.entry import check_entry_fields, document_slice

WINDOW = 128  # lines per task: ~30 ms of work, against ~0.3 ms to hand it over
AHEAD = 24  # windows in flight at most (~3,000 lines: ~5 MB of lines, ~15 MB of checks)
# Windows not checked yet that this process leaves to the workers beyond one each: a worker
# holds one it checks and one queued; the others keep it busy while this process checks one.
KEEP = 3

# (seq, prev, kind, received, SHA-256 of the entry, Merkle leaf, event check | document)
LineCheck = tuple[int, str, str, str, bytes, bytes, Any]


def check_line(raw: bytes) -> LineCheck | None:
    """What the verifying process needs of an entry line exported by the ledger, or None for
    any line to be checked there, in order (see the module docstring).

    The line must be `{"type":"entry","entry":<E>}\\n` with E the compact sorted-key JSON of
    its parse (the ledger's canonical bytes: what the chain and the signed root cover). Its
    parse is then the line's (the JSON of E delimits itself), and an event's document bytes
    are a slice of E."""
    return check_lines([raw])[0]


def check_lines(lines: Sequence[bytes]) -> list[LineCheck | None]:
    """`check_line` of each line, one step at a time over all of them.

    The same checks as line by line, but each step's code (the JSON decoder, the canonical
    walk, the schema validator, the field parser, the proof check) runs over the whole window
    before the next: a step run on one line among all the others finds its code and branch
    history evicted by them, and costs up to twice as much (`docs/performance.md`)."""
    results: list[LineCheck | None] = [None] * len(lines)
    parsed: list[tuple[int, bytes, dict[str, Any]]] = []
    for index, raw in enumerate(lines):
        data = entry_of_line(raw) if len(raw) <= MAX_LINE else None
        if data is not None:
            try:
                # json.loads(bytes) would guess the encoding of the slice; the line's is UTF-8.
                entry = json.loads(data.decode("utf-8", "surrogatepass"))
            except Exception:  # whatever it is, the reference code meets it again, in order
                continue
            if type(entry) is dict:
                parsed.append((index, data, entry))
    entries = []
    for item in parsed:
        try:
            # Compact sorted JSON is JCS only for values that encode alike both ways (no 10.0,
            # 1e-05, integers beyond 2^53, keys beyond the BMP): else the exact path, in order.
            if compact_is_canonical(item[2]) and compact(item[2]).encode() == item[1]:
                check_entry_fields(item[2])
                entries.append(item)
        except Exception:
            continue
    event_checks = _check_events([item for item in entries if item[2]["kind"] == "event"])
    for index, data, entry in entries:
        result: Any = entry["document"]
        if entry["kind"] == "event":
            result = event_checks.get(index)
            if result is None:  # left to the reference code
                continue
        results[index] = (entry["seq"], entry["prev"], entry["kind"], entry["received"],
                          hashlib.sha256(data).digest(), merkle.leaf_hash(data), result)
    return results


def _check_events(entries: list[tuple[int, bytes, dict[str, Any]]]) -> dict[int, EventCheck]:
    """The engine's position-independent check of each event (its document's bytes sliced
    out of the entry's), by index; an event that fails is left to the reference code, in
    order, which reports it."""
    secured: list[tuple[int, dict[str, Any], bytes]] = []
    for index, data, entry in entries:
        document = document_slice(data, entry["seq"], entry["prev"], "event", entry["received"])
        if document is not None:
            secured.append((index, entry["document"], document))
    results = check_event_documents([(doc, data) for _, doc, data in secured], canonical=False)
    return {index: result for (index, _, _), result in zip(secured, results, strict=True)
            if isinstance(result, EventCheck)}


# --- the windows in flight ------------------------------------------------------------------


class _Window:
    __slots__ = ("job", "lines", "results")

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.job: pool.Job | None = None
        self.results: list[LineCheck | None] | None = None


class WindowChecks:
    """Windows of entry lines checked ahead of the replay: `submit` them in order, `take`
    them back in the same order (lines and their checks). `processes` counts this one: with
    1, every window is checked here, when taken."""

    def __init__(self, processes: int) -> None:
        self.workers = max(0, processes - 1)
        self.size = WINDOW  # lines per window (the caller cuts them)
        self.queue: deque[_Window] = deque()

    def ready(self) -> tuple[list[bytes], list[LineCheck | None]] | None:
        """The oldest window, when it is checked or must be waited for (`AHEAD` windows are
        in flight); else None, after checking here the last window no worker has started, if
        any: the caller reads on and submits more, so that neither process waits."""
        if not self.queue:
            return None
        head = self.queue[0]
        if (head.results is not None or head.job is None or len(self.queue) >= AHEAD
                or head.job.done(0)):
            return self.take()
        self._steal(keep=self.workers + KEEP)
        return None

    def __bool__(self) -> bool:
        return bool(self.queue)

    def submit(self, lines: list[bytes]) -> None:
        window = _Window(lines)
        if self.workers:
            if not pool.has_pool(self.workers):
                # Before forking, one event checked here: the workers start with the schema
                # validators it compiled (~50 ms a process), and at once.
                event = next((raw for raw in lines if b'"kind":"event"' in raw), None)
                if event is not None:
                    check_line(event)
            window.job = pool.get_pool(self.workers).submit(check_lines, lines, len(lines) or 1)
        self.queue.append(window)

    def take(self) -> tuple[list[bytes], list[LineCheck | None]]:
        """The oldest window's lines and their checks."""
        head = self.queue.popleft()
        if head.results is None:
            if head.job is None:
                head.results = check_lines(head.lines)
            else:
                head.results = head.job.take(0, idle=self._steal)
                head.job.close()
        return head.lines, head.results

    def _steal(self, keep: int = 0) -> bool:
        """Check here the last window no worker has started, leaving the first `keep` windows
        not checked yet to the workers (the ones they take next); False when there is none."""
        waiting = [window for window in self.queue if window.results is None]
        for window in reversed(waiting[keep:]):
            if window.job is not None and window.job.steal():
                window.results = window.job.take(0)
                window.job.close()
                return True
        return False

    def drain(self) -> list[bytes]:
        """The lines of the windows not taken, in order (verification stopped early)."""
        lines: list[bytes] = []
        for window in self.queue:
            if window.job is not None:
                window.job.close()
            lines.extend(window.lines)
        self.queue.clear()
        return lines


def checked_bodies(bodies: Iterable[bytes], checks: WindowChecks
                   ) -> Iterator[tuple[list[bytes], list[LineCheck | None]]]:
    """Stored entries (their canonical bytes, entry 0 first) as the entry lines an `all`
    bundle holds, submitted to `checks` a window at a time; the windows back in order, each
    as soon as `checks` hands it over (`WindowChecks.ready`), the rest at the end."""
    window: list[bytes] = []
    for body in bodies:
        window.append(ENTRY_LINE_START + body + ENTRY_LINE_END)
        if len(window) >= checks.size:
            checks.submit(window)
            window = []
            if (ready := checks.ready()) is not None:  # one out per one in (verify_lines)
                yield ready
    if window:
        checks.submit(window)
    while checks:
        yield checks.take()
