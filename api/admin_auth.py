"""Administrative requests: signed documents with a nonce and an expiry, never a password.

An administrative request body IS the registry (or settings) document that will become the
log entry, signed with Data Integrity (eddsa-jcs-2022) and carrying two extra top-level
members covered by the proof:

    {"type": "ParticipantRegistration", ..., "nonce": "<16-128 chars>",
     "expires": "2026-03-01T12:05:00Z", "proof": {... by the admin key ...}}

Who may sign is the registry's rule, checked by the ledger's own registry validator in the
write transaction (the admin did:key of entry 0; a key rotation also needs the participant's
current key; a key revocation may be signed by the participant alone). Settings documents
(`LedgerSettings`) must carry a proof by the admin key (`AdminSettingsValidator`).

Replay and expiry: `AdminRequestGuard` wraps those validators. Inside the same write
transaction (the sequencer row is locked, so concurrent workers are serialised) it refuses an
expired request or one whose nonce was seen, then records the nonce in `api_admin_nonces`.
A request that fails for any reason rolls back with the batch, so its nonce stays unused.
Nonces are kept for good (a row per administrative change), so a replay after expiry is
refused twice over. The nonce and expiry stay in the log entry: the audit trail shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from batterytrace.credentials.data_integrity import parse_date_time
from batterytrace.credentials.errors import InputError, VerificationError
from batterytrace.ledger.batch import WriteSession
from batterytrace.ledger.log import Ledger
from batterytrace.ledger.service import record_nonces, used_nonce

MAX_LIFETIME = timedelta(hours=24)
SETTINGS_TYPE = "LedgerSettings"


class AdminRequestMalformedError(InputError):
    code = "ADMIN_REQUEST_MALFORMED"
    title = "Administrative request lacks a valid nonce or expiry"


class AdminRequestExpiredError(VerificationError):
    code = "ADMIN_REQUEST_EXPIRED"
    title = "Administrative request expired"
    http_status = 401


class AdminRequestReplayedError(VerificationError):
    code = "ADMIN_REQUEST_REPLAYED"
    title = "Administrative request replayed"
    http_status = 409


class AdminSignatureError(VerificationError):
    code = "ADMIN_SIGNATURE_REQUIRED"
    title = "Not signed by the ledger's admin key"
    http_status = 403


@dataclass(frozen=True)
class AdminRequest:
    nonce: str
    expires: str


def check_admin_request(document: Any, now: datetime) -> AdminRequest:
    """The nonce and expiry of an administrative document, checked against `now`."""
    if not isinstance(document, dict):
        raise AdminRequestMalformedError("an administrative request is a JSON object")
    nonce, expires = document.get("nonce"), document.get("expires")
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128 or not nonce.isprintable():
        raise AdminRequestMalformedError("nonce must be a string of 16 to 128 printable "
                                         "characters")
    try:
        moment = parse_date_time(expires)
    except (TypeError, ValueError):
        raise AdminRequestMalformedError("expires must be an XML Schema dateTime") from None
    if moment <= now:
        raise AdminRequestExpiredError(f"the request expired at {expires}", expires=expires)
    if moment > now + MAX_LIFETIME:
        raise AdminRequestMalformedError(f"expires may be at most {MAX_LIFETIME} ahead")
    return AdminRequest(nonce, expires)


def _now() -> datetime:
    return datetime.now(UTC)


class AdminRequestGuard:
    """Ledger validator wrapper: expiry and single use of nonces, then the inner validator."""

    def __init__(self, inner: Any, clock: Callable[[], datetime] = _now) -> None:
        self.inner = inner
        self.clock = clock

    def validate(self, session: WriteSession, first_seq: int, submissions: Sequence[Any]
                 ) -> list[int | None]:
        now = self.clock()
        requests = [check_admin_request(sub.document, now) for sub in submissions]
        nonces = [r.nonce for r in requests]
        if len(set(nonces)) != len(nonces):
            raise AdminRequestReplayedError("a nonce is used twice in one batch")
        seen = used_nonce(session, nonces)
        if seen is not None:
            raise AdminRequestReplayedError(f"nonce {seen} was already used", nonce=seen)
        answers = list(self.inner.validate(session, first_seq, submissions))
        rows, seq = [], first_seq
        for request, answer in zip(requests, answers, strict=True):
            rows.append({"nonce": request.nonce, "expires": request.expires,
                         "seq": seq if answer is None else answer})
            seq += answer is None
        record_nonces(session, rows)
        return answers


class AdminSettingsValidator:
    """Validator of "settings" requests: signed by the admin key and nobody else (refused
    with ADMIN_SIGNATURE_REQUIRED before anything is resolved), then the ledger's own
    settings validator (the engine's check: known settings in range, the admin proof)."""

    def __init__(self, admin_did: str, inner: Any) -> None:
        self.admin_did = admin_did
        self.inner = inner

    def validate(self, session: WriteSession, first_seq: int, submissions: Sequence[Any]
                 ) -> list[int | None]:
        for sub in submissions:
            doc = sub.document
            if doc.get("type") != SETTINGS_TYPE or not isinstance(doc.get("settings"), dict) \
                    or not doc["settings"]:
                raise AdminRequestMalformedError(
                    f"a settings request is a {SETTINGS_TYPE} with non-empty `settings`")
            proofs = doc.get("proof")
            methods = [p.get("verificationMethod") if isinstance(p, dict) else None
                       for p in (proofs if isinstance(proofs, list) else [proofs])]
            # Only the admin key's proofs are resolvable here: anyone else's is refused
            # before resolution (whose error would not say what is wrong).
            if not all(isinstance(m, str) and m.split("#", 1)[0] == self.admin_did
                       for m in methods):
                raise AdminSignatureError("settings must be signed by the ledger's admin key")
        return list(self.inner.validate(session, first_seq, submissions))


def install_admin_guard(ledger: Ledger) -> None:
    """Put the nonce guard in front of the ledger's registry validator and admit admin-signed
    settings: what the API appends as "registry" or "settings" is an administrative request."""
    ledger.validators["registry"] = AdminRequestGuard(ledger.validators["registry"])
    ledger.validators["settings"] = AdminRequestGuard(AdminSettingsValidator(
        ledger.admin_did, ledger.validators["settings"]))
