"""W3C Data Integrity proofs: eddsa-jcs-2022 (sign and verify), eddsa-rdfc-2022 (verify).

eddsa-jcs-2022, as the Recommendation (and ../shared/standards/README.md section 2) says:
proofConfig = the proof options plus the document's `@context`; hashData =
sha256(JCS(proofConfig)) || sha256(JCS(document without proof)); the proof value is
"z" + base58btc(Ed25519(hashData)). A proof set is a list of independent proofs over the
document without `proof`; a proof that names a `previousProof` (a proof chain) also covers
the proofs it names, set as the document's `proof` list.

Verification is the hot path of the whole system, so it avoids deep copies (the unsecured
document is a shallow copy without `proof`), caches did:key decodes (in did.py) and the
per-key strictness decisions (in keys.py), and decodes base58 with the plain-integer codec of
did.py. Signatures are checked by `keys.verify_ed25519`, the project's one Ed25519 path: RFC 8032
strict (S < L, no small-order or non-canonical key or R), then libsodium (PyNaCl), about twice
as fast as OpenSSL's Ed25519 here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from .canonical import canonicalize
from .did import DID_KEY_PREFIX, Resolver, b58decode, b58encode, did_key_from_public_key
from .errors import (
    BatterytraceError,
    Ed25519SignatureError,
    InvalidChallengeError,
    InvalidDomainError,
    MalformedProofError,
    MismatchedProofPurposeError,
    ProofExpiredError,
    ProofGenerationError,
    ProofVerificationError,
)
from .keys import REASON_MISMATCH, Ed25519Key, verify_ed25519
from .rdfc import rdfc_hash_data

DATA_INTEGRITY_PROOF = "DataIntegrityProof"
EDDSA_JCS_2022 = "eddsa-jcs-2022"
EDDSA_RDFC_2022 = "eddsa-rdfc-2022"
CRYPTOSUITES = (EDDSA_JCS_2022, EDDSA_RDFC_2022)
# A proof `created` this far ahead of the verifier's clock is still accepted.
CLOCK_SKEW = timedelta(minutes=5)

# XML Schema dateTime, as the VC Data Model 2.0 gives it; the offset is optional (read as UTC).
_DATE_TIME = re.compile(
    r"(-?(?:[1-9][0-9]{3,}|0[0-9]{3}))-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T(?:([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(\.[0-9]+)?|(24:00:00(?:\.0+)?))"
    r"(Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?"
)


def parse_date_time(value: Any) -> datetime:
    """An aware UTC datetime from an XML Schema dateTime string; a value without offset is
    UTC (VC Data Model 2.0). Raises ValueError for anything else (including years outside
    1..9999, which Python cannot represent)."""
    if not isinstance(value, str):
        raise ValueError(f"not a date-time string: {value!r:.60}")
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise ValueError(f"not an XML Schema dateTime: {value!r:.60}")
    year, month, day, hour, minute, second, fraction, midnight, offset = match.groups()
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if midnight:
        moment = datetime(int(year), int(month), int(day), tzinfo=UTC) + timedelta(days=1)
    else:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, UTC
        )
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        moment -= sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    return moment


def format_date_time(moment: datetime) -> str:
    """`YYYY-MM-DDThh:mm:ssZ` in UTC (naive datetimes are read as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ProofResult:
    """One verified proof: who signed, how, and for what."""

    verification_method: str
    controller: str
    cryptosuite: str
    proof_purpose: str
    created: str | None = None
    expires: str | None = None
    proof_id: str | None = None


# --- hashing -----------------------------------------------------------------------------


def jcs_hash_data(
    unsecured_document: Mapping[str, Any],
    proof_config: Mapping[str, Any],
    canonical_document: bytes | None = None,
) -> bytes:
    """eddsa-jcs-2022 hashData: sha256(JCS(proof_config)) || sha256(JCS(document)).

    `canonical_document`, when given, must be JCS(unsecured_document), computed by the caller.
    """
    if canonical_document is None:
        canonical_document = canonicalize(unsecured_document)
    return _config_digest(proof_config) + hashlib.sha256(canonical_document).digest()


def _config_digest(proof_config: Mapping[str, Any]) -> bytes:
    """sha256(JCS(proof_config)), remembered for configs of strings and lists of strings: a
    bulk issuance signs thousands of documents with one config (same created, method and
    @context)."""
    frozen = []
    for name, value in proof_config.items():
        if type(value) is list and all(type(v) is str for v in value):
            value = tuple(value)
        elif type(value) is not str:  # anything else (e.g. an @context object): no memo
            return hashlib.sha256(canonicalize(proof_config)).digest()
        frozen.append((name, value))
    return _frozen_config_digest(tuple(sorted(frozen)))


@lru_cache(maxsize=256)
def _frozen_config_digest(frozen: tuple[tuple[str, str | tuple[str, ...]], ...]) -> bytes:
    # Only strings and tuples of strings reach here, so equal keys mean equal JSON.
    return hashlib.sha256(canonicalize({k: list(v) if type(v) is tuple else v
                                        for k, v in frozen})).digest()


def _hash_data(
    unsecured: dict[str, Any], proof: Mapping[str, Any], canonical: bytes | None = None
) -> bytes:
    """hashData for the proof's cryptosuite (proof config = the proof without proofValue);
    `canonical` is JCS(unsecured) when the caller has it."""
    proof_config = {k: v for k, v in proof.items() if k != "proofValue"}
    suite = proof.get("cryptosuite")
    if suite == EDDSA_JCS_2022:
        if "@context" in proof_config and unsecured.get("@context") != proof_config["@context"]:
            # The Recommendation only asks that the document's @context START with the
            # proof's; we require equality, so contexts appended after signing fail too.
            raise ProofVerificationError("the document @context differs from the proof's")
        return jcs_hash_data(unsecured, proof_config, canonical)
    if suite == EDDSA_RDFC_2022:
        return rdfc_hash_data(unsecured, proof_config)  # PyLD is loaded there, on first use
    raise MalformedProofError(f"unknown cryptosuite {suite!r:.60}")


def _check_signature(hash_data: bytes, signature: bytes, public_key: bytes) -> None:
    """The proof's Ed25519 signature over hashData, through the one strict path
    (`keys.verify_ed25519`); a refusal is a PROOF_VERIFICATION_ERROR whose details name the
    reason (MISMATCH for a plain bad signature)."""
    try:
        verify_ed25519(public_key, signature, hash_data)
    except Ed25519SignatureError as exc:
        if exc.reason == REASON_MISMATCH:
            message = "the signature does not match the document"
        else:
            message = f"the signature is refused: {exc.message}"
        raise ProofVerificationError(message, reason=exc.reason) from None


def _decode_proof_value(value: Any) -> bytes:
    if not isinstance(value, str) or not value.startswith("z"):
        raise MalformedProofError("proofValue must be a base58btc multibase string ('z...')")
    try:
        signature = b58decode(value[1:])
    except ValueError:
        raise MalformedProofError("proofValue is not valid base58btc") from None
    if len(signature) != 64:
        raise MalformedProofError(f"proofValue is {len(signature)} bytes, expected 64")
    return signature


# --- signing -----------------------------------------------------------------------------


def sign(
    document: dict[str, Any],
    key: Ed25519Key,
    *,
    verification_method: str | None = None,
    proof_purpose: str = "assertionMethod",
    created: str | None = None,
    expires: str | None = None,
    challenge: str | None = None,
    domain: str | None = None,
    previous_proof: str | None = None,
    proof_id: str | None = None,
) -> dict[str, Any]:
    """A NEW document: `document` with an eddsa-jcs-2022 proof added. An existing proof turns
    `proof` into a proof set; `previous_proof` (the id of a proof already there) makes a
    proof chain. `created` defaults to now (UTC, seconds). Raises ProofGenerationError."""
    if not isinstance(document, dict):
        raise ProofGenerationError("only a JSON object can be signed")
    if key.seed is None:
        raise ProofGenerationError("the key has no secret part and cannot sign")
    for name, value in (("created", created), ("expires", expires)):
        if value is not None:
            try:
                parse_date_time(value)
            except ValueError as exc:
                raise ProofGenerationError(f"{name}: {exc}") from None
    try:
        existing = _proof_list(document["proof"]) if "proof" in document else []
    except MalformedProofError as exc:
        raise ProofGenerationError(f"the document's existing proof: {exc.message}") from None
    unsecured = {k: v for k, v in document.items() if k != "proof"}

    options: dict[str, Any] = {}
    if proof_id is not None:
        options["id"] = proof_id
    options["type"] = DATA_INTEGRITY_PROOF
    options["cryptosuite"] = EDDSA_JCS_2022
    options["created"] = created or format_date_time(datetime.now(UTC))
    if expires is not None:
        options["expires"] = expires
    options["verificationMethod"] = verification_method or _default_method(key)
    options["proofPurpose"] = proof_purpose
    if challenge is not None:
        options["challenge"] = challenge
    if domain is not None:
        options["domain"] = domain
    if previous_proof is not None:
        options["previousProof"] = previous_proof
        unsecured["proof"] = _previous_proofs(previous_proof, existing, ProofGenerationError)
    if "@context" in document:
        options["@context"] = document["@context"]

    try:
        signature = key.sign(jcs_hash_data(unsecured, options))
    except BatterytraceError as exc:
        if isinstance(exc, ProofGenerationError):
            raise
        raise ProofGenerationError(exc.message) from exc
    proof = {**options, "proofValue": "z" + b58encode(signature)}
    signed = dict(document)
    signed["proof"] = [*existing, proof] if existing else proof
    return signed


def _default_method(key: Ed25519Key) -> str:
    """`key.verification_method`, through did.py's cached encoder (multiformats is slow)."""
    if key.id:
        return key.id
    did = did_key_from_public_key(key.public_key)
    return f"{did}#{did[len(DID_KEY_PREFIX) :]}"


def _proof_list(value: Any) -> list[dict[str, Any]]:
    proofs = value if isinstance(value, list) else [value]
    if not proofs or not all(isinstance(p, dict) for p in proofs):
        raise MalformedProofError("proof must be an object or a non-empty list of objects")
    return proofs


def _previous_proofs(
    previous: Any, proofs: list[dict[str, Any]], error: type[BatterytraceError]
) -> list[dict[str, Any]]:
    """The proofs a chained proof covers (Data Integrity: 'matchingProofs')."""
    wanted = previous if isinstance(previous, list) else [previous]
    if not wanted or not all(isinstance(w, str) for w in wanted):
        raise MalformedProofError("previousProof must be a string or a list of strings")
    by_id = {p.get("id"): p for p in proofs if isinstance(p.get("id"), str)}
    missing = [w for w in wanted if w not in by_id]
    if missing:
        raise error(f"previousProof {missing[0]!r} is not in the proof set")
    return [by_id[w] for w in wanted]


# --- verification ------------------------------------------------------------------------

_REQUIRED = ("type", "cryptosuite", "verificationMethod", "proofPurpose", "proofValue")


def _check_shape(proof: Mapping[str, Any]) -> None:
    missing = [name for name in _REQUIRED if name not in proof]
    if missing:
        raise MalformedProofError(f"proof is missing {', '.join(missing)}")
    if proof["type"] != DATA_INTEGRITY_PROOF:
        raise MalformedProofError(f"proof type {proof['type']!r:.60} is not DataIntegrityProof")
    if proof["cryptosuite"] not in CRYPTOSUITES:
        raise MalformedProofError(f"unknown cryptosuite {proof['cryptosuite']!r:.60}")
    for name in ("verificationMethod", "proofPurpose"):
        if not isinstance(proof[name], str):
            raise MalformedProofError(f"proof {name} must be a string")


def _proof_time(proof: Mapping[str, Any], name: str) -> datetime | None:
    if name not in proof:
        return None
    try:
        return parse_date_time(proof[name])
    except ValueError as exc:
        raise MalformedProofError(f"proof {name}: {exc}") from None


def _check_times(proof: Mapping[str, Any], now: datetime) -> None:
    created = _proof_time(proof, "created")
    expires = _proof_time(proof, "expires")
    if created is not None and expires is not None and expires < created:
        raise MalformedProofError("proof expires before it was created")
    # `created` is the signer's claim: a proof from the future is refused against the real
    # clock, but judging at an earlier `now` (a log position) does not void a later proof.
    clock = datetime.now(UTC)
    if created is not None and created > clock + CLOCK_SKEW:
        raise ProofVerificationError(f"proof created {proof['created']}, in the future")
    if expires is not None and now > expires:
        raise ProofExpiredError(f"proof expired {proof['expires']}")


def _check_challenge_domain(
    proof: Mapping[str, Any], challenge: str | None, domain: str | None
) -> None:
    if challenge is not None and proof.get("challenge") != challenge:
        raise InvalidChallengeError("the proof challenge is not the one the verifier gave")
    if domain is not None:
        value = proof.get("domain")
        domains = value if isinstance(value, list) else [value]
        if domain not in domains:
            raise InvalidDomainError("the proof domain is not the verifier's domain")


def verify_proofs(
    document: dict[str, Any],
    resolver: Resolver,
    *,
    expected_purpose: str = "assertionMethod",
    challenge: str | None = None,
    domain: str | None = None,
    now: datetime | None = None,
    signed_here_by: bytes | None = None,
    unsecured_canonical: bytes | None = None,
) -> list[ProofResult]:
    """Verify every proof of `document` (a proof set must verify in full): shape, purpose,
    challenge and domain, `expires` against `now` (default: the clock), `created` not in the
    clock's future, the verification method in the `expected_purpose` relationship of its
    controller (through `resolver`), the signature.

    `signed_here_by` is for a caller that signed THIS document itself, in this process, with
    the secret key of that raw public key (a ledger appending anchors it has just signed):
    for a proof whose method resolves to exactly that key, the hashing and the Ed25519
    equation are skipped, as they could only succeed; every other check still runs. Never
    pass it for a document received from elsewhere.

    `unsecured_canonical` is JCS of THIS document without `proof`, when the caller already
    has it (`secured_canonical_parts`); it is used for eddsa-jcs-2022 proofs that are not
    chained, instead of canonicalizing the document again.

    Raises MalformedProofError, MismatchedProofPurposeError, InvalidChallengeError,
    InvalidDomainError, ProofExpiredError, ProofVerificationError, or the resolver's errors.
    """
    if not isinstance(document, dict):
        raise MalformedProofError("a secured document must be a JSON object")
    if "proof" not in document:
        raise MalformedProofError("the document has no proof")
    proofs = _proof_list(document["proof"])
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    results = []
    for proof in proofs:
        _check_shape(proof)
        if proof["proofPurpose"] != expected_purpose:
            raise MismatchedProofPurposeError(
                f"proof purpose is {proof['proofPurpose']!r:.40}, expected {expected_purpose}"
            )
        _check_challenge_domain(proof, challenge, domain)
        _check_times(proof, moment)
        method = resolver.resolve_verification_method(proof["verificationMethod"], expected_purpose)
        covered, canonical = unsecured, unsecured_canonical
        if "previousProof" in proof:
            canonical = None
            covered = dict(unsecured)
            covered["proof"] = _previous_proofs(
                proof["previousProof"], proofs, ProofVerificationError
            )
        if signed_here_by is None or method.public_key != signed_here_by:
            signature = _decode_proof_value(proof["proofValue"])
            _check_signature(_hash_data(covered, proof, canonical), signature, method.public_key)
        results.append(
            ProofResult(
                verification_method=proof["verificationMethod"],
                controller=method.controller,
                cryptosuite=proof["cryptosuite"],
                proof_purpose=proof["proofPurpose"],
                created=proof.get("created"),
                expires=proof.get("expires"),
                proof_id=proof.get("id"),
            )
        )
    return results


def verify_proof_bytes(
    document: dict[str, Any], public_key: bytes, *, proof: dict[str, Any] | None = None
) -> None:
    """Low-level check of one proof against an already-resolved raw Ed25519 public key.

    For callers that know the signer's key (the ledger resolves it from its registry): checks
    the proof's shape and signature only, NOT its purpose, times or verification method.
    `proof` defaults to the document's single proof. Raises MalformedProofError or
    ProofVerificationError.
    """
    if not isinstance(document, dict):
        raise MalformedProofError("a secured document must be a JSON object")
    if proof is None:
        proof = document.get("proof")
        if not isinstance(proof, dict):
            raise MalformedProofError("the document must carry exactly one proof object")
    _check_shape(proof)
    signature = _decode_proof_value(proof["proofValue"])
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    if "previousProof" in proof:
        unsecured["proof"] = _previous_proofs(
            proof["previousProof"], _proof_list(document.get("proof")), ProofVerificationError
        )
    _check_signature(_hash_data(unsecured, proof), signature, public_key)


__all__ = [
    "CRYPTOSUITES",
    "DATA_INTEGRITY_PROOF",
    "EDDSA_JCS_2022",
    "EDDSA_RDFC_2022",
    "ProofResult",
    "format_date_time",
    "jcs_hash_data",
    "parse_date_time",
    "sign",
    "verify_proof_bytes",
    "verify_proofs",
]
