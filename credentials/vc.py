"""The W3C Verifiable Credentials Data Model 2.0: structural checks and verification.

`check_credential` applies the data model's MUSTs (first @context, types, issuer, subject,
date-time values and validFrom <= validUntil, typed status / schema / evidence / terms of use /
refresh objects), each failure a typed error; `validate_schema` runs the bundled W3C JSON Schema
(credentials/data/schemas/). `verify_credential` adds the Data Integrity proofs, the binding of
the verification method to the issuer, and validity at a given time. Failures raise; the
result describes a success (and its warnings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from .compiled_schema import Accepts, compile_accepting
from .data_integrity import ProofResult, format_date_time, parse_date_time, verify_proofs
from .did import Resolver
from .errors import (
    ExpiredError,
    MalformedValueError,
    NotYetValidError,
    ParsingError,
    RangeError,
    SchemaValidationError,
    VerificationMethodError,
)
from .jsonld_checks import check_jsonld

VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
VC_V1_CONTEXT = "https://www.w3.org/2018/credentials/v1"
VERIFIABLE_CREDENTIAL = "VerifiableCredential"
VERIFIABLE_PRESENTATION = "VerifiablePresentation"
CREDENTIAL_SCHEMA = "verifiable-credential-schema.json"
PRESENTATION_SCHEMA = "verifiable-presentation-schema.json"

# Properties whose values are objects that MUST carry a `type` (and, for some, an `id`).
TYPED_PROPERTIES = {
    "credentialStatus": False,
    "credentialSchema": True,
    "evidence": False,
    "termsOfUse": False,
    "refreshService": True,
}
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
_DATE_FIELDS = ("validFrom", "validUntil")


@dataclass(frozen=True)
class CredentialResult:
    """A verified credential: what was checked, who issued it, about whom, and warnings."""

    ok: bool
    checks: tuple[str, ...]
    issuer: str | None
    subject_ids: tuple[str, ...]
    types: tuple[str, ...] = ()
    id: str | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    proofs: tuple[ProofResult, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for `--json` and the HTTP API)."""
        return asdict(self)


# --- small checks shared with presentations -------------------------------------------------


def is_url(value: Any) -> bool:
    """True for a string that is an absolute URI (a scheme, a colon, no whitespace)."""
    return isinstance(value, str) and _URL.fullmatch(value) is not None


def as_list(value: Any) -> list[Any]:
    """A JSON value as a list (a list stays as it is)."""
    return value if isinstance(value, list) else [value]


def check_context(doc: dict[str, Any], what: str = "credential") -> None:
    """@context is an ordered list whose first item is the VC 2.0 context URL."""
    context = doc.get("@context")
    if not isinstance(context, list) or not context:
        raise MalformedValueError(f"{what} @context must be a non-empty list")
    if context[0] != VC_V2_CONTEXT:
        raise MalformedValueError(f"the first @context of a {what} must be {VC_V2_CONTEXT}")
    for position, item in enumerate(context):
        if not ((isinstance(item, str) and item) or (isinstance(item, dict) and item)):
            raise MalformedValueError(f"{what} @context items must be URLs or objects")
        if item in context[:position]:
            raise MalformedValueError(f"{what} @context items must be unique")


def check_types(doc: dict[str, Any], required: str) -> tuple[str, ...]:
    """`type` is a string or list of strings that contains `required`."""
    value = doc.get("type")
    types = as_list(value)
    if value is None or not types or not all(isinstance(t, str) and t for t in types):
        raise MalformedValueError("type must be a string or a non-empty list of strings")
    if required not in types:
        raise MalformedValueError(f"type must contain {required}")
    return tuple(types)


def check_optional_url(doc: dict[str, Any], name: str, where: str = "") -> None:
    """`name`, when present, is a URL."""
    if name in doc and not is_url(doc[name]):
        raise MalformedValueError(f"{where}{name} must be a URL")


def issuer_id(doc: dict[str, Any]) -> str | None:
    """The issuer URL of a credential (a string, or the `id` of an issuer object)."""
    issuer = doc.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    return issuer if isinstance(issuer, str) else None


# --- structure ------------------------------------------------------------------------------


