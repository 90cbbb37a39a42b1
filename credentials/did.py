"""Decentralized identifiers: did:key (Ed25519) computed, did:web only from documents handed in.

did:key is `did:key:` + multibase(base58btc, 0xed 0x01 || 32-byte key); its DID document holds
one Multikey verification method in assertionMethod, authentication, capabilityInvocation and
capabilityDelegation (plus the derived X25519 key in keyAgreement). Decoding goes through
`multiformats`, which is slow, so decodes are cached: verification resolves the same few DIDs
over and over.

The `OfflineResolver` never touches the network: a did:web (or any other DID) resolves only
from the documents given to it (a folder, a bundle, the trust file).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from multiformats import multibase, multicodec

from .base58 import b58decode, b58encode
from .errors import DidResolutionError, InvalidDidError, KeyFormatError, VerificationMethodError
from .keys import encode_public_multibase

DID_KEY_PREFIX = "did:key:"
DID_V1_CONTEXT = "https://www.w3.org/ns/did/v1"
MULTIKEY_V1_CONTEXT = "https://w3id.org/security/multikey/v1"
VERIFICATION_RELATIONSHIPS = (
    "assertionMethod",
    "authentication",
    "capabilityInvocation",
    "capabilityDelegation",
    "keyAgreement",
)
# The relationships in which a did:key document lists its Ed25519 key.
_DID_KEY_SIGNING_RELATIONSHIPS = frozenset(VERIFICATION_RELATIONSHIPS[:4])
ED25519_METHOD_TYPES = frozenset(
    {"Multikey", "Ed25519VerificationKey2018", "Ed25519VerificationKey2020", "JsonWebKey2020"}
)

_ED25519_PUB_PREFIX = b"\xed\x01"
_X25519_PUB_PREFIX = b"\xec\x01"
@dataclass(frozen=True)
class VerificationMethod:
    """An Ed25519 verification method, resolved: its absolute id, controller and raw key."""

    id: str
    controller: str
    type: str
    public_key: bytes


class Resolver(Protocol):
    """Finds the key of a verification method, if it is in the given relationship."""

    def resolve_verification_method(self, vm_id: str, relationship: str) -> VerificationMethod:
        """The method `vm_id`, checked to be in `relationship` (e.g. assertionMethod) of its
        controller's DID document; raises DidResolutionError or VerificationMethodError."""
        ...


# --- did:key -----------------------------------------------------------------------------


def did_key_from_public_key(pub: bytes) -> str:
    """`did:key:z6Mk...` of a raw 32-byte Ed25519 public key."""
    if not isinstance(pub, bytes) or len(pub) != 32:
        raise KeyFormatError("an Ed25519 public key is 32 bytes")
    return _did_key_from_public_key(pub)


@lru_cache(maxsize=4096)
def _did_key_from_public_key(pub: bytes) -> str:
    return DID_KEY_PREFIX + encode_public_multibase(pub)


@lru_cache(maxsize=4096)
def public_key_from_did_key(did: str) -> bytes:
    """The raw 32-byte Ed25519 key of a did:key (no fragment). Raises InvalidDidError for
    another method, bad base58, a codec other than ed25519-pub, or a wrong length."""
    if not isinstance(did, str) or not did.startswith(DID_KEY_PREFIX):
        raise InvalidDidError(f"not a did:key: {did!r:.80}")
    value = did[len(DID_KEY_PREFIX) :]
    if not value.startswith("z"):
        raise InvalidDidError("did:key must be multibase base58btc (start with 'z')", did=did)
    try:
        codec, raw = multicodec.unwrap(multibase.decode(value))
    except Exception as exc:  # multiformats raises several unrelated types
        raise InvalidDidError(f"did:key does not decode: {exc}", did=did) from exc
    # A truncated identifier can decode as another codec: check both codec and length.
    if codec.name != "ed25519-pub":
        raise InvalidDidError(f"did:key codec is {codec.name}, expected ed25519-pub", did=did)
    if len(raw) != 32:
        raise InvalidDidError(f"did:key Ed25519 key is {len(raw)} bytes, expected 32", did=did)
    return bytes(raw)


