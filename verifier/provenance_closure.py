"""The first pass of a two-pass provenance: which entry lines the subject's facts need.

`scan_closure` reads the whole bundle once (with `read_bundle`, the one parser) and keeps
only compact ids: every id a node of the custody graph has is replaced by its `hash()` (a
64-bit int, stable within the process that makes both passes), and the links of every event
(`custody_graph.event_links`, the one rule) go into arrays of 8-byte ints, 16 bytes a link.
At the end it takes the subject's closure (`custody_graph.closure`, the one formula) with
the upstream of the lots that recycled-content credentials about the subject name as
backing, and returns the line numbers of the entries the second pass must replay: every
genesis, registry and anchor entry, and every event entry naming a node of that set.

Two different ids with one hash can only add nodes to the set, and so lines to replay: the
second pass then replays an event it did not need, which changes none of the subject's facts
(see docs/provenance.md, "Two passes").
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from batterytrace.ledger.bundle_format import CREDENTIAL, ENTRY, event_subjects
from batterytrace.ledger.custody_graph import closure, event_links, reachable
from batterytrace.ledger.events import parse_credential

from .bundle import Header, Record, Trailer, read_bundle
from .provenance_facts import credential_subject, credential_types

LINKS = ("sources", "products", "components", "containers")


class Links(Mapping[int, array]):
    """node -> next nodes, as two sorted arrays (16 bytes a link); read with `get`."""

    def __init__(self, nodes: array, others: array) -> None:
        order = sorted(range(len(nodes)), key=nodes.__getitem__)
        self.nodes = array("q", (nodes[i] for i in order))
        self.others = array("q", (others[i] for i in order))

    def __getitem__(self, node: int) -> array:
        start = bisect_left(self.nodes, node)
        end = bisect_right(self.nodes, node, start)
        if start == end:
            raise KeyError(node)
        return self.others[start:end]

    def __iter__(self) -> Iterator[int]:
        return iter(dict.fromkeys(self.nodes))

    def __len__(self) -> int:
        return len(dict.fromkeys(self.nodes))


@dataclass(frozen=True)
class Scan:
    """What the first pass learnt: the header, whether an event names the subject, the entry
    lines to replay, the last entry line and the digest of the bundle (the second pass must
    read the same bytes)."""

    header: Header
    named: bool
    replay: frozenset[int]
    last_entry: int
    digest: bytes


def scan_closure(lines: Iterable[bytes], subject: str | None) -> Scan:
    """The first pass (see the module docstring). `subject` None: the header's."""
    pairs = {name: (array("q"), array("q")) for name in LINKS}
    named_lines, named_ids = array("q"), array("q")  # (line, hash of a name) per event name
    replay: list[int] = []
    backing: list[tuple[int | None, list[int]]] = []  # recycled-content: about, lots
    header: Header | None = None
    named, last_entry, digest = False, 0, b""
    for record in read_bundle(lines):
        if isinstance(record, Header):
            header = record
            subject = subject or record.subject
        elif isinstance(record, Trailer):
            digest = record.digest
        elif record.type == ENTRY:
            last_entry = record.line
            entry = record.data["entry"]
            if entry.get("kind") != "event":
                replay.append(record.line)
                continue
            if not isinstance(entry.get("seq"), int):
                continue  # the second pass skips it too
            for event in parse_credential(entry.get("document") or {}, check_schema=False).events:
                for link, node, other in event_links(event):
                    pairs[link][0].append(hash(node))
                    pairs[link][1].append(hash(other))
                names = event_subjects(event)
                named = named or subject in names
                for name in names:
                    named_lines.append(record.line)
                    named_ids.append(hash(name))
        elif record.type == CREDENTIAL:
            _backing(record, backing)
    assert header is not None
    needed = _needed(subject, {name: Links(*pair) for name, pair in pairs.items()}, backing)
    replay.extend(line for line, node in zip(named_lines, named_ids, strict=True)
                  if node in needed)
    return Scan(header, named, frozenset(replay), last_entry, digest)


def _backing(record: Record, into: list[tuple[int | None, list[int]]]) -> None:
    credential = record.data["credential"]
    if not isinstance(credential, dict) or "RecycledContentCredential" not in credential_types(
            credential):
        return
    subject = credential_subject(credential)
    lots = subject.get("backingLots")
    into.append((hash(subject["id"]) if isinstance(subject.get("id"), str) else None,
                 [hash(lot) for lot in lots if isinstance(lot, str)]
                 if isinstance(lots, list) else []))


def _needed(subject: str | None, links: Mapping[str, Links],
            backing: list[tuple[int | None, list[int]]]) -> set[int]:
    """The subject's closure, with the upstream of the backing lots of the recycled-content
    credentials about the subject, its parts or its containers (build_facts reads whether
    each of those lots came only from recycling)."""
    if subject is None:
        return set()
    start = hash(subject)
    needed = closure(start, links["sources"], links["products"], links["components"],
                     links["containers"])
    names = reachable([start], links["components"]) | reachable([start], links["containers"])
    lots = [lot for about, lots in backing if about in names for lot in lots]
    return needed | reachable(lots, links["sources"], links["components"])
