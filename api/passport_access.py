"""Who may see which tier of a battery passport (EU 2023/1542 Annex XIII).

Three tiers (`api/passport_tiers.py` says which facts belong to which):
- public (Annex XIII(1)): everybody, no grant;
- legitimate-interest (XIII(2) and (4)): the item's holder and whom the holder grants access;
- authority (XIII(3)): notified bodies, market surveillance authorities and the Commission,
  named in the server's own `<home>/passport-authorities.toml` (never by the request).

A grant:

    {"type": "PassportAccessGrant", "item": "<item URI>", "grantee": "<DID>",
     "issuer": "<holder DID>", "validUntil": "2026-07-01T00:00:00Z",
     "tier": "legitimate-interest", "proof": {...}}

`tier` is optional (default legitimate-interest). An `authority` grant needs a grantee the
server's authority file names; it may be issued by the holder or by the authority itself
(the law gives authorities access; the holder need not agree), signed by a did:key or a
registered participant's key valid now.

signed (Data Integrity eddsa-jcs-2022, proof purpose assertionMethod) with a key of the holder's
participant DID. The grant travels base64url-encoded (or as raw JSON) in the `X-Passport-Grant`
header or the `grant` query parameter, and is checked against the holder's keys registered and
valid at the current log position (a key retired before now cannot grant anything). The
holder reaches its own data with a grant naming itself.

A grant is not a bearer capability: with it the grantee sends an access proof

    {"type": "PassportAccessProof", "grant": "sha256:<hex of the grant's canonical JSON>",
     "path": "<request path>", "created": "<now>", "proof": {...}}

signed (eddsa-jcs-2022, proof purpose authentication) with a key of the grant's `grantee`
(a did:key resolves offline, a participant did:web through the registry at the current log
position), in the `X-Passport-Proof` header or the `proof` query parameter. It is checked
statelessly: the digest, the path, and `created` within PROOF_WINDOW of the server clock. A
proof may be replayed within its window for the same path and grant: the request is a
read-only GET that returns the same data to whoever could already make it. See
docs/passport.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import (
    format_date_time,
    parse_date_time,
    sign,
    verify_proofs,
)
from batterytrace.credentials.errors import BatterytraceError, InputError, VerificationError
from batterytrace.ledger.anchors import IssuerResolver
from batterytrace.ledger.log import Ledger
from batterytrace.ledger.queries import StateView, read_state
from batterytrace.ledger.registry import RegistryResolver

from .passport_tiers import AUTHORITY, LEGITIMATE_INTEREST, PUBLIC, TIERS, Tier

AUTHORITIES_FILE = "passport-authorities.toml"
AUTHORITY_KINDS = ("notified-body", "market-surveillance", "commission")

GRANT_TYPE = "PassportAccessGrant"
GRANT_HEADER = "X-Passport-Grant"
GRANT_QUERY = "grant"
MAX_GRANT_BYTES = 8 * 1024  # a grant is a few hundred bytes; refuse anything much larger

PROOF_TYPE = "PassportAccessProof"
PROOF_HEADER = "X-Passport-Proof"
PROOF_QUERY = "proof"
PROOF_PURPOSE = "authentication"  # the grantee proves control of its DID, asserts nothing
# How old a proof may be: short enough that a leaked proof is soon useless, long enough for a
# client to sign once per page view.
PROOF_WINDOW = timedelta(seconds=300)
PROOF_FUTURE_SKEW = timedelta(seconds=30)  # clients' clocks run a little ahead


class PassportGrantFormatError(InputError):
    """The grant cannot be read: not base64url JSON, or a member is missing or mistyped."""

    code = "PASSPORT_GRANT_MALFORMED"
    title = "Malformed passport access grant"


class PassportGrantError(VerificationError):
    """The grant was read and refused (base of the refusals below)."""

    code = "PASSPORT_GRANT_REFUSED"
    title = "Passport access grant refused"
    http_status = 403


class PassportGrantExpiredError(PassportGrantError):
    code = "PASSPORT_GRANT_EXPIRED"
    title = "Passport access grant expired"


class PassportGrantSignatureError(PassportGrantError):
    """The proof does not verify with a key registered and valid now (forged or altered)."""

    code = "PASSPORT_GRANT_SIGNATURE"
    title = "Passport access grant signature invalid"


class PassportGrantNotHolderError(PassportGrantError):
    """The grant is not signed by the item's current holder."""

    code = "PASSPORT_GRANT_NOT_HOLDER"
    title = "Passport access grant not signed by the holder"


