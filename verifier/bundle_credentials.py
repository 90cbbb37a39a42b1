"""The credentials of a bundle, judged at the log position of the entry relying on them.

Proof, structure and schema, validity at that entry's `received` time, anchor digest, status
(lists and anchors at that position), and, when the trust file names governance roots, an
accreditation path to one of them. `default_credential_check` is the decision; a caller may
hand another (`CredentialCheck`) to `verify_bundle`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batterytrace.credentials.data_integrity import parse_date_time, verify_proofs
from batterytrace.credentials.errors import (
    BatterytraceError,
    VerificationMethodError,
)
from batterytrace.credentials.vc import controlled_by, issuer_id
from batterytrace.ledger.anchors import AnchorBook, AnchorRecord, IssuerResolver
from batterytrace.ledger.bundle_format import (
    CREDENTIAL,
    DID_DOCUMENT,
    REDACTED,
    STATUS_LIST,
    credential_subject_ids,
)
from batterytrace.ledger.registry import Registry

from .accreditation import ACCREDITATION_TYPE, Accreditation
from .bundle import (
    Record,
)
from .bundle_replay import BundleReplay
from .credential_check import TrustResolver, check_credential
from .errors import (
    BundleIncompleteError,
    CredentialAnchorError,
    CredentialRevokedError,
    CredentialSubjectMismatchError,
    CredentialSuspendedError,
)
from .report import REVOKED, SUSPENDED, VALID, CredentialStanding
from .trust import TrustConfig


@dataclass(frozen=True)
class CredentialContext:
    """What the log says about a credential's use: the first entry about its subject."""

    position: int
    at: datetime
    registry: Registry
    anchors: AnchorBook
    trust: TrustConfig
    status_lists: Mapping[str, Mapping[str, Any]]
    did_documents: Mapping[str, Mapping[str, Any]]
    accreditations: tuple[Mapping[str, Any], ...]
    notes: list[str] = field(default_factory=list)  # warnings for the report
    anchor_times: Mapping[int, datetime] = field(default_factory=dict)  # anchor seq -> received


CredentialCheck = Callable[[Mapping[str, Any], CredentialContext], list[str]]


# --- credentials --------------------------------------------------------------------------


class _AnchorRecords(Mapping[str, AnchorRecord]):
    """The replayed anchor book as the mapping `check_credential` reads (by credential id)."""

    def __init__(self, book: AnchorBook) -> None:
        self.book = book

    def __getitem__(self, key: str) -> AnchorRecord:
        record = self.book.record(key)
        if record is None:
            raise KeyError(key)
        return record

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self.book.rows("record"))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _documents_for(issuer: str, ctx: CredentialContext) -> list[Mapping[str, Any]]:
    """The bundle's DID documents that may count: the issuer's (its pin is then checked) and
    those the trust file pins (accreditors outside the ledger)."""
    return [doc for did, doc in ctx.did_documents.items()
            if did == issuer or ctx.trust.pinned(str(did)) is not None]


def default_credential_check(credential: Mapping[str, Any], ctx: CredentialContext) -> list[str]:
    """The full credential decision of `verifier.credential_check` judged at the relying
    entry's position: proof, structure and schema, validity at its `received` time, anchor
    digest, status (lists and anchors at that position), and, when the trust file names
    governance roots, an accreditation path to one of them (required). Warnings go to
    `ctx.notes`. Returns the checks made; raises the first failure."""
    doc = dict(credential)
    issuer = issuer_id(doc) or ""
    base = IssuerResolver(ctx.registry, ctx.position)
    documents = _documents_for(issuer, ctx)
    if ACCREDITATION_TYPE in (doc.get("type") or []):
        return _check_accreditation(doc, ctx, base, documents)
    result = check_credential(
        doc, base, trust=ctx.trust, accreditations=ctx.accreditations,
        status_lists=ctx.status_lists, did_documents=documents,
        anchors=_AnchorRecords(ctx.anchors), at=ctx.at, position=ctx.position,
        require_trust=bool(ctx.trust.governance_roots), require_status=True,
        anchor_times=ctx.anchor_times,
    )
    ctx.notes.extend(result.warnings)
    return list(result.checks)


def _check_accreditation(doc: dict[str, Any], ctx: CredentialContext, base: Any,
                         documents: list[Mapping[str, Any]]) -> list[str]:
    """An accreditation alone: well formed and signed by its issuer. Its validity, scope and
    revocation are judged in the trust path of each credential relying on it, at that
    credential's position."""
    link = Accreditation.from_credential(doc)
    resolver = TrustResolver(ctx.trust, documents, base)
    if not controlled_by(link.issuer, verify_proofs(doc, resolver)):
        raise VerificationMethodError(f"accreditation {link.id} is not signed by {link.issuer}")
    return ["structure", "proof"]