def did_key_document(did: str) -> dict[str, Any]:
    """The DID document of a did:key: one Multikey method in the four signing relationships
    and its X25519 key (RFC 7748 birational map) in keyAgreement. A new dict each call."""
    public_key = public_key_from_did_key(did)
    fingerprint = did[len(DID_KEY_PREFIX) :]
    vm_id = f"{did}#{fingerprint}"
    x25519 = _x25519_multibase(public_key)
    return {
        "@context": [DID_V1_CONTEXT, MULTIKEY_V1_CONTEXT],
        "id": did,
        "verificationMethod": [
            {
                "id": vm_id,
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": fingerprint,
            }
        ],
        "authentication": [vm_id],
        "assertionMethod": [vm_id],
        "capabilityInvocation": [vm_id],
        "capabilityDelegation": [vm_id],
        "keyAgreement": [
            {
                "id": f"{did}#{x25519}",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": x25519,
            }
        ],
    }


@lru_cache(maxsize=1024)
def _x25519_multibase(ed25519_public: bytes) -> str:
    from nacl.bindings import crypto_sign_ed25519_pk_to_curve25519

    x25519 = crypto_sign_ed25519_pk_to_curve25519(ed25519_public)
    return multibase.encode(multicodec.wrap("x25519-pub", x25519), "base58btc")


@lru_cache(maxsize=4096)
def _did_key_method(did: str) -> VerificationMethod:
    public_key = public_key_from_did_key(did)
    return VerificationMethod(
        id=f"{did}#{did[len(DID_KEY_PREFIX) :]}",
        controller=did,
        type="Multikey",
        public_key=public_key,
    )


# --- DID documents -----------------------------------------------------------------------


def _absolute(ref: str, did: str) -> str:
    return did + ref if ref.startswith("#") else ref


def _method_key(method: Mapping[str, Any]) -> bytes | None:
    """The raw Ed25519 key of a method object, None when it holds another key type."""
    method_type = method.get("type")
    jwk = method.get("publicKeyJwk")
    if method_type == "JsonWebKey2020" or jwk is not None:
        return _jwk_key(jwk)
    multibase_value = method.get("publicKeyMultibase")
    base58_value = method.get("publicKeyBase58")
    if isinstance(multibase_value, str) and multibase_value.startswith("z"):
        raw = _b58_or_key_error(multibase_value[1:], "publicKeyMultibase")
        if len(raw) == 34 and raw[:2] == _X25519_PUB_PREFIX:
            return None  # a Multikey may hold the X25519 keyAgreement key: not for signing
        if len(raw) == 34 and raw[:2] == _ED25519_PUB_PREFIX:
            return raw[2:]
        # Some Ed25519VerificationKey2020 writers put the bare 32-byte key in the multibase.
        if len(raw) == 32 and method_type != "Multikey":
            return raw
        raise KeyFormatError(f"publicKeyMultibase of {method_type} is not an Ed25519 key")
    if isinstance(base58_value, str) and method_type != "Multikey":
        raw = _b58_or_key_error(base58_value, "publicKeyBase58")
        if len(raw) != 32:
            raise KeyFormatError(f"publicKeyBase58 is {len(raw)} bytes, expected 32")
        return raw
    raise KeyFormatError(f"{method_type} has no usable publicKeyMultibase or publicKeyBase58")


def _jwk_key(jwk: Any) -> bytes | None:
    if not isinstance(jwk, Mapping):
        raise KeyFormatError("JsonWebKey2020 needs a publicKeyJwk object")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None  # X25519 or another curve: not an Ed25519 signing key
    x = jwk.get("x")
    if not isinstance(x, str):
        raise KeyFormatError("publicKeyJwk x is not base64url")
    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    except (TypeError, ValueError):
        raise KeyFormatError("publicKeyJwk x is not base64url") from None
    if len(raw) != 32:
        raise KeyFormatError(f"publicKeyJwk x is {len(raw)} bytes, expected 32")
    return raw


def _b58_or_key_error(value: str, what: str) -> bytes:
    try:
        return b58decode(value)
    except ValueError:
        raise KeyFormatError(f"{what} is not valid base58btc") from None


def _method_from_object(method: Mapping[str, Any], did: str) -> VerificationMethod | None:
    if method.get("type") not in ED25519_METHOD_TYPES:
        return None
    method_id = method.get("id")
    if not isinstance(method_id, str):
        raise KeyFormatError("a verification method has no string id")
    method_id = _absolute(method_id, did)
    public_key = _method_key(method)
    if public_key is None:
        return None
    controller = method.get("controller", did)
    if not isinstance(controller, str):
        raise KeyFormatError(f"verification method {method_id} has a non-string controller")
    return VerificationMethod(
        id=method_id,
        controller=_absolute(controller, did),
        type=str(method["type"]),
        public_key=public_key,
    )


