"""Who may see a battery passport's legitimate-interest tier (EU 2023/1542 Annex XIII).

Everybody gets the public tier. Mine-level provenance, due diligence and the evidence bundle
are for the item's holder and for whom the holder grants access with a signed grant:

    {"type": "PassportAccessGrant", "item": "<item URI>", "grantee": "<DID>",
     "issuer": "<holder DID>", "validUntil": "2026-07-01T00:00:00Z", "proof": {...}}

signed (Data Integrity eddsa-jcs-2022, proof purpose assertionMethod) with a key of the holder's
participant DID. The grant travels base64url-encoded (or as raw JSON) in the `X-Passport-Grant`
header or the `grant` query parameter, and is checked against the holder's keys registered and
valid at the current log position (a key retired before now cannot grant anything). The
holder reaches its own data with a grant naming itself. See docs/passport.md.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.errors import BatterytraceError, InputError, VerificationError

Tier = Literal["public", "legitimate-interest"]
PUBLIC: Tier = "public"
LEGITIMATE_INTEREST: Tier = "legitimate-interest"
TIERS: tuple[Tier, ...] = (PUBLIC, LEGITIMATE_INTEREST)

GRANT_TYPE = "PassportAccessGrant"
GRANT_HEADER = "X-Passport-Grant"
GRANT_QUERY = "grant"
MAX_GRANT_BYTES = 8 * 1024  # a grant is a few hundred bytes; refuse anything much larger


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


@dataclass(frozen=True)
class AccessGrant:
    """A verified grant: the holder let `grantee` see `item` until `valid_until`."""

    item: str
    grantee: str
    holder: str
    valid_until: datetime
    verification_method: str

    def to_json(self) -> dict[str, Any]:
        return {"item": self.item, "grantee": self.grantee, "holder": self.holder,
                "validUntil": self.valid_until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "verificationMethod": self.verification_method}


def build_grant(item: str, grantee: str, holder: str, valid_until: str) -> dict[str, Any]:
    """An unsigned grant (sign it with `credentials.data_integrity.sign` and the holder's key,
    `verification_method` set to the holder's DID URL)."""
    return {"type": GRANT_TYPE, "item": item, "grantee": grantee, "issuer": holder,
            "validUntil": valid_until}


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


def _parse_time(value: Any, name: str) -> datetime:
    from batterytrace.credentials.data_integrity import parse_date_time

    if not isinstance(value, str):
        raise PassportGrantFormatError(f"grant {name} must be an XML Schema dateTime string")
    try:
        return parse_date_time(value)
    except ValueError:
        raise PassportGrantFormatError(f"grant {name} {value!r:.40} is not a dateTime") from None


def verify_grant(
    grant: Mapping[str, Any], *, item: str, holder: str, resolver: Any,
    now: datetime | None = None,
) -> AccessGrant:
    """Check a decoded grant for `item` whose current holder is `holder`: its shape, expiry,
    that the holder issued it, and its proof with keys `resolver` finds valid now (a
    `ledger.registry.RegistryResolver` at the current log position). Raises a typed error."""
    moment = now or datetime.now(UTC)
    doc = dict(grant)
    if doc.get("type") != GRANT_TYPE:
        raise PassportGrantFormatError(f"a grant has type {GRANT_TYPE!r}")
    for name in ("item", "grantee", "issuer"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            raise PassportGrantFormatError(f"grant {name} must be a non-empty string")
    if not doc["grantee"].startswith("did:"):
        raise PassportGrantFormatError("grant grantee must be a DID")
    valid_until = _parse_time(doc.get("validUntil"), "validUntil")
    if doc["item"] != item:
        raise PassportGrantItemError(f"the grant is for {doc['item']}, not {item}")
    if moment >= valid_until:
        raise PassportGrantExpiredError(f"the grant expired at {doc['validUntil']}")
    if doc["issuer"] != holder:
        raise PassportGrantNotHolderError(
            f"the grant is issued by {doc['issuer']}, the holder is {holder}")
    from batterytrace.credentials.data_integrity import verify_proofs

    try:
        results = verify_proofs(doc, resolver, now=moment)
    except BatterytraceError as error:
        raise PassportGrantSignatureError(
            f"the grant's proof does not verify ({error.code}: {error.message})") from error
    signer = next((r for r in results if r.controller == holder), None)
    if signer is None:
        raise PassportGrantNotHolderError(f"no proof of the grant is by the holder {holder}")
    return AccessGrant(doc["item"], doc["grantee"], holder, valid_until,
                       signer.verification_method)


def item_holder(ledger: Any, connection: Any, item_id: str) -> str | None:
    """The DID of the item's holder: whoever holds the top of the assembly it sits in, or,
    once it has left the ledger (disposed, consumed), the signer of its last event. None for
    an item no event names."""
    from batterytrace.ledger.custody_store import open_state, rows_with_prefix

    _, state = open_state(connection, ledger)
    item = state.item(item_id)
    if item is None:
        return None
    holder = state.root(item).holder
    if holder is not None:
        return holder
    seqs = [seq for _, seq in rows_with_prefix(connection, "history", item_id)]
    if not seqs:
        return item.created_by
    issuer = ledger.entry(max(seqs)).document.get("issuer")
    return issuer.get("id") if isinstance(issuer, dict) else issuer


def access_for(
    ledger: Any, item_id: str, grant_text: str | None, *, now: datetime | None = None
) -> tuple[Tier, AccessGrant | None]:
    """The tier a request may see: public without a grant, legitimate-interest with a grant
    the holder signed. A grant that does not verify is refused (raised), never downgraded
    silently to the public tier."""
    if grant_text is None or not grant_text.strip():
        return PUBLIC, None
    grant = decode_grant(grant_text)
    from batterytrace.ledger.custody_store import open_state
    from batterytrace.ledger.registry import RegistryResolver

    with ledger.storage.engine.connect() as connection:
        holder = item_holder(ledger, connection, item_id)
        if holder is None:
            raise PassportGrantNotHolderError(f"{item_id} has no holder to grant access")
        registry, _ = open_state(connection, ledger)
        # The key must be valid at the current log position: retired keys grant nothing.
        resolver = RegistryResolver(registry, ledger.size)
        verified = verify_grant(grant, item=item_id, holder=holder, resolver=resolver, now=now)
    return LEGITIMATE_INTEREST, verified


__all__ = [
    "GRANT_HEADER",
    "GRANT_QUERY",
    "GRANT_TYPE",
    "LEGITIMATE_INTEREST",
    "PUBLIC",
    "TIERS",
    "AccessGrant",
    "PassportGrantError",
    "PassportGrantExpiredError",
    "PassportGrantFormatError",
    "PassportGrantItemError",
    "PassportGrantNotHolderError",
    "PassportGrantSignatureError",
    "Tier",
    "access_for",
    "build_grant",
    "decode_grant",
    "encode_grant",
    "item_holder",
    "verify_grant",
]
