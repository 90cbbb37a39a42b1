"""eddsa-rdfc-2022 verification transform: W3C vectors, data loss, offline contexts, poison."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from batterytrace.credentials import rdfc
from batterytrace.credentials.errors import DataLossDetectionError, ProofVerificationError
from batterytrace.credentials.keys import Ed25519Key, decode_public_multibase, verify_raw
from batterytrace.credentials.rdfc import (
    CanonicalizationLimitError,
    ContextUnavailableError,
    JsonLdProcessingError,
    canonize,
    rdfc_hash_data,
)
from conftest import W3C, load_json
from multiformats import multibase

VECTORS = W3C / "vc-di-eddsa" / "eddsa-rdfc-2022"
BSL = W3C / "bitstring-status-list"
VECTOR_KEY = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


def _text(name: str) -> str:
    return (VECTORS / name).read_text(encoding="utf-8")


def _split(signed: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    document = copy.deepcopy(signed)
    return document, document.pop("proof")


def _verify(signed: dict[str, Any]) -> bool:
    """Raw verification: rdfc_hash_data + Ed25519 with the did:key of verificationMethod."""
    document, proof = _split(signed)
    multikey = proof["verificationMethod"].removeprefix("did:key:").split("#")[0]
    signature = bytes(multibase.decode(proof["proofValue"]))
    return verify_raw(
        decode_public_multibase(multikey), signature, rdfc_hash_data(document, proof)
    )


def _test_only_sign(document: dict[str, Any], key: Ed25519Key) -> dict[str, Any]:
    """A minimal eddsa-rdfc-2022 signer; the project itself never issues with rdfc."""
    proof = {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-rdfc-2022",
        "created": "2025-01-01T00:00:00Z",
        "verificationMethod": key.verification_method,
        "proofPurpose": "assertionMethod",
    }
    config = {**proof, "@context": document["@context"]}
    signature = key.sign(rdfc_hash_data(document, config))
    proof["proofValue"] = multibase.encode(signature, "base58btc")
    return {**document, "proof": proof}


# --- the W3C vector ---------------------------------------------------------------------


def test_vector_canonical_document_and_proof():
    document, _ = _split(load_json(VECTORS / "signedDataInt.json"))
    assert canonize(document) == _text("canonDocDataInt.txt")
    assert canonize(load_json(VECTORS / "proofConfigDataInt.json")) == _text(
        "proofCanonDataInt.txt"
    )


def test_vector_hashes_and_signature():
    document, proof = _split(load_json(VECTORS / "signedDataInt.json"))
    hash_data = rdfc_hash_data(document, proof)
    assert hash_data.hex() == _text("combinedHashDataInt.txt").strip()
    assert hash_data[:32].hex() == _text("proofHashDataInt.txt").strip()
    assert hash_data[32:].hex() == _text("docHashDataInt.txt").strip()
    signature = bytes(multibase.decode(proof["proofValue"]))
    assert signature.hex() == _text("sigHexDataInt.txt").strip()
    key_pair = load_json(W3C / "vc-di-eddsa" / "keyPair.json")
    assert key_pair["publicKeyMultibase"] == VECTOR_KEY
    assert verify_raw(decode_public_multibase(VECTOR_KEY), signature, hash_data)
    # the same signature is reproduced by the vector's secret key (Ed25519 is deterministic)
    assert Ed25519Key.from_multikey(key_pair).sign(hash_data) == signature


@pytest.mark.parametrize(
    "name",
    [
        "bsl-rec-example-revocable-vc-eddsa-rdfc-2022.json",
        "bsl-rec-example-status-list-vc-eddsa-rdfc-2022.json",
    ],
)
def test_signed_status_list_examples_verify(name):
    signed = load_json(BSL / name)
    assert _verify(signed)
    tampered = copy.deepcopy(signed)
    tampered["validFrom"] = "2021-04-05T14:27:41Z"
    assert not _verify(tampered)


def test_tampered_vector_fails_as_signature_not_data_loss():
    signed = load_json(VECTORS / "signedDataInt.json")
    signed["credentialSubject"]["alumniOf"] = "Another School"
    assert not _verify(signed)


# --- data loss --------------------------------------------------------------------------


def _credential_without_vocab() -> dict[str, Any]:
    # VC v2 has no @vocab: every term must be defined by a context.
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "urn:uuid:7f0c1bd6-3a2b-4c5e-9f10-0a1b2c3d4e5f",
        "type": ["VerifiableCredential"],
        "issuer": "did:key:" + VECTOR_KEY,
        "validFrom": "2025-01-01T00:00:00Z",
        "credentialSubject": {"id": "https://ledger.example/lots/42"},
    }


def test_undefined_property_is_data_loss_not_a_signature_failure():
    key = Ed25519Key.from_seed(bytes(range(32)))
    signed = _test_only_sign(_credential_without_vocab(), key)
    assert _verify(signed)
    signed["recycledContent"] = "99%"  # an unsigned claim, defined by no context
    # PyLD alone drops it silently, so the plain RDF (and the signature) would not change:
    from pyld import jsonld

    document, _ = _split(signed)
    options = {"algorithm": "URDNA2015", "format": "application/n-quads", "base": None,
               "documentLoader": rdfc.document_loader}
    assert jsonld.normalize(document, options) == canonize(_split(_test_only_sign(
        _credential_without_vocab(), key))[0])
    with pytest.raises(DataLossDetectionError) as info:
        _verify(signed)
    assert info.value.code == "DATA_LOSS_DETECTION_ERROR"


def test_undefined_nested_property_and_null_term_are_data_loss():
    nested = _credential_without_vocab()
    nested["credentialSubject"]["cobaltShare"] = 0.4
    with pytest.raises(DataLossDetectionError):
        canonize(nested)
    nulled = _credential_without_vocab()
    nulled["@context"] = [*nulled["@context"], {"hidden": None}]
    nulled["hidden"] = "x"
    with pytest.raises(DataLossDetectionError):
        canonize(nulled)


@pytest.mark.parametrize(
    "change",
    [{"id": "credentials/1"}, {"credentialSubject": {"id": "lots/42"}}, {"type": ["Relative"]}],
)
def test_relative_iris_are_data_loss(change):
    document = {**_credential_without_vocab(), **change}
    with pytest.raises(DataLossDetectionError):
        canonize(document)


def test_context_appended_after_signing_cannot_define_new_claims():
    key = Ed25519Key.from_seed(bytes(range(32)))
    signed = _test_only_sign(_credential_without_vocab(), key)
    signed["@context"] = [*signed["@context"], "https://www.w3.org/ns/credentials/examples/v2"]
    signed["recycledContent"] = "99%"
    document, proof = _split(signed)
    proof["@context"] = _credential_without_vocab()["@context"]  # the context it was signed with
    with pytest.raises(DataLossDetectionError):
        rdfc_hash_data(document, proof)
    proof["@context"] = ["https://www.w3.org/ns/credentials/examples/v2"]  # not a prefix
    with pytest.raises(ProofVerificationError):
        rdfc_hash_data(document, proof)


def test_defined_terms_with_vocab_context_are_accepted():
    document = _credential_without_vocab()
    document["@context"].append("https://www.w3.org/ns/credentials/examples/v2")
    document["credentialSubject"]["cobaltShare"] = 0.4
    assert "https://www.w3.org/ns/credentials/examples#cobaltShare" in canonize(document)


# --- contexts ---------------------------------------------------------------------------


def test_contexts_come_only_from_the_bundle():
    document = _credential_without_vocab()
    document["@context"].append("https://evil.example/context.jsonld")
    with pytest.raises(ContextUnavailableError):
        canonize(document)
    for url in ("http://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/../../etc/passwd",
                "https://w3id.org/security/multikey/v1?x=1"):
        with pytest.raises(ContextUnavailableError):
            rdfc.load_bundled_context(url)


def test_bundled_contexts_are_verbatim_copies():
    shared = W3C / "contexts"
    expected = {
        "https://www.w3.org/ns/credentials/v2": shared / "credentials" / "v2",
        "https://www.w3.org/ns/credentials/examples/v2": shared / "credentials/examples/v2",
        "https://w3id.org/security/data-integrity/v2": shared / "data-integrity" / "v2",
        "https://w3id.org/security/multikey/v1": shared / "multikey" / "v1",
    }
    for url, path in expected.items():
        assert url in rdfc.bundled_context_urls()
        assert rdfc.load_bundled_context(url) == load_json(path)
    v2 = rdfc.CONTEXTS_DIR / "www.w3.org/ns/credentials/v2"
    assert hashlib.sha256(v2.read_bytes()).hexdigest() == (
        "59955ced6697d61e03f2b2556febe5308ab16842846f5b586d7f1f7adec92734"
    )


@pytest.mark.parametrize(
    "document",
    [
        {"@context": 5, "a": 1},
        # PyLD itself raises KeyError here: no untyped exception may leak out
        {"@context": {"@vocab": None}, "@id": "urn:x:1"},
    ],
)
def test_invalid_json_ld_is_typed(document):
    with pytest.raises(JsonLdProcessingError):
        canonize(document)


# --- poison -----------------------------------------------------------------------------


def _clique(size: int) -> dict[str, Any]:
    """Every blank node points to every other: indistinguishable, factorial to canonicalize."""
    predicate = "https://ledger.example/vocab#linked"
    return {
        "@graph": [
            {"@id": f"_:b{i}", predicate: [{"@id": f"_:b{j}"} for j in range(size) if j != i]}
            for i in range(size)
        ]
    }


@pytest.mark.timeout(5)
def test_poison_graph_fails_with_a_typed_error(monkeypatch):
    # the clock backstop is pushed out of the way: the work budget alone must stop it
    monkeypatch.setattr(rdfc, "TIME_BUDGET_SECONDS", 3600.0)
    with pytest.raises(CanonicalizationLimitError) as info:
        canonize(_clique(12))
    assert info.value.exit_code == 1


def test_small_symmetric_graphs_still_canonicalize():
    nquads = canonize(_clique(4))
    assert nquads.count("\n") == 12 and "_:c14n3" in nquads
