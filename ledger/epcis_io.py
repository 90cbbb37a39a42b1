"""EPCIS 2.0 documents into and out of a ledger.

`import_epcis`: map every event (`ledger.epcis.dte_events_of`; any unmappable event refuses
the document with each one's index), wrap them in UNTP DTE credentials of at most
`events_per_credential` events signed by the participant's key, and append them all as ONE
atomic batch (the custody rules judge them as any append; a refusal leaves nothing of the
document in the log).

`export_epcis`: the events of a lot, an item or the whole log as an EPCISDocument; each event
carries `batterytrace:ledger` with its log position, its entry and leaf hashes, its credential,
and the RFC 6962 inclusion proof against the latest signed checkpoint (and where to fetch it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.errors import InputError
from batterytrace.credentials.keys import Ed25519Key

from .custody_errors import UnknownItemError, UnknownLotError
from .epcis import MappedEvent, dte_events_of, epcis_document, epcis_event_of, event_contexts
from .errors import CheckpointNotSignedError
from .events import DTE_CONTEXTS, DTE_TYPE
from .log import AppendResult, Ledger, Submission
from .queries import read_state

EVENTS_PER_CREDENTIAL = 100


class EpcisExportScopeError(InputError):
    code = "EPCIS_EXPORT_SCOPE"
    title = "Export exactly one of --lot, --item or --all"


@dataclass(frozen=True)
class ImportResult:
    """What an import appended: the events (with notes) and the entries of its batch."""

    events: tuple[MappedEvent, ...]
    results: tuple[AppendResult, ...]


def dte_credentials(mapped: Sequence[MappedEvent], key: Ed25519Key, issuer: str,
                    issuer_name: str = "",
                    events_per_credential: int = EVENTS_PER_CREDENTIAL) -> list[dict[str, Any]]:
    """The signed DTE credentials (eddsa-jcs-2022) holding the mapped events in order."""
    signed = []
    for start in range(0, len(mapped), events_per_credential):
        chunk = mapped[start:start + events_per_credential]
        credential = {
            "@context": list(DTE_CONTEXTS),
            "type": [DTE_TYPE, "VerifiableCredential"],
            "id": f"urn:uuid:{uuid.uuid4()}",
            "issuer": {"type": ["CredentialIssuer"], "id": issuer,
                       "name": issuer_name or issuer},
            "credentialSubject": [m.event for m in chunk],
        }
        signed.append(sign(credential, key,
                           verification_method=f"{issuer}#{key.public_multibase}"))
    return signed


def import_epcis(ledger: Ledger, document: Any, key: Ed25519Key, issuer: str, *,
                 issuer_name: str = "",
                 events_per_credential: int = EVENTS_PER_CREDENTIAL) -> ImportResult:
    """Map, sign and append an EPCIS document's events as one atomic batch."""
    mapped = dte_events_of(document, issuer)
    credentials = dte_credentials(mapped, key, issuer, issuer_name, events_per_credential)
    results = ledger.append([Submission("event", c) for c in credentials])
    return ImportResult(tuple(mapped), tuple(results))


def _event_rows(ledger: Ledger, lot: str | None, item: str | None,
                all_entries: bool) -> Iterator[tuple[int, dict[str, Any], set[str] | None]]:
    """(seq, DTE credential, wanted event ids or None for all) in log order."""
    if sum((lot is not None, item is not None, all_entries)) != 1:
        raise EpcisExportScopeError("export exactly one of --lot, --item or --all")
    if all_entries:
        for entry in ledger.iter_entries():
            if entry.kind == "event":
                yield entry.seq, entry.document, None
        return
    subject = lot if lot is not None else item
    assert subject is not None
    with read_state(ledger) as view:
        if lot is not None and view.state.lot(lot) is None:
            raise UnknownLotError(f"lot {lot} is unknown")
        if item is not None and view.state.item(item) is None:
            raise UnknownItemError(f"item {item} is unknown")
        history = view.history(subject)
    wanted: dict[int, set[str]] = {}
    for row in history:
        wanted.setdefault(row["seq"], set()).add(row["event"])
    for seq in sorted(wanted):
        yield seq, ledger.entry(seq).document, wanted[seq]


def export_epcis(ledger: Ledger, *, lot: str | None = None, item: str | None = None,
                 all_entries: bool = False, creation_date: str | None = None
                 ) -> dict[str, Any]:
    """The EPCISDocument of the events of a lot, an item, or the whole log."""
    try:
        checkpoint, _ = ledger.latest_checkpoint()
        size: int | None = checkpoint.size
        root = checkpoint.root.hex()
    except CheckpointNotSignedError:
        size, root = None, None
    base = ledger.public_url.rstrip("/")
    events: list[dict[str, Any]] = []
    contexts: list[dict[str, Any]] = []
    for seq, credential, wanted in _event_rows(ledger, lot, item, all_entries):
        entry = ledger.entry(seq)
        subjects = credential.get("credentialSubject")
        for event in subjects if isinstance(subjects, list) else [subjects]:
            if not isinstance(event, Mapping) or (wanted is not None
                                                 and event.get("id") not in wanted):
                continue
            reference: dict[str, Any] = {
                "position": seq, "credential": credential.get("id"),
                "issuer": (credential.get("issuer") or {}).get("id"),
                "entryHash": entry.hash.hex(), "leafHash": entry.leaf_hash.hex(),
            }
            if size is not None and seq < size:
                reference["inclusionProof"] = {
                    "treeSize": size, "rootHash": root,
                    "hashes": [h.hex() for h in ledger.inclusion_proof(seq, size)],
                    "url": f"{base}/proofs/inclusion?seq={seq}&size={size}",
                    "checkpoint": f"{base}/checkpoints/{size}/note"}
            events.append(epcis_event_of(event, reference))
            for entry_context in event_contexts(event):
                if entry_context not in contexts:
                    contexts.append(entry_context)
    created = creation_date or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return epcis_document(events, created, contexts)


__all__ = ["EVENTS_PER_CREDENTIAL", "EpcisExportScopeError", "ImportResult", "dte_credentials",
           "export_epcis", "import_epcis"]
