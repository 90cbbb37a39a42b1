"""RFC 8785 JSON Canonicalization Scheme: the one place canonical bytes are computed.

`canonicalize` takes a fast path through the standard library's C JSON encoder
(`sort_keys`, compact separators, `ensure_ascii=False`) when a cheap walk of the document shows
that the encoder's output is exactly what `rfc8785.dumps` writes, and falls back to `rfc8785`
otherwise. Why the fast path is byte-identical (a hypothesis test in tests/test_canonical.py
checks it against `rfc8785` on generated documents):

- Only exact `dict`, `list`, `tuple`, `str`, `int`, `float`, `bool` and `None` are accepted
  (subclasses could override comparison or formatting; both encoders write a tuple as a list).
- Strings: both escape `"`, `\\` and U+0000..U+001F identically (`\\b \\f \\n \\r \\t`, else
  lowercase `\\u00xx`) and write everything else as is. A lone surrogate makes the final UTF-8
  encode fail, and the fallback lets `rfc8785` reject it.
- Object keys: JCS sorts by UTF-16 code units, `sort_keys` by code points. The two orders agree
  when every key character is in the BMP (one UTF-16 unit equal to its code point; lone
  surrogates fail the encode); they differ only between an astral character (a surrogate
  pair, D800..DBFF first) and one in U+E000..U+FFFF, so any key with an astral character takes
  the fallback.
- Integers: both write `str(n)`; outside +-(2^53 - 1) the fallback raises.
- Floats: both use the shortest round-trip digits (rfc8785 reformats `repr`). `repr` and
  ECMAScript agree exactly for finite, non-integral values with 1e-4 <= |x| < 1e16: plain
  decimal notation, no exponent, no trailing `.0`. An integral float below 2^53 in magnitude
  (`912.0`, `-0.0`) is written by ECMAScript as its exact integer (`912`, `0`): the fast path
  encodes a copy with such floats as ints. Everything else (`1e-05`, `1e+16`, 2.0**60, NaN,
  infinities) takes the fallback.
- The walk also bounds the depth (so a cycle ends it), which lets the encoder be built once,
  without its per-call cycle bookkeeping.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

import rfc8785

from .errors import CanonicalizationError

_MAX_SAFE_INT = 2**53 - 1
# Non-integral floats in this range print identically with repr and ECMAScript Number.toString.
_FLOAT_MIN = 1e-4
_FLOAT_MAX = 1e16
_FIRST_ASTRAL_CHAR = "\U00010000"  # a surrogate pair in UTF-16: its order may differ
# Deeper documents (and cycles) take the fallback; rfc8785 itself recurses once per level.
_MAX_DEPTH = 400
# Verdicts of `_fast_path_check`.
_UNSAFE, _SAFE, _SAFE_WITH_INTEGRAL_FLOATS = 0, 1, 2


def _make_encoder() -> Callable[[Any], str]:
    """Compact, key-sorted, non-ASCII-preserving JSON text, without NaN or infinities.

    `JSONEncoder.encode` builds a new C encoder and cycle-marker dict on every call (a third
    of its time on a 1.5 KB credential); this one is built once and checks no cycles, which
    is safe only after `_fast_path_safe` has bounded the depth.
    """
    encoder = json.JSONEncoder(
        ensure_ascii=False,
        check_circular=False,
        allow_nan=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    # The C accelerators are private names of json.encoder (None without the C module).
    make = getattr(json.encoder, "c_make_encoder", None)
    escape = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or escape is None:  # no C accelerator: the pure-Python encoder
        return encoder.encode
    c_encoder = make(None, encoder.default, escape, None, ":", ",", True, False, False)
    return lambda document: "".join(c_encoder(document, 0))


_encode = _make_encoder()
compact_json = _encode  # compact sorted-key JSON by the C encoder (not JCS by itself)


def canonicalize(document: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value.

    Byte-identical to `rfc8785.dumps(document)`. Raises CanonicalizationError for values JCS
    cannot represent (integers beyond 2^53, NaN, infinities, lone surrogates, non-string keys,
    non-JSON types, cycles or nesting too deep to recurse).
    """
    fast = _fast_canonical(document)
    if fast is not None:
        return fast
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalizationError(f"cannot canonicalize document: {exc}") from exc
    except RecursionError as exc:
        raise CanonicalizationError("cannot canonicalize document: nested too deeply") from exc


def compact_is_canonical(document: Any) -> bool:
    """True when the standard library's compact, key-sorted JSON of `document` (what
    `json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes) is
    exactly its RFC 8785 form: a cheap walk, no encoding. For callers holding bytes that
    should be that encoding (a verifier comparing a parse with the bytes it came from)."""
    return _fast_path_safe(document)


def _fast_canonical(document: Any) -> bytes | None:
    """The canonical bytes through the C encoder, or None when it cannot be sure of them."""
    verdict = _fast_path_check(document)
    if verdict == _UNSAFE:
        return None
    if verdict == _SAFE_WITH_INTEGRAL_FLOATS:
        document = _integral_floats_as_ints(document)
    try:
        return _encode(document).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):  # a lone surrogate, or a deep call stack
        return None


def _integral_floats_as_ints(value: Any) -> Any:
    """A copy of `value` with every integral float an int (`_fast_path_check` bounded them)."""
    kind = type(value)
    if kind is float:
        return int(value) if value.is_integer() else value
    if kind is dict:
        return {k: _integral_floats_as_ints(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_integral_floats_as_ints(v) for v in value]
    return value


def _fast_path_safe(document: Any) -> bool:
    """True when the C encoder's output for `document` is exactly the JCS form."""
    return _fast_path_check(document) == _SAFE


def _fast_path_check(document: Any) -> int:
    """_SAFE when the C encoder's output for `document` is exactly the JCS form,
    _SAFE_WITH_INTEGRAL_FLOATS when it is once its integral floats are ints, else _UNSAFE.

    An explicit stack rather than recursion: it runs on every canonicalization.
    """
    integral_floats = False
    stack: list[tuple[Any, int]] = [((document,), 0)]
    pop = stack.pop
    push = stack.append
    while stack:
        node, depth = pop()
        if depth > _MAX_DEPTH:
            return _UNSAFE
        if type(node) is dict:
            for key in node:
                if type(key) is not str:
                    return _UNSAFE
                if not key.isascii() and max(key) >= _FIRST_ASTRAL_CHAR:
                    return _UNSAFE
            values = node.values()
        else:
            values = node
        for value in values:
            kind = type(value)
            if kind is str:  # the common case first
                continue
            if kind is dict or kind is list or kind is tuple:
                push((value, depth + 1))
            elif kind is int:
                if not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
                    return _UNSAFE
            elif kind is float:
                if value.is_integer() and abs(value) <= _MAX_SAFE_INT:
                    integral_floats = True
                elif not _FLOAT_MIN <= abs(value) < _FLOAT_MAX or value.is_integer():
                    return _UNSAFE
            elif kind is not bool and value is not None:
                return _UNSAFE
    return _SAFE_WITH_INTEGRAL_FLOATS if integral_floats else _SAFE
