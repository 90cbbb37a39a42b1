"""Ledger entries (version 1): the canonical bytes that the hash chain and the Merkle tree cover.

An entry is the JSON object `{"v": 1, "seq", "prev", "kind", "received", "document"}`; its
canonical bytes (RFC 8785, `credentials.canonical.canonicalize`) are the source of truth. The
entry hash is SHA-256 of those bytes (the next entry's `prev`); the Merkle leaf is
`merkle.leaf_hash(bytes)` = SHA-256(0x00 || bytes). See docs/formats.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.errors import CanonicalizationError

from .errors import EntryFormatError, UnknownEntryKindError
from .merkle import leaf_hash, leaf_hash_state

ENTRY_VERSION = 1
GENESIS_PREV = "0" * 64
ENTRY_KEYS = frozenset({"v", "seq", "prev", "kind", "received", "document"})

_KINDS: set[str] = {"genesis", "settings", "registry", "event", "anchor"}
_KIND_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
# RFC 3339 in UTC with the "Z" designator, optional fraction (the ledger writes milliseconds).
MAX_SEQ = 2**53 - 1  # JCS numbers are IEEE doubles: the last exact position
_RECEIVED_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")


def register_kind(kind: str) -> None:
    """Add an entry kind to the registry (for later issues that add kinds)."""
    if not _KIND_RE.fullmatch(kind):
        raise EntryFormatError(f"entry kind {kind!r} must match {_KIND_RE.pattern}")
    _KINDS.add(kind)


def known_kinds() -> frozenset[str]:
    """The kinds the ledger accepts and the parser reads."""
    return frozenset(_KINDS)


def check_kind(kind: Any) -> str:
    """Return `kind` if it is a registered kind, else raise UnknownEntryKindError."""
    if not isinstance(kind, str) or kind not in _KINDS:
        raise UnknownEntryKindError(
            f"unknown entry kind {kind!r} (known: {', '.join(sorted(_KINDS))})", kind=str(kind)
        )
    return kind


def utc_now() -> str:
    """The ledger's receipt time: RFC 3339, UTC, millisecond precision, "Z"."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry_hash(canonical: bytes) -> bytes:
    """SHA-256 of an entry's canonical bytes (what the next entry's `prev` holds, in hex)."""
    return hashlib.sha256(canonical).digest()