def check_credential(doc: Any) -> list[str]:
    """Apply the VC Data Model 2.0 MUSTs; return warnings, raise a typed error on the first
    violation (ParsingError, MalformedValueError, RangeError)."""
    if not isinstance(doc, dict):
        raise ParsingError("a credential must be a JSON object")
    warnings: list[str] = []
    check_context(doc)
    # As JSON-LD-aware verifiers read it (contexts, terms, types, values).
    warnings.extend(check_jsonld(doc))
    check_types(doc, VERIFIABLE_CREDENTIAL)
    check_optional_url(doc, "id")
    _check_issuer(doc)
    _check_subjects(doc)
    _check_language_values(doc)
    warnings.extend(_check_dates(doc))
    for name, needs_id in TYPED_PROPERTIES.items():
        if name in doc:
            _check_typed_objects(doc[name], name, needs_id)
    for legacy in ("issuanceDate", "expirationDate"):
        if legacy in doc:
            warnings.append(f"{legacy} is a VC 1.1 property; VC 2.0 uses validFrom/validUntil")
    return warnings


def _check_issuer(doc: dict[str, Any]) -> None:
    if "issuer" not in doc:
        raise MalformedValueError("a credential must have an issuer")
    issuer = doc["issuer"]
    if isinstance(issuer, dict):
        if not is_url(issuer.get("id")):
            raise MalformedValueError("an issuer object must have a URL id")
    elif not is_url(issuer):
        raise MalformedValueError("issuer must be a URL or an object with a URL id")


def _check_subjects(doc: dict[str, Any]) -> None:
    if "credentialSubject" not in doc:
        raise MalformedValueError("a credential must have a credentialSubject")
    subjects = as_list(doc["credentialSubject"])
    if not subjects:
        raise MalformedValueError("credentialSubject must not be an empty list")
    for subject in subjects:
        if not isinstance(subject, dict) or not subject:
            raise MalformedValueError("each credentialSubject must be a non-empty object")
        check_optional_url(subject, "id", "credentialSubject.")


def _check_language_values(doc: dict[str, Any]) -> None:
    for name in ("name", "description"):
        if name not in doc:
            continue
        for value in as_list(doc[name]):
            if isinstance(value, str):
                continue
            if isinstance(value, dict) and isinstance(value.get("@value"), str):
                continue
            raise MalformedValueError(f"{name} must be a string or a language value object")


def _check_dates(doc: dict[str, Any]) -> list[str]:
    warnings = []
    moments: dict[str, datetime] = {}
    for name in _DATE_FIELDS:
        if name not in doc:
            continue
        try:
            moments[name] = parse_date_time(doc[name])
        except ValueError as exc:
            raise MalformedValueError(f"{name}: {exc}") from None
        if not _has_offset(doc[name]):
            warnings.append(f"{name} has no time zone offset; read as UTC")
    if len(moments) == 2 and moments["validFrom"] > moments["validUntil"]:
        raise RangeError("validFrom is later than validUntil")
    return warnings


def _has_offset(value: str) -> bool:
    return value.endswith("Z") or re.search(r"[+-]\d\d:\d\d\Z", value) is not None


def _check_typed_objects(value: Any, name: str, needs_id: bool) -> None:
    items = as_list(value)
    if not items:
        raise MalformedValueError(f"{name} must not be an empty list")
    for item in items:
        if not isinstance(item, dict):
            raise MalformedValueError(f"{name} must be an object or a list of objects")
        types = as_list(item.get("type"))
        if item.get("type") is None or not types or not all(isinstance(t, str) for t in types):
            raise MalformedValueError(f"each {name} must have a type")
        if needs_id and "id" not in item:
            raise MalformedValueError(f"each {name} must have an id")
        check_optional_url(item, "id", f"{name}.")


