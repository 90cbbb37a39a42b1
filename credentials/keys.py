"""Ed25519 keys as W3C Multikey documents.

A key file is JSON: `{"type": "Multikey", "id", "controller", "publicKeyMultibase",
"secretKeyMultibase"}` where the secret is multibase(base58btc, 0x80 0x26 || 32-byte seed) and
the public key multibase(base58btc, 0xed 0x01 || 32-byte key). `privateKeyMultibase` is read too
(the W3C vector file uses that name). Files are written with mode 0600.
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from multiformats import multicodec
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from .base58 import b58decode, b58encode
from .errors import Ed25519SignatureError, KeyFormatError

ED25519_PUB_CODEC = "ed25519-pub"
ED25519_PRIV_CODEC = "ed25519-priv"
_ED25519_PUB_PREFIX = b"\xed\x01"
_ED25519_PRIV_PREFIX = b"\x80\x26"


class InsecureKeyFileWarning(UserWarning):
    """A secret key file is readable by group or others."""


class InsecureKeyFileError(KeyFormatError):
    """A secret key file is readable by group or others and strict key checks are on."""

    code = "INSECURE_KEY_FILE"
    title = "Key file readable by others"


STRICT_KEYS_ENV = "BATTERYTRACE_STRICT_KEYS"
_strict_keys = False


def set_strict_keys(strict: bool) -> None:
    """Make load_key_file refuse (instead of warn about) key files readable by others."""
    global _strict_keys
    _strict_keys = strict


def _b58_decode(value: str, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("z"):
        raise KeyFormatError(f"{what} must be a base58btc multibase string starting with 'z'")
    try:
        return b58decode(value[1:])
    except ValueError as exc:
        raise KeyFormatError(f"{what} is not valid base58btc") from exc


def _b58_encode(data: bytes) -> str:
    return "z" + b58encode(data)


def decode_public_multibase(value: str) -> bytes:
    """Raw 32-byte Ed25519 public key from a Multikey `publicKeyMultibase` (z6Mk...)."""
    raw = _b58_decode(value, "publicKeyMultibase")
    if raw[:2] != _ED25519_PUB_PREFIX:
        raise KeyFormatError("publicKeyMultibase is not an ed25519-pub multicodec key")
    key = raw[2:]
    if len(key) != 32:
        raise KeyFormatError(f"ed25519 public key must be 32 bytes, got {len(key)}")
    return key


def encode_public_multibase(public_key: bytes) -> str:
    """`publicKeyMultibase` (z6Mk...) of a raw 32-byte Ed25519 public key."""
    if len(public_key) != 32:
        raise KeyFormatError("ed25519 public key must be 32 bytes")
    return _b58_encode(_ED25519_PUB_PREFIX + public_key)


def decode_secret_multibase(value: str) -> bytes:
    """32-byte Ed25519 seed from a `secretKeyMultibase` (0x80 0x26 || seed)."""
    raw = _b58_decode(value, "secretKeyMultibase")
    if raw[:2] != _ED25519_PRIV_PREFIX:
        raise KeyFormatError("secretKeyMultibase is not an ed25519-priv multicodec key")
    seed = raw[2:]
    if len(seed) != 32:
        raise KeyFormatError(f"ed25519 seed must be 32 bytes, got {len(seed)}")
    return seed


def encode_secret_multibase(seed: bytes) -> str:
    return _b58_encode(_ED25519_PRIV_PREFIX + seed)


# --- the one Ed25519 verification path ---------------------------------------------------

# The prime of the field and the order L of the prime-order subgroup (RFC 8032, section 5.1).
_P = 2**255 - 19
ED25519_L = 2**252 + 27742317777372353535851937790883648493
# The y coordinates whose points have small order (1, 2, 4 or 8), as libsodium lists them:
# 0 (order 4), 1 (the identity), the two order-8 y values, p - 1 (order 2), and the
# non-canonical p (= 0) and p + 1 (= 1). With both values of the sign bit (bit 255) that
# makes the 14 encodings of the small-order points, canonical or not.
_Y_ORDER_8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
_SMALL_ORDER_Y = (0, 1, _Y_ORDER_8, _P - _Y_ORDER_8, _P - 1, _P, _P + 1)
SMALL_ORDER_ENCODINGS: frozenset[bytes] = frozenset(
    (y | sign << 255).to_bytes(32, "little") for y in _SMALL_ORDER_Y for sign in (0, 1)
)
_Y_MASK = (1 << 255) - 1

# Values of `Ed25519SignatureError.reason`.
REASON_MALFORMED = "MALFORMED"  # a key of other than 32 bytes, a signature of other than 64
REASON_NON_CANONICAL_KEY = "NON_CANONICAL_KEY"  # A's y coordinate is not reduced (y >= p)
REASON_SMALL_ORDER_KEY = "SMALL_ORDER_KEY"  # A is one of the 14 small-order encodings
REASON_NON_CANONICAL_S = "NON_CANONICAL_S"  # S >= L
REASON_SMALL_ORDER_R = "SMALL_ORDER_R"  # R is one of the 14 small-order encodings
REASON_NON_CANONICAL_R = "NON_CANONICAL_R"  # R's y coordinate is not reduced (y >= p)
REASON_MISMATCH = "MISMATCH"  # the equation fails, or A is not a curve point
ED25519_REASONS = (
    REASON_MALFORMED,
    REASON_NON_CANONICAL_KEY,
    REASON_SMALL_ORDER_KEY,
    REASON_NON_CANONICAL_S,
    REASON_SMALL_ORDER_R,
    REASON_NON_CANONICAL_R,
    REASON_MISMATCH,
)
_MESSAGES = {
    REASON_MALFORMED: "an Ed25519 public key is 32 bytes and a signature 64",
    REASON_NON_CANONICAL_KEY: "the Ed25519 public key is not canonically encoded",
    REASON_SMALL_ORDER_KEY: "the Ed25519 public key is a small-order point",
    REASON_NON_CANONICAL_S: "the Ed25519 signature's S is not below the group order L",
    REASON_SMALL_ORDER_R: "the Ed25519 signature's R is a small-order point",
    REASON_NON_CANONICAL_R: "the Ed25519 signature's R is not canonically encoded",
    REASON_MISMATCH: "the Ed25519 signature does not verify",
}


@lru_cache(maxsize=8192)
def _public_key_refusal(public_key: bytes) -> str | None:
    """Why a public key can never verify anything under our strictness (None: it may).
    Cached per key: the hot path sees the same few hundred keys again and again."""
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        return REASON_MALFORMED
    if public_key in SMALL_ORDER_ENCODINGS:
        return REASON_SMALL_ORDER_KEY
    if int.from_bytes(public_key, "little") & _Y_MASK >= _P:
        return REASON_NON_CANONICAL_KEY
    return None


def _signature_refusal(signature: bytes) -> str | None:
    if not isinstance(signature, bytes) or len(signature) != 64:
        return REASON_MALFORMED
    # S < 2^252 < L whenever the top four bits are clear: the integer compare is for the rest.
    if signature[63] >= 0x10 and int.from_bytes(signature[32:], "little") >= ED25519_L:
        return REASON_NON_CANONICAL_S
    r = signature[:32]
    if r in SMALL_ORDER_ENCODINGS:
        return REASON_SMALL_ORDER_R
    # y >= p needs the low 255 bits to be at least 2^255 - 19: bytes 1..31 all ones first.
    if signature[31] & 0x7F == 0x7F and int.from_bytes(r, "little") & _Y_MASK >= _P:
        return REASON_NON_CANONICAL_R
    return None


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> None:
    """Verify an Ed25519 signature (RFC 8032, pure Ed25519) with batterytrace's strictness.

    This is the one Ed25519 verification path of the project: Data Integrity proofs
    (credentials, custody events, registry entries), checkpoint notes and `Ed25519Key.verify`
    all call it. Raises `Ed25519SignatureError` (its `reason` says why) and returns None when
    the signature is accepted.

    Strictness, checked in Python before the signature equation (so the verdict does not depend
    on the library underneath):

    - the public key is 32 bytes and the signature 64 (MALFORMED);
    - S must be canonical, 0 <= S < L (NON_CANONICAL_S): RFC 8032 section 5.1.7 requires it,
      and it removes the malleability S -> S + L;
    - the public key A must not be one of the 14 encodings of the small-order points (eight
      canonical, six non-canonical) (SMALL_ORDER_KEY): such a key "verifies" signatures that
      nobody made;
    - A must be canonically encoded, its y coordinate below p = 2^255 - 19 (NON_CANONICAL_KEY);
    - R must not be a small-order encoding (SMALL_ORDER_R) and must be canonically encoded
      (NON_CANONICAL_R).

    The equation is then the cofactorless one, [S]B = R + [k]A, checked by libsodium (PyNaCl's
    `crypto_sign_open`), which also refuses an A that is not a curve point (MISMATCH). A key
    with a small torsion component ("mixed order") is not refused, as in libsodium: the
    cofactorless equation decides. This matches libsodium's and ed25519-dalek's
    `verify_strict` verdicts on all twelve "Taming the many EdDSAs" vectors (only vector 3
    is accepted); see docs/credentials.md and tests/test_ed25519_strict.py.

    Cost: the key checks are cached per key (lru_cache); the S and R checks are a byte
    compare and a set lookup, well under a microsecond next to a ~50 microsecond verify.
    """
    reason = _public_key_refusal(public_key) or _signature_refusal(signature)
    if reason is None:
        try:
            crypto_sign_open(signature + message, public_key)
            return
        except BadSignatureError:
            reason = REASON_MISMATCH
    raise Ed25519SignatureError(_MESSAGES[reason], reason)


def verify_raw(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """`verify_ed25519` as a boolean: True when the signature is accepted, False when it is
    refused for any reason (bad signature, malformed or non-strict key or signature)."""
    try:
        verify_ed25519(public_key, signature, message)
    except Ed25519SignatureError:
        return False
    return True


@dataclass(frozen=True)
class Ed25519Key:
    """An Ed25519 key pair (or a public key only, when `seed` is None)."""

    public_key: bytes
    seed: bytes | None = None
    controller: str | None = None
    id: str | None = None

    @classmethod
    def generate(cls) -> Ed25519Key:
        private = Ed25519PrivateKey.generate()
        return cls.from_seed(private.private_bytes_raw())

    @classmethod
    def from_seed(
        cls, seed: bytes, controller: str | None = None, id: str | None = None
    ) -> Ed25519Key:
        if len(seed) != 32:
            raise KeyFormatError("ed25519 seed must be 32 bytes")
        public = (
            Ed25519PrivateKey.from_private_bytes(seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return cls(public_key=public, seed=seed, controller=controller, id=id)

    @property
    def public_multibase(self) -> str:
        return encode_public_multibase(self.public_key)

    @property
    def did_key(self) -> str:
        """The did:key identifier of this key."""
        return "did:key:" + self.public_multibase

    @property
    def verification_method(self) -> str:
        """`id` of the key if set, else its did:key verification method."""
        return self.id or f"{self.did_key}#{self.public_multibase}"

    def sign(self, message: bytes) -> bytes:
        if self.seed is None:
            raise KeyFormatError("this key has no secret part and cannot sign")
        return _private(self.seed).sign(message)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when `signature` is this key's signature of `message` (see `verify_ed25519`)."""
        return verify_raw(self.public_key, signature, message)

    def to_multikey(self, include_secret: bool = True) -> dict[str, Any]:
        """The W3C Multikey JSON of this key."""
        controller = self.controller or self.did_key
        doc: dict[str, Any] = {
            "type": "Multikey",
            "id": self.id or f"{controller}#{self.public_multibase}",
            "controller": controller,
            "publicKeyMultibase": self.public_multibase,
        }
        if include_secret and self.seed is not None:
            doc["secretKeyMultibase"] = encode_secret_multibase(self.seed)
        return doc

    @classmethod
    def from_multikey(cls, doc: Any) -> Ed25519Key:
        """Read a Multikey JSON object (secret under `secretKeyMultibase` or
        `privateKeyMultibase`); checks that the secret matches the public key."""
        if not isinstance(doc, dict):
            raise KeyFormatError("a Multikey must be a JSON object")
        secret = doc.get("secretKeyMultibase", doc.get("privateKeyMultibase"))
        public_mb = doc.get("publicKeyMultibase")
        if secret is None and public_mb is None:
            raise KeyFormatError("Multikey has neither publicKeyMultibase nor secretKeyMultibase")
        controller = doc.get("controller")
        key_id = doc.get("id")
        if secret is not None:
            key = cls.from_seed(decode_secret_multibase(secret), controller, key_id)
            if public_mb is not None and decode_public_multibase(public_mb) != key.public_key:
                raise KeyFormatError("publicKeyMultibase does not match the secret key")
            return key
        if not isinstance(public_mb, str):
            raise KeyFormatError("publicKeyMultibase must be a string")
        return cls(public_key=decode_public_multibase(public_mb), controller=controller, id=key_id)