@dataclass(frozen=True)
class Entry:
    """One ledger entry with the canonical bytes it was built from or parsed out of."""

    seq: int
    prev: str
    kind: str
    received: str
    document: dict[str, Any]
    canonical: bytes = field(repr=False, compare=False, default=b"")

    @classmethod
    def build(
        cls,
        seq: int,
        prev: str,
        kind: str,
        document: dict[str, Any],
        received: str | None = None,
        *,
        document_bytes: bytes | None = None,
    ) -> Entry:
        """A new entry; computes its canonical bytes once (CanonicalizationError if it cannot).

        `document_bytes`: the document's canonical bytes when the caller already holds them
        (a validator that canonicalized it while checking a signature)."""
        if not isinstance(document, dict):
            raise EntryFormatError("an entry's document must be a JSON object")
        received = received or utc_now()
        _check_members(ENTRY_VERSION, seq, prev, kind, received, document)
        if seq > MAX_SEQ:
            raise EntryFormatError(f"entry seq {seq!r} is beyond what JSON carries exactly")
        if document_bytes is None:
            document_bytes = canonicalize(document)
        canonical = envelope_bytes(seq, prev, kind, received, document_bytes)
        return cls(seq, prev, kind, received, document, canonical)

    @classmethod
    def parse(cls, data: bytes) -> Entry:
        """Strictly parse stored entry bytes: UTF-8 canonical JSON of a version 1 entry."""
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise EntryFormatError(f"entry is not UTF-8 JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise EntryFormatError("entry is not a JSON object")
        check_entry_fields(obj)
        try:
            canonical = canonicalize(obj)
        except CanonicalizationError as exc:
            raise EntryFormatError(f"entry cannot be canonicalized: {exc.message}") from exc
        if canonical != bytes(data):
            raise EntryFormatError("entry bytes are not in RFC 8785 canonical form")
        return cls(
            obj["seq"], obj["prev"], obj["kind"], obj["received"], obj["document"], canonical
        )

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        return {
            "v": ENTRY_VERSION,
            "seq": self.seq,
            "prev": self.prev,
            "kind": self.kind,
            "received": self.received,
            "document": self.document,
        }

    @property
    def hash(self) -> bytes:
        """SHA-256 of the canonical bytes."""
        return entry_hash(self.canonical)

    @property
    def leaf_hash(self) -> bytes:
        """RFC 6962 leaf hash of the canonical bytes."""
        return leaf_hash(self.canonical)


def envelope_bytes(seq: int, prev: str, kind: str, received: str, document_bytes: bytes) -> bytes:
    """The canonical bytes of an entry whose members are already known to be valid (as
    `Entry.build` checks them, or the ledger's own appender makes them)."""
    return envelope_template(received) % (document_bytes, kind.encode(), prev.encode(), seq)


_DOCUMENT_START = b'{"document":'


def document_slice(canonical: bytes, seq: int, prev: str, kind: str, received: str) -> bytes | None:
    """The document's canonical bytes inside an entry's (the inverse of `envelope_bytes`), or
    None when `canonical` is not laid out so with these members."""
    empty = envelope_bytes(seq, prev, kind, received, b"")
    tail = empty[len(_DOCUMENT_START):]
    if (len(canonical) > len(empty) and canonical.startswith(_DOCUMENT_START)
            and canonical.endswith(tail)):
        return canonical[len(_DOCUMENT_START):len(canonical) - len(tail)]
    return None


def envelope_template(received: str) -> bytes:
    """A bytes %-template of the canonical entry received at `received` (an RFC 3339 time as
    `utc_now` writes it), taking the document's canonical bytes, kind, prev (hex) and seq.

    The envelope's members need no escaping (a registered kind name, hex, the time, an
    integer) and "document" sorts first in JCS order, so the canonical entry is the
    document's canonical bytes spliced into a fixed template."""
    return _PREFIX_TEMPLATE + envelope_tail_template(received)


# The part of the envelope before `prev`: the same at every position (see `EntryHead`).
_PREFIX_TEMPLATE = b'{"document":%s,"kind":"%s","prev":"'


def envelope_tail_template(received: str) -> bytes:
    """The rest of `envelope_template` after an `EntryHead`: a %-template taking prev (hex)
    and seq."""
    return (b'%s","received":"' + received.encode() + b'","seq":%d,"v":'
            + str(ENTRY_VERSION).encode() + b"}")


class EntryHead:
    """The position-independent head of an entry's canonical bytes (the document and kind,
    which JCS order puts before prev, received and seq), with the SHA-256 states of the entry
    hash and of the Merkle leaf hash already fed with it.

    Made before the sequencer lock: under it, `finish` only hashes the short tail (prev,
    received, seq), whatever the document's size."""

    __slots__ = ("_entry", "_leaf", "head")

    def __init__(self, document_bytes: bytes, kind: str) -> None:
        self.head = _PREFIX_TEMPLATE % (document_bytes, kind.encode())
        self._entry = hashlib.sha256(self.head)
        self._leaf = leaf_hash_state(self.head)

    def finish(self, tail: bytes) -> tuple[bytes, bytes, bytes]:
        """(canonical bytes, entry hash, leaf hash) of the entry ending with `tail`
        (`envelope_tail_template(received) % (prev_hex, seq)`)."""
        entry, leaf = self._entry.copy(), self._leaf.copy()
        entry.update(tail)
        leaf.update(tail)
        return self.head + tail, entry.digest(), leaf.digest()


def check_entry_fields(obj: dict[str, Any]) -> None:
    """Raise EntryFormatError unless `obj` has exactly the entry fields, of the right types."""
    keys = set(obj)
    if keys != ENTRY_KEYS:
        extra, missing = sorted(keys - ENTRY_KEYS), sorted(ENTRY_KEYS - keys)
        raise EntryFormatError(f"entry members wrong (unexpected {extra}, missing {missing})")
    _check_members(obj["v"], obj["seq"], obj["prev"], obj["kind"], obj["received"],
                   obj["document"])


def _check_members(
    v: Any, seq: Any, prev: Any, kind: Any, received: Any, document: Any
) -> None:
    if type(v) is not int or v != ENTRY_VERSION:
        raise EntryFormatError(f"unsupported entry version {v!r}")
    if type(seq) is not int or seq < 0:
        raise EntryFormatError(f"entry seq must be a non-negative integer, got {seq!r}")
    if not isinstance(prev, str) or not _HEX64_RE.fullmatch(prev):
        raise EntryFormatError("entry prev must be 64 lowercase hex digits")
    if (seq == 0) != (prev == GENESIS_PREV):
        raise EntryFormatError("only entry 0 has the all-zero prev")
    kind = check_kind(kind)
    if (seq == 0) != (kind == "genesis"):
        raise EntryFormatError("entry 0, and only entry 0, is of kind genesis")
    if not isinstance(received, str) or not _RECEIVED_RE.fullmatch(received):
        raise EntryFormatError("entry received must be an RFC 3339 UTC time ending in Z")
    if not isinstance(document, dict):
        raise EntryFormatError("entry document must be a JSON object")
