"""C2SP tlog-checkpoint bodies and the signed notes that carry them (Ed25519 only).

Body: origin, decimal tree size (no leading zeros), base64 root hash, optional extension lines,
each ending in a newline. Note: body, a blank line, then signature lines
`— <key name> base64(key id (4 bytes) || signature)`; key id = SHA-256(name || 0x0A || 0x01 ||
public key)[:4]; verifier key `<name>+<hex key id>+base64(0x01 || public key)`.
`open_checkpoint` is strict: every malformation and every failed check has its own error code.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from batterytrace.credentials.errors import Ed25519SignatureError, InputError, VerificationError
from batterytrace.credentials.keys import Ed25519Key, verify_ed25519, verify_raw

from .merkle import HASH_SIZE, MAX_TREE_SIZE

ED25519_ALG = 0x01
SIGNATURE_PREFIX = "— "  # U+2014 em dash, then a space
# The spec asks verifiers to accept at least 16 signatures of up to ~5 kB (post-quantum) each.
MAX_NOTE_SIZE = 128 * 1024
MAX_SIGNATURES = 64

_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_HEX_KEY_ID_RE = re.compile(r"[0-9a-f]{8}")


class CheckpointError(VerificationError):
    """A signed checkpoint does not verify."""

    code = "CHECKPOINT_ERROR"
    title = "Checkpoint does not verify"


class NoteMalformedError(CheckpointError):
    """The note is not a well-formed signed note (encoding, control characters, structure,
    signature lines, missing final newline)."""

    code = "CHECKPOINT_MALFORMED_NOTE"
    title = "Malformed signed note"


class NoteTooLargeError(CheckpointError):
    code = "CHECKPOINT_NOTE_TOO_LARGE"
    title = "Signed note too large"


class BadSignatureError(CheckpointError):
    """A signature from a trusted key does not verify: the whole note is rejected."""

    code = "CHECKPOINT_BAD_SIGNATURE"
    title = "Checkpoint signature does not verify"


class UntrustedNoteError(CheckpointError):
    """No signature in the note comes from a trusted key."""

    code = "CHECKPOINT_NO_TRUSTED_SIGNATURE"
    title = "Checkpoint not signed by a trusted key"


class CheckpointBodyError(CheckpointError):
    """The note text is not a checkpoint body (fewer than three lines, an empty line)."""

    code = "CHECKPOINT_MALFORMED_BODY"
    title = "Malformed checkpoint body"


class CheckpointSizeError(CheckpointError):
    """The tree size line is not a canonical decimal (leading zero, sign, non-ASCII digit)."""

    code = "CHECKPOINT_BAD_SIZE"
    title = "Malformed checkpoint tree size"


class CheckpointRootError(CheckpointError):
    """The root line is not the strict base64 of a 32-byte hash."""

    code = "CHECKPOINT_BAD_ROOT"
    title = "Malformed checkpoint root hash"


class CheckpointOriginError(CheckpointError):
    code = "CHECKPOINT_WRONG_ORIGIN"
    title = "Checkpoint from another log"


class CheckpointValueError(InputError):
    """A checkpoint, key name or signing request built in code is invalid (exit 2)."""

    code = "CHECKPOINT_INVALID_VALUE"
    title = "Invalid checkpoint value"


class VerifierKeyError(InputError):
    """A note verifier key string is malformed or not Ed25519 (exit 2)."""

    code = "CHECKPOINT_VERIFIER_KEY_ERROR"
    title = "Malformed note verifier key"


# --- checkpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size and RFC 6962 root hash (plus opaque extensions)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _is_line(self.origin):
            raise CheckpointValueError("origin must be a non-empty line without control chars")
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise CheckpointValueError("size must be an int")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointValueError(f"size {self.size} out of range")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointValueError(f"root must be {HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple) or not all(map(_is_line, self.extensions)):
            raise CheckpointValueError("extensions must be a tuple of non-empty lines")

    def body(self) -> bytes:
        """The note text: origin, size, base64 root, extensions, each ending in a newline."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            *self.extensions,
        ]
        return "".join(line + "\n" for line in lines).encode()


