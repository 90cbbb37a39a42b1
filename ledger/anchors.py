"""Credential anchors: issuance, revocation, suspension and reinstatement as log entries.

An anchor is a small document signed by the credential's ISSUER (Data Integrity,
eddsa-jcs-2022) and appended as an entry of kind "anchor". It holds the credential's digest
(SHA-256 of its RFC 8785 canonical form), id, types and status entries, never its content
(credentials can be commercially sensitive and live off the log, in `credential_store`). The
entry's log position is the provable time of the action.

    {"id": "urn:uuid:...", "type": "CredentialAnchor", "action": "issuance",
     "credentialId": "urn:uuid:...",
     "credentialDigest": "<64 hex>", "credentialType": ["VerifiableCredential", ...],
     "issuer": "did:...", "status": [{"statusPurpose": "revocation",
     "statusListIndex": "94567", "statusListCredential": "https://.../revocation/0"}],
     "proof": {...}}

Rules (`apply_anchor`, pure, replayed by the verifier): the signer is the issuer (a registered
participant's key valid at the position, or the issuer's did:key); a credential is issued once;
only its issuer revokes, suspends or reinstates it, naming the same digest; revocation is
irreversible; suspension is reversible (reinstatement); a replay of the same signed anchor is
answered with the existing entry, a conflicting one is rejected.

This module imports no storage library at import time: the verifier uses the pure part.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from batterytrace.credentials.base58 import b58encode
from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import (
    DATA_INTEGRITY_PROOF,
    EDDSA_JCS_2022,
    jcs_hash_data,
    sign,
    verify_proofs,
    with_proof_bytes,
)
from batterytrace.credentials.did import DID_KEY_PREFIX, OfflineResolver, VerificationMethod
from batterytrace.credentials.errors import InputError, VerificationError, VerificationMethodError
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.credentials.status_list import StatusEntry, status_entries
from batterytrace.credentials.vc import controlled_by, issuer_id

from .custody import Tables
from .registry import Registry, RegistryResolver

ANCHOR_KIND = "anchor"
ANCHOR_TYPE = "CredentialAnchor"
ISSUANCE = "issuance"
REVOCATION = "revocation"
SUSPENSION = "suspension"
REINSTATEMENT = "reinstatement"
ACTIONS = (ISSUANCE, REVOCATION, SUSPENSION, REINSTATEMENT)
# The status purpose each status-changing action concerns.
ACTION_PURPOSE = {REVOCATION: "revocation", SUSPENSION: "suspension",
                  REINSTATEMENT: "suspension"}

_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS = {"id", "type", "action", "credentialId", "credentialDigest", "credentialType", "issuer",
           "status", "reason", "proof"}


class AnchorFormatError(InputError):
    """An anchor document is malformed (unknown action, missing digest, extra content)."""

    code = "ANCHOR_MALFORMED"
    title = "Malformed credential anchor"


class AnchorSignerError(VerificationError):
    """The anchor is not signed by the credential's issuer (or by a key not valid then)."""

    code = "ANCHOR_SIGNER_ERROR"
    title = "Anchor not signed by the issuer"


class AnchorStateError(VerificationError):
    """The action does not fit the credential's anchored history (unknown credential, already
    issued, already revoked, not suspended, another issuer or digest)."""

    code = "ANCHOR_STATE_ERROR"
    title = "Anchor conflicts with the credential's history"
    http_status = 409


