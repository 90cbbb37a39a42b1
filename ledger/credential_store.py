"""The credential store: credentials OFF the log, status lists, and their ledger anchors.

Credentials can be commercially sensitive, so the log only holds their anchors
(`ledger.anchors`); the documents live in `credential_record`, keyed by id, and
`credential_subject` indexes them by `credentialSubject.id` (a facility, lot, item or
participant URI). Publishing is atomic: the credential rows are written by the anchor
validator's hook inside the log's write transaction, so a rejected anchor stores nothing.

Status lists (Bitstring Status List v1.0) are kept per issuer and purpose (revocation and
suspension are separate lists) in `status_list`, with a second bitmap of the indexes already
allocated (an index is never handed out twice, even when the issuance that took it failed).
Indexes are random. A list is published as a signed BitstringStatusListCredential at
`<publicUrl>/status-lists/<issuer-name-or-hash>/<purpose>/<n>`; a revocation, suspension or
reinstatement anchor flips the bit in the same transaction and marks the list for republishing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import (
    format_date_time,
    parse_date_time,
    sign,
    verify_proofs,
)
from batterytrace.credentials.errors import (
    InputError,
    ProofGenerationError,
    VerificationMethodError,
)
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.credentials.status_list import (
    MIN_BITS,
    STATUS_PURPOSES,
    StatusEntry,
    StatusList,
    StatusRetrievalError,
    allocate_index,
    build_status_list_credential,
    status_entries,
)
from batterytrace.credentials.vc import check_credential, controlled_by, issuer_id
from sqlalchemy import func, insert, inspect, select, update
from sqlalchemy.engine import Connection

from .anchor_store import AnchorValidator
from .anchors import (
    ACTION_PURPOSE,
    ISSUANCE,
    REINSTATEMENT,
    REVOCATION,
    SUSPENSION,
    Anchor,
    AnchorFormatError,
    IssuerResolver,
    build_anchor,
    sign_anchor,
    sign_canonical,
    signing_method,
)
from .bundle_format import credential_subject_ids
from .custody_store import StoredRegistry, ensure_schema
from .log import AppendResult, Ledger, Submission
from .tables import CREDENTIAL_RECORD, CREDENTIAL_SUBJECT, CREDENTIAL_TABLES, STATUS_LIST
from .validators import validators_for


class CredentialNotFoundError(InputError):
    code = "CREDENTIAL_NOT_FOUND"
    title = "Credential not in the store"
    http_status = 404


class StatusListNotFoundError(StatusRetrievalError):
    """No status list with that URL is kept by this ledger (or it was never published)."""

    code = "STATUS_LIST_NOT_FOUND"
    title = "Status list not found"


class IssuerKeyError(InputError):
    """The key given does not belong to the issuer named."""

    code = "ISSUER_KEY_ERROR"
    title = "Key is not the issuer's"


# --- tables ---------------------------------------------------------------------------------


def ensure_tables(connection: Connection) -> None:
    for table in CREDENTIAL_TABLES:
        table.create(connection, checkfirst=True)


class _Allocated(Collection[int]):
    """The allocated-index bitmap as the collection `allocate_index` reads."""

    def __init__(self, bits: StatusList, count: int) -> None:
        self.bits, self.count = bits, count

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and self.bits.get(index)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[int]:
        return iter(self.bits.set_indexes())


@dataclass(frozen=True)
class _Pending:
    """A credential waiting for its anchor: whether to verify its proof in the hook, and its
    canonical bytes (hashed for the anchor's digest, stored as the body)."""

    credential: dict[str, Any]
    verify: bool
    body: bytes


def _now() -> str:
    return format_date_time(datetime.now(UTC))


# --- the store ------------------------------------------------------------------------------


class CredentialStore:
    """Credentials, status lists and anchors of one opened `Ledger`.

    Installs the custody validators and an anchor validator whose hook writes credentials and
    status bits; use one store per ledger object.
    """

    @classmethod
    def stored_reader(cls, ledger: Ledger) -> CredentialStore | None:
        """`reader`, or None when the ledger's database has no credential tables (no store
        was ever opened on it)."""
        if not inspect(ledger.storage.engine).has_table(CREDENTIAL_RECORD.name):
            return None
        return cls.reader(ledger)

    @classmethod
    def reader(cls, ledger: Ledger) -> CredentialStore:
        """A store that only reads (finding credentials, anchors, status lists): unlike the
        constructor it installs no validators on `ledger` and writes no schema, so a service
        can read through it while the ledger it shares keeps its own validators."""
        store = cls.__new__(cls)
        store.ledger = ledger
        store._pending = {}
        return store

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._pending: dict[str, _Pending] = {}
        ledger.validators.update(validators_for(ledger))
        ledger.validators["anchor"] = AnchorValidator(
            ledger.admin_did, ledger.public_url, on_applied=self._on_applied,
            seal=ledger.row_seal,
        )
        with ledger.storage.engine.begin() as connection:
            ensure_schema(connection)  # the registry rows the issuer checks read
            ensure_tables(connection)

    # --- publishing -------------------------------------------------------------------------

    def publish(self, credential: dict[str, Any], anchor: dict[str, Any]) -> AppendResult:
        """Store a signed credential and append its signed issuance anchor, atomically.

        The credential must be well formed, name the anchor's digest, and carry a proof by its
        issuer valid at the anchor's log position. Raises (writing nothing) otherwise."""
        return self.publish_many([(credential, anchor)])[0]

    def publish_many(
        self, items: Sequence[tuple[dict[str, Any], dict[str, Any]]], *, verify: bool = True
    ) -> list[AppendResult]:
        """Publish several (credential, anchor) pairs in one log batch (all or nothing).
        `verify=False` skips re-checking credential proofs (for credentials just signed)."""
        pending: dict[str, _Pending] = {}
        for credential, anchor in items:
            if not isinstance(credential, dict):
                raise InputError("a credential must be a JSON object")
            check_credential(credential)
            body = canonicalize(credential)
            digest = hashlib.sha256(body).hexdigest()
            parsed = Anchor.parse(anchor)
            if parsed.action != ISSUANCE or parsed.credential_digest != digest:
                raise AnchorFormatError("the anchor is not the issuance anchor of this credential")
            if parsed.credential_id != credential.get("id"):
                raise AnchorFormatError("the anchor names another credential id")
            pending[digest] = _Pending(credential, verify, body)
        return self._append(pending, [a for _, a in items])

    def _append(self, pending: dict[str, _Pending], anchors: list[dict[str, Any]],
                signed_here: dict[int, tuple[dict[str, Any], str, bytes]] | None = None,
                signed_bytes: dict[int, bytes] | None = None,
                ) -> list[AppendResult]:
        """Append the anchors as one log batch, the hook storing the `pending` credentials
        (by digest); `signed_here` and `signed_bytes` as in `AnchorValidator`."""
        validator = cast(AnchorValidator, self.ledger.validators["anchor"])  # set in __init__
        self._pending = pending
        validator.signed_here = signed_here or {}
        validator.signed_bytes = signed_bytes or {}
        try:
            return self.ledger.append([Submission("anchor", a) for a in anchors])
        finally:
            self._pending = {}
            validator.signed_here = {}
            validator.signed_bytes = {}

    def issue(
        self, credential: dict[str, Any], key: Ed25519Key, *,
        purposes: Sequence[str] = ("revocation", "suspension"), created: str | None = None,
    ) -> tuple[dict[str, Any], AppendResult]:
        """Allocate status entries, sign the credential and its anchor as the issuer, publish.
        Returns the signed credential and where its anchor landed."""
        [(signed, result)] = self.issue_many([credential], key, purposes=purposes,
                                             created=created)
        return signed, result

    def issue_many(
        self, credentials: Sequence[dict[str, Any]], key: Ed25519Key, *,
        purposes: Sequence[str] = ("revocation", "suspension"), created: str | None = None,
        publish_status: bool = False,
    ) -> list[tuple[dict[str, Any], AppendResult]]:
        """`issue` for many credentials of ONE issuer: one allocation transaction, one log
        batch (the anchors are appended together), all or nothing. With `publish_status`,
        the status lists the batch allocated from are then published once each (a list
        still unpublished cannot be checked by anyone).

        Each credential is checked (`check_credential`) before it is signed, and
        canonicalized and hashed once: those bytes give the anchor's digest and the stored
        body. The ledger does not re-verify the anchors signed here (see `AnchorValidator`);
        it still checks that the key is the issuer's, valid at the anchors' position."""
        if not credentials:
            return []
        issuer = issuer_id(credentials[0])
        if issuer is None or any(issuer_id(c) != issuer for c in credentials):
            raise InputError("issue_many takes credentials of one issuer (a DID)")
        self._check_key(issuer, key)
        if key.seed is None:
            raise ProofGenerationError("the key has no secret part and cannot sign")
        created = created or _now()
        try:
            parse_date_time(created)
        except ValueError as exc:
            raise ProofGenerationError(f"created: {exc}") from None
        # Checked before allocating: a rejected batch uses no status index.
        entries = self._allocate_purposes(issuer, purposes, len(credentials))
        # Every proof of the batch (credential and anchor) names the same method.
        method = signing_method(issuer, key) or key.verification_method
        signed_credentials, anchors = [], []
        pending: dict[str, _Pending] = {}
        signed_here: dict[int, tuple[dict[str, Any], str, bytes]] = {}
        signed_bytes: dict[int, bytes] = {}
        for i, credential in enumerate(credentials):
            doc = dict(credential)
            status = [entries[p][i].to_json() for p in purposes]
            if status:
                doc["credentialStatus"] = status if len(status) > 1 else status[0]
            check_credential(doc)  # the proof is not looked at: check before signing
            if "proof" in doc:  # a proof set: the general signer
                signed = sign(doc, key, verification_method=method, created=created)
                body = canonicalize(signed)
            else:
                signed, body = sign_canonical(doc, key, verification_method=method,
                                              created=created)
            digest = hashlib.sha256(body).hexdigest()
            anchor, anchor_bytes = sign_canonical(build_anchor(signed, digest=digest), key,
                                                  verification_method=method, created=created)
            signed_here[id(anchor)] = (anchor, hashlib.sha256(anchor_bytes).hexdigest(),
                                       key.public_key)
            signed_bytes[id(anchor)] = anchor_bytes
            pending[digest] = _Pending(signed, False, body)
            signed_credentials.append(signed)
            anchors.append(anchor)
        results = self._append(pending, anchors, signed_here, signed_bytes)
        if publish_status:
            for url in sorted({e.status_list_credential for p in purposes for e in entries[p]}):
                self.publish_status_list(url, key)
        return list(zip(signed_credentials, results, strict=True))

    def change_status(self, credential_id: str, action: str, key: Ed25519Key, *,
                      reason: str | None = None, republish: bool = True) -> dict[str, Any]:
        """Append a revocation, suspension or reinstatement anchor signed by `key` (the
        issuer's), flip the status bits, and (by default) republish the lists concerned."""
        if action not in (REVOCATION, SUSPENSION, REINSTATEMENT):
            raise InputError("status action must be revocation, suspension or reinstatement")
        credential = self.get(credential_id)
        anchor = sign_anchor(build_anchor(credential, action, reason=reason), key)
        [result] = self.ledger.append([Submission("anchor", anchor)])
        lists = sorted({e["statusListCredential"] for e in anchor["status"]})
        if republish and not result.duplicate:
            for url in lists:
                if self._list_row(url) is not None:
                    self.publish_status_list(url, key)
        return {"credentialId": credential_id, "action": action, "seq": result.seq,
                "duplicate": result.duplicate, "statusLists": lists}

    def _check_key(self, issuer: str, key: Ed25519Key) -> None:
        if issuer.startswith("did:key:"):
            if key.did_key != issuer:
                raise IssuerKeyError(f"the key is {key.did_key}, not the issuer {issuer}")
            return
        with self.ledger.storage.engine.begin() as connection:
            registry = StoredRegistry(connection, self.ledger.admin_did, self.ledger.public_url,
                                      self.ledger.row_seal)
            record = registry.key(f"{issuer}#{key.public_multibase}")
        if record is None or record.valid_until is not None:
            raise IssuerKeyError(f"the key is not a current key of {issuer}")

    # --- the anchor hook (inside the write transaction) -------------------------------------

    def _on_applied(self, connection: Connection,
                    applied: list[tuple[Anchor, dict[str, Any], int]]) -> None:
        credentials: list[dict[str, Any]] = []
        subjects: list[dict[str, str]] = []
        for anchor, _document, position in applied:
            if anchor.action != ISSUANCE:
                value = anchor.action != REINSTATEMENT
                for entry in anchor.status:
                    if entry.status_purpose == ACTION_PURPOSE[anchor.action]:
                        self._set_bit(connection, entry, value)
                continue
            pending = self._pending.get(anchor.credential_digest)
            if pending is None:
                continue  # an anchor appended without its credential: nothing to store
            credential = pending.credential
            if pending.verify:
                self._check_credential_proof(connection, credential, position)
            credentials.append({
                "id": anchor.credential_id, "issuer": anchor.issuer,
                "types": json.dumps(list(anchor.credential_types)),
                "digest": anchor.credential_digest, "anchored_at": position,
                "body": pending.body.decode("utf-8"),
            })
            subjects.extend({"subject_id": s, "credential_id": anchor.credential_id}
                            for s in credential_subject_ids(credential))
        if credentials:
            connection.execute(insert(CREDENTIAL_RECORD), credentials)
        if subjects:
            connection.execute(insert(CREDENTIAL_SUBJECT), subjects)

    def _check_credential_proof(self, connection: Connection, credential: dict[str, Any],
                                position: int) -> None:
        registry = StoredRegistry(connection, self.ledger.admin_did, self.ledger.public_url,
                                      self.ledger.row_seal)
        issuer = issuer_id(credential) or ""
        results = verify_proofs(credential, IssuerResolver(registry, position))
        if not controlled_by(issuer, results):
            raise VerificationMethodError(f"the credential carries no proof by its issuer "
                                          f"{issuer}")

    def _set_bit(self, connection: Connection, entry: StatusEntry, value: bool) -> None:
        t = STATUS_LIST
        row = connection.execute(
            select(t.c.bits, t.c.length, t.c.purpose).where(t.c.url == entry.status_list_credential)
        ).first()
        if row is None or row.purpose != entry.status_purpose:
            return  # a list kept elsewhere: its issuer updates it
        bits = StatusList(row.length, data=row.bits)
        bits.set(entry.status_list_index, value)
        connection.execute(update(t).where(t.c.url == entry.status_list_credential)
                           .values(bits=bits.to_bytes(), stale=1))

    # --- status lists -----------------------------------------------------------------------

    def _issuer_slug(self, connection: Connection, issuer: str) -> str:
        registry = StoredRegistry(connection, self.ledger.admin_did, self.ledger.public_url,
                                      self.ledger.row_seal)
        if registry.is_participant(issuer):
            return registry.participant(issuer).name
        return hashlib.sha256(issuer.encode("utf-8")).hexdigest()[:16]

    def create_status_list(self, issuer: str, purpose: str, length: int = MIN_BITS) -> str:
        """A new empty list of `purpose` for `issuer`; returns its URL."""
        with self.ledger.storage.engine.begin() as connection:
            return self._create_list(connection, issuer, purpose, length)

    def _create_list(self, connection: Connection, issuer: str, purpose: str, length: int) -> str:
        if purpose not in STATUS_PURPOSES:
            raise InputError(f"status purpose must be one of {', '.join(sorted(STATUS_PURPOSES))}")
        if not isinstance(issuer, str) or not issuer.startswith("did:"):
            raise InputError("a status list issuer is a DID")
        empty = StatusList(length).to_bytes()
        t = STATUS_LIST
        number = connection.execute(
            select(func.count()).select_from(t).where(t.c.issuer == issuer,
                                                     t.c.purpose == purpose)
        ).scalar_one()
        base = self.ledger.public_url.rstrip("/")
        url = f"{base}/status-lists/{self._issuer_slug(connection, issuer)}/{purpose}/{number}"
        connection.execute(insert(t), [{
            "url": url, "issuer": issuer, "purpose": purpose, "number": number,
            "length": length, "bits": empty, "allocated": empty, "allocated_count": 0,
            "published": None, "stale": 1,
        }])
        return url

    def allocate(self, issuer: str, purpose: str, count: int = 1) -> list[StatusEntry]:
        """`count` fresh random indexes of `issuer`'s current `purpose` list (a new list is
        started when it is full), committed before use so they are never handed out twice."""
        return self._allocate_purposes(issuer, [purpose], count)[purpose]

    def _allocate_purposes(self, issuer: str, purposes: Sequence[str], count: int
                           ) -> dict[str, list[StatusEntry]]:
        """`allocate` for several purposes in one transaction."""
        with self.ledger.storage.engine.begin() as connection:
            return {p: self._allocate(connection, issuer, p, count) for p in purposes}

    def _allocate(self, connection: Connection, issuer: str, purpose: str, count: int
                  ) -> list[StatusEntry]:
        t = STATUS_LIST
        entries: list[StatusEntry] = []
        while len(entries) < count:
            row = connection.execute(
                select(t).where(t.c.issuer == issuer, t.c.purpose == purpose)
                .order_by(t.c.number.desc()).limit(1)
            ).first()
            if row is None or row.allocated_count >= row.length // 2:
                # Half full is full: random allocation stays O(1) and an index keeps
                # telling little about who holds it.
                self._create_list(connection, issuer, purpose, MIN_BITS)
                continue
            taken = StatusList(row.length, data=row.allocated)
            allocated = _Allocated(taken, row.allocated_count)
            room = min(count - len(entries), row.length // 2 - row.allocated_count)
            for _ in range(room):
                index = allocate_index(row.length, allocated)
                taken.set(index)
                allocated.count += 1
                entries.append(StatusEntry(purpose, index, row.url))
            connection.execute(update(t).where(t.c.url == row.url).values(
                allocated=taken.to_bytes(), allocated_count=allocated.count))
        return entries

    def publish_status_list(self, url: str, key: Ed25519Key, *,
                            valid_until: str | None = None) -> dict[str, Any]:
        """Sign the list's current bits as a BitstringStatusListCredential and keep it as the
        published version (what `status_list_credential` serves)."""
        row = self._list_row(url)
        if row is None:
            raise StatusListNotFoundError(f"no status list {url}", url=url)
        self._check_key(row.issuer, key)
        unsigned = build_status_list_credential(
            list_url=url, issuer=row.issuer, purpose=row.purpose,
            status_list=StatusList(row.length, data=row.bits),
            valid_from=_now(), valid_until=valid_until,
        )
        signed = sign(unsigned, key, verification_method=signing_method(row.issuer, key))
        t = STATUS_LIST
        with self.ledger.storage.engine.begin() as connection:
            connection.execute(update(t).where(t.c.url == url).values(
                published=json.dumps(signed), stale=0))
        return signed

    def status_list_credential(self, url: str) -> dict[str, Any]:
        """The published list credential at `url` (StatusListNotFoundError if none)."""
        row = self._list_row(url)
        if row is None or row.published is None:
            raise StatusListNotFoundError(f"status list {url} is not published", url=url)
        return json.loads(row.published)

    def status_lists(self, issuer: str | None = None) -> list[dict[str, Any]]:
        """The lists kept here: url, issuer, purpose, length, allocated, set bits, stale."""
        t = STATUS_LIST
        query = select(t).order_by(t.c.issuer, t.c.purpose, t.c.number)
        if issuer is not None:
            query = query.where(t.c.issuer == issuer)
        with self.ledger.storage.engine.begin() as connection:
            rows = connection.execute(query).all()
        return [{
            "url": r.url, "issuer": r.issuer, "purpose": r.purpose, "length": r.length,
            "allocated": r.allocated_count,
            "set": len(StatusList(r.length, data=r.bits).set_indexes()),
            "published": r.published is not None, "stale": bool(r.stale),
        } for r in rows]

    def _list_row(self, url: str) -> Any:
        t = STATUS_LIST
        with self.ledger.storage.engine.begin() as connection:
            return connection.execute(select(t).where(t.c.url == url)).first()

    # --- reading ----------------------------------------------------------------------------

    def get(self, credential_id: str) -> dict[str, Any]:
        """The stored credential (CredentialNotFoundError if absent)."""
        t = CREDENTIAL_RECORD
        with self.ledger.storage.engine.begin() as connection:
            body = connection.execute(select(t.c.body).where(t.c.id == credential_id)).scalar()
        if body is None:
            raise CredentialNotFoundError(f"no credential {credential_id} in the store",
                                          id=credential_id)
        return json.loads(body)

    def record(self, credential_id: str) -> dict[str, Any]:
        """Where the credential was anchored, its digest and type (without the document)."""
        t = CREDENTIAL_RECORD
        with self.ledger.storage.engine.begin() as connection:
            row = connection.execute(
                select(t.c.id, t.c.issuer, t.c.types, t.c.digest, t.c.anchored_at)
                .where(t.c.id == credential_id)).first()
        if row is None:
            raise CredentialNotFoundError(f"no credential {credential_id} in the store")
        return {"id": row.id, "issuer": row.issuer, "type": json.loads(row.types),
                "digest": row.digest, "anchoredAt": row.anchored_at}

    def find(self, subject: str) -> list[dict[str, Any]]:
        """The stored credentials about `subject` (a credentialSubject.id), in anchor order."""
        record, subjects = CREDENTIAL_RECORD, CREDENTIAL_SUBJECT
        query = (select(record.c.body)
                 .join(subjects, subjects.c.credential_id == record.c.id)
                 .where(subjects.c.subject_id == subject)
                 .order_by(record.c.anchored_at))
        with self.ledger.storage.engine.begin() as connection:
            return [json.loads(b) for b in connection.execute(query).scalars()]

    def lists_for(self, credential: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """The published list credentials the credential's status entries point to (those this
        ledger keeps and has published)."""
        found = {}
        for entry in status_entries(credential):
            try:
                found[entry.status_list_credential] = self.status_list_credential(
                    entry.status_list_credential)
            except StatusListNotFoundError:
                continue
        return found


__all__ = [
    "CredentialNotFoundError",
    "CredentialStore",
    "IssuerKeyError",
    "StatusListNotFoundError",
    "ensure_tables",
]
