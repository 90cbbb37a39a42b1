"""Bitstring Status List v1.0: the encoded list, status entries and the list credential.

A status list is a bitstring where index 0 is the most significant bit of byte 0. It is
published as `encodedList` = "u" + base64url (no padding) of the GZIP-compressed bytes; zlib
level 6 with wbits=31 reproduces the W3C examples byte for byte. Lists are at least 131,072
bits long (so one index tells little about who holds it) and issuers allocate indexes at
random, never twice.

This module only encodes and reads. Whether a status list credential is trusted, fresh, and
agrees with the ledger's anchors is decided in `verifier/`.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from random import Random
from typing import Any

from .errors import InputError, RangeError, VerificationError

MIN_BITS = 131_072
# A decoded list larger than this is refused: a few hundred bytes of gzip can expand to
# gigabytes, and no issuer needs more than 2^27 entries in one list.
MAX_BITS = 1 << 27
GZIP_LEVEL = 6
GZIP_WBITS = 31  # 16 + 15: a gzip wrapper with mtime 0, as in the W3C examples

STATUS_PURPOSES = frozenset({"revocation", "suspension"})
ENTRY_TYPE = "BitstringStatusListEntry"
LIST_TYPE = "BitstringStatusList"
LIST_CREDENTIAL_TYPE = "BitstringStatusListCredential"
VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class StatusRetrievalError(VerificationError):
    """The status list a credential points to is not available."""

    code = "STATUS_RETRIEVAL_ERROR"
    title = "Status list could not be retrieved"


class StatusVerificationError(VerificationError):
    """The status list does not fit the entry (purpose, id) or its proof does not verify."""

    code = "STATUS_VERIFICATION_ERROR"
    title = "Status list verification failed"


class StatusListLengthError(VerificationError):
    """The status list is shorter than the 131,072-bit minimum."""

    code = "STATUS_LIST_LENGTH_ERROR"
    title = "Status list too short"


class StatusListEncodingError(StatusVerificationError):
    """`encodedList` is not "u" + base64url of gzip data (or decompresses beyond MAX_BITS)."""

    code = "STATUS_LIST_ENCODING_ERROR"
    title = "Malformed encodedList"


class StatusEntryError(StatusVerificationError):
    """A `credentialStatus` entry is malformed (type, purpose, index, list URL)."""

    code = "STATUS_ENTRY_ERROR"
    title = "Malformed status entry"


class StatusListFullError(InputError):
    """Every index of the list is already allocated."""

    code = "STATUS_LIST_FULL_ERROR"
    title = "Status list has no free index"
    http_status = 409


class StatusList:
    """A mutable bitstring of `length` bits, most significant bit first."""

    __slots__ = ("_bits", "length")

    def __init__(self, length: int = MIN_BITS, *, data: bytes | bytearray | None = None) -> None:
        if length % 8:
            raise StatusListLengthError(f"a status list length must be a multiple of 8: {length}")
        if length < MIN_BITS:
            raise StatusListLengthError(
                f"status list has {length} bits, the minimum is {MIN_BITS}", length=length
            )
        if length > MAX_BITS:
            raise StatusListEncodingError(f"status list of {length} bits exceeds {MAX_BITS}")
        if data is not None and len(data) * 8 != length:
            raise StatusListLengthError("data does not hold exactly `length` bits")
        self.length = length
        self._bits = bytearray(data) if data is not None else bytearray(length // 8)

    def _locate(self, index: int) -> tuple[int, int]:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError("a status list index is an int")
        if not 0 <= index < self.length:
            raise RangeError(
                f"status list index {index} outside 0..{self.length - 1}", index=index
            )
        return index >> 3, 0x80 >> (index & 7)

    def get(self, index: int) -> bool:
        """The bit at `index` (True: revoked / suspended)."""
        byte, mask = self._locate(index)
        return bool(self._bits[byte] & mask)

    def set(self, index: int, value: bool = True) -> None:
        """Set (or with value=False, clear) the bit at `index`."""
        byte, mask = self._locate(index)
        if value:
            self._bits[byte] |= mask
        else:
            self._bits[byte] &= ~mask & 0xFF

    def clear(self, index: int) -> None:
        """Clear the bit at `index` (reinstate a suspended credential)."""
        self.set(index, False)

    def set_indexes(self) -> list[int]:
        """Every index whose bit is set, ascending."""
        found: list[int] = []
        for byte_index, byte in enumerate(self._bits):
            if byte:
                base = byte_index * 8
                found.extend(base + bit for bit in range(8) if byte & (0x80 >> bit))
        return found

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    def encode(self) -> str:
        """`encodedList`: "u" + base64url, no padding, of gzip(level 6, mtime 0)."""
        return encode_list(bytes(self._bits))

    @classmethod
    def decode(cls, encoded: object) -> StatusList:
        """Read an `encodedList`; raises StatusListEncodingError / StatusListLengthError."""
        raw = decode_list(encoded)
        return cls(len(raw) * 8, data=raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StatusList) and self._bits == other._bits

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"StatusList(length={self.length}, set={len(self.set_indexes())})"


def encode_list(raw: bytes) -> str:
    """gzip then multibase base64url (no padding) of raw list bytes."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
    packed = compressor.compress(raw) + compressor.flush()
    return "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode_list(encoded: object) -> bytes:
    """Raw list bytes of an `encodedList`, decompressed to at most MAX_BITS."""
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise StatusListEncodingError("encodedList must be a string starting with 'u'")
    body = encoded[1:]
    if not re.fullmatch(r"[A-Za-z0-9_-]*", body):
        raise StatusListEncodingError("encodedList is not unpadded base64url")
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise StatusListEncodingError(f"encodedList is not base64url: {exc}") from exc
    inflater = zlib.decompressobj(GZIP_WBITS)
    try:
        raw = inflater.decompress(packed, MAX_BITS // 8 + 1)
    except zlib.error as exc:
        raise StatusListEncodingError(f"encodedList is not gzip data: {exc}") from exc
    if len(raw) > MAX_BITS // 8:
        raise StatusListEncodingError(f"encodedList expands beyond {MAX_BITS} bits")
    if not inflater.eof or inflater.unused_data:
        raise StatusListEncodingError("encodedList gzip stream is truncated or has trailing data")
    if len(raw) * 8 < MIN_BITS:
        raise StatusListLengthError(
            f"status list has {len(raw) * 8} bits, the minimum is {MIN_BITS}",
            length=len(raw) * 8,
        )
    return raw


# --- index allocation -------------------------------------------------------------------


def allocate_index(
    length: int, allocated: Collection[int], rng: Random | None = None
) -> int:
    """A random index in 0..length-1 that is not in `allocated`.

    Random (not sequential) so that an index says nothing about issuance order. `rng` lets
    tests be deterministic; the default is the operating system's randomness.
    """
    rng = rng or secrets.SystemRandom()
    free = length - len(allocated)
    if free <= 0:
        raise StatusListFullError(f"all {length} indexes are allocated", length=length)
    # Rejection sampling is O(1) while the list is mostly free; a dense list falls back to
    # choosing among the free indexes so that allocation always terminates.
    if free * 4 >= length:
        for _ in range(64):
            candidate = rng.randrange(length)
            if candidate not in allocated:
                return candidate
    taken = set(allocated)
    remaining = [i for i in range(length) if i not in taken]
    if not remaining:
        raise StatusListFullError(f"all {length} indexes are allocated", length=length)
    return rng.choice(remaining)


# --- entries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusEntry:
    """A `credentialStatus` entry of type BitstringStatusListEntry."""

    status_purpose: str
    status_list_index: int
    status_list_credential: str
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {}
        if self.id is not None:
            entry["id"] = self.id
        entry.update(
            {
                "type": ENTRY_TYPE,
                "statusPurpose": self.status_purpose,
                "statusListIndex": str(self.status_list_index),
                "statusListCredential": self.status_list_credential,
            }
        )
        return entry

    @classmethod
    def from_json(cls, entry: Any) -> StatusEntry:
        """Parse and check an entry; raises StatusEntryError."""
        if not isinstance(entry, Mapping):
            raise StatusEntryError("a status entry must be a JSON object")
        types = entry.get("type")
        types = [types] if isinstance(types, str) else types
        if not isinstance(types, list) or ENTRY_TYPE not in types:
            raise StatusEntryError(f"status entry type must be {ENTRY_TYPE}")
        purpose = entry.get("statusPurpose")
        if purpose not in STATUS_PURPOSES:
            raise StatusEntryError(f"unsupported statusPurpose {purpose!r}")
        index = entry.get("statusListIndex")
        if not isinstance(index, str) or not _DECIMAL.fullmatch(index):
            raise StatusEntryError("statusListIndex must be a decimal string without sign")
        url = entry.get("statusListCredential")
        if not isinstance(url, str) or ":" not in url:
            raise StatusEntryError("statusListCredential must be a URL")
        if entry.get("statusSize", 1) != 1:
            raise StatusEntryError("only statusSize 1 is supported")
        entry_id = entry.get("id")
        if entry_id is not None and not isinstance(entry_id, str):
            raise StatusEntryError("status entry id must be a string")
        return cls(purpose, int(index), url, entry_id)


def status_entry(
    purpose: str, index: int, list_credential_url: str, *, entry_id: str | None = None
) -> dict[str, Any]:
    """The JSON of a BitstringStatusListEntry (statusListIndex as a decimal string)."""
    if purpose not in STATUS_PURPOSES:
        raise StatusEntryError(f"unsupported statusPurpose {purpose!r}")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise StatusEntryError("statusListIndex must be a non-negative integer")
    return StatusEntry(purpose, index, list_credential_url, entry_id).to_json()


def _other_type(item: Any) -> str | None:
    """The type of a status entry of a type this project does not implement, else None (a
    BitstringStatusListEntry, or something malformed that `StatusEntry.from_json` refuses)."""
    if not isinstance(item, Mapping):
        return None
    types = item.get("type")
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or not types or not all(isinstance(t, str) and t
                                                           for t in types):
        return None
    return None if ENTRY_TYPE in types else ", ".join(types)


def status_entries(credential: Mapping[str, Any]) -> list[StatusEntry]:
    """The BitstringStatusListEntry entries of a credential (none, one or several); entries of
    another (well-formed) type are left to `other_status_types`."""
    status = credential.get("credentialStatus")
    if status is None:
        return []
    items = status if isinstance(status, list) else [status]
    return [StatusEntry.from_json(item) for item in items if _other_type(item) is None]


def other_status_types(credential: Mapping[str, Any]) -> list[str]:
    """The types of the credential's status entries this project does not implement (VC DM
    2.0: a verifier reports them as not checked rather than the credential as broken)."""
    status = credential.get("credentialStatus")
    items = status if isinstance(status, list) else [] if status is None else [status]
    return [t for t in (_other_type(item) for item in items) if t is not None]


# --- the list credential ----------------------------------------------------------------


def build_status_list_credential(
    *,
    list_url: str,
    issuer: str,
    purpose: str,
    status_list: StatusList,
    valid_from: str | None = None,
    valid_until: str | None = None,
    contexts: tuple[str, ...] = (VC_V2_CONTEXT,),
) -> dict[str, Any]:
    """An unsigned BitstringStatusListCredential published at `list_url`."""
    if purpose not in STATUS_PURPOSES:
        raise StatusEntryError(f"unsupported statusPurpose {purpose!r}")
    if not contexts or contexts[0] != VC_V2_CONTEXT:
        raise StatusEntryError(f"the first @context must be {VC_V2_CONTEXT}")
    credential: dict[str, Any] = {
        "@context": list(contexts),
        "id": list_url,
        "type": ["VerifiableCredential", LIST_CREDENTIAL_TYPE],
        "issuer": issuer,
    }
    if valid_from is not None:
        credential["validFrom"] = valid_from
    if valid_until is not None:
        credential["validUntil"] = valid_until
    credential["credentialSubject"] = {
        "id": f"{list_url}#list",
        "type": LIST_TYPE,
        "statusPurpose": purpose,
        "encodedList": status_list.encode(),
    }
    return credential


def read_list_credential(list_credential: Mapping[str, Any]) -> tuple[str, StatusList]:
    """(statusPurpose, decoded list) of a BitstringStatusListCredential (proof not checked)."""
    types = list_credential.get("type")
    if not isinstance(types, list) or LIST_CREDENTIAL_TYPE not in types:
        raise StatusVerificationError(f"not a {LIST_CREDENTIAL_TYPE}")
    subject = list_credential.get("credentialSubject")
    if not isinstance(subject, Mapping):
        raise StatusVerificationError("status list credentialSubject must be an object")
    subject_type = subject.get("type")
    if subject_type != LIST_TYPE and not (
        isinstance(subject_type, list) and LIST_TYPE in subject_type
    ):
        raise StatusVerificationError(f"status list subject type must be {LIST_TYPE}")
    purpose = subject.get("statusPurpose")
    if not isinstance(purpose, str):
        raise StatusVerificationError("status list subject has no statusPurpose")
    return purpose, StatusList.decode(subject.get("encodedList"))


def status_bit(entry: StatusEntry, list_credential: Mapping[str, Any]) -> bool:
    """The bit an entry points to in a list credential whose proof the caller has verified.

    Raises StatusVerificationError when the list is not the one the entry names or serves
    another purpose, RangeError when the index is beyond the list.
    """
    if list_credential.get("id") != entry.status_list_credential:
        raise StatusVerificationError(
            "status list credential id does not match statusListCredential",
            expected=entry.status_list_credential,
            found=list_credential.get("id"),
        )
    purpose, bits = read_list_credential(list_credential)
    if purpose != entry.status_purpose:
        raise StatusVerificationError(
            f"entry purpose {entry.status_purpose!r} does not match list purpose {purpose!r}"
        )
    return bits.get(entry.status_list_index)


__all__ = [
    "MIN_BITS",
    "STATUS_PURPOSES",
    "StatusEntry",
    "StatusEntryError",
    "StatusList",
    "StatusListEncodingError",
    "StatusListFullError",
    "StatusListLengthError",
    "StatusRetrievalError",
    "StatusVerificationError",
    "allocate_index",
    "build_status_list_credential",
    "decode_list",
    "encode_list",
    "other_status_types",
    "read_list_credential",
    "status_bit",
    "status_entries",
    "status_entry",
]