_PRIVATE_CACHE: dict[bytes, Ed25519PrivateKey] = {}


def _private(seed: bytes) -> Ed25519PrivateKey:
    # Building the key object costs about as much as a signature: keep a few.
    key = _PRIVATE_CACHE.get(seed)
    if key is None:
        if len(_PRIVATE_CACHE) > 64:
            _PRIVATE_CACHE.clear()
        key = _PRIVATE_CACHE[seed] = Ed25519PrivateKey.from_private_bytes(seed)
    return key


def write_key_file(key: Ed25519Key, path: Path) -> None:
    """Write the key as Multikey JSON with mode 0600, atomically: a temporary file in the same
    folder, synced, then renamed over `path`."""
    path = Path(path)
    data = json.dumps(key.to_multikey(), indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_key_file(path: Path, strict: bool | None = None) -> Ed25519Key:
    """Read a Multikey JSON key file. A file holding a secret that is readable by group or
    others warns (InsecureKeyFileWarning), or is refused (InsecureKeyFileError, exit 2) when
    `strict` (default: set_strict_keys, `--strict-keys`, BATTERYTRACE_STRICT_KEYS)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyFormatError(f"cannot read key file {path}: {exc.strerror}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyFormatError(f"key file {path} is not JSON: {exc}") from exc
    key = Ed25519Key.from_multikey(doc)
    if key.seed is not None and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        message = f"key file {path} is readable by group or others; run chmod 600 {path}"
        if _strict_keys if strict is None else strict:
            raise InsecureKeyFileError(message)
        warnings.warn(message, InsecureKeyFileWarning, stacklevel=2)
    return key


__all__ = [
    "ED25519_L",
    "ED25519_PRIV_CODEC",
    "ED25519_PUB_CODEC",
    "ED25519_REASONS",
    "SMALL_ORDER_ENCODINGS",
    "STRICT_KEYS_ENV",
    "Ed25519Key",
    "Ed25519SignatureError",
    "InsecureKeyFileError",
    "InsecureKeyFileWarning",
    "decode_public_multibase",
    "decode_secret_multibase",
    "encode_public_multibase",
    "encode_secret_multibase",
    "load_key_file",
    "multicodec",
    "set_strict_keys",
    "verify_ed25519",
    "verify_raw",
    "write_key_file",
]
