"""W3C Verifiable Presentations: a holder wraps credentials and signs for one verifier.

The holder's proof has `proofPurpose: "authentication"` and carries the verifier's `challenge`
(and `domain`), so a presentation cannot be replayed to another verifier or another session.
Verification checks the presentation's structure and schema, its proof (purpose, challenge,
domain, the holder's key), then every credential inside.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from .data_integrity import ProofResult, sign, verify_proofs
from .did import Resolver, did_key_from_public_key
from .errors import (
    BatterytraceError,
    MalformedValueError,
    ParsingError,
    ProofGenerationError,
    VerificationMethodError,
)
from .jsonld_checks import check_jsonld
from .keys import Ed25519Key
from .vc import (
    PRESENTATION_SCHEMA,
    VC_V2_CONTEXT,
    VERIFIABLE_PRESENTATION,
    CredentialResult,
    as_list,
    check_context,
    check_credential,
    check_optional_url,
    check_types,
    check_validity,
    controlled_by,
    is_url,
    issuer_id,
    validate_schema,
    verify_credential,
)

ENVELOPED = "EnvelopedVerifiableCredential"


class EnvelopedCredentialError(BatterytraceError):
    """A presentation holds an enveloped credential (VC-JOSE-COSE), which this verifier does
    not implement: refused with that reason rather than accepted unchecked."""

    code = "ENVELOPED_CREDENTIAL_UNSUPPORTED"
    title = "Enveloped credentials are not supported"
    exit_code = 1
    http_status = 422


@dataclass(frozen=True)
class PresentationResult:
    """A verified presentation: its holder, its proofs and the result of each credential."""

    ok: bool
    checks: tuple[str, ...]
    holder: str | None
    credentials: tuple[CredentialResult, ...]
    proofs: tuple[ProofResult, ...]
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for `--json` and the HTTP API)."""
        return asdict(self)


