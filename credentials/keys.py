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
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from multiformats import multicodec

from .base58 import b58decode, b58encode
from .errors import KeyFormatError

ED25519_PUB_CODEC = "ed25519-pub"
ED25519_PRIV_CODEC = "ed25519-priv"
_ED25519_PUB_PREFIX = b"\xed\x01"
_ED25519_PRIV_PREFIX = b"\x80\x26"


class InsecureKeyFileWarning(UserWarning):
    """A secret key file is readable by group or others."""


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


def verify_raw(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Ed25519 verification of raw bytes. Returns False only for a bad signature."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
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
    """Write the key as Multikey JSON, created with mode 0600."""
    path = Path(path)
    data = json.dumps(key.to_multikey(), indent=2) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def load_key_file(path: Path) -> Ed25519Key:
    """Read a Multikey JSON key file; warns (InsecureKeyFileWarning) when a file holding a
    secret is readable by group or others."""
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
        warnings.warn(
            f"key file {path} is readable by others; run chmod 600 {path}",
            InsecureKeyFileWarning,
            stacklevel=2,
        )
    return key


__all__ = [
    "ED25519_PRIV_CODEC",
    "ED25519_PUB_CODEC",
    "Ed25519Key",
    "InsecureKeyFileWarning",
    "decode_public_multibase",
    "decode_secret_multibase",
    "encode_public_multibase",
    "encode_secret_multibase",
    "load_key_file",
    "multicodec",
    "verify_raw",
    "write_key_file",
]
