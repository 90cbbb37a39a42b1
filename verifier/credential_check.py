"""The full credential decision: proof, structure, schema, validity, status and trust.

Pure (no storage, no network). The caller hands in what the verifier has: the trust file
(`TrustConfig`), accreditation credentials, status list credentials, DID documents, and, when
the credential is judged at a ledger position, a resolver over the registry at that position
and the ledger's anchor records. Trust only ever comes from the trust file: a did:web document
counts only when the file pins it, an accreditation only when its chain ends at one of the
file's governance roots.

Issuer trust: without a trust file the issuer is reported NOT_EVALUATED (a warning), or
UNTRUSTED_ISSUER with `require_trust`. With one, an issuer no accreditation names is
UNTRUSTED_ISSUER (a warning; a failure with `require_trust`), and an accreditation that does
not cover the credential (type, mineral, region, validity, revoked) is always a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from batterytrace.credentials.credential_types import (
    credential_types,
    validate_credential_document,
)
from batterytrace.credentials.data_integrity import parse_date_time, verify_proofs
from batterytrace.credentials.did import (
    DID_KEY_PREFIX,
    OfflineResolver,
    Resolver,
    VerificationMethod,
)
from batterytrace.credentials.errors import (
    BatterytraceError,
    DidResolutionError,
    ParsingError,
    VerificationMethodError,
)
from batterytrace.credentials.keys import decode_public_multibase
from batterytrace.credentials.vc import as_list, controlled_by, issuer_id, verify_credential
from batterytrace.ledger.anchors import AnchorRecord, credential_digest

from .accreditation import (
    Accreditation,
    TrustPath,
    TrustQuery,
    UntrustedIssuerError,
    find_trust_path,
)
from .status import UNAVAILABLE, StatusResult, check_anchor_record, decide_status
from .trust import TrustConfig

TRUSTED = "TRUSTED"
NOT_EVALUATED = "NOT_EVALUATED"
UNTRUSTED = "UNTRUSTED_ISSUER"


@dataclass(frozen=True)
class CredentialCheck:
    """A credential that passed: what was checked, the issuer's standing, the trust path."""

    ok: bool
    id: str | None
    types: tuple[str, ...]
    issuer: str | None
    issuer_status: str
    subject_ids: tuple[str, ...]
    checks: tuple[str, ...]
    trust_path: tuple[dict[str, str], ...] = ()
    trust_root: str | None = None
    status: dict[str, Any] | None = None
    anchored_at: int | None = None
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrustResolver:
    """One resolver for every issuer: `base` (the registry at a log position) for
    participants, did:key always, governance roots by the keys the trust file lists, and
    did:web documents when the trust file pins them (or, with no trust file, as handed in)."""

    def __init__(self, trust: TrustConfig | None = None,
                 did_documents: Iterable[Mapping[str, Any]] = (),
                 base: Resolver | None = None) -> None:
        self.trust = trust
        self.base = base
        self.documents = OfflineResolver()
        for doc in did_documents:
            did = doc.get("id")
            if not isinstance(did, str):
                raise ParsingError("a DID document needs an id")
            if trust is not None:
                trust.check_pinned(did, doc)  # PINNED_DID_DOCUMENT_MISMATCH otherwise
            self.documents.add_document(dict(doc))

    def resolve_verification_method(self, vm_id: str, relationship: str) -> VerificationMethod:
        did = vm_id.split("#", 1)[0]
        if did.startswith(DID_KEY_PREFIX):
            return self.documents.resolve_verification_method(vm_id, relationship)
        root = self.trust.governance_root(did) if self.trust is not None else None
        if root is not None and not did.startswith(DID_KEY_PREFIX):
            fragment = vm_id.split("#", 1)[1] if "#" in vm_id else ""
            if fragment not in root.keys:
                raise VerificationMethodError(f"{vm_id} is not a key the trust file lists for "
                                              f"{did}")
            return VerificationMethod(vm_id, did, "Multikey", decode_public_multibase(fragment))
        try:
            return self.documents.resolve_verification_method(vm_id, relationship)
        except DidResolutionError:
            if self.base is None:
                raise
        return self.base.resolve_verification_method(vm_id, relationship)


