"""The evidence bundle format (version 1, docs/formats.md "Bundle"): one home for it.

Record types and their members, the framing of an entry line, and what a record speaks about
(the lots and items of an event, the subjects of a credential). The exporter
(`bundle_export`) writes with these; the verifier's reader (`verifier/bundle.py`) and its
checks read with them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .events import TraceEvent

BUNDLE_VERSION = 1
HEADER, ENTRY, CREDENTIAL, REDACTED, STATUS_LIST, DID_DOCUMENT, END, PRESENTATION = (
    "header", "entry", "credential", "redacted-credential", "status-list", "did-document",
    "end", "presentation",
)
SCOPE_KINDS = ("item", "lot", "all")
MAX_LINE = 32 * 1024 * 1024  # one entry or credential; far above anything the ledger writes

# record type -> (required members, optional members)
MEMBERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    HEADER: (frozenset({"type", "version", "origin", "scope", "checkpoint"}),
             frozenset({"consistency"})),
    ENTRY: (frozenset({"type", "entry"}), frozenset({"proof"})),
    CREDENTIAL: (frozenset({"type", "credential"}), frozenset()),
    REDACTED: (frozenset({"type", "id", "credentialType", "digest"}), frozenset()),
    STATUS_LIST: (frozenset({"type", "credential"}), frozenset()),
    DID_DOCUMENT: (frozenset({"type", "document"}), frozenset()),
    END: (frozenset({"type", "records"}), frozenset()),
    PRESENTATION: (frozenset({"type", "presentation"}), frozenset()),
}

# An entry line as the exporter writes it: the entry's canonical bytes embedded verbatim
# (canonical JSON is JSON), then a closure entry's inclusion proof.
ENTRY_LINE_START = b'{"type":"entry","entry":'
ENTRY_LINE_END = b"}\n"


def b64(data: bytes) -> str:
    """Standard base64 (with padding), as the bundle writes hashes."""
    return base64.b64encode(data).decode()


def record_line(record: Mapping[str, Any]) -> bytes:
    """A record as one line of compact JSON."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def entry_line(canonical: bytes, proof: Sequence[bytes] | None) -> bytes:
    """The line of an entry (its canonical bytes), with its inclusion proof when given."""
    tail = b"" if proof is None else b',"proof":' + json.dumps([b64(h) for h in proof]).encode()
    return ENTRY_LINE_START + canonical + tail + ENTRY_LINE_END


def entry_of_line(raw: bytes) -> bytes | None:
    """The entry bytes of a line laid out as `entry_line(canonical, None)` writes it, else
    None (the caller then reads the line as JSON). A line with a proof is framed alike:
    callers that may meet one check the parsed record first."""
    if raw.startswith(ENTRY_LINE_START) and raw.endswith(ENTRY_LINE_END):
        return raw[len(ENTRY_LINE_START):-len(ENTRY_LINE_END)]
    return None


def event_subjects(event: TraceEvent) -> set[str]:
    """Every lot and item URI an event names."""
    lots = [q.lot for q in (*event.quantities, *event.input_quantities, *event.output_quantities)]
    items = [*event.epcs, *event.input_items, *event.output_items, *event.children]
    if event.parent is not None:
        items.append(event.parent)
    return set(lots) | set(items)


def credential_subject_ids(credential: Mapping[str, Any]) -> set[str]:
    """The `credentialSubject.id` values of a credential (what it speaks about)."""
    subjects = credential.get("credentialSubject")
    subjects = subjects if isinstance(subjects, list) else [subjects]
    return {s["id"] for s in subjects if isinstance(s, dict) and isinstance(s.get("id"), str)}
