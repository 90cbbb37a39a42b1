"""`replay_verify`: re-check every signature and custody rule of a stored log, offline.

What `ledger verify` adds to the hash chain and Merkle checks: each registry entry's admin
(and participant) proofs, each event credential's schema, signature by a key of its issuer
valid at its log position, and the custody rules, replayed in log order from the genesis
entry (which names the admin key and public URL). Pure: no database, so the verifier can run
it over exported entries. Event checks run on `processes` cores (event_precheck), a window
at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .engine import Replay, replay_log
from .errors import LogEntryError
from .event_precheck import precheck_all

REPLAY_WINDOW = 4096  # entries whose event checks run together (bounded memory)


@dataclass(frozen=True)
class ReplayReport:
    """What a replay checked: entry counts by kind and the resulting custody state's size."""

    entries: int
    events: int
    registry_entries: int
    participants: int
    lots: int
    items: int
    processes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "events": self.events,
            "registryEntries": self.registry_entries,
            "participants": self.participants,
            "lots": self.lots,
            "items": self.items,
            "processes": self.processes,
        }


# An entry to replay: an `Entry`, or (seq, kind, document[, received]).
LogItem = tuple[int, str, dict[str, Any], str | None]


def as_item(entry: Any) -> LogItem:
    """An `Entry` or a (seq, kind, document[, received]) tuple as (seq, kind, document,
    received): without the receipt time the eventTime bound is not applied."""
    if isinstance(entry, tuple):
        return (entry[0], entry[1], entry[2], entry[3] if len(entry) > 3 else None)
    return entry.seq, entry.kind, entry.document, entry.received


def replay_entries(
    entries: Iterable[Any], processes: int = 1, replay: Replay | None = None,
) -> Replay:
    """The engine's replay of entries (`as_item`) in log order, from entry 0. Raises the
    first rule's error, with the seq in its details.

    Event checks run a window at a time on `processes` processes (this one included); the
    next window's are queued in the workers while this process applies the current one."""
    replay = replay or Replay()
    windows = _windows((as_item(entry) for entry in entries), REPLAY_WINDOW)
    current = next(windows, None)
    checks = _start_checks(current or [], processes)
    while current is not None:
        upcoming = next(windows, None)
        # Queued behind this window's chunks, so the workers never wait for the rules.
        following = _start_checks(upcoming, processes) if upcoming is not None else None
        replay_log(((seq, kind, doc, next(checks) if kind == "event" else None, received)
                    for seq, kind, doc, received in current), replay)
        current, checks = upcoming, following
    return replay


def _windows(entries: Iterable[LogItem], size: int) -> Iterator[list[LogItem]]:
    window: list[LogItem] = []
    for entry in entries:
        window.append(entry)
        if len(window) >= size:
            yield window
            window = []
    if window:
        yield window


def _start_checks(window: list[LogItem], processes: int) -> Any:
    documents = [doc for _, kind, doc, _ in window if kind == "event"]
    return precheck_all(documents, processes, canonical=False)


def replay_verify(ledger_entries: Iterable[Any], processes: int = 1) -> ReplayReport:
    """Replay signatures and custody rules over a log's entries (`as_item`: Entry objects or
    tuples, from the genesis entry on, in order).

    Raises the first failing rule's typed error (VerificationError subclasses; `seq` in its
    details), or LogEntryError when the stream does not start with the genesis entry.
    """
    stream = iter(ledger_entries)
    first = next(stream, None)
    if first is None:
        raise LogEntryError(0, "no entries to replay")
    head = as_item(first)
    seq, kind = head[0], head[1]
    if seq != 0 or kind != "genesis":
        raise LogEntryError(seq, "a replay starts at the genesis entry")
    counts = {"entries": 1, "event": 0, "registry": 0}

    def counted() -> Iterator[LogItem]:
        for entry in stream:
            item = as_item(entry)
            counts["entries"] += 1
            if item[1] in counts:
                counts[item[1]] += 1
            yield item

    done = replay_entries(itertools.chain([head], counted()), processes)
    registry, state = done.started()
    return ReplayReport(
        entries=counts["entries"],
        events=counts["event"],
        registry_entries=counts["registry"],
        participants=sum(1 for v in registry.tables["participant"].values() if v is not None),
        lots=sum(1 for v in state.tables["lot"].values() if v is not None),
        items=sum(1 for v in state.tables["item"].values() if v is not None),
        processes=processes,
    )