# --- JSON Schema ----------------------------------------------------------------------------


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A bundled W3C JSON Schema (credentials/data/schemas/<name>)."""
    text = resources.files(__package__).joinpath("data", "schemas", name).read_text("utf-8")
    return json.loads(text)


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    # The presentation schema refers to the credential schema by its $id: serve it locally.
    registry = Registry().with_resources(
        (load_schema(n)["$id"], Resource.from_contents(load_schema(n)))
        for n in (CREDENTIAL_SCHEMA, PRESENTATION_SCHEMA)
    )
    return Draft202012Validator(load_schema(name), registry=registry)


@cache
def _accepts(name: str) -> Accepts:
    """The bundled W3C schema compiled once (credentials/compiled_schema.py)."""
    others = (CREDENTIAL_SCHEMA, PRESENTATION_SCHEMA)
    return compile_accepting(
        load_schema(name), resources={load_schema(n)["$id"]: load_schema(n) for n in others}
    )


def validate_schema(doc: Any, schema: str = CREDENTIAL_SCHEMA) -> list[str]:
    """Validate against the bundled W3C JSON Schema; raise SchemaValidationError.

    The compiled validator accepts; only a document it rejects pays for jsonschema, the
    reference, which decides and names the field. The W3C schema's date-time pattern demands
    an offset, while the data model reads a value without one as UTC: that single mismatch is
    returned as a warning instead.
    """
    if _accepts(schema)(doc):
        return []
    validator = _validator(schema)
    if validator.is_valid(doc):
        return []
    warnings = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        if _is_offsetless_date(doc, error):
            warnings.append(f"{where} has no time zone offset (schema pattern); read as UTC")
            continue
        raise SchemaValidationError(f"{where}: {error.message}", schema=schema)
    return warnings


def _is_offsetless_date(doc: Any, error: Any) -> bool:
    path = list(error.absolute_path)
    if error.validator != "pattern" or len(path) != 1 or path[0] not in _DATE_FIELDS:
        return False
    try:
        parse_date_time(doc[path[0]])
    except ValueError:
        return False
    return True


# --- verification ---------------------------------------------------------------------------


def verify_credential(
    doc: Any,
    resolver: Resolver,
    *,
    at: datetime | None = None,
    proof_only: bool = False,
    schema: bool = True,
) -> CredentialResult:
    """Verify a credential: structure and JSON Schema, every Data Integrity proof
    (assertionMethod), a proof by the issuer (its verification method is controlled by the
    issuer; for did:key the issuer DID itself), and validity at `at` (default now).

    `proof_only` checks the proofs alone (the W3C vectors' issuers are example URLs no
    verifier can bind to a key). `schema=False` skips the jsonschema pass (the structural
    checks still run). Raises a typed BatterytraceError on failure.
    """
    if not isinstance(doc, dict):
        raise ParsingError("a credential must be a JSON object")
    moment = _aware(at)
    checks: list[str] = []
    warnings: list[str] = []
    if not proof_only:
        warnings.extend(check_credential(doc))
        checks.append("structure")
        if schema:
            warnings.extend(validate_schema(doc))
            checks.append("schema")
    proofs = verify_proofs(doc, resolver, expected_purpose="assertionMethod", now=moment)
    checks.append("proof")
    issuer = issuer_id(doc)
    if not proof_only:
        warnings.extend(_check_issuer_binding(issuer, proofs))
        checks.append("issuer")
        _check_validity(doc, moment)
        checks.append("validity")
    subjects = as_list(doc.get("credentialSubject"))
    types = as_list(doc.get("type"))
    return CredentialResult(
        ok=True,
        checks=tuple(checks),
        issuer=issuer,
        subject_ids=tuple(s["id"] for s in subjects if isinstance(s, dict) and "id" in s),
        types=tuple(t for t in types if isinstance(t, str)),
        id=doc.get("id") if isinstance(doc.get("id"), str) else None,
        valid_from=doc.get("validFrom"),
        valid_until=doc.get("validUntil"),
        proofs=tuple(proofs),
        warnings=tuple(warnings),
    )


def _aware(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def controlled_by(controller: str, proofs: Iterable[ProofResult]) -> list[ProofResult]:
    """The proofs whose verification method belongs to `controller` (by DID and controller)."""
    return [
        p
        for p in proofs
        if p.controller == controller and p.verification_method.split("#", 1)[0] == controller
    ]


def _check_issuer_binding(issuer: str | None, proofs: list[ProofResult]) -> list[str]:
    if issuer is None:
        raise MalformedValueError("a credential must have an issuer")
    bound = controlled_by(issuer, proofs)
    if not bound:
        methods = ", ".join(p.verification_method for p in proofs)
        raise VerificationMethodError(f"no proof by the issuer {issuer} (signed by {methods})")
    return [
        f"proof by {p.verification_method} is not the issuer's" for p in proofs if p not in bound
    ]


def check_validity(doc: dict[str, Any], at: datetime | None = None) -> None:
    """validFrom <= `at` (default now) <= validUntil, else NotYetValidError / ExpiredError."""
    _check_validity(doc, _aware(at))


def _check_validity(doc: dict[str, Any], moment: datetime) -> None:
    if "validFrom" in doc and moment < parse_date_time(doc["validFrom"]):
        raise NotYetValidError(
            f"valid from {doc['validFrom']}, checked at {format_date_time(moment)}"
        )
    if "validUntil" in doc and moment > parse_date_time(doc["validUntil"]):
        raise ExpiredError(
            f"valid until {doc['validUntil']}, checked at {format_date_time(moment)}"
        )


__all__ = [
    "CREDENTIAL_SCHEMA",
    "PRESENTATION_SCHEMA",
    "VC_V2_CONTEXT",
    "VERIFIABLE_CREDENTIAL",
    "VERIFIABLE_PRESENTATION",
    "CredentialResult",
    "as_list",
    "check_context",
    "check_credential",
    "check_types",
    "check_validity",
    "controlled_by",
    "is_url",
    "issuer_id",
    "load_schema",
    "validate_schema",
    "verify_credential",
]
