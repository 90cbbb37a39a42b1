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

This module is pure (no storage library): the engine and the verifier use it. The stored
anchor book and the "anchor" validator are in `anchor_store`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from batterytrace.credentials.base58 import b58encode
from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import (
    DATA_INTEGRITY_PROOF,
    EDDSA_JCS_2022,
    jcs_hash_data,
    sign,
    verify_proofs,
)
from batterytrace.credentials.did import DID_KEY_PREFIX, OfflineResolver, VerificationMethod
from batterytrace.credentials.errors import InputError, VerificationError, VerificationMethodError
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.credentials.secured_bytes import with_proof_bytes
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
            status=tuple(tuple(s) for s in data["status"]),
            history=tuple(tuple(h) for h in data["history"]),
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
    "apply_anchor",
    "build_anchor",
    "check_anchor",
    "credential_digest",
    "document_digest",
    "replay_anchors",
    "sign_anchor",
    "sign_canonical",
    "signing_method",
]
