"""Status decisions: is a credential revoked or suspended, by its lists and the ledger's anchors.

Pure (no storage): the caller hands in the status list credentials it has (from a bundle or
`--status FILE`), a resolver for their proofs, and, when it has them, the ledger's anchor
record of the credential and the log position to judge at.

For each `credentialStatus` entry: the list credential must be there (else
STATUS_RETRIEVAL_ERROR: a failure with `require_status`, a warning otherwise), be signed by
the credential's issuer, serve the entry's purpose and URL (STATUS_VERIFICATION_ERROR), and be
long enough (STATUS_LIST_LENGTH_ERROR). The bit it holds is then reconciled with the anchors:
the anchors are the log's signed, ordered record, so when they disagree with a list (a stale
list not yet republished, or a list that claims a revocation the log never saw) the anchors
win and the result says so in a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from batterytrace.credentials.data_integrity import verify_proofs
from batterytrace.credentials.did import Resolver
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.status_list import (
    StatusEntry,
    StatusRetrievalError,
    StatusVerificationError,
    other_status_types,
    status_bit,
    status_entries,
)
from batterytrace.credentials.vc import controlled_by, issuer_id
from batterytrace.ledger.anchors import AnchorRecord

from .errors import AnchorMismatchError, CredentialRevokedError, CredentialSuspendedError

LIST = "list"
ANCHORS = "anchors"


@dataclass(frozen=True)
class StatusDecision:
    """The decision for one status purpose: the list's bit, the anchors' view, and which won."""

    purpose: str
    value: bool
    source: str  # "list" or "anchors"
    list_url: str | None = None
    index: int | None = None
    list_value: bool | None = None
    anchor_value: bool | None = None
    anchor_seq: int | None = None


@dataclass(frozen=True)
class StatusResult:
    """Whether the credential is revoked / suspended, per purpose, with warnings."""

    revoked: bool
    suspended: bool
    decisions: tuple[StatusDecision, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not (self.revoked or self.suspended)

    def raise_for_status(self, credential_id: str | None = None) -> None:
        """CredentialRevokedError / CredentialSuspendedError when the credential is not in
        good standing (the decision that said so is in the error's details)."""
        name = credential_id or "the credential"
        for decision in self.decisions:
            if decision.value:
                details = {k: v for k, v in asdict(decision).items() if v is not None}
                if decision.purpose == "revocation":
                    raise CredentialRevokedError(
                        f"{name} is revoked (by the {decision.source})", **details)
                raise CredentialSuspendedError(
                    f"{name} is suspended (by the {decision.source})", **details)

    def to_dict(self) -> dict[str, Any]:
        return {"revoked": self.revoked, "suspended": self.suspended,
                "decisions": [asdict(d) for d in self.decisions], "warnings": list(self.warnings)}


def check_list_credential(
    entry: StatusEntry, list_credential: Mapping[str, Any], issuer: str | None,
    resolver: Resolver,
) -> bool:
    """The bit `entry` points to, after checking the list's proof (by `issuer`, at the
    verifier's clock: a list speaks of now), URL, purpose and length. Raises
    StatusVerificationError (or StatusListLengthError)."""
    document = dict(list_credential)
    try:
        proofs = verify_proofs(document, resolver)
    except BatterytraceError as exc:
        raise StatusVerificationError(
            f"status list {entry.status_list_credential}: {exc.message}", cause=exc.code
        ) from exc
    list_issuer = issuer_id(document)
    if issuer is not None and list_issuer != issuer:
        raise StatusVerificationError(
            f"status list {entry.status_list_credential} is issued by {list_issuer}, "
            f"not by the credential's issuer {issuer}")
    if not controlled_by(list_issuer or "", proofs):
        raise StatusVerificationError(
            f"status list {entry.status_list_credential} carries no proof by its issuer")
    return status_bit(entry, document)


def _anchor_view(record: AnchorRecord, purpose: str, position: int | None
                 ) -> tuple[bool, int | None]:
    if purpose == "revocation":
        seq = record.revoked_at(position)
    else:
        seq = record.suspended_at(position)
    return seq is not None, seq


def check_anchor_record(credential: Mapping[str, Any], record: AnchorRecord,
                        digest: str | None = None) -> None:
    """The anchor record belongs to this credential (id, issuer and, if given, digest)."""
    if record.credential_id != credential.get("id") or record.issuer != issuer_id(
        dict(credential)
    ):
        raise AnchorMismatchError("the anchor record names another credential or issuer")
    if digest is not None and record.digest != digest:
        raise AnchorMismatchError("the credential is not the version its issuance anchor names",
                                  anchored=record.digest, found=digest)


def decide_status(
    credential: Mapping[str, Any],
    lists: Mapping[str, Mapping[str, Any]],
    resolver: Resolver,
    *,
    anchors: AnchorRecord | None = None,
    position: int | None = None,
    require_status: bool = False,
) -> StatusResult:
    """Decide the credential's status from its status lists (`lists`: URL -> list credential)
    and, when given, its anchor record judged at log `position` (default: the whole record).

    Raises StatusRetrievalError for a missing list with `require_status`,
    StatusVerificationError / StatusEntryError / StatusListLengthError for a list that cannot
    be relied on, AnchorMismatchError for an anchor record of another credential. Does NOT
    raise for a revoked or suspended credential: see `StatusResult.raise_for_status`.
    """
    issuer = issuer_id(dict(credential))
    if anchors is not None:
        check_anchor_record(credential, anchors)
    warnings: list[str] = []
    decisions: list[StatusDecision] = []
    purposes_seen: set[str] = set()
    for other in other_status_types(credential):
        message = (f"STATUS_NOT_CHECKED: credentialStatus of type {other} is not implemented "
                   "here: the status is not checked")
        if require_status:
            raise StatusRetrievalError(message.split(": ", 1)[1], type=other)
        warnings.append(message)
    for entry in status_entries(credential):
        purposes_seen.add(entry.status_purpose)
        list_value: bool | None = None
        found = lists.get(entry.status_list_credential)
        if found is None:
            message = (f"STATUS_RETRIEVAL_ERROR: status list {entry.status_list_credential} "
                       "is not available")
            if require_status:
                raise StatusRetrievalError(message.split(": ", 1)[1],
                                           url=entry.status_list_credential)
            warnings.append(message)
        else:
            list_value = check_list_credential(entry, found, issuer, resolver)
        anchor_value = anchor_seq = None
        if anchors is not None:
            anchor_value, anchor_seq = _anchor_view(anchors, entry.status_purpose, position)
        decisions.append(_reconcile(entry, list_value, anchor_value, anchor_seq, warnings))
    if anchors is not None:
        # The anchors speak for purposes the credential carries no entry for, too.
        for purpose in ("revocation", "suspension"):
            value, seq = _anchor_view(anchors, purpose, position)
            if value and purpose not in purposes_seen:
                decisions.append(StatusDecision(purpose, True, ANCHORS, anchor_value=True,
                                                anchor_seq=seq))
    return StatusResult(
        revoked=any(d.value for d in decisions if d.purpose == "revocation"),
        suspended=any(d.value for d in decisions if d.purpose == "suspension"),
        decisions=tuple(decisions),
        warnings=tuple(warnings),
    )


def _reconcile(entry: StatusEntry, list_value: bool | None, anchor_value: bool | None,
               anchor_seq: int | None, warnings: list[str]) -> StatusDecision:
    def decision(value: bool, source: str) -> StatusDecision:
        return StatusDecision(entry.status_purpose, value, source,
                              list_url=entry.status_list_credential,
                              index=entry.status_list_index, list_value=list_value,
                              anchor_value=anchor_value, anchor_seq=anchor_seq)

    if anchor_value is None:
        return decision(bool(list_value), LIST)
    if list_value is not None and list_value != anchor_value:
        said = "set" if list_value else "clear"
        anchored = (f"{entry.status_purpose} anchored at log position {anchor_seq}"
                    if anchor_value else f"no {entry.status_purpose} in force in the anchors")
        warnings.append(
            f"STATUS_ANCHOR_DISAGREEMENT: list {entry.status_list_credential} has bit "
            f"{entry.status_list_index} {said} but the ledger has {anchored}; the anchors win"
        )
    return decision(anchor_value, ANCHORS)


__all__ = [
    "AnchorMismatchError",
    "CredentialRevokedError",
    "CredentialSuspendedError",
    "StatusDecision",
    "StatusResult",
    "check_anchor_record",
    "check_list_credential",
    "decide_status",
]
