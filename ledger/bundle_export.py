"""Evidence bundles (version 1): what the ledger exports for an offline verifier.

A bundle is JSON Lines (UTF-8, one JSON object per line, `type` names the record):

1. `header`: version, origin, scope (`item` / `lot` with its id, or `all`), the signed
   checkpoint note, and with `--consistency-from` a consistency proof from that older size;
2. `entry` records in log order, entry 0 first, each with its inclusion proof against the
   checkpoint (none in an `all` bundle: the verifier rebuilds the root from every entry);
3. `credential`, `redacted-credential`, `status-list` and `did-document` records;
4. `end`: the number of records before it (a truncated bundle is detected).

The closure of an item or lot: upstream, every source and component back to extraction;
downstream, the products of the subject and of its components (its disassembly, recycling and
recovered lots), never other products of shared ancestors; and the items it was assembled
into. The bundle holds every event touching the closure, every anchor of a credential it
carries, and every registry and settings entry up to the last of them (and entry 0).

This module imports no storage library: it reads through a `Ledger` handed in.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from batterytrace.credentials.errors import BatterytraceError, InputError

from .events import TraceEvent, parse_credential

if TYPE_CHECKING:
    from .log import Ledger

BUNDLE_VERSION = 1
HEADER, ENTRY, CREDENTIAL, REDACTED, STATUS_LIST, DID_DOCUMENT, END, PRESENTATION = (
    "header", "entry", "credential", "redacted-credential", "status-list", "did-document",
    "end", "presentation",
)
SCOPE_KINDS = ("item", "lot", "all")
ACCREDITATION = "AccreditationCredential"
# Kinds every closure bundle carries up to its last selected entry (replayed by the verifier).
CONTEXT_KINDS = frozenset({"genesis", "registry", "settings"})


class BundleExportError(InputError):
    """An export cannot be made (unknown subject, bad options)."""

    code = "BUNDLE_EXPORT_ERROR"
    title = "Bundle cannot be exported"


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    scope: str
    subject: str | None
    checkpoint_size: int
    entries: int
    closure: int
    credentials: int
    redacted: int
    records: int


@dataclass
class CustodyGraph:
    """Links between lots and items, read from every event of the log (one pass)."""

    sources: dict[str, set[str]] = field(default_factory=dict)  # product -> inputs
    products: dict[str, set[str]] = field(default_factory=dict)  # input -> products
    components: dict[str, set[str]] = field(default_factory=dict)  # parent -> children ever
    containers: dict[str, set[str]] = field(default_factory=dict)  # child -> parents ever
    known: set[str] = field(default_factory=set)

    def add(self, event: TraceEvent) -> None:
        self.known.update(event_subjects(event))
        inputs = [q.lot for q in event.input_quantities] + list(event.input_items)
        outputs = [q.lot for q in event.output_quantities] + list(event.output_items)
        for product in outputs:
            self.sources.setdefault(product, set()).update(inputs)
        for source in inputs:
            self.products.setdefault(source, set()).update(outputs)
        if event.parent is not None and event.kind in ("AggregationEvent", "AssociationEvent"):
            self.components.setdefault(event.parent, set()).update(event.children)
            for child in event.children:
                self.containers.setdefault(child, set()).add(event.parent)

    def closure(self, subject: str) -> set[str]:
        """Upstream sources and components, downstream products of the subject and of its
        components, and every item any of those was assembled into (what happens to a pack
        happens to its cells, so the replay needs the containers' custody too)."""
        upstream = _walk([subject], self.sources, self.components)
        parts = _walk([subject], self.components)
        downstream = _walk(parts, self.products)
        return _walk(upstream | downstream, self.containers)


def _walk(start: Iterable[str], *links: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for link in links:
            stack.extend(link.get(node, ()))
    return seen


def event_subjects(event: TraceEvent) -> set[str]:
    """Every lot and item URI an event names."""
    lots = [q.lot for q in (*event.quantities, *event.input_quantities, *event.output_quantities)]
    items = [*event.epcs, *event.input_items, *event.output_items, *event.children]
    if event.parent is not None:
        items.append(event.parent)
    return set(lots) | set(items)


def _events_of(document: Mapping[str, Any]) -> Sequence[TraceEvent]:
    try:
        return parse_credential(document, check_schema=False).events
    except BatterytraceError:  # the ledger accepted it; a reader should not stop on it
        return ()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _line(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _entry_line(canonical: bytes, proof: Sequence[bytes] | None) -> bytes:
    # The entry's canonical bytes are embedded as they are (canonical JSON is JSON).
    tail = b"" if proof is None else b',"proof":' + json.dumps([b64(h) for h in proof]).encode()
    return b'{"type":"entry","entry":' + canonical + tail + b"}\n"


def credential_subject_ids(credential: Mapping[str, Any]) -> set[str]:
    subjects = credential.get("credentialSubject")
    subjects = subjects if isinstance(subjects, list) else [subjects]
    return {s["id"] for s in subjects if isinstance(s, dict) and isinstance(s.get("id"), str)}


def _types(credential: Mapping[str, Any]) -> list[str]:
    types = credential.get("type")
    return [t for t in (types if isinstance(types, list) else [types]) if isinstance(t, str)]


def export_bundle(
    ledger: Ledger,
    out: IO[bytes],
    *,
    item: str | None = None,
    lot: str | None = None,
    all_entries: bool = False,
    consistency_from: int | None = None,
    redact: Iterable[str] = (),
    credentials: Iterable[Mapping[str, Any]] = (),
    status_lists: Iterable[Mapping[str, Any]] = (),
    did_documents: Iterable[Mapping[str, Any]] = (),
    find_credentials: Callable[[str], Iterable[Mapping[str, Any]]] | None = None,
    lists_for: Callable[[Mapping[str, Any]], Mapping[str, Mapping[str, Any]]] | None = None,
) -> ExportSummary:
    """Write the bundle of an item, a lot or the whole log to `out` (binary), streaming the
    entries. `credentials` are candidates: those about a lot, item or facility of the closure
    are written (content left out for the types in `redact`, keeping their digest)."""
    from .anchors import credential_digest

    chosen = [x for x in (item, lot) if x is not None]
    if len(chosen) + bool(all_entries) != 1:
        raise BundleExportError("export exactly one of --item, --lot or --all")
    cp, note = ledger.latest_checkpoint()
    size = cp.size
    scope = "all" if all_entries else ("item" if item is not None else "lot")
    subject = None if all_entries else chosen[0]

    closure: set[str] = set()
    selected: set[int] | None = None
    facilities: set[str] = set()
    if not all_entries:
        graph = CustodyGraph()
        for entry in ledger.iter_entries(0, size):
            if entry.kind == "event":
                for event in _events_of(entry.document):
                    graph.add(event)
        if subject not in graph.known:
            raise BundleExportError(f"no event names {subject} in the first {size} entries",
                                    subject=subject)
        closure = graph.closure(subject)  # type: ignore[arg-type]
        selected = set()
        for entry in ledger.iter_entries(0, size):
            if entry.kind != "event":
                continue
            events = _events_of(entry.document)
            if any(event_subjects(e) & closure for e in events):
                selected.add(entry.seq)
                facilities.update(e.biz_location for e in events)

    relevant = closure | facilities
    redacted_types = set(redact)
    candidates = list(credentials)
    if find_credentials is not None:  # the credential store, by subject
        for subject_id in sorted(relevant):
            candidates.extend(find_credentials(subject_id))
    kept = list({str(c.get("id")): c for c in candidates
                 if all_entries or credential_subject_ids(c) & relevant}.values())
    kept.extend(_accreditations(kept, candidates, find_credentials))
    lists = {str(x.get("id")): x for x in status_lists}
    if lists_for is not None:
        for credential in kept:
            lists.update(lists_for(credential))
    status_lists = list(lists.values())
    kept_ids = {c.get("id") for c in kept}
    if selected is not None and kept_ids:
        for entry in ledger.iter_entries(0, size):
            if entry.kind == "anchor" and entry.document.get("credentialId") in kept_ids:
                selected.add(entry.seq)
    last = max(selected, default=0) if selected is not None else size - 1

    header: dict[str, Any] = {
        "type": HEADER, "version": BUNDLE_VERSION, "origin": ledger.origin,
        "scope": {"kind": scope, **({"id": subject} if subject else {})},
        "checkpoint": note.decode(),
    }
    if consistency_from is not None:
        if not 1 <= consistency_from <= size:
            raise BundleExportError(
                f"--consistency-from {consistency_from} must be between 1 and {size}")
        proof = ledger.consistency_proof(consistency_from, size)
        header["consistency"] = {"oldSize": consistency_from, "proof": [b64(h) for h in proof]}
    out.write(_line(header))
    records, entries, redacted = 1, 0, 0
    for entry in _selected_entries(ledger, size, selected, last):
        proof = None if selected is None else ledger.inclusion_proof(entry.seq, size)
        out.write(_entry_line(entry.canonical, proof))
        records, entries = records + 1, entries + 1
    for credential in kept:
        if redacted_types & set(_types(credential)):
            out.write(_line({"type": REDACTED, "id": credential.get("id"),
                             "credentialType": _types(credential),
                             "digest": credential_digest(credential)}))
            redacted += 1
        else:
            out.write(_line({"type": CREDENTIAL, "credential": dict(credential)}))
        records += 1
    for status_list in status_lists:
        out.write(_line({"type": STATUS_LIST, "credential": dict(status_list)}))
        records += 1
    for document in did_documents:
        out.write(_line({"type": DID_DOCUMENT, "document": dict(document)}))
        records += 1
    out.write(_line({"type": END, "records": records}))
    return ExportSummary(scope, subject, size, entries, len(closure), len(kept) - redacted,
                         redacted, records + 1)


def _issuer(credential: Mapping[str, Any]) -> str | None:
    issuer = credential.get("issuer")
    issuer = issuer.get("id") if isinstance(issuer, Mapping) else issuer
    return issuer if isinstance(issuer, str) else None


def _accreditations(
    kept: Sequence[Mapping[str, Any]], candidates: Sequence[Mapping[str, Any]],
    find_credentials: Callable[[str], Iterable[Mapping[str, Any]]] | None,
) -> list[Mapping[str, Any]]:
    """The AccreditationCredentials the verifier needs for the trust paths of `kept`: those
    naming the issuer of a kept credential, then their issuers', up the chain (among the
    candidates and, by subject DID, the credential store)."""
    have = {str(c.get("id")) for c in kept}
    found: list[Mapping[str, Any]] = []
    wanted = [i for i in (_issuer(c) for c in kept) if i is not None]
    seen: set[str] = set()
    while wanted:
        did = wanted.pop()
        if did in seen:
            continue
        seen.add(did)
        pool = list(candidates) + (list(find_credentials(did)) if find_credentials else [])
        for credential in pool:
            if ACCREDITATION not in _types(credential) or did not in credential_subject_ids(
                    credential) or str(credential.get("id")) in have:
                continue
            have.add(str(credential.get("id")))
            found.append(credential)
            accreditor = _issuer(credential)
            if accreditor is not None:
                wanted.append(accreditor)
    return found


def _selected_entries(
    ledger: Ledger, size: int, selected: set[int] | None, last: int
) -> Iterator[Any]:
    for entry in ledger.iter_entries(0, size):
        if selected is None or entry.seq in selected or (
            entry.kind in CONTEXT_KINDS and entry.seq <= last
        ):
            yield entry