def verification_methods_from_document(doc: Mapping[str, Any]) -> list[VerificationMethod]:
    """Every Ed25519 verification method of a DID document (Multikey, Ed25519VerificationKey2018
    or 2020 with publicKeyMultibase or publicKeyBase58, JsonWebKey2020 OKP), from
    `verificationMethod` and those embedded in relationships; relative ids ('#key-1') are made
    absolute. Other key types (X25519, ...) are skipped; a malformed Ed25519 key raises
    KeyFormatError."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("id"), str):
        raise DidResolutionError("a DID document must be an object with a string id")
    did = doc["id"]
    found: dict[str, VerificationMethod] = {}
    candidates: list[Any] = list(_as_list(doc.get("verificationMethod")))
    for relationship in VERIFICATION_RELATIONSHIPS:
        candidates.extend(m for m in _as_list(doc.get(relationship)) if isinstance(m, Mapping))
    for method in candidates:
        if not isinstance(method, Mapping):
            raise KeyFormatError("verificationMethod entries must be objects")
        resolved = _method_from_object(method, did)
        if resolved is not None:
            found.setdefault(resolved.id, resolved)
    return list(found.values())


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _relationship_ids(doc: Mapping[str, Any], relationship: str) -> frozenset[str]:
    did = doc["id"]
    ids = set()
    for entry in _as_list(doc.get(relationship)):
        if isinstance(entry, str):
            ids.add(_absolute(entry, did))
        elif isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
            ids.add(_absolute(entry["id"], did))
    return frozenset(ids)


@dataclass(frozen=True)
class _IndexedDocument:
    methods: dict[str, VerificationMethod]
    relationships: dict[str, frozenset[str]]


class OfflineResolver:
    """Resolves verification methods without the network.

    did:key is computed from the identifier; any other DID (did:web) only from `documents`,
    a mapping DID -> DID document. A bare did:key without fragment is its own key, as in the
    W3C status-list examples.
    """

    def __init__(self, documents: Mapping[str, dict[str, Any]] | None = None) -> None:
        self._documents = dict(documents or {})
        self._index: dict[str, _IndexedDocument] = {}

    def add_document(self, doc: dict[str, Any]) -> None:
        """Add (or replace) a DID document, keyed by its `id`."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("id"), str):
            raise DidResolutionError("a DID document must be an object with a string id")
        self._documents[doc["id"]] = doc
        self._index.pop(doc["id"], None)

    def resolve_verification_method(self, vm_id: str, relationship: str) -> VerificationMethod:
        """See `Resolver`."""
        if not isinstance(vm_id, str) or not vm_id.startswith("did:"):
            raise DidResolutionError(f"verification method is not a DID URL: {vm_id!r:.80}")
        did, _, fragment = vm_id.partition("#")
        if did.startswith(DID_KEY_PREFIX):
            return _resolve_did_key(vm_id, did, fragment, relationship)
        indexed = self._indexed(did)
        if not fragment:
            raise VerificationMethodError(f"{vm_id} names a DID, not one of its methods")
        method = indexed.methods.get(vm_id)
        if method is None:
            raise DidResolutionError(f"{vm_id} is not an Ed25519 method of {did}")
        if vm_id not in indexed.relationships.get(relationship, frozenset()):
            raise VerificationMethodError(f"{vm_id} is not in {relationship} of {did}")
        return method

    def _indexed(self, did: str) -> _IndexedDocument:
        indexed = self._index.get(did)
        if indexed is not None:
            return indexed
        doc = self._documents.get(did)
        if doc is None:
            raise DidResolutionError(f"no DID document for {did} (resolution is offline)")
        if doc.get("id") != did:
            raise DidResolutionError(f"the document given for {did} has id {doc.get('id')!r}")
        methods = {m.id: m for m in verification_methods_from_document(doc)}
        relationships = {r: _relationship_ids(doc, r) for r in VERIFICATION_RELATIONSHIPS}
        indexed = self._index[did] = _IndexedDocument(methods, relationships)
        return indexed


def _resolve_did_key(vm_id: str, did: str, fragment: str, relationship: str) -> VerificationMethod:
    method = _did_key_method(did)
    if fragment and fragment != did[len(DID_KEY_PREFIX) :]:
        raise VerificationMethodError(f"{vm_id} is not the signing key of {did}")
    if relationship not in _DID_KEY_SIGNING_RELATIONSHIPS:
        raise VerificationMethodError(f"a did:key Ed25519 key is not in {relationship}")
    return method


__all__ = [
    "DID_KEY_PREFIX",
    "OfflineResolver",
    "Resolver",
    "VerificationMethod",
    "b58decode",
    "b58encode",
    "did_key_document",
    "did_key_from_public_key",
    "public_key_from_did_key",
    "verification_methods_from_document",
]
