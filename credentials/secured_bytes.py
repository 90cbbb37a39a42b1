"""The canonical byte layout of a secured document, with and without its proof: one home.

JCS writes an object's members sorted by name, so a document's bytes are its unsecured bytes
with `"proof":<JCS(proof)>` spliced in before the members that sort after "proof":
`secured_canonical_parts` and `with_proof_bytes` build them (signing, anchors, the engine), and
`unsecured_canonical` cuts them apart again.

RFC 8785 is the slow part of checking a signed document, and the bytes are often already at
hand (an entry hashed into the chain holds its document's canonical bytes). The C JSON encoder
with sorted keys and no spaces writes most JSON exactly as RFC 8785 does; its output is only
ever compared with bytes already known to be canonical, never trusted alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .canonical import canonicalize, compact_json

# `value` as compact JSON with sorted keys (the C encoder's output: JCS for most values, see
# `canonical.compact_is_canonical`); an alias, as a wrapper's frame costs on the hot path.
compact = compact_json


def compact_bytes(value: Any) -> bytes | None:
    """`compact(value)` as UTF-8, None when it cannot be encoded: a guess at JCS(value) that
    callers accept only where it matches bytes already known to be canonical."""
    try:
        return compact(value).encode()
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        return None


def unsecured_canonical(document: Mapping[str, Any], secured: bytes) -> bytes | None:
    """JCS of `document` without `proof`, cut out of `secured` = JCS(document) (the inverse
    of `data_integrity.secured_canonical_parts`): JCS writes the members sorted by name, so
    `secured` ends with `"proof":<JCS(proof)>` and then the members whose names sort after
    "proof" (`type`, `validFrom`: small, canonicalized alone to find the cut). None when
    the bytes are not laid out that way (then the caller canonicalizes)."""
    if "proof" not in document:
        return None
    # `secured` is canonical: the C encoder's guesses are checked by the `endswith` below
    # (a guess that is not JCS cannot match, and the caller canonicalizes).
    tail = {k: v for k, v in document.items() if k > "proof"}
    tail_bytes = compact_bytes(tail) if tail else b"{}"
    proof_bytes = compact_bytes(document["proof"])
    if tail_bytes is None or proof_bytes is None:
        return None
    tail_members = tail_bytes[1:-1]
    suffix = b'"proof":' + proof_bytes + (
        b"," + tail_members if tail else b"") + b"}"
    if not secured.endswith(suffix):
        return None
    head = secured[: len(secured) - len(suffix)]  # "{" or "{<members before proof>,"
    if head == b"{":
        return b"{" + tail_members + b"}"
    if not (head.startswith(b"{") and head.endswith(b",")):
        return None
    return head + tail_members + b"}" if tail else head[:-1] + b"}"


_PROOF_MEMBER = b'"proof":'


def secured_canonical_parts(document: dict[str, Any]) -> tuple[bytes, bytes]:
    """(JCS of `document` without `proof`, JCS of the whole `document`), canonicalizing its
    large members once.

    JCS writes an object's members sorted by name, each exactly as it would be written alone,
    so the whole document is the unsecured one with `"proof":<JCS(proof)>` put before the
    members whose names sort after "proof". Those (`type`, `validFrom`... in a credential) are
    canonicalized on their own to find where; `credentialSubject`, the bulk, only once.
    (Comparing names as Python strings is the UTF-16 order here: "proof" is ASCII, and an
    astral character is above it in both orders.)
    """
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    unsecured_bytes = canonicalize(unsecured)
    if "proof" not in document:
        return unsecured_bytes, unsecured_bytes
    return unsecured_bytes, with_proof_bytes(unsecured, unsecured_bytes, document["proof"])


def with_proof_bytes(unsecured: Mapping[str, Any], unsecured_bytes: bytes, proof: Any) -> bytes:
    """JCS of `unsecured` with member `proof` added, from `unsecured_bytes` = JCS(unsecured):
    `"proof":<JCS(proof)>` is spliced in before the members whose names sort after "proof"
    (see `secured_canonical_parts`)."""
    proof_member = _PROOF_MEMBER + canonicalize(proof)
    tail = {k: v for k, v in unsecured.items() if k > "proof"}
    if not tail:
        comma = b"," if len(unsecured_bytes) > 2 else b""
        return unsecured_bytes[:-1] + comma + proof_member + b"}"
    tail_members = canonicalize(tail)[1:-1]
    if not unsecured_bytes.endswith(tail_members + b"}"):  # cannot happen: JCS composes
        return canonicalize({**unsecured, "proof": proof})
    head = unsecured_bytes[1 : len(unsecured_bytes) - 1 - len(tail_members)]  # "" or "...,"
    return b"{" + head + proof_member + b"," + tail_members + b"}"
