"""RFC 8785 JSON Canonicalization Scheme: the one place canonical bytes are computed."""

from __future__ import annotations

from typing import Any

import rfc8785

from .errors import CanonicalizationError


def canonicalize(document: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value.

    Raises CanonicalizationError for values JCS cannot represent (integers beyond 2^53,
    NaN, lone surrogates, non-JSON types).
    """
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalizationError(f"cannot canonicalize document: {exc}") from exc
