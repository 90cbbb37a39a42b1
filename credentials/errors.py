"""The one error base of batterytrace.

Every failure the project can report is a `BatterytraceError` subclass with a stable `code`
(shared by the command line, the HTTP problem details and the verification reports), a
human message, and an exit status (1: verification failed, 2: unusable input). Other packages
subclass these classes in their own `errors.py`; `tests/test_errors.py` checks that codes are
unique across the project.

Codes use the specifications' names where they exist (VC Data Model 2.0, Data Integrity).
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://batterytrace.dev/problems/"

EXIT_OK = 0
EXIT_VERIFICATION_FAILED = 1
EXIT_UNUSABLE_INPUT = 2


class BatterytraceError(Exception):
    """Base of every error batterytrace reports.

    Subclasses set `code` (stable, UPPER_SNAKE), `title`, `exit_code` and `http_status`.
    Instances carry a message and optional structured `details` (never secret material).
    """

    code: ClassVar[str] = "BATTERYTRACE_ERROR"
    title: ClassVar[str] = "batterytrace error"
    exit_code: ClassVar[int] = EXIT_UNUSABLE_INPUT
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @classmethod
    def problem_type(cls) -> str:
        """The RFC 9457 problem `type` URI for this error."""
        return PROBLEM_BASE + cls.code

    def diagnostics(self) -> str:
        """A one-line, human-friendly explanation: `CODE: message`."""
        return f"{self.code}: {self.message}"

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """RFC 9457 problem details for this error."""
        problem: dict[str, Any] = {
            "type": self.problem_type(),
            "title": self.title,
            "status": self.http_status,
            "detail": self.message,
            "code": self.code,
        }
        if instance:
            problem["instance"] = instance
        if self.details:
            problem["details"] = _jsonable(self.details)
        return problem

    def __str__(self) -> str:
        return self.diagnostics()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class VerificationError(BatterytraceError):
    """Something was checked and found wrong (exit 1)."""

    code = "VERIFICATION_ERROR"
    title = "Verification failed"
    exit_code = EXIT_VERIFICATION_FAILED
    http_status = 422


class InputError(BatterytraceError):
    """The input cannot be used at all (exit 2)."""

    code = "INPUT_ERROR"
    title = "Unusable input"
    exit_code = EXIT_UNUSABLE_INPUT
    http_status = 400


# --- VC Data Model 2.0 names -------------------------------------------------------------


class ParsingError(InputError):
    """Malformed JSON or a document that is not a JSON object."""

    code = "PARSING_ERROR"
    title = "Document could not be parsed"


class MalformedValueError(VerificationError):
    """A property of a credential or presentation has a value the data model forbids."""

    code = "MALFORMED_VALUE_ERROR"
    title = "Malformed value"


class RangeError(VerificationError):
    """A value is outside its permitted range (for example validFrom after validUntil)."""

    code = "RANGE_ERROR"
    title = "Value out of range"


class SchemaValidationError(VerificationError):
    """A document does not validate against its JSON Schema."""

    code = "SCHEMA_VALIDATION_ERROR"
    title = "Schema validation failed"


class NotYetValidError(VerificationError):
    code = "NOT_YET_VALID_ERROR"
    title = "Credential not yet valid"


class ExpiredError(VerificationError):
    code = "EXPIRED_ERROR"
    title = "Credential expired"


# --- Data Integrity names ----------------------------------------------------------------


class ProofVerificationError(VerificationError):
    """The proof does not verify (the document or the proof was changed, or the wrong key)."""

    code = "PROOF_VERIFICATION_ERROR"
    title = "Proof verification failed"


class MalformedProofError(VerificationError):
    """The proof is missing required fields, names an unknown cryptosuite, or its value is bad."""

    code = "MALFORMED_PROOF_ERROR"
    title = "Malformed proof"


class MismatchedProofPurposeError(VerificationError):
    code = "MISMATCHED_PROOF_PURPOSE_ERROR"
    title = "Proof purpose does not match"


class InvalidChallengeError(VerificationError):
    code = "INVALID_CHALLENGE_ERROR"
    title = "Challenge does not match"


class InvalidDomainError(VerificationError):
    code = "INVALID_DOMAIN_ERROR"
    title = "Domain does not match"


class ProofGenerationError(InputError):
    code = "PROOF_GENERATION_ERROR"
    title = "Proof could not be generated"


class DataLossDetectionError(VerificationError):
    """JSON-LD expansion dropped a property: the signed RDF would not cover it."""

    code = "DATA_LOSS_DETECTION_ERROR"
    title = "Data loss detected during canonicalization"


class CryptographicSecurityError(VerificationError):
    code = "CRYPTOGRAPHIC_SECURITY_ERROR"
    title = "Cryptographic security error"


# --- keys, DIDs, canonicalization --------------------------------------------------------


class KeyFormatError(InputError):
    """A key file or multibase key is malformed."""

    code = "KEY_FORMAT_ERROR"
    title = "Malformed key"


class InvalidDidError(InputError):
    """A DID is malformed (wrong method, codec, length or encoding)."""

    code = "INVALID_DID_ERROR"
    title = "Invalid DID"


class DidResolutionError(VerificationError):
    """A DID or verification method cannot be resolved offline."""

    code = "DID_RESOLUTION_ERROR"
    title = "DID could not be resolved"


class VerificationMethodError(VerificationError):
    """The verification method does not belong to the issuer or holder, or is not authorised."""

    code = "VERIFICATION_METHOD_ERROR"
    title = "Verification method not authorised"


class CanonicalizationError(InputError):
    """A document cannot be canonicalized (RFC 8785), for example an integer above 2^53."""

    code = "CANONICALIZATION_ERROR"
    title = "Document cannot be canonicalized"


# --- added with the credentials core (did, data_integrity, vc, presentation) -------------


class ProofExpiredError(ProofVerificationError):
    """The proof's `expires` time has passed at the time of verification."""

    code = "PROOF_EXPIRED_ERROR"
    title = "Proof expired"


class Ed25519SignatureError(VerificationError):
    """An Ed25519 signature is refused by `keys.verify_ed25519`: it does not verify, or it
    breaks the documented strictness (non-canonical S, small-order or non-canonical public key
    or R, wrong length). `reason` (also in `details`) is one of `keys.ED25519_REASONS`."""

    code = "ED25519_SIGNATURE_ERROR"
    title = "Ed25519 signature refused"

    def __init__(self, message: str, reason: str, **details: Any) -> None:
        super().__init__(message, reason=reason, **details)
        self.reason = reason


def all_error_classes() -> list[type[BatterytraceError]]:
    """Every BatterytraceError subclass currently imported (for the uniqueness test)."""
    seen: list[type[BatterytraceError]] = []
    stack: list[type[BatterytraceError]] = [BatterytraceError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
