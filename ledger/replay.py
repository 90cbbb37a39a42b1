"""`replay_verify`: re-check every signature and custody rule of a stored log, offline.

What `ledger verify` adds to the hash chain and Merkle checks: each registry entry's admin
(and participant) proofs, each event credential's schema, signature by a key of its issuer
valid at its log position, and the custody rules, replayed in log order from the genesis
entry (which names the admin key and public URL). Pure: no database, so the verifier can run
it over exported entries. Signatures are checked on `processes` cores (event_precheck).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .custody_store import replay
from .errors import LogEntryError


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


def _as_tuple(entry: Any) -> tuple[int, str, dict[str, Any]]:
    if isinstance(entry, tuple):
        return entry
    return entry.seq, entry.kind, entry.document


def replay_verify(ledger_entries: Iterable[Any], processes: int = 1) -> ReplayReport:
    """Replay signatures and custody rules over a log's entries (Entry objects or
    (seq, kind, document) tuples, from the genesis entry on, in order).

    Raises the first failing rule's typed error (VerificationError subclasses; `seq` in its
    details), or LogEntryError when the stream does not start with the genesis entry.
    """
    stream = iter(ledger_entries)
    first = next(stream, None)
    if first is None:
        raise LogEntryError(0, "no entries to replay")
    seq, kind, genesis = _as_tuple(first)
    if seq != 0 or kind != "genesis":
        raise LogEntryError(seq, "a replay starts at the genesis entry")
    counts = {"entries": 1, "event": 0, "registry": 0}

    def counted() -> Iterator[tuple[int, str, dict[str, Any]]]:
        for entry in stream:
            item = _as_tuple(entry)
            counts["entries"] += 1
            if item[1] in counts:
                counts[item[1]] += 1
            yield item

    registry, state = replay(
        counted(), genesis["adminKey"], genesis["publicUrl"], processes=processes
    )
    return ReplayReport(
        entries=counts["entries"],
        events=counts["event"],
        registry_entries=counts["registry"],
        participants=sum(1 for v in registry.tables["participant"].values() if v is not None),
        lots=sum(1 for v in state.tables["lot"].values() if v is not None),
        items=sum(1 for v in state.tables["item"].values() if v is not None),
        processes=processes,
    )
