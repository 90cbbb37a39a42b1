"""Accreditation chains: who may issue which credential type, for which minerals and regions.

An AccreditationCredential says "issuer accredits credentialSubject.id for these credential
types, minerals and regions, from validFrom to validUntil"; `mayAccredit` lets the subject
accredit others in turn. A governance root (from the trust file) accredits, say, an IRMA-like
scheme owner for IRMAAuditCredential, which accredits certification bodies; the ledger operator
is accredited as registry authority for participant and facility credentials.

`find_trust_path` is pure: it takes accreditation credentials whose proofs the caller has
already verified, the governance root DIDs, and a revocation predicate, and finds a chain
issuer -> ... -> root in which EVERY link is in force at the given time and covers the
credential's type, mineral and region (so a delegate can never hold more than its accreditor),
and every link above the first allows delegation. No path is an error with a named code; when
several candidate paths fail, the one that got furthest up the chain is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batterytrace.credentials.credential_types import BATTERYTRACE_CONTEXT, VC_V2_CONTEXT

from .errors import (
    AccreditationCycleError,
    AccreditationError,
    AccreditationExpiredError,
    AccreditationFormatError,
    AccreditationNotDelegableError,
    AccreditationOutOfMineralError,
    AccreditationOutOfRegionError,
    AccreditationOutOfTypeError,
    AccreditationRevokedError,
    AccreditationTooDeepError,
    UntrustedIssuerError,
)

ACCREDITATION_TYPE = "AccreditationCredential"
SUBJECT_TYPE = "Accreditation"
DEFAULT_MAX_DEPTH = 4  # links from the issuer to a governance root
# VC 2.0, then the project's context, which defines AccreditationCredential, Accreditation and
# the subject's terms (the VC 2.0 context has no @vocab: without it the types map to no URL).
ACCREDITATION_CONTEXTS = (VC_V2_CONTEXT, BATTERYTRACE_CONTEXT)


def accreditation_document(*, id: str, issuer: str, subject: str,
                           credential_types: Iterable[str], valid_from: str, valid_until: str,
                           may_accredit: bool = False, minerals: Iterable[str] | None = None,
                           regions: Iterable[str] | None = None) -> dict[str, Any]:
    """An unsigned AccreditationCredential: `issuer` accredits `subject` (DIDs) for
    `credential_types` (and only `minerals` / `regions` when given)."""
    body: dict[str, Any] = {"id": subject, "type": SUBJECT_TYPE,
                            "credentialTypes": list(credential_types)}
    if minerals:
        body["minerals"] = list(minerals)
    if regions:
        body["regions"] = list(regions)
    body["mayAccredit"] = may_accredit
    return {"@context": list(ACCREDITATION_CONTEXTS), "id": id,
            "type": ["VerifiableCredential", ACCREDITATION_TYPE], "issuer": issuer,
            "validFrom": valid_from, "validUntil": valid_until, "credentialSubject": body}


def parse_time(value: Any, what: str) -> datetime:
    """An XML Schema dateTimeStamp as an aware datetime (no offset means UTC, as in VC 2.0)."""
    if not isinstance(value, str):
        raise AccreditationFormatError(f"{what} must be a date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise AccreditationFormatError(f"{what} {value!r} is not a date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _strings(value: Any, what: str, *, required: bool) -> frozenset[str] | None:
    if value is None and not required:
        return None
    if not isinstance(value, list) or not value or not all(
        isinstance(v, str) and v for v in value
    ):
        raise AccreditationFormatError(f"{what} must be a non-empty list of strings")
    return frozenset(value)


@dataclass(frozen=True)
class Accreditation:
    """One parsed AccreditationCredential. `minerals` / `regions` None means unrestricted."""

    id: str
    issuer: str
    subject: str
    credential_types: frozenset[str]
    minerals: frozenset[str] | None
    regions: frozenset[str] | None
    valid_from: datetime
    valid_until: datetime
    may_accredit: bool
    document: Mapping[str, Any]

    @classmethod
    def from_credential(cls, credential: Mapping[str, Any]) -> Accreditation:
        """Parse an AccreditationCredential (its proof must already be verified)."""
        if not isinstance(credential, Mapping):
            raise AccreditationFormatError("an accreditation must be a JSON object")
        types = credential.get("type")
        if not isinstance(types, list) or ACCREDITATION_TYPE not in types:
            raise AccreditationFormatError(f"type must include {ACCREDITATION_TYPE}")
        cred_id = credential.get("id")
        if not isinstance(cred_id, str) or not cred_id:
            raise AccreditationFormatError("an accreditation needs an id (to be revoked by)")
        issuer = credential.get("issuer")
        if isinstance(issuer, Mapping):
            issuer = issuer.get("id")
        if not isinstance(issuer, str) or not issuer.startswith("did:"):
            raise AccreditationFormatError("issuer must be a DID")
        subject = credential.get("credentialSubject")
        if not isinstance(subject, Mapping):
            raise AccreditationFormatError("credentialSubject must be one object")
        subject_id = subject.get("id")
        if not isinstance(subject_id, str) or not subject_id.startswith("did:"):
            raise AccreditationFormatError("credentialSubject.id must be the accredited DID")
        may_accredit = subject.get("mayAccredit", False)
        if not isinstance(may_accredit, bool):
            raise AccreditationFormatError("mayAccredit must be a boolean")
        valid_from = parse_time(credential.get("validFrom"), "validFrom")
        valid_until = parse_time(credential.get("validUntil"), "validUntil")
        if valid_until < valid_from:
            raise AccreditationFormatError("validUntil is before validFrom")
        return cls(
            id=cred_id,
            issuer=issuer,
            subject=subject_id,
            credential_types=_strings(
                subject.get("credentialTypes"), "credentialTypes", required=True
            ),  # type: ignore[arg-type]
            minerals=_strings(subject.get("minerals"), "minerals", required=False),
            regions=_strings(subject.get("regions"), "regions", required=False),
            valid_from=valid_from,
            valid_until=valid_until,
            may_accredit=may_accredit,
            document=credential,
        )

    def covers_region(self, region: str | None) -> bool:
        """An accreditation for "CD" covers "CD" and its subdivisions ("CD-LU")."""
        if self.regions is None:
            return True
        if region is None:
            return False
        return any(region == r or region.startswith(r + "-") for r in self.regions)


@dataclass(frozen=True)
class TrustQuery:
    """What is being relied on: a credential type from an issuer, about a mineral and region,
    at a time (the ledger time of the entry that relies on it)."""

    issuer: str
    credential_type: str
    at: datetime
    mineral: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class TrustPath:
    """A chain of accreditations from the issuer (first) up to a governance root (last)."""

    links: tuple[Accreditation, ...]
    root: str

    @property
    def dids(self) -> tuple[str, ...]:
        """The DIDs along the path: issuer, its accreditors, ..., the root."""
        return (*(link.subject for link in self.links), self.root)

    def to_json(self) -> list[dict[str, str]]:
        """The path as reported: one {accreditation, issuer, subject} per link."""
        return [
            {"accreditation": a.id, "issuer": a.issuer, "subject": a.subject} for a in self.links
        ]


RevocationCheck = Callable[[Accreditation], bool]


def _link_failure(
    link: Accreditation, query: TrustQuery, is_revoked: RevocationCheck, delegating: bool
) -> AccreditationError | None:
    """Why `link` cannot carry the query (None if it can)."""
    where = {"accreditation": link.id, "subject": link.subject}
    if query.credential_type not in link.credential_types:
        return AccreditationOutOfTypeError(
            f"{link.subject} is not accredited for {query.credential_type}", **where
        )
    if link.minerals is not None and query.mineral not in link.minerals:
        return AccreditationOutOfMineralError(
            f"{link.subject} is not accredited for mineral {query.mineral!r}", **where
        )
    if not link.covers_region(query.region):
        return AccreditationOutOfRegionError(
            f"{link.subject} is not accredited for region {query.region!r}", **where
        )
    if not link.valid_from <= query.at <= link.valid_until:
        return AccreditationExpiredError(
            f"accreditation {link.id} is not in force at {query.at.isoformat()}", **where
        )
    if delegating and not link.may_accredit:
        return AccreditationNotDelegableError(
            f"{link.subject} may not accredit others (accreditation {link.id})", **where
        )
    if is_revoked(link):
        return AccreditationRevokedError(f"accreditation {link.id} is revoked", **where)
    return None


def find_trust_path(
    query: TrustQuery,
    accreditations: Iterable[Accreditation | Mapping[str, Any]],
    governance_roots: Iterable[str],
    is_revoked: RevocationCheck = lambda _: False,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> TrustPath:
    """The first valid accreditation path from `query.issuer` to a governance root.

    A governance root trusts itself (a path with no links). Raises UntrustedIssuerError when no
    accreditation names the issuer, otherwise the named failure of the candidate path that got
    furthest (out of type / mineral / region, expired, revoked, not delegable, cycle, too deep).
    """
    if query.at.tzinfo is None:
        raise ValueError("TrustQuery.at must be timezone-aware")
    roots = frozenset(governance_roots)
    by_subject: dict[str, list[Accreditation]] = {}
    for item in accreditations:
        link = item if isinstance(item, Accreditation) else Accreditation.from_credential(item)
        by_subject.setdefault(link.subject, []).append(link)

    if query.issuer in roots:
        return TrustPath((), query.issuer)

    best: tuple[int, AccreditationError] | None = None

    def fail(depth: int, error: AccreditationError) -> None:
        nonlocal best
        if best is None or depth > best[0]:
            best = (depth, error)

    def walk(did: str, path: tuple[Accreditation, ...]) -> TrustPath | None:
        depth = len(path)
        candidates = by_subject.get(did, [])
        if not candidates:
            fail(depth, UntrustedIssuerError(
                f"{did} is not a governance root and no accreditation names it", did=did
            ))
            return None
        for link in candidates:
            error = _link_failure(link, query, is_revoked, delegating=depth > 0)
            if error is not None:
                fail(depth + 1, error)
                continue
            chain = (*path, link)
            if link.issuer in roots:
                return TrustPath(chain, link.issuer)
            if link.issuer in {a.subject for a in chain}:
                fail(depth + 2, AccreditationCycleError(
                    f"accreditation chain returns to {link.issuer}",
                    dids=[a.subject for a in chain] + [link.issuer],
                ))
                continue
            if len(chain) >= max_depth:
                fail(depth + 2, AccreditationTooDeepError(
                    f"no governance root within {max_depth} accreditations of {query.issuer}",
                    max_depth=max_depth,
                ))
                continue
            found = walk(link.issuer, chain)
            if found is not None:
                return found
        return None

    path = walk(query.issuer, ())
    if path is not None:
        return path
    if best is None:  # unreachable: walk records a failure on every dead end
        raise UntrustedIssuerError(f"no accreditation path for {query.issuer}")
    raise best[1]


__all__ = [
    "ACCREDITATION_CONTEXTS",
    "ACCREDITATION_TYPE",
    "DEFAULT_MAX_DEPTH",
    "Accreditation",
    "AccreditationCycleError",
    "AccreditationError",
    "AccreditationExpiredError",
    "AccreditationFormatError",
    "AccreditationNotDelegableError",
    "AccreditationOutOfMineralError",
    "AccreditationOutOfRegionError",
    "AccreditationOutOfTypeError",
    "AccreditationRevokedError",
    "AccreditationTooDeepError",
    "TrustPath",
    "TrustQuery",
    "UntrustedIssuerError",
    "accreditation_document",
    "find_trust_path",
]