class PassportGrantItemError(PassportGrantError):
    code = "PASSPORT_GRANT_WRONG_ITEM"
    title = "Passport access grant is for another item"


class PassportGrantTierError(PassportGrantError):
    """An authority-tier grant for a grantee the server's authority file does not name."""

    code = "PASSPORT_GRANT_NOT_AUTHORITY"
    title = "Passport access grant: grantee is not a configured authority"


class PassportAuthoritiesError(InputError):
    """The server's authority file cannot be read."""

    code = "PASSPORT_AUTHORITIES_INVALID"
    title = "Unreadable passport authorities file"
    http_status = 500


class PassportProofFormatError(InputError):
    """The access proof cannot be read: not base64url JSON, or a member missing or mistyped."""

    code = "PASSPORT_PROOF_MALFORMED"
    title = "Malformed passport access proof"


class PassportProofMissingError(PassportGrantError):
    """A grant came without the grantee's access proof (a grant alone is not a bearer token)."""

    code = "PASSPORT_PROOF_MISSING"
    title = "Passport access proof missing"
    http_status = 401


class PassportProofError(PassportGrantError):
    """The access proof does not show the grantee asking for this path with this grant."""

    code = "PASSPORT_PROOF_INVALID"
    title = "Passport access proof invalid"


class PassportProofStaleError(PassportProofError):
    """The access proof was created too long ago, or too far in the future."""

    code = "PASSPORT_PROOF_STALE"
    title = "Passport access proof outside its time window"


@dataclass(frozen=True)
class AccessGrant:
    """A verified grant: the holder let `grantee` see `item` until `valid_until`."""

    item: str
    grantee: str
    holder: str
    valid_until: datetime
    verification_method: str
    tier: Tier = LEGITIMATE_INTEREST
    issuer: str | None = None  # the holder, or for an authority grant the authority itself

    def to_json(self) -> dict[str, Any]:
        return {"item": self.item, "grantee": self.grantee, "holder": self.holder,
                "issuer": self.issuer or self.holder, "tier": self.tier,
                "validUntil": self.valid_until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "verificationMethod": self.verification_method}


@dataclass(frozen=True)
class Authority:
    """A notified body, market surveillance authority or the Commission (Annex XIII(3))."""

    id: str
    name: str
    kind: str


def load_authorities(home: Path) -> dict[str, Authority]:
    """The authorities the server's own `<home>/passport-authorities.toml` names ({DID:
    Authority}; empty without the file):

        [[authority]]
        id = "did:key:z6Mk..."          # or a registered participant's did:web
        name = "Inspectie Leefomgeving en Transport"
        kind = "market-surveillance"    # notified-body | market-surveillance | commission
    """
    path = Path(home) / AUTHORITIES_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise PassportAuthoritiesError(f"{AUTHORITIES_FILE}: {error}") from None
    found: dict[str, Authority] = {}
    entries = data.get("authority", [])
    if not isinstance(entries, list):
        raise PassportAuthoritiesError(f"{AUTHORITIES_FILE}: [[authority]] must be a table array")
    for entry in entries:
        did, name, kind = (entry.get(k) if isinstance(entry, dict) else None
                           for k in ("id", "name", "kind"))
        if not isinstance(did, str) or not did.startswith("did:"):
            raise PassportAuthoritiesError(f"{AUTHORITIES_FILE}: every authority needs a DID id")
        if kind not in AUTHORITY_KINDS:
            raise PassportAuthoritiesError(
                f"{AUTHORITIES_FILE}: kind of {did} must be one of {', '.join(AUTHORITY_KINDS)}")
        found[did] = Authority(did, str(name or did), str(kind))
    return found