def _registered_type(doc: Mapping[str, Any]) -> str | None:
    names = {t.name for t in credential_types()}
    found = [t for t in as_list(doc.get("type")) if t in names]
    return found[0] if len(found) == 1 else None


def credential_scope(subject: Mapping[str, Any]) -> tuple[list[str | None], str | None]:
    """(minerals, region) a credential speaks about, as accreditations scope them."""
    minerals: list[str | None] = []
    if isinstance(subject.get("mineral"), str):
        minerals.append(subject["mineral"])
    for name in ("minerals",):
        if isinstance(subject.get(name), list):
            minerals.extend(m for m in subject[name] if isinstance(m, str))
    region = None
    facility = subject.get("facility")
    if not isinstance(facility, Mapping):
        facility = {}
    for value in (subject.get("countryOfOrigin"), subject.get("countryOfOperation"),
                  facility.get("countryOfOperation"), subject.get("countryOfRegistration")):
        if isinstance(value, str):
            region = value
            break
    return minerals or [None], region


def _verified_accreditations(
    documents: Iterable[Mapping[str, Any]], resolver: Resolver, warnings: list[str]
) -> list[tuple[Accreditation, Mapping[str, Any]]]:
    """Accreditations whose proofs verify and are by their issuer; others become warnings."""
    found = []
    for doc in documents:
        try:
            link = Accreditation.from_credential(doc)
            proofs = verify_proofs(dict(doc), resolver)
            if not controlled_by(link.issuer, proofs):
                raise VerificationMethodError(f"accreditation {link.id} is not signed by "
                                              f"{link.issuer}")
        except BatterytraceError as exc:
            warnings.append(f"accreditation ignored: {exc.diagnostics()}")
            continue
        found.append((link, doc))
    return found


def evaluate_trust(
    doc: Mapping[str, Any], trust: TrustConfig, accreditations: Iterable[Mapping[str, Any]],
    resolver: Resolver, moment: datetime, *,
    status_lists: Mapping[str, Mapping[str, Any]] | None = None,
    anchors: Mapping[str, AnchorRecord] | None = None, position: int | None = None,
    warnings: list[str],
) -> TrustPath:
    """The trust path of the credential's issuer for its type and scope at `moment` (every
    mineral it names must be covered). Raises the accreditation failure."""
    issuer = issuer_id(dict(doc)) or ""
    type_name = _registered_type(doc) or as_list(doc.get("type"))[-1]
    links = _verified_accreditations(accreditations, resolver, warnings)

    def is_revoked(link: Accreditation) -> bool:
        record = anchors.get(link.id) if anchors is not None else None
        result = decide_status(link.document, status_lists or {}, resolver, anchors=record,
                               position=position)
        warnings.extend(f"accreditation {link.id}: {w}" for w in result.warnings)
        return result.revoked or result.suspended

    subjects = [s for s in as_list(doc.get("credentialSubject")) if isinstance(s, Mapping)]
    minerals, region = credential_scope(subjects[0] if subjects else {})
    roots = [r.did for r in trust.governance_roots]
    path = None
    for mineral in minerals:
        query = TrustQuery(issuer, type_name, moment, mineral, region)
        path = find_trust_path(query, [link for link, _ in links], roots, is_revoked)
    assert path is not None
    return path