def parse_checkpoint_body(text: bytes) -> Checkpoint:
    """Parse (not verify) a checkpoint note text; `open_checkpoint` calls this after the
    signatures were checked."""
    try:
        lines = text.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise CheckpointBodyError("checkpoint is not UTF-8") from exc
    if lines[-1] != "":
        raise CheckpointBodyError("checkpoint text must end with a newline")
    lines.pop()
    if len(lines) < 3:
        raise CheckpointBodyError("checkpoint needs origin, size and root lines")
    if not all(map(_is_line, lines)):
        raise CheckpointBodyError("checkpoint lines must be non-empty, without control chars")
    origin, size_text, root_text, *extensions = lines
    if not _SIZE_RE.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
        raise CheckpointSizeError(f"tree size {size_text!r} is not a canonical uint64 decimal")
    root = b64decode_strict(root_text)
    if root is None or len(root) != HASH_SIZE:
        raise CheckpointRootError(f"root {root_text!r} is not base64 of a {HASH_SIZE}-byte hash")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


# --- verifier keys -------------------------------------------------------------------------


def key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x01 || public key)[:4], the Ed25519 note key id."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519_ALG]) + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted Ed25519 note key: signatures match it by (name, key id)."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def ed25519(cls, name: str, public_key: bytes) -> NoteVerifier:
        """The verifier for an Ed25519 public key under a key name."""
        _check_key_name(name, CheckpointValueError)
        if not isinstance(public_key, bytes) or len(public_key) != 32:
            raise CheckpointValueError("Ed25519 public key must be 32 bytes")
        return cls(name, key_id(name, public_key), public_key)

    @property
    def vkey(self) -> str:
        """The verifier key string `<name>+<hex key id>+<base64(0x01 || public key)>`."""
        encoded = base64.b64encode(bytes([ED25519_ALG]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when `signature` is this key's Ed25519 signature of `message`, under the
        project's one strict Ed25519 path (`credentials.keys.verify_ed25519`)."""
        return verify_raw(self.public_key, signature, message)

    def check(self, message: bytes, signature: bytes) -> None:
        """Raise BadSignatureError (its details name the strictness reason) unless
        `signature` is this key's Ed25519 signature of `message`."""
        try:
            verify_ed25519(self.public_key, signature, message)
        except Ed25519SignatureError as exc:
            raise BadSignatureError(
                f"signature by {self.name} does not verify ({exc.message})",
                key=self.vkey,
                reason=exc.reason,
            ) from None


def note_verifier_key(name: str, public_key: bytes) -> str:
    """The C2SP verifier key string of an Ed25519 public key."""
    return NoteVerifier.ed25519(name, public_key).vkey


def parse_verifier_key(vkey: str) -> NoteVerifier:
    """Parse `<name>+<hex key id>+<base64(0x01 || key)>`; the key id must match the key."""
    if not isinstance(vkey, str):
        raise VerifierKeyError("verifier key must be a string")
    # Names hold no "+", but base64 may: split at the first two only.
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise VerifierKeyError("verifier key must be <name>+<hex key id>+<base64 key>")
    name, hex_id, encoded = parts
    _check_key_name(name, VerifierKeyError)
    if not _HEX_KEY_ID_RE.fullmatch(hex_id):
        raise VerifierKeyError("verifier key id must be 8 lowercase hex digits")
    raw = b64decode_strict(encoded)
    if raw is None or len(raw) != 33 or raw[0] != ED25519_ALG:
        raise VerifierKeyError("verifier key must be base64(0x01 || 32-byte Ed25519 key)")
    verifier = NoteVerifier.ed25519(name, raw[1:])
    if verifier.key_id.hex() != hex_id:
        raise VerifierKeyError("verifier key id does not match the key name and public key")
    return verifier


# --- signed notes --------------------------------------------------------------------------


def sign_note(text: bytes, name: str, key: Ed25519Key) -> bytes:
    """The signed note of `text` (which must end in a newline) with one Ed25519 signature."""
    _check_key_name(name, CheckpointValueError)
    try:
        valid = text.endswith(b"\n") and not _control_chars(text.decode("utf-8"))
    except (AttributeError, TypeError, UnicodeDecodeError):
        valid = False
    if not valid:
        raise CheckpointValueError("note text must be UTF-8, end in a newline, no control chars")
    signature = key_id(name, key.public_key) + key.sign(text)
    line = f"{SIGNATURE_PREFIX}{name} {base64.b64encode(signature).decode()}\n"
    return text + b"\n" + line.encode()


def sign_checkpoint(cp: Checkpoint, name: str, key: Ed25519Key) -> bytes:
    """The signed note text of a checkpoint, signed by `key` under key name `name`."""
    return sign_note(cp.body(), name, key)


def open_note(note: bytes, verifiers: Sequence[NoteVerifier]) -> bytes:
    """Check a signed note against trusted verifiers and return its text.

    Signatures from unknown keys are ignored; a failing signature from a trusted key rejects
    the note; at least one trusted key must have signed."""
    if not isinstance(note, bytes):
        raise NoteMalformedError("a note must be bytes")
    if len(note) > MAX_NOTE_SIZE:
        raise NoteTooLargeError(f"note is over {MAX_NOTE_SIZE} bytes", size=len(note))
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteMalformedError("note is not valid UTF-8") from exc
    if _control_chars(decoded):
        raise NoteMalformedError("note holds control characters other than newline")
    if not decoded.endswith("\n"):
        raise NoteMalformedError("note must end with a newline")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteMalformedError("note has no blank line before its signatures")
    text, sig_lines = decoded[: split + 1], decoded[split + 2 : -1].split("\n")
    if len(sig_lines) > MAX_SIGNATURES:
        raise NoteTooLargeError(f"note has over {MAX_SIGNATURES} signatures")

    trusted = {(v.name, v.key_id): v for v in verifiers}
    message = text.encode()
    seen: set[tuple[str, bytes]] = set()
    verified = 0
    for number, line in enumerate(sig_lines, 1):
        name, signature = _parse_signature_line(line, number)
        ident = (name, signature[:4])
        verifier = trusted.get(ident)
        if verifier is None:
            continue  # unknown key: MUST be ignored
        if ident in seen:
            raise NoteMalformedError(f"signature line {number} repeats key {name}")
        seen.add(ident)
        verifier.check(message, signature[4:])
        verified += 1
    if not verified:
        if not verifiers:
            raise UntrustedNoteError("no trusted note verifier keys were given")
        raise UntrustedNoteError("note is not signed by any trusted key")
    return message


def open_checkpoint(
    note: bytes, verifiers: Sequence[NoteVerifier], origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint note and return the checkpoint it carries.

    `origin`, when given, must equal the checkpoint's origin line."""
    if isinstance(note, bytes) and all(isinstance(v, NoteVerifier) for v in verifiers):
        # The appender reopens the same checkpoint.txt around every batch: same bytes and
        # same keys give the same answer, so a successful opening is remembered.
        cp = _open_checkpoint_memo(note, tuple(verifiers))
    else:
        cp = parse_checkpoint_body(open_note(note, verifiers))
    if origin is not None and cp.origin != origin:
        raise CheckpointOriginError(
            f"checkpoint origin {cp.origin!r} is not {origin!r}", origin=cp.origin
        )
    return cp


@functools.lru_cache(maxsize=16)
def _open_checkpoint_memo(note: bytes, verifiers: tuple[NoteVerifier, ...]) -> Checkpoint:
    return parse_checkpoint_body(open_note(note, verifiers))


# --- helpers -------------------------------------------------------------------------------


def _parse_signature_line(line: str, number: int) -> tuple[str, bytes]:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteMalformedError(f"signature line {number} does not start with an em dash")
    name, sep, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not sep or not _valid_key_name(name):
        raise NoteMalformedError(f"signature line {number} has no valid key name")
    signature = b64decode_strict(encoded)
    if signature is None or len(signature) < 5:
        raise NoteMalformedError(f"signature line {number} is not base64(key id || signature)")
    return name, signature


def b64decode_strict(text: str) -> bytes | None:
    """Bytes of standard padded base64 (RFC 4648 section 4) in its one canonical spelling,
    else None."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Rejects non-zero padding bits, which b64decode lets through.
    return raw if base64.b64encode(raw).decode() == text else None


_CONTROL_CHAR = re.compile("[\x00-\x09\x0b-\x1f]")


def _control_chars(text: str) -> bool:
    return _CONTROL_CHAR.search(text) is not None


def _is_line(value: object) -> bool:
    return (
        isinstance(value, str) and value != "" and "\n" not in value and not _control_chars(value)
    )


def _valid_key_name(name: str) -> bool:
    # Unicode spaces (str.isspace covers Zs, tabs, line separators) and "+" are forbidden.
    return name != "" and "+" not in name and not any(c.isspace() for c in name)


def _check_key_name(name: object, error: type[InputError]) -> None:
    if not isinstance(name, str) or not _valid_key_name(name) or _control_chars(name):
        raise error(f"invalid note key name {name!r}: must be non-empty, no spaces, no '+'")


__all__ = [
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "BadSignatureError",
    "Checkpoint",
    "CheckpointBodyError",
    "CheckpointError",
    "CheckpointOriginError",
    "CheckpointRootError",
    "CheckpointSizeError",
    "CheckpointValueError",
    "NoteMalformedError",
    "NoteTooLargeError",
    "NoteVerifier",
    "UntrustedNoteError",
    "VerifierKeyError",
    "b64decode_strict",
    "key_id",
    "note_verifier_key",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint_body",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
]