def build_grant(item: str, grantee: str, holder: str, valid_until: str,
                tier: Tier = LEGITIMATE_INTEREST) -> dict[str, Any]:
    """An unsigned grant (sign it with `credentials.data_integrity.sign` and the issuer's key,
    `verification_method` set to the issuer's DID URL). `holder` is the issuer: the item's
    holder, or for an `authority` grant possibly the authority itself."""
    grant = {"type": GRANT_TYPE, "item": item, "grantee": grantee, "issuer": holder,
             "validUntil": valid_until}
    if tier != LEGITIMATE_INTEREST:
        grant["tier"] = tier
    return grant


def encode_grant(grant: Mapping[str, Any]) -> str:
    """The header / query form of a signed grant: base64url (no padding) of its canonical JSON."""
    return base64.urlsafe_b64encode(canonicalize(dict(grant))).rstrip(b"=").decode()


def decode_grant(text: str) -> dict[str, Any]:
    """A grant from its header or query form (base64url, or raw JSON starting with `{`)."""
    if len(text) > MAX_GRANT_BYTES:
        raise PassportGrantFormatError(f"the grant is longer than {MAX_GRANT_BYTES} bytes")
    raw: bytes
    stripped = text.strip()
    if stripped.startswith("{"):
        raw = stripped.encode()
    else:
        try:
            raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
        except (binascii.Error, ValueError):
            raise PassportGrantFormatError("the grant is neither JSON nor base64url") from None
    try:
        grant = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PassportGrantFormatError("the grant is not a JSON document") from None
    if not isinstance(grant, dict):
        raise PassportGrantFormatError("the grant must be a JSON object")
    return grant


def _parse_time(value: Any, name: str,
                error: type[InputError] = PassportGrantFormatError) -> datetime:

    what = "grant" if error is PassportGrantFormatError else "proof"
    if not isinstance(value, str):
        raise error(f"{what} {name} must be an XML Schema dateTime string")
    try:
        return parse_date_time(value)
    except ValueError:
        raise error(f"{what} {name} {value!r:.40} is not a dateTime") from None


def grant_digest(grant: Mapping[str, Any]) -> str:
    """What an access proof names its grant by: `sha256:` + hex SHA-256 of the signed grant's
    canonical JSON (the same for its base64url and raw JSON forms)."""
    return "sha256:" + hashlib.sha256(canonicalize(dict(grant))).hexdigest()


def build_access_proof(grant_text: str, path: str, key: Any, verification_method: str,
                       *, created: datetime | None = None) -> str:
    """The `X-Passport-Proof` value for requesting `path` (e.g. `api.passport.page_path(item)`)
    with the grant `grant_text` (its header form): a PassportAccessProof signed with the
    grantee's `key` (an `Ed25519Key`) as `verification_method` (a DID URL of the grantee),
    base64url-encoded. `created` defaults to now."""

    stamp = format_date_time(created or datetime.now(UTC))
    doc = {"type": PROOF_TYPE, "grant": grant_digest(decode_grant(grant_text)), "path": path,
           "created": stamp}
    signed = sign(doc, key, verification_method=verification_method,
                  proof_purpose=PROOF_PURPOSE, created=stamp)
    return encode_grant(signed)


def decode_access_proof(text: str) -> dict[str, Any]:
    """An access proof from its header or query form (base64url, or raw JSON)."""
    try:
        return decode_grant(text)
    except PassportGrantFormatError as error:
        raise PassportProofFormatError(error.message.replace("grant", "access proof")) from None


def _same_path(a: str, b: str) -> bool:
    # Clients may percent-encode the item segment differently; compare the decoded paths.

    return unquote(a) == unquote(b)


