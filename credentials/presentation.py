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
from .keys import Ed25519Key
from .vc import (
    PRESENTATION_SCHEMA,
    VC_V2_CONTEXT,
    VERIFIABLE_PRESENTATION,
    CredentialResult,
    as_list,
    check_context,
    check_optional_url,
    check_types,
    controlled_by,
    is_url,
    validate_schema,
    verify_credential,
)


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
    check_types(vp, VERIFIABLE_PRESENTATION)
    check_optional_url(vp, "id")
    if "holder" in vp and not is_url(holder_id(vp)):
        raise MalformedValueError("holder must be a URL or an object with a URL id")
    credentials = as_list(vp.get("verifiableCredential", []))
    if not all(isinstance(c, dict) for c in credentials):
        raise MalformedValueError("verifiableCredential must hold credential objects")
    return [] if credentials else ["the presentation holds no credential"]


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
    for index, credential in enumerate(as_list(vp.get("verifiableCredential", []))):
        try:
            results.append(verify_credential(credential, resolver, at=at))
        except BatterytraceError as error:
            raise _located(error, f"verifiableCredential[{index}]") from error
    checks.append("credentials")
    return PresentationResult(
        ok=True,
        checks=tuple(checks),
        holder=holder,
        credentials=tuple(results),
        proofs=tuple(proofs),
        warnings=tuple(warnings),
    )


def _located(error: BatterytraceError, where: str) -> BatterytraceError:
    """The same error (same class and code) with its position in the presentation."""
    try:
        return type(error)(f"{where}: {error.message}", **error.details)
    except TypeError:  # a subclass with its own constructor: keep it as it is
        return error


__all__ = [
    "PresentationResult",
    "check_presentation",
    "create_presentation",
    "holder_id",
    "verify_presentation",
]
