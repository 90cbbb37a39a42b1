"""Strict, streaming reader of evidence bundles (version 1, see ledger/bundle_export.py and
docs/formats.md "Bundle").

`read_bundle` yields typed records one line at a time, so memory depends on the longest line,
never on the bundle's length. Every malformation is a typed error naming the line: an unknown
version or record type, a missing or unexpected member, a record out of order, a line over
`MAX_LINE`, a bundle that ends before its `end` record or continues after it. A running SHA-256
of the bytes up to and including the `end` line is what a presentation binds to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from batterytrace.ledger.bundle_format import (
    BUNDLE_VERSION,
    CREDENTIAL,
    END,
    ENTRY,
    HEADER,
    MAX_LINE,
    MEMBERS,
    PRESENTATION,
    REDACTED,
    SCOPE_KINDS,
)
from batterytrace.ledger.checkpoint import b64decode_strict

from .errors import (
    BundleFormatError,
    BundleTruncatedError,
    BundleVersionError,
)


@dataclass(frozen=True)
class Header:
    version: int
    origin: str
    scope: str
    subject: str | None
    checkpoint: bytes
    consistency_from: int | None = None
    consistency_proof: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Record:
    """One record after the header: its line number, type and members."""

    line: int
    type: str
    data: dict[str, Any] = field(repr=False)
    # An entry record's raw line: an `all` bundle's entry bytes are sliced out of it.
    raw: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True)
class Trailer:
    """Reached the `end` record: `digest` is SHA-256 of every byte up to and including it."""

    line: int
    records: int
    digest: bytes


def decode_hashes(value: Any, line: int, what: str) -> tuple[bytes, ...]:
    """A list of base64 SHA-256 hashes (strict base64, 32 bytes each)."""
    if not isinstance(value, list):
        raise BundleFormatError(line, f"{what} must be a list of base64 hashes")
    out = []
    for item in value:
        raw = b64decode_strict(item) if isinstance(item, str) else None
        if raw is None or len(raw) != 32:
            raise BundleFormatError(line, f"{what} holds a value that is not a base64 hash")
        out.append(raw)
    return tuple(out)


def _check_members(obj: dict[str, Any], line: int) -> str:
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in MEMBERS:
        raise BundleFormatError(line, f"unknown record type {kind!r}")
    required, optional = MEMBERS[kind]
    keys = set(obj)
    if not required <= keys or keys - required - optional:
        raise BundleFormatError(
            line, f"{kind} record members wrong (missing {sorted(required - keys)}, "
            f"unexpected {sorted(keys - required - optional)})")
    return kind


def parse_header(obj: dict[str, Any], line: int = 1) -> Header:
    """Check a header record strictly."""
    version = obj.get("version")
    if type(version) is not int or version != BUNDLE_VERSION:
        raise BundleVersionError(line, f"unsupported bundle version {version!r}")
    if _check_members(obj, line) != HEADER:
        raise BundleFormatError(line, "the first record must be the header")
    origin, scope, note = obj["origin"], obj["scope"], obj["checkpoint"]
    if not isinstance(origin, str) or not origin:
        raise BundleFormatError(line, "origin must be a non-empty string")
    if not isinstance(note, str) or not note:
        raise BundleFormatError(line, "checkpoint must be the signed note text")
    if not isinstance(scope, dict) or scope.get("kind") not in SCOPE_KINDS:
        raise BundleFormatError(line, f"scope.kind must be one of {', '.join(SCOPE_KINDS)}")
    subject = scope.get("id")
    expected = {"kind"} if scope["kind"] == "all" else {"kind", "id"}
    if set(scope) != expected or (scope["kind"] != "all" and (
            not isinstance(subject, str) or not subject)):
        raise BundleFormatError(line, "scope is {kind: all} or {kind: item|lot, id: URI}")
    old: int | None = None
    proof: tuple[bytes, ...] = ()
    if "consistency" in obj:
        cons = obj["consistency"]
        if not isinstance(cons, dict) or set(cons) != {"oldSize", "proof"}:
            raise BundleFormatError(line, "consistency is {oldSize, proof}")
        old = cons["oldSize"]
        if type(old) is not int or old < 1:
            raise BundleFormatError(line, "consistency.oldSize must be a positive integer")
        proof = decode_hashes(cons["proof"], line, "consistency.proof")
    return Header(version, origin, scope["kind"], subject, note.encode(), old, proof)


class BundleReader:
    """The state of `read_bundle` (phase, line count, running digest), fed one line at a time.

    `read_bundle` wraps it; the verifier feeds it directly, so that entry lines already
    checked elsewhere (a worker process, see `bundle_windows`) only pass `accept_entry`."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.number = 0
        self.phase = HEADER  # header -> entries -> tail -> ended -> presented
        self.trailer: Trailer | None = None
        self.tail_ids: set[tuple[str, str]] = set()  # (record type, id) of the tail records

    def accept_entry(self, raw: bytes) -> None:
        """Count an entry line whose record was checked elsewhere exactly as `feed` would
        check it (a JSON object {"type": "entry", "entry": {...}}, newline-terminated, at
        most MAX_LINE bytes); only while entries are being read."""
        assert self.phase == ENTRY
        self.number += 1
        self.digest.update(raw)

    def feed(self, raw: bytes) -> Header | Record | Trailer:
        """The next line's record, checked; raises BundleFormatError naming the line."""
        self.number += 1
        number = self.number
        if len(raw) > MAX_LINE:
            raise BundleFormatError(number, f"line longer than {MAX_LINE} bytes")
        if not raw.endswith(b"\n"):
            raise BundleTruncatedError(number, "the last line has no newline")
        if raw.endswith(b"\r\n"):
            raise BundleFormatError(number, "lines end in LF, not CRLF")
        try:
            obj = json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise BundleFormatError(number, f"not a JSON line: {exc}") from None
        if not isinstance(obj, dict):
            raise BundleFormatError(number, "a record is a JSON object")
        if self.phase == HEADER:
            self.digest.update(raw)
            self.phase = ENTRY
            return parse_header(obj, number)
        kind = _check_members(obj, number)
        phase = self.phase
        if phase == "presented" or (phase == "ended" and kind != PRESENTATION):
            raise BundleFormatError(number, "nothing but a presentation follows the end record")
        if kind == PRESENTATION:
            if phase != "ended":
                raise BundleFormatError(number, "a presentation comes after the end record")
            self.phase = "presented"
            return Record(number, kind, obj)
        self.digest.update(raw)
        if kind == HEADER:
            raise BundleFormatError(number, "a second header")
        if kind == ENTRY:
            if phase != ENTRY:
                raise BundleFormatError(number, "entries come before every other record")
            if not isinstance(obj["entry"], dict):
                raise BundleFormatError(number, "entry must be a JSON object")
            return Record(number, kind, obj, raw)
        if kind == END:
            if type(obj["records"]) is not int or obj["records"] != number - 1:
                raise BundleTruncatedError(
                    number, f"end counts {obj['records']!r} records, the bundle has {number - 1}")
            self.phase = "ended"
            self.trailer = Trailer(number, number - 1, self.digest.digest())
            return self.trailer
        self.phase = "tail"
        self._once(kind, obj, number)
        return Record(number, kind, obj)

    def _once(self, kind: str, obj: dict[str, Any], number: int) -> None:
        """A credential, status list or DID document appears once (a copy would be counted
        twice, or hide which of two versions the verifier judged)."""
        body = obj.get("credential", obj.get("document", obj))
        ident = body.get("id") if isinstance(body, dict) else None
        if not isinstance(ident, str):
            return  # judged (and reported) by the checks of the record
        key = ("credential" if kind in (CREDENTIAL, REDACTED) else kind, ident)
        if key in self.tail_ids:
            raise BundleFormatError(number, f"{kind} {ident} appears twice")
        self.tail_ids.add(key)

    def finish(self) -> None:
        """After the last line: raises unless the bundle had lines and its end record."""
        if self.number == 0:
            raise BundleFormatError(1, "the bundle is empty")
        if self.trailer is None:
            raise BundleTruncatedError(self.number + 1, "the bundle ends before its end record")


def read_bundle(lines: Iterable[bytes]) -> Iterator[Header | Record | Trailer]:
    """Yield the header, each record, then the trailer (and a presentation record after it,
    if any), checking the structure as it goes. `lines` are raw lines (e.g. a binary file)."""
    reader = BundleReader()
    for raw in lines:
        yield reader.feed(raw)
    reader.finish()


def iter_file_lines(path: str) -> Iterator[bytes]:
    """The raw lines of a bundle file (bounded by MAX_LINE + 1 bytes per read)."""
    with open(path, "rb") as handle:
        while True:
            line = handle.readline(MAX_LINE + 1)
            if not line:
                return
            yield line


__all__ = [
    "MAX_LINE",
    "BundleFormatError",
    "BundleReader",
    "BundleTruncatedError",
    "BundleVersionError",
    "Header",
    "Record",
    "Trailer",
    "decode_hashes",
    "iter_file_lines",
    "parse_header",
    "read_bundle",
]