def credential_digest(credential: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the credential's canonical bytes (proof included): what anchors name."""
    return hashlib.sha256(canonicalize(dict(credential))).hexdigest()


def document_digest(document: Mapping[str, Any]) -> str:
    """Hex SHA-256 of an anchor document (with its proof): what "the same anchor" means."""
    return hashlib.sha256(canonicalize(dict(document))).hexdigest()


# --- building -------------------------------------------------------------------------------


def _types(credential: Mapping[str, Any]) -> list[str]:
    value = credential.get("type")
    items = value if isinstance(value, list) else [value]
    return [t for t in items if isinstance(t, str)]


def _status_json(entry: StatusEntry) -> dict[str, str]:
    return {
        "statusPurpose": entry.status_purpose,
        "statusListIndex": str(entry.status_list_index),
        "statusListCredential": entry.status_list_credential,
    }


def build_anchor(
    credential: Mapping[str, Any], action: str = ISSUANCE, *, reason: str | None = None,
    digest: str | None = None,
) -> dict[str, Any]:
    """The unsigned anchor of `action` on a (signed) credential: digest, id, types, status
    entries (for a status change, only those of the purpose concerned). `digest` is the
    credential's `credential_digest` when the caller has just computed it (bulk issuance
    hashes each credential once). Raises AnchorFormatError for a credential without id or
    issuer, or an unknown action."""
    if action not in ACTIONS:
        raise AnchorFormatError(f"anchor action must be one of {', '.join(ACTIONS)}")
    cred_id = credential.get("id")
    issuer = issuer_id(dict(credential))
    if not isinstance(cred_id, str) or not cred_id:
        raise AnchorFormatError("only a credential with an id can be anchored")
    if issuer is None or not issuer.startswith("did:"):
        raise AnchorFormatError("an anchored credential's issuer must be a DID")
    entries = status_entries(credential)
    if action != ISSUANCE:
        entries = [e for e in entries if e.status_purpose == ACTION_PURPOSE[action]]
    anchor: dict[str, Any] = {
        # A fresh id: two suspensions of one credential are two anchors, not a replay.
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ANCHOR_TYPE,
        "action": action,
        "credentialId": cred_id,
        "credentialDigest": digest or credential_digest(credential),
        "credentialType": _types(credential),
        "issuer": issuer,
        "status": [_status_json(e) for e in entries],
    }
    if reason is not None:
        anchor["reason"] = reason
    return anchor


def signing_method(issuer: str, key: Ed25519Key) -> str | None:
    """The verification method id `key` signs with as `issuer` (None: the did:key default)."""
    if issuer.startswith(DID_KEY_PREFIX):
        return None
    return f"{issuer}#{key.public_multibase}"


def sign_anchor(anchor: dict[str, Any], key: Ed25519Key, *, created: str | None = None
                ) -> dict[str, Any]:
    """Sign an anchor as its issuer (eddsa-jcs-2022)."""
    return sign(anchor, key, verification_method=signing_method(anchor["issuer"], key),
                created=created)


def sign_canonical(document: dict[str, Any], key: Ed25519Key, *, verification_method: str,
                   created: str) -> tuple[dict[str, Any], bytes]:
    """`data_integrity.sign` of a document WITHOUT a proof (same proof, same signature: Ed25519
    is deterministic), and the signed document's RFC 8785 bytes, canonicalizing the document
    once: its bytes are hashed for the signature and then the proof member is spliced in
    (JCS writes members sorted by name, each as it would be written alone). Bulk issuance
    needs both for every credential and anchor."""
    unsecured = canonicalize(document)
    options: dict[str, Any] = {"type": DATA_INTEGRITY_PROOF, "cryptosuite": EDDSA_JCS_2022,
                               "created": created, "verificationMethod": verification_method,
                               "proofPurpose": "assertionMethod"}
    if "@context" in document:
        options["@context"] = document["@context"]
    signature = key.sign(jcs_hash_data(document, options, unsecured))
    proof = {**options, "proofValue": "z" + b58encode(signature)}
    signed = dict(document)
    signed["proof"] = proof
    return signed, with_proof_bytes(document, unsecured, proof)


# --- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """A parsed anchor document (its proof not yet checked)."""

    action: str
    credential_id: str
    credential_digest: str
    credential_types: tuple[str, ...]
    issuer: str
    status: tuple[StatusEntry, ...]

    @classmethod
    def parse(cls, document: Any) -> Anchor:
        """Parse strictly; raises AnchorFormatError naming the field."""
        if not isinstance(document, Mapping):
            raise AnchorFormatError("an anchor must be a JSON object")
        extra = sorted(set(document) - _FIELDS)
        if extra:
            raise AnchorFormatError(f"an anchor holds no content; unexpected: {', '.join(extra)}")
        if document.get("type") != ANCHOR_TYPE:
            raise AnchorFormatError(f"anchor type must be {ANCHOR_TYPE}")
        action = document.get("action")
        if action not in ACTIONS:
            raise AnchorFormatError(f"anchor action must be one of {', '.join(ACTIONS)}")
        cred_id, issuer = document.get("credentialId"), document.get("issuer")
        if not isinstance(cred_id, str) or not cred_id:
            raise AnchorFormatError("credentialId must be a non-empty string")
        if not isinstance(issuer, str) or not issuer.startswith("did:"):
            raise AnchorFormatError("issuer must be a DID")
        digest = document.get("credentialDigest")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise AnchorFormatError("credentialDigest must be 64 lowercase hex digits")
        types = document.get("credentialType")
        if not isinstance(types, list) or not types or not all(
            isinstance(t, str) and t for t in types
        ):
            raise AnchorFormatError("credentialType must be a non-empty list of strings")
        status = document.get("status", [])
        if not isinstance(status, list):
            raise AnchorFormatError("status must be a list of status entries")
        try:
            entries = tuple(
                StatusEntry.from_json({"type": "BitstringStatusListEntry", **item})
                for item in status
            )
        except (TypeError, VerificationError) as exc:
            raise AnchorFormatError(f"status: {exc}") from None
        if action != ISSUANCE and any(e.status_purpose != ACTION_PURPOSE[action]
                                      for e in entries):
            raise AnchorFormatError(f"a {action} anchor names {ACTION_PURPOSE[action]} entries")
        return cls(action, cred_id, digest, tuple(types), issuer, entries)


# --- state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorRecord:
    """What the log says about one credential: issued at a position, and every status change
    since, as (position, action) in log order."""

    credential_id: str
    issuer: str
    digest: str
    types: tuple[str, ...]
    issued_at: int
    status: tuple[tuple[str, int, str], ...] = ()  # (purpose, index, list URL)
    history: tuple[tuple[int, str], ...] = ()

    def revoked_at(self, position: int | None = None) -> int | None:
        """The position of the revocation at or before `position` (default: ever), or None."""
        for seq, action in self.history:
            if action == REVOCATION and (position is None or seq <= position):
                return seq
        return None

    def suspended_at(self, position: int | None = None) -> int | None:
        """The position of the suspension in force at `position` (default: now), or None."""
        current = None
        for seq, action in self.history:
            if position is not None and seq > position:
                break
            if action == SUSPENSION:
                current = seq
            elif action == REINSTATEMENT:
                current = None
        return current

    def issued_by(self, position: int | None) -> bool:
        return position is None or self.issued_at <= position

    def to_json(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies every leaf, a third of an anchor's
        # bookkeeping in bulk issuance (every field here is immutable already).
        return {"credential_id": self.credential_id, "issuer": self.issuer,
                "digest": self.digest, "types": self.types, "issued_at": self.issued_at,
                "status": self.status, "history": self.history}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AnchorRecord:
        return cls(
            credential_id=data["credential_id"], issuer=data["issuer"], digest=data["digest"],
            types=tuple(data["types"]), issued_at=data["issued_at"],
            status=tuple(tuple(s) for s in data["status"]),  # type: ignore[misc]
            history=tuple(tuple(h) for h in data["history"]),  # type: ignore[misc]
        )


class AnchorBook(Tables):
    """Anchor records by credential id, and anchor documents seen (by digest -> position)."""

    table_names = ("record", "document")

    def record(self, credential_id: str) -> AnchorRecord | None:
        return self.get("record", credential_id)


class IssuerResolver:
    """Keys an issuer may sign anchors with at a log position: a registered participant's keys
    valid there, or a did:key. (did:web issuers outside the registry cannot anchor: the
    ledger resolves nothing over the network.)"""

    def __init__(self, registry: Registry, position: int) -> None:
        self.registry = registry
        self.position = position
        self._did_key = OfflineResolver()

    def resolve_verification_method(self, vm_id: str, relationship: str) -> VerificationMethod:
        did = vm_id.split("#", 1)[0]
        if did.startswith(DID_KEY_PREFIX):
            return self._did_key.resolve_verification_method(vm_id, relationship)
        if not self.registry.is_participant(did):
            raise VerificationMethodError(f"{did} is neither a registered participant nor a "
                                          "did:key", did=did)
        return RegistryResolver(self.registry, self.position).resolve_verification_method(
            vm_id, relationship
        )


def check_anchor_signature(registry: Registry, document: dict[str, Any], anchor: Anchor,
                           position: int, *, signed_here_by: bytes | None = None) -> None:
    """Every proof verifies with keys valid at `position`, and one is by the issuer.

    `signed_here_by`: the public key this process signed this exact document with (see
    `data_integrity.verify_proofs`); everything but that signature's arithmetic is checked."""
    try:
        results = verify_proofs(document, IssuerResolver(registry, position),
                                signed_here_by=signed_here_by)
    except VerificationError as exc:
        raise AnchorSignerError(f"anchor of {anchor.credential_id}: {exc.message}",
                                code_cause=exc.code) from exc
    if not controlled_by(anchor.issuer, results):
        raise AnchorSignerError(
            f"anchor of {anchor.credential_id} is not signed by its issuer {anchor.issuer}"
        )


def apply_anchor(book: AnchorBook, anchor: Anchor, position: int, sha: str) -> None:
    """Apply a parsed anchor whose signature was checked; raises AnchorStateError."""
    record = book.record(anchor.credential_id)
    where = {"credential": anchor.credential_id, "seq": position}
    if anchor.action == ISSUANCE:
        if record is not None:
            raise AnchorStateError(
                f"{anchor.credential_id} was already issued at position {record.issued_at}",
                **where)
        record = AnchorRecord(
            anchor.credential_id, anchor.issuer, anchor.credential_digest,
            anchor.credential_types, position,
            tuple((e.status_purpose, e.status_list_index, e.status_list_credential)
                  for e in anchor.status),
            ((position, ISSUANCE),),
        )
    else:
        if record is None:
            raise AnchorStateError(f"{anchor.credential_id} has no issuance anchor", **where)
        if record.issuer != anchor.issuer:
            raise AnchorStateError(f"only the issuer {record.issuer} may anchor a "
                                   f"{anchor.action} of {anchor.credential_id}", **where)
        if record.digest != anchor.credential_digest:
            raise AnchorStateError(f"the anchor names another version of {anchor.credential_id}",
                                   **where)
        if record.revoked_at() is not None:
            raise AnchorStateError(f"{anchor.credential_id} is revoked (irreversible)", **where)
        suspended = record.suspended_at() is not None
        if anchor.action == SUSPENSION and suspended:
            raise AnchorStateError(f"{anchor.credential_id} is already suspended", **where)
        if anchor.action == REINSTATEMENT and not suspended:
            raise AnchorStateError(f"{anchor.credential_id} is not suspended", **where)
        record = replace(record, history=(*record.history, (position, anchor.action)))
    book.put("record", anchor.credential_id, record)
    book.put("document", sha, position)


def check_anchor(registry: Registry, book: AnchorBook, document: dict[str, Any],
                 position: int, *, sha: str | None = None,
                 signed_here_by: bytes | None = None) -> tuple[Anchor, int | None]:
    """Parse, dedupe, verify and apply one anchor document at `position`. Returns the parsed
    anchor and None (applied) or the position of the identical anchor already in the log.
    `sha` is the document's `document_digest` when the caller has it; `signed_here_by` as in
    `check_anchor_signature`."""
    anchor = Anchor.parse(document)
    sha = sha or document_digest(document)
    seen = book.get("document", sha)
    if seen is not None:
        return anchor, seen
    check_anchor_signature(registry, document, anchor, position, signed_here_by=signed_here_by)
    with book.transaction():
        apply_anchor(book, anchor, position, sha)
    return anchor, None


def replay_anchors(
    entries: Iterable[tuple[int, str, dict[str, Any]]], registry: Registry,
    book: AnchorBook | None = None,
) -> AnchorBook:
    """Apply the anchor entries of (seq, kind, document) in log order, in memory (the registry
    must hold the registry entries up to each anchor: replay them first or interleave)."""
    book = book or AnchorBook()
    for seq, kind, document in entries:
        if kind == ANCHOR_KIND:
            try:
                check_anchor(registry, book, document, seq)
            except VerificationError as exc:
                exc.details.setdefault("seq", seq)
                raise
    return book


# --- storage (the validator) ----------------------------------------------------------------

ANCHOR_TABLE = "credential_anchor"


@lru_cache(maxsize=1)
def _table() -> Any:
    """The `credential_anchor (tbl, key, value)` table: records by credential id and anchor
    documents by digest, as JSON."""
    from sqlalchemy import Column, MetaData, String, Table, Text

    return Table(
        ANCHOR_TABLE, MetaData(),
        Column("tbl", String(16), primary_key=True),
        Column("key", String(1024), primary_key=True),
        Column("value", Text, nullable=False),
    )


class StoredAnchorBook(AnchorBook):
    """An AnchorBook reading its rows lazily through a connection."""

    def __init__(self, connection: Any) -> None:
        super().__init__()
        self.connection = connection

    def _load(self, table: str, key: Any) -> Any:
        from sqlalchemy import select

        t = _table()
        text = self.connection.execute(
            select(t.c.value).where(t.c.tbl == table, t.c.key == key)
        ).scalar()
        if text is None:
            return None
        data = json.loads(text)
        return AnchorRecord.from_json(data) if table == "record" else data

    def prefetch(self, table: str, keys: Iterable[str]) -> None:
        """Load the rows of `keys` in one query (a batch reads them all anyway)."""
        from sqlalchemy import select

        t = _table()
        wanted = [k for k in set(keys) if k not in self.tables[table]]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = dict(self.connection.execute(
                select(t.c.key, t.c.value).where(t.c.tbl == table, t.c.key.in_(chunk))).all())
            for key in chunk:
                text = rows.get(key)
                data = None if text is None else json.loads(text)
                if data is not None and table == "record":
                    data = AnchorRecord.from_json(data)
                self.tables[table][key] = data

    def write(self) -> None:
        """Write back the rows changed since the book was opened."""
        from sqlalchemy import delete, insert

        changes = self.changed()
        if not changes:
            return
        t = _table()
        # Only rows that were stored before are deleted (a batch of issuances adds new rows
        # only): the journal's first entry for a key holds the value loaded from storage.
        stored: set[tuple[str, Any]] = set()
        seen: set[tuple[str, Any]] = set()
        for tbl, key, old in self.journal:
            if (tbl, key) not in seen:
                seen.add((tbl, key))
                if old is not None:
                    stored.add((tbl, key))
        for table in self.table_names:
            keys = [k for (tbl, k) in changes if tbl == table and (tbl, k) in stored]
            for start in range(0, len(keys), 500):
                self.connection.execute(delete(t).where(
                    t.c.tbl == table, t.c.key.in_(keys[start:start + 500])))
        rows = [
            {"tbl": tbl, "key": key, "value": json.dumps(
                value.to_json() if isinstance(value, AnchorRecord) else value)}
            for (tbl, key), value in changes.items() if value is not None
        ]
        if rows:
            self.connection.execute(insert(t), rows)


def open_book(connection: Any) -> StoredAnchorBook:
    """The stored anchor book (creating its table if needed)."""
    _table().create(connection, checkfirst=True)
    return StoredAnchorBook(connection)


class AnchorValidator:
    """Validator of "anchor" entries (see `ledger.log.Validator`).

    `on_applied(connection, [(anchor, document, position), ...])`, when set, runs once per batch
    with the new anchors, in the same transaction (the credential store writes credentials and
    status bits there, so a rejected batch writes nothing).

    `signed_here` holds the anchors that THIS process has just signed and hands over without
    letting go of them (the credential store fills it around its own appends): by `id()` of
    the document object, (that object, its `document_digest`, the public key that signed it).
    For such a document (the very object, not an equal one) the digest is not recomputed and
    the Ed25519 equation is not re-run, as it could only succeed. Everything else still is:
    the proof's shape, purpose and times, and that its method resolves, at the anchor's log
    position, to that very key of the issuer. Every other anchor is verified in full.

    `signed_bytes` holds, by the same `id()`, the canonical bytes of such a document when the
    signer computed them (its digest was taken from them): `canonical` hands them to the log
    so that the entry does not canonicalize the anchor again.
    """

    def __init__(self, admin_did: str, public_url: str, on_applied: Any = None) -> None:
        self.admin_did = admin_did
        self.public_url = public_url
        self.on_applied = on_applied
        self.signed_here: dict[int, tuple[dict[str, Any], str, bytes]] = {}
        self.signed_bytes: dict[int, bytes] = {}

    def canonical(self, document: dict[str, Any]) -> bytes | None:
        """The RFC 8785 bytes of an anchor signed here (see `ledger.log.Preparing`), else
        None. Only the very object handed over counts, as for `signed_here`."""
        mine = self.signed_here.get(id(document))
        if mine is None or mine[0] is not document:
            return None
        return self.signed_bytes.get(id(document))

    def validate(self, session: Any, first_seq: int, submissions: Sequence[Any]
                 ) -> list[int | None]:
        from .custody_store import StoredRegistry, ensure_schema

        connection = session.connection()
        ensure_schema(connection)
        registry = StoredRegistry(connection, self.admin_did, self.public_url)
        book = open_book(connection)
        documents = [sub.document for sub in submissions]
        # Each document is hashed once (or not at all when signed here), for the prefetch
        # and the dedupe.
        shas: list[str | None] = []
        keys: list[bytes | None] = []
        for d in documents:
            mine = self.signed_here.get(id(d))
            if mine is not None and mine[0] is d:
                shas.append(mine[1])
                keys.append(mine[2])
            else:
                shas.append(document_digest(d) if isinstance(d, dict) else None)
                keys.append(None)
        book.prefetch("document", [s for s in shas if s is not None])
        book.prefetch("record", [d.get("credentialId") for d in documents
                                 if isinstance(d, dict) and isinstance(d.get("credentialId"), str)])
        answers: list[int | None] = []
        applied: list[tuple[Anchor, dict[str, Any], int]] = []
        position = first_seq
        for document, sha, key in zip(documents, shas, keys, strict=True):
            anchor, seen = check_anchor(registry, book, document, position, sha=sha,
                                        signed_here_by=key)
            answers.append(seen)
            if seen is None:
                applied.append((anchor, document, position))
                position += 1  # a deduplicated anchor takes no position
        book.write()
        if self.on_applied is not None and applied:
            self.on_applied(connection, applied)
        return answers


def anchor_validators(ledger: Any, on_applied: Any = None) -> dict[str, AnchorValidator]:
    """{"anchor": AnchorValidator} for a ledger (add to `ledger.validators`)."""
    return {ANCHOR_KIND: AnchorValidator(ledger.admin_did, ledger.public_url, on_applied)}


def read_record(ledger: Any, credential_id: str) -> AnchorRecord | None:
    """The stored anchor record of a credential (None if never anchored)."""
    with ledger.storage.engine.begin() as connection:
        return open_book(connection).record(credential_id)


__all__ = [
    "ACTIONS",
    "ANCHOR_KIND",
    "ANCHOR_TYPE",
    "Anchor",
    "AnchorBook",
    "AnchorFormatError",
    "AnchorRecord",
    "AnchorSignerError",
    "AnchorStateError",
    "AnchorValidator",
    "anchor_validators",
    "apply_anchor",
    "build_anchor",
    "check_anchor",
    "credential_digest",
    "document_digest",
    "read_record",
    "replay_anchors",
    "sign_anchor",
    "sign_canonical",
    "signing_method",
]