def verify_access_proof(
    proof: Mapping[str, Any], *, grant: Mapping[str, Any], path: str, resolver: Any,
    now: datetime | None = None,
) -> str:
    """Check a decoded access proof for a request of `path` with the (verified) `grant`: its
    shape, the grant digest, the path, `created` within PROOF_WINDOW of `now` (at most
    PROOF_FUTURE_SKEW ahead), and a signature by a verification method of the grant's
    `grantee` (through `resolver`, relationship authentication). Returns the verification
    method; raises a typed error."""
    moment = now or datetime.now(UTC)
    doc = dict(proof)
    if doc.get("type") != PROOF_TYPE:
        raise PassportProofFormatError(f"an access proof has type {PROOF_TYPE!r}")
    for name in ("grant", "path"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            raise PassportProofFormatError(f"access proof {name} must be a non-empty string")
    created = _parse_time(doc.get("created"), "created", PassportProofFormatError)
    if doc["grant"] != grant_digest(grant):
        raise PassportProofError("the access proof is for another grant")
    if not _same_path(doc["path"], path):
        raise PassportProofError(f"the access proof is for {doc['path']:.200}, not {path:.200}")
    if created < moment - PROOF_WINDOW:
        raise PassportProofStaleError(
            f"the access proof was created at {doc['created']}, more than "
            f"{int(PROOF_WINDOW.total_seconds())} s ago")
    if created > moment + PROOF_FUTURE_SKEW:
        raise PassportProofStaleError(
            f"the access proof was created at {doc['created']}, in the future")

    grantee = grant["grantee"]
    try:
        results = verify_proofs(doc, resolver, expected_purpose=PROOF_PURPOSE, now=moment)
    except BatterytraceError as error:
        raise PassportProofError(
            f"the access proof does not verify ({error.code}: {error.message})") from error
    signer = next((r for r in results if r.controller == grantee), None)
    if signer is None:
        raise PassportProofError(f"the access proof is not signed by the grantee {grantee}")
    return signer.verification_method


def verify_grant(
    grant: Mapping[str, Any], *, item: str, holder: str, resolver: Any,
    now: datetime | None = None, authorities: Mapping[str, Authority] | None = None,
) -> AccessGrant:
    """Check a decoded grant for `item` whose current holder is `holder`: its shape, expiry,
    its tier, who issued it, and its proof with keys `resolver` finds valid now (at the current
    log position: registered participants, and did:key). A legitimate-interest grant is issued
    by the holder; an authority grant names a grantee of `authorities` (the server's own
    list) and is issued by the holder or that authority. Raises a typed error."""
    moment = now or datetime.now(UTC)
    doc = dict(grant)
    if doc.get("type") != GRANT_TYPE:
        raise PassportGrantFormatError(f"a grant has type {GRANT_TYPE!r}")
    for name in ("item", "grantee", "issuer"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            raise PassportGrantFormatError(f"grant {name} must be a non-empty string")
    if not doc["grantee"].startswith("did:"):
        raise PassportGrantFormatError("grant grantee must be a DID")
    tier = doc.get("tier", LEGITIMATE_INTEREST)
    if tier not in (LEGITIMATE_INTEREST, AUTHORITY):
        raise PassportGrantFormatError(
            f"grant tier must be {LEGITIMATE_INTEREST!r} or {AUTHORITY!r}")
    valid_until = _parse_time(doc.get("validUntil"), "validUntil")
    if doc["item"] != item:
        raise PassportGrantItemError(f"the grant is for {doc['item']}, not {item}")
    if moment >= valid_until:
        raise PassportGrantExpiredError(f"the grant expired at {doc['validUntil']}")
    issuers = {holder}
    if tier == AUTHORITY:
        if doc["grantee"] not in (authorities or {}):
            raise PassportGrantTierError(
                f"{doc['grantee']} is not a notified body, market surveillance authority or "
                f"the Commission in the server's {AUTHORITIES_FILE}")
        issuers.add(doc["grantee"])  # an authority needs no holder's consent (Annex XIII(3))
    if doc["issuer"] not in issuers:
        raise PassportGrantNotHolderError(
            f"the grant is issued by {doc['issuer']}, the holder is {holder}")

    try:
        results = verify_proofs(doc, resolver, now=moment)
    except BatterytraceError as error:
        raise PassportGrantSignatureError(
            f"the grant's proof does not verify ({error.code}: {error.message})") from error
    signer = next((r for r in results if r.controller == doc["issuer"]), None)
    if signer is None:
        raise PassportGrantNotHolderError(
            f"no proof of the grant is by its issuer {doc['issuer']}")
    return AccessGrant(doc["item"], doc["grantee"], holder, valid_until,
                       signer.verification_method, tier, doc["issuer"])


def item_holder(ledger: Ledger, view: StateView, item_id: str) -> str | None:
    """The DID of the item's holder: whoever holds the top of the assembly it sits in, or,
    once it has left the ledger (disposed, consumed), the signer of its last event. None for
    an item no event names. `view`: the ledger's state (`ledger.queries.read_state`)."""
    state = view.state
    item = state.item(item_id)
    if item is None:
        return None
    holder = state.root(item).holder
    if holder is not None:
        return holder
    seqs = view.history_positions(item_id)
    if not seqs:
        return item.created_by
    issuer = ledger.entry(max(seqs)).document.get("issuer")
    return issuer.get("id") if isinstance(issuer, dict) else issuer


def access_for(
    ledger: Ledger, item_id: str, grant_text: str | None, proof_text: str | None = None, *,
    path: str, now: datetime | None = None,
) -> tuple[Tier, AccessGrant | None]:
    """The tier a request of `path` may see: public without a grant; the grant's tier
    (legitimate-interest or authority) with a grant that verifies and the grantee's access
    proof for `path`. A grant or proof that does not verify, or a grant without a proof, is
    refused (raised), never downgraded silently to the public tier."""
    if grant_text is None or not grant_text.strip():
        if proof_text is not None and proof_text.strip():
            raise PassportProofError("an access proof came without its grant")
        return PUBLIC, None
    grant = decode_grant(grant_text)
    authorities = (load_authorities(Path(ledger.home.path))
                   if grant.get("tier") == AUTHORITY else {})
    with read_state(ledger) as view:
        holder = item_holder(ledger, view, item_id)
        if holder is None:
            raise PassportGrantNotHolderError(f"{item_id} has no holder to grant access")
        registry = view.registry
        # Keys must be valid at the current log position: retired keys grant nothing. A
        # holder is a registered participant; an authority may also sign with a did:key.
        resolver = (IssuerResolver(registry, ledger.size) if authorities
                    else RegistryResolver(registry, ledger.size))
        verified = verify_grant(grant, item=item_id, holder=holder, resolver=resolver, now=now,
                                authorities=authorities)
        if proof_text is None or not proof_text.strip():
            raise PassportProofMissingError(
                f"a grant needs the grantee's access proof ({PROOF_HEADER} header or "
                f"{PROOF_QUERY!r} query parameter)")
        # The grantee may be any did:key or a registered participant (keys valid now).
        verify_access_proof(decode_access_proof(proof_text), grant=grant, path=path,
                            resolver=IssuerResolver(registry, ledger.size), now=now)
    return verified.tier, verified


__all__ = [
    "AUTHORITIES_FILE",
    "AUTHORITY",
    "AUTHORITY_KINDS",
    "GRANT_HEADER",
    "GRANT_QUERY",
    "GRANT_TYPE",
    "LEGITIMATE_INTEREST",
    "PROOF_FUTURE_SKEW",
    "PROOF_HEADER",
    "PROOF_QUERY",
    "PROOF_TYPE",
    "PROOF_WINDOW",
    "PUBLIC",
    "TIERS",
    "AccessGrant",
    "Authority",
    "PassportAuthoritiesError",
    "PassportGrantError",
    "PassportGrantExpiredError",
    "PassportGrantFormatError",
    "PassportGrantItemError",
    "PassportGrantNotHolderError",
    "PassportGrantSignatureError",
    "PassportGrantTierError",
    "PassportProofError",
    "PassportProofFormatError",
    "PassportProofMissingError",
    "PassportProofStaleError",
    "Tier",
    "access_for",
    "build_access_proof",
    "build_grant",
    "decode_access_proof",
    "decode_grant",
    "encode_grant",
    "grant_digest",
    "item_holder",
    "load_authorities",
    "verify_access_proof",
    "verify_grant",
]