def check_credentials(
    tail: list[Record], replay: BundleReplay, trust: TrustConfig, check: CredentialCheck,
    *, as_of_use: bool = False,
) -> None:
    """Judge every credential of the bundle (`check`, at the position of the first entry
    about its subject), then its standing at the bundle's checkpoint: revoked or suspended
    there fails the bundle, unless `as_of_use` asks for the point-in-time verdict (a note
    then). Every credential the bundle anchors must be in it (or redacted by digest)."""
    report = replay.report
    if replay.registry is None:
        return
    status_lists = {r.data["credential"].get("id"): r.data["credential"]
                    for r in tail if r.type == STATUS_LIST}
    did_documents = {r.data["document"].get("id"): r.data["document"]
                     for r in tail if r.type == DID_DOCUMENT}
    credentials = [r for r in tail if r.type == CREDENTIAL]
    accreditations = tuple(r.data["credential"] for r in credentials
                           if ACCREDITATION_TYPE in (r.data["credential"].get("type") or []))
    anchor_times = {seq: parse_date_time(received)
                    for seq, received in replay.anchor_received.items()}
    carried: set[str] = set(map(str, status_lists))
    for record in tail:
        if record.type == REDACTED:
            data = record.data
            carried.add(str(data["id"]))
            report.not_shown.append(f"{data['credentialType']} {data['id']} (digest "
                                    f"{data['digest']})")
            anchored = replay.anchors.record(str(data["id"]))
            if anchored is None or anchored.digest != data["digest"]:
                report.fail(f"credential {data['id']}", CredentialAnchorError(
                    "a redacted credential must match an anchor in the bundle"), record.line)
    for record in credentials:
        credential = record.data["credential"]
        carried.add(str(credential.get("id")))
        where = f"credential {credential.get('id')}"
        used_at: int | None = None
        try:
            subjects = credential_subject_ids(credential)
            uses = [use for s in subjects if (use := replay.first_use(s)) is not None]
            is_accreditation = credential in accreditations
            if not uses and not is_accreditation:
                raise CredentialSubjectMismatchError(
                    f"its subject {sorted(subjects)} is no facility, lot or item of the events")
            # An accreditation is judged with the events it vouches for; alone, at the end.
            seq, received = min(uses) if uses else (replay.last_seq, replay.last_received)
            used_at = seq if uses else None
            ctx = CredentialContext(
                position=seq, at=parse_date_time(received), registry=replay.registry,
                anchors=replay.anchors, trust=trust, status_lists=status_lists,
                did_documents=did_documents, accreditations=accreditations,
                anchor_times=anchor_times,
            )
            check(credential, ctx)
            report.notes.extend(f"{where}: {note}" for note in ctx.notes)
            report.credentials_verified += 1
        except BatterytraceError as error:
            report.fail(where, error, record.line)
        # An accreditation's end counts for what its holder issues after it (judged at
        # each credential's issuance), not against the credentials issued before it.
        _standing(credential, used_at, replay, record.line,
                  as_of_use or credential in accreditations)
    for credential_id, anchor in sorted(replay.anchors.rows("record"), key=lambda row: row[0]):
        if credential_id not in carried:
            report.fail(f"credential {credential_id}", BundleIncompleteError(
                f"the bundle anchors {_claim(anchor.types)} {credential_id} (log position "
                f"{anchor.issued_at}) but carries neither it nor its digest"))
    if credentials:
        report.checks.append("credentials at the position of the entry relying on them")
        report.checks.append("credential status at the checkpoint")


def _standing(credential: Mapping[str, Any], used_at: int | None, replay: BundleReplay,
              line: int | None, as_of_use: bool) -> None:
    """The credential's status at the bundle's checkpoint (the anchors replayed to its end):
    recorded first in the report; revoked or suspended fails, or with `as_of_use` is a
    note that keeps the point-in-time verdict."""
    report = replay.report
    credential_id = str(credential.get("id"))
    types = [t for t in (credential.get("type") or []) if isinstance(t, str)]
    anchor = replay.anchors.record(credential_id)
    revoked = anchor.revoked_at() if anchor is not None else None
    suspended = anchor.suspended_at() if anchor is not None else None
    status, since = ((REVOKED, revoked) if revoked is not None else
                     (SUSPENDED, suspended) if suspended is not None else (VALID, None))
    report.credentials.append(CredentialStanding(
        credential_id, _claim(types), status, since, used_at,
        anchor.issued_at if anchor is not None else None,
        replay.anchor_received.get(since) if since is not None else None))
    if since is None:
        return
    where = f"credential {credential_id}"
    verb = "revoked" if status == REVOKED else "suspended"
    use = f", after its use at {used_at}" if used_at is not None and used_at < since else ""
    if as_of_use:
        report.notes.append(f"{where}: {verb} at log position {since}{use} (point-in-time "
                            "verdict asked: --as-of-use)")
        return
    error = (CredentialRevokedError if status == REVOKED else CredentialSuspendedError)(
        f"{verb} at log position {since}{use}; it backs no claim at the checkpoint "
        f"(--as-of-use for the verdict at its use)", position=since)
    report.fail(where, error, line)


def _claim(types: Iterable[str]) -> str:
    """The most specific type (types list the general ones first)."""
    return next((t for t in reversed(list(types)) if t != "VerifiableCredential"),
                "credential")