def check_credential(
    doc: Any,
    resolver: Resolver | None = None,
    *,
    trust: TrustConfig | None = None,
    accreditations: Iterable[Mapping[str, Any]] = (),
    status_lists: Mapping[str, Mapping[str, Any]] | None = None,
    did_documents: Iterable[Mapping[str, Any]] = (),
    anchors: Mapping[str, AnchorRecord] | None = None,
    at: datetime | None = None,
    position: int | None = None,
    require_trust: bool = False,
    require_status: bool = False,
    anchor_times: Mapping[int, datetime] | None = None,
) -> CredentialCheck:
    """Decide whether a credential can be relied on, at time `at` (default now) and, when
    judged against the ledger, at log `position` (`resolver` is then the registry at that
    position and `anchors` the anchor records by credential id).

    The issuer is judged when it issued: with an issuance anchor, its accreditation path is
    judged at the anchor's log position (and time, from `anchor_times`: position -> the
    anchor entry's `received`), so an issuer whose accreditation ended before it anchored
    the credential is untrusted whatever the credential's `validFrom` says.

    Raises the first failure as a typed error (proof, structure, schema, validity, status,
    trust); returns the checks made, the issuer's standing, the trust path and warnings.
    """
    if not isinstance(doc, dict):
        raise ParsingError("a credential must be a JSON object")
    moment = at or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    resolver = TrustResolver(trust, did_documents, resolver)
    result = verify_credential(doc, resolver, at=moment)
    checks = list(result.checks)
    warnings = list(result.warnings)

    if _registered_type(doc) is not None:
        validate_credential_document(doc)
        checks.append("type-schema")
    else:
        warnings.append("no battery-domain type: only the VC 2.0 schema was checked")

    record = None
    if anchors is not None:
        record = anchors.get(result.id or "")
        if record is None:
            warnings.append("NOT_ANCHORED: the ledger holds no issuance anchor for it")
        else:
            check_anchor_record(doc, record, credential_digest(doc))
            if position is not None and record.issued_at > position:
                warnings.append(_issued_later(doc, result.types, record.issued_at, position,
                                              moment))
            checks.append("anchor")
    status: StatusResult = decide_status(doc, status_lists or {}, resolver, anchors=record,
                                         position=position, require_status=require_status)
    status.raise_for_status(result.id)
    if any(d.source != UNAVAILABLE for d in status.decisions):
        checks.append("status")  # only when a list or the anchors were actually read
    warnings.extend(status.warnings)

    issuer_status, path = NOT_EVALUATED, None
    trust_position, trust_moment = position, moment
    if record is not None:  # the issuer is judged when it issued
        trust_position = record.issued_at
        trust_moment = (anchor_times or {}).get(record.issued_at, moment)
    if trust is None:
        if require_trust:
            raise UntrustedIssuerError(f"{result.issuer} cannot be trusted without a trust file")
        warnings.append(f"NOT_EVALUATED: issuer {result.issuer} (no trust file)")
    else:
        try:
            path = evaluate_trust(doc, trust, accreditations, resolver, trust_moment,
                                  status_lists=status_lists, anchors=anchors,
                                  position=trust_position, warnings=warnings)
            issuer_status = TRUSTED
            checks.append("trust")
        except UntrustedIssuerError as exc:
            if require_trust:
                raise
            issuer_status = UNTRUSTED
            warnings.append(exc.diagnostics())

    return CredentialCheck(
        ok=True, id=result.id, types=result.types, issuer=result.issuer,
        issuer_status=issuer_status, subject_ids=result.subject_ids, checks=tuple(checks),
        trust_path=tuple(path.to_json()) if path else (),
        trust_root=path.root if path else None,
        status=status.to_dict(), anchored_at=record.issued_at if record else None,
        warnings=tuple(warnings),
    )


__all__ = [
    "NOT_EVALUATED",
    "TRUSTED",
    "UNTRUSTED",
    "CredentialCheck",
    "TrustResolver",
    "check_credential",
    "credential_scope",
    "evaluate_trust",
]


def _issued_later(doc: Mapping[str, Any], types: Iterable[str], anchored: int, position: int,
                  moment: datetime) -> str:
    """The words for a credential anchored after an entry that relies on it: which claim it
    backs, that it was issued later, and whether its validity period covers that entry."""
    claim = _registered_type(doc) or next(
        (t for t in reversed(list(types)) if t != "VerifiableCredential"), "credential")
    subjects = sorted({str(s.get("id")) for s in as_list(doc.get("credentialSubject"))
                       if isinstance(s, Mapping) and s.get("id")})
    start, end = doc.get("validFrom"), doc.get("validUntil")
    covered = _covers(start, end, moment)
    period = (f"its validity period ({start or 'no start'} to {end or 'no end'}) "
              f"{'covers' if covered else 'does not cover'} that entry's time "
              f"{moment.isoformat().replace('+00:00', 'Z')}")
    return (f"ISSUED_LATER: the {claim} about {', '.join(subjects) or 'its subject'} was "
            f"issued (anchored) at log position {anchored}, after the entry at position "
            f"{position} that relies on it; {period}")


def _covers(start: Any, end: Any, moment: datetime) -> bool:
    try:
        after_start = start is None or parse_date_time(str(start)) <= moment
        before_end = end is None or moment <= parse_date_time(str(end))
    except BatterytraceError:
        return False
    return after_start and before_end
