"""Evidence bundles (version 1): what the ledger exports for an offline verifier.

A bundle is JSON Lines (UTF-8, one JSON object per line, `type` names the record):

1. `header`: version, origin, scope (`item` / `lot` with its id, or `all`), the signed
   checkpoint note, and with `--consistency-from` a consistency proof from that older size;
2. `entry` records in log order, entry 0 first, each with its inclusion proof against the
   checkpoint (none in an `all` bundle: the verifier rebuilds the root from every entry);
3. `credential`, `redacted-credential`, `status-list` and `did-document` records;
4. `end`: the number of records before it (a truncated bundle is detected).

The closure of an item or lot (`CustodyGraph.closure`, docs/formats.md): upstream, every
source and component back to extraction; downstream, the products of the subject, of its
components and of the items they were assembled into (its disassembly, recycling and recovered
lots, and what is made of those), never other products of shared ancestors; and the items any
of these was assembled into. The bundle holds every event touching the closure, every anchor
of a credential it carries, and every registry and settings entry up to the last of them (and
entry 0).

Before anything is written, the export checks its own checkpoint: the stored note must open with
the ledger's verifier key and carry the stored size and root; each entry's inclusion proof is
checked against that root before its line is written (an `all` bundle: the root rebuilt from
its entries), so a damaged store raises `BundleSelfCheckError` instead of handing out a bundle
nobody can verify. Entry signatures are not re-verified here (`ledger verify` does that).

This module imports no storage library: it reads through a `Ledger` handed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from batterytrace.credentials.errors import BatterytraceError, InputError, VerificationError

from . import merkle
from .anchors import credential_digest
from .bundle_format import (
    BUNDLE_VERSION,
    CREDENTIAL,
    DID_DOCUMENT,
    END,
    HEADER,
    REDACTED,
    STATUS_LIST,
    b64,
    credential_subject_ids,
    entry_line,
    event_subjects,
    record_line,
)
from .checkpoint import Checkpoint, CheckpointError, open_checkpoint
from .custody_graph import CustodyGraph
from .events import TraceEvent, parse_credential

if TYPE_CHECKING:
    from .log import Ledger

ACCREDITATION = "AccreditationCredential"
# Kinds every closure bundle carries up to its last selected entry (replayed by the verifier).
CONTEXT_KINDS = frozenset({"genesis", "registry", "settings"})


class BundleExportError(InputError):
    """An export cannot be made (unknown subject, bad options)."""

    code = "BUNDLE_EXPORT_ERROR"
    title = "Bundle cannot be exported"


class BundleSelfCheckError(VerificationError):
    """What the export would write does not verify: the stored checkpoint does not open with
    the ledger's own key, or an inclusion proof (or the rebuilt root) does not match it. The
    store is damaged; run `batterytrace ledger verify`."""

    code = "BUNDLE_EXPORT_SELF_CHECK"
    title = "Exported bundle fails its own check"
    http_status = 500


def _check_checkpoint(ledger: Ledger, cp: Checkpoint, note: bytes) -> None:
    """The note opens with the ledger's verifier key and carries the stored size and root."""
    try:
        signed = open_checkpoint(note, [ledger.verifier], origin=ledger.origin)
    except CheckpointError as exc:
        raise BundleSelfCheckError(
            f"the stored checkpoint note at size {cp.size} does not open with the ledger's "
            f"key: {exc}", size=cp.size) from exc
    if (signed.size, signed.root) != (cp.size, cp.root):
        raise BundleSelfCheckError(
            f"the stored checkpoint at size {cp.size} does not match its signed note "
            f"(size {signed.size})", size=cp.size)


def _check_proof(entry: Any, proof: Sequence[bytes], cp: Checkpoint) -> None:
    try:
        merkle.verify_inclusion(merkle.leaf_hash(entry.canonical), entry.seq, cp.size, proof,
                                cp.root)
    except (merkle.ProofError, merkle.MerkleInputError) as exc:
        raise BundleSelfCheckError(
            f"the inclusion proof of entry {entry.seq} does not verify against the checkpoint "
            f"at size {cp.size}: {exc}", seq=entry.seq, size=cp.size) from exc


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


def _events_of(document: Mapping[str, Any]) -> Sequence[TraceEvent]:
    try:
        return parse_credential(document, check_schema=False).events
    except BatterytraceError:  # the ledger accepted it; a reader should not stop on it
        return ()


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
    chosen = [x for x in (item, lot) if x is not None]
    if len(chosen) + bool(all_entries) != 1:
        raise BundleExportError("export exactly one of --item, --lot or --all")
    cp, note = ledger.latest_checkpoint()  # with its cosignatures, when witnessed
    _check_checkpoint(ledger, cp, note)
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
        closure = graph.closure(subject)
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
        old_proof = ledger.consistency_proof(consistency_from, size)
        header["consistency"] = {"oldSize": consistency_from,
                                 "proof": [b64(h) for h in old_proof]}
    out.write(record_line(header))
    records, entries, redacted = 1, 0, 0
    if selected is None:
        entries = _write_all_entries(ledger, out, cp)
        records += entries
    else:
        for entry in _selected_entries(ledger, size, selected, last):
            proof = ledger.inclusion_proof(entry.seq, size)
            _check_proof(entry, proof, cp)
            out.write(entry_line(entry.canonical, proof))
            records, entries = records + 1, entries + 1
    for credential in kept:
        if redacted_types & set(_types(credential)):
            out.write(record_line({"type": REDACTED, "id": credential.get("id"),
                             "credentialType": _types(credential),
                             "digest": credential_digest(credential)}))
            redacted += 1
        else:
            out.write(record_line({"type": CREDENTIAL, "credential": dict(credential)}))
        records += 1
    for status_list in status_lists:
        out.write(record_line({"type": STATUS_LIST, "credential": dict(status_list)}))
        records += 1
    for document in did_documents:
        out.write(record_line({"type": DID_DOCUMENT, "document": dict(document)}))
        records += 1
    out.write(record_line({"type": END, "records": records}))
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


def _write_all_entries(ledger: Ledger, out: IO[bytes], cp: Checkpoint) -> int:
    """An `all` bundle's entry lines: the stored bytes of entries 0..size-1, written as they
    are (not parsed: nothing of an entry but its bytes goes into its line), while their
    tree is rebuilt (a compact range, O(log n) memory); the root must be the checkpoint's,
    which covers every byte written. Returns the number of entries written."""
    tree = merkle.CompactRange()
    write, leaf_hash = out.write, merkle.leaf_hash
    for data in ledger.iter_entry_bytes(0, cp.size):
        tree.append(leaf_hash(data))
        write(entry_line(data, None))
    if tree.size != cp.size or tree.root() != cp.root:
        raise BundleSelfCheckError(
            f"the {tree.size} entries do not rebuild the root of the checkpoint at size "
            f"{cp.size}", size=cp.size)
    return tree.size


def _selected_entries(
    ledger: Ledger, size: int, selected: set[int], last: int
) -> Iterator[Any]:
    for entry in ledger.iter_entries(0, size):
        if entry.seq in selected or (entry.kind in CONTEXT_KINDS and entry.seq <= last):
            yield entry
