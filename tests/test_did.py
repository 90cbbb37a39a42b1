"""did:key conformance (W3C vectors), DID documents of every Ed25519 flavour, offline resolution."""

from __future__ import annotations

import pytest
from batterytrace.credentials.did import (
    OfflineResolver,
    VerificationMethod,
    b58decode,
    b58encode,
    did_key_document,
    did_key_from_public_key,
    public_key_from_did_key,
    verification_methods_from_document,
)
from batterytrace.credentials.errors import (
    DidResolutionError,
    InvalidDidError,
    KeyFormatError,
    VerificationMethodError,
)
from batterytrace.credentials.keys import Ed25519Key
from conftest import W3C, load_json
from hypothesis import given
from hypothesis import strategies as st
from multiformats import multibase, multicodec

VECTORS = load_json(W3C / "did-key" / "ed25519-x25519.json")


@pytest.mark.parametrize("did", sorted(VECTORS))
def test_did_key_vectors_reproduce(did):
    vector = VECTORS[did]
    key = Ed25519Key.from_seed(bytes.fromhex(vector["seed"]))
    assert did_key_from_public_key(key.public_key) == did
    assert public_key_from_did_key(did) == key.public_key
    expected = vector["didDocument"]
    doc = did_key_document(did)
    assert doc["id"] == did
    for relationship in ("assertionMethod", "authentication", "capabilityInvocation"):
        assert doc[relationship] == expected[relationship]
    assert doc["verificationMethod"][0]["id"] == expected["verificationMethod"][0]["id"]
    assert doc["keyAgreement"][0]["id"] == expected["keyAgreement"][0]
    # The vector's own document (2018 base58 keys or JsonWebKey2020) yields the same key.
    (method,) = verification_methods_from_document(expected)
    assert method.public_key == key.public_key and method.controller == did


def test_did_key_document_uses_multikey_and_resolves_from_itself():
    did = Ed25519Key.from_seed(b"\x07" * 32).did_key
    doc = did_key_document(did)
    assert doc["verificationMethod"][0]["type"] == "Multikey"
    resolver = OfflineResolver({"did:web:example.com": {**doc, "id": "did:web:example.com"}})
    with pytest.raises(DidResolutionError):  # method ids still name the did:key
        resolver.resolve_verification_method("did:web:example.com#other", "assertionMethod")


def _wrap(codec: str, raw: bytes) -> str:
    return "did:key:" + multibase.encode(multicodec.wrap(codec, raw), "base58btc")


@pytest.mark.parametrize(
    "did",
    [
        "did:web:example.com",
        "did:key:",
        "did:key:6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",  # no multibase prefix
        "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ0",  # '0' is not base58
        "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4sw",  # truncated
        _wrap("x25519-pub", b"\x01" * 32),  # wrong codec
        _wrap("ed25519-pub", b"\x01" * 31),  # wrong length
        _wrap("ed25519-pub", b"\x01" * 33),
    ],
)
def test_malformed_did_key_is_rejected(did):
    with pytest.raises(InvalidDidError):
        public_key_from_did_key(did)


@given(st.binary(max_size=80))
def test_b58_matches_multiformats(data):
    encoded = b58encode(data)
    assert "z" + encoded == multibase.encode(data, "base58btc")
    assert b58decode(encoded) == data


def test_b58decode_rejects_characters_outside_the_alphabet():
    for bad in ("0abc", "abcO", "Il", "ab c"):
        with pytest.raises(ValueError):
            b58decode(bad)


KEY = Ed25519Key.from_seed(b"\x05" * 32)
WEB = "did:web:refinery.example"


def _web_doc(method: dict, relationships=("assertionMethod",)) -> dict:
    doc = {"id": WEB, "verificationMethod": [method]}
    for relationship in relationships:
        doc[relationship] = [method["id"]]
    return doc


@pytest.mark.parametrize(
    "method",
    [
        {"type": "Multikey", "publicKeyMultibase": KEY.public_multibase},
        {"type": "Ed25519VerificationKey2020", "publicKeyMultibase": KEY.public_multibase},
        {
            "type": "Ed25519VerificationKey2020",
            "publicKeyMultibase": "z" + b58encode(KEY.public_key),
        },
        {"type": "Ed25519VerificationKey2018", "publicKeyBase58": b58encode(KEY.public_key)},
    ],
)
def test_did_web_document_flavours_resolve(method):
    method = {"id": "#key-1", "controller": WEB, **method}
    resolver = OfflineResolver({WEB: _web_doc(method)})
    resolved = resolver.resolve_verification_method(f"{WEB}#key-1", "assertionMethod")
    assert resolved == VerificationMethod(f"{WEB}#key-1", WEB, method["type"], KEY.public_key)


def test_did_web_relationship_is_enforced_and_nothing_is_fetched():
    method = {
        "id": f"{WEB}#key-1",
        "type": "Multikey",
        "controller": WEB,
        "publicKeyMultibase": KEY.public_multibase,
    }
    resolver = OfflineResolver({WEB: _web_doc(method, relationships=("authentication",))})
    assert resolver.resolve_verification_method(f"{WEB}#key-1", "authentication")
    with pytest.raises(VerificationMethodError):
        resolver.resolve_verification_method(f"{WEB}#key-1", "assertionMethod")
    with pytest.raises(VerificationMethodError):  # a bare did:web names no key
        resolver.resolve_verification_method(WEB, "authentication")
    with pytest.raises(DidResolutionError):
        resolver.resolve_verification_method(f"{WEB}#key-2", "authentication")
    with pytest.raises(DidResolutionError):  # not handed in: never fetched
        resolver.resolve_verification_method("did:web:other.example#key-1", "authentication")
    with pytest.raises(DidResolutionError):
        OfflineResolver({WEB: {**method, "id": "did:web:wrong"}}).resolve_verification_method(
            f"{WEB}#key-1", "authentication"
        )


def test_embedded_methods_and_malformed_keys():
    embedded = {
        "id": WEB,
        "assertionMethod": [
            {"id": "#k", "type": "Multikey", "publicKeyMultibase": KEY.public_multibase}
        ],
    }
    resolver = OfflineResolver({WEB: embedded})
    assert resolver.resolve_verification_method(f"{WEB}#k", "assertionMethod").public_key == (
        KEY.public_key
    )
    for bad in (
        {"publicKeyBase58": b58encode(b"\x01" * 31)},
        {"publicKeyMultibase": "zzz0"},
        {"publicKeyMultibase": "z" + b58encode(b"\x80\x26" + b"\x01" * 32)},
        {},
    ):
        doc = _web_doc({"id": "#k", "type": "Ed25519VerificationKey2018", **bad})
        with pytest.raises(KeyFormatError):
            verification_methods_from_document(doc)


def test_did_key_resolution_bare_and_fragment():
    resolver = OfflineResolver()
    did = KEY.did_key
    bare = resolver.resolve_verification_method(did, "assertionMethod")
    full = resolver.resolve_verification_method(KEY.verification_method, "authentication")
    assert bare.public_key == full.public_key == KEY.public_key and bare.controller == did
    with pytest.raises(VerificationMethodError):
        resolver.resolve_verification_method(did + "#other", "assertionMethod")
    with pytest.raises(VerificationMethodError):
        resolver.resolve_verification_method(KEY.verification_method, "keyAgreement")
    with pytest.raises(InvalidDidError):
        resolver.resolve_verification_method("did:key:z6Mk#x", "assertionMethod")
    with pytest.raises(DidResolutionError):
        resolver.resolve_verification_method("https://example.com/key", "assertionMethod")