def create_presentation(
    credentials: list[dict[str, Any]],
    holder_key: Ed25519Key,
    *,
    challenge: str,
    domain: str | None = None,
    holder: str | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    """A presentation of `credentials` signed by the holder for the verifier's `challenge`
    (and `domain`). `holder` defaults to the key's controller (its did:key when unset)."""
    if not isinstance(challenge, str) or not challenge:
        raise ProofGenerationError("a presentation needs the verifier's challenge")
    if not all(isinstance(c, dict) for c in credentials):
        raise ProofGenerationError("each credential must be a JSON object")
    presentation: dict[str, Any] = {
        "@context": [VC_V2_CONTEXT],
        "type": [VERIFIABLE_PRESENTATION],
        "holder": holder or holder_key.controller or did_key_from_public_key(holder_key.public_key),
        "verifiableCredential": list(credentials),
    }
    return sign(
        presentation,
        holder_key,
        proof_purpose="authentication",
        challenge=challenge,
        domain=domain,
        created=created,
    )


def holder_id(vp: dict[str, Any]) -> str | None:
    """The holder URL of a presentation (a string, or the `id` of a holder object)."""
    holder = vp.get("holder")
    if isinstance(holder, dict):
        holder = holder.get("id")
    return holder if isinstance(holder, str) else None


def check_presentation(vp: Any) -> list[str]:
    """The VC Data Model 2.0 MUSTs of a presentation (credentials are checked separately)."""
    if not isinstance(vp, dict):
        raise ParsingError("a presentation must be a JSON object")
    check_context(vp, "presentation")
    jsonld_warnings = check_jsonld(vp)
    check_types(vp, VERIFIABLE_PRESENTATION)
    check_optional_url(vp, "id")
    if "holder" in vp and not is_url(holder_id(vp)):
        raise MalformedValueError("holder must be a URL or an object with a URL id")
    credentials = as_list(vp.get("verifiableCredential", []))
    if not all(isinstance(c, dict) for c in credentials):
        raise MalformedValueError("verifiableCredential must hold credential objects")
    return jsonld_warnings + ([] if credentials else ["the presentation holds no credential"])


def verify_presentation(
    vp: Any,
    resolver: Resolver,
    *,
    challenge: str,
    domain: str | None = None,
    at: datetime | None = None,
) -> PresentationResult:
    """Verify a presentation: structure and schema, the holder's authentication proof with the
    verifier's `challenge` and `domain`, that the proof is the holder's (when a holder is
    named), then every credential inside at `at`. Raises a typed error on failure; errors of
    an inner credential name its position."""
    if not isinstance(challenge, str) or not challenge:
        raise ParsingError("verifying a presentation needs the challenge the verifier gave")
    warnings = check_presentation(vp)
    for index, credential in enumerate(as_list(vp.get("verifiableCredential", []))):
        if ENVELOPED in as_list(credential.get("type")):  # before the schema, which refuses it
            raise EnvelopedCredentialError(
                f"verifiableCredential[{index}]: an EnvelopedVerifiableCredential "
                "(VC-JOSE-COSE) is not supported by this verifier; present the credential "
                "secured with Data Integrity")
    warnings.extend(validate_schema(vp, PRESENTATION_SCHEMA))
    checks = ["structure", "schema"]
    proofs = verify_proofs(
        vp, resolver, expected_purpose="authentication", challenge=challenge, domain=domain, now=at
    )
    checks.append("proof")
    holder = holder_id(vp)
    if holder is None:
        warnings.append("the presentation names no holder")
    elif not controlled_by(holder, proofs):
        raise VerificationMethodError(f"the presentation is not signed by its holder {holder}")
    else:
        checks.append("holder")
    results = []
    holder_signed = holder is not None and bool(controlled_by(holder, proofs))
    for index, credential in enumerate(as_list(vp.get("verifiableCredential", []))):
        where = f"verifiableCredential[{index}]"
        try:
            if ("proof" not in credential and holder_signed
                    and issuer_id(credential) == holder):
                results.append(_self_asserted(credential, at))
                warnings.append(f"{where}: self-asserted by the holder, secured by the "
                                "presentation's proof (VC DM 2.0 section 4.12.4)")
            else:
                results.append(verify_credential(credential, resolver, at=at))
        except BatterytraceError as error:
            raise _located(error, where) from error
    checks.append("credentials")
    return PresentationResult(
        ok=True,
        checks=tuple(checks),
        holder=holder,
        credentials=tuple(results),
        proofs=tuple(proofs),
        warnings=tuple(warnings),
    )


def _self_asserted(credential: dict[str, Any], at: datetime | None) -> CredentialResult:
    """A credential whose issuer is the presentation's holder, without a proof of its own: its
    structure, schema and validity; the presentation's proof by the holder secures it."""
    warnings = check_credential(credential) + validate_schema(credential)
    check_validity(credential, at)
    subjects = as_list(credential.get("credentialSubject"))
    return CredentialResult(
        ok=True, checks=("structure", "schema", "self-asserted", "validity"),
        issuer=issuer_id(credential),
        subject_ids=tuple(s["id"] for s in subjects if isinstance(s, dict) and "id" in s),
        types=tuple(t for t in as_list(credential.get("type")) if isinstance(t, str)),
        id=credential.get("id") if isinstance(credential.get("id"), str) else None,
        valid_from=credential.get("validFrom"), valid_until=credential.get("validUntil"),
        warnings=tuple(warnings))


def _located(error: BatterytraceError, where: str) -> BatterytraceError:
    """The same error (same class and code) with its position in the presentation."""
    try:
        return type(error)(f"{where}: {error.message}", **error.details)
    except TypeError:  # a subclass with its own constructor: keep it as it is
        return error


__all__ = [
    "EnvelopedCredentialError",
    "PresentationResult",
    "check_presentation",
    "create_presentation",
    "holder_id",
    "verify_presentation",
]
