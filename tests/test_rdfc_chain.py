"""Proof chains (`previousProof`) with eddsa-rdfc-2022, as with eddsa-jcs-2022."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from batterytrace.credentials.base58 import b58encode
from batterytrace.credentials.data_integrity import verify_proofs
from batterytrace.credentials.did import OfflineResolver
from batterytrace.credentials.errors import ProofVerificationError
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.credentials.rdfc import rdfc_hash_data
from conftest import W3C

ALICE = Ed25519Key.from_seed(bytes(range(32)))
BOB = Ed25519Key.from_seed(bytes(range(1, 33)))


def _rdfc_proof(document: dict[str, Any], key: Ed25519Key, **extra: Any) -> dict[str, Any]:
    """A test-only eddsa-rdfc-2022 signer (the project issues with jcs only)."""
    proof = {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-rdfc-2022",
        "created": "2026-01-01T00:00:00Z",
        "verificationMethod": key.verification_method,
        "proofPurpose": "assertionMethod",
        **extra,
    }
    config = {**proof, "@context": document["@context"]}
    proof["proofValue"] = "z" + b58encode(key.sign(rdfc_hash_data(document, config)))
    return proof


@pytest.fixture(scope="module")
def chained() -> dict[str, Any]:
    doc = json.loads((W3C / "vc-di-eddsa" / "unsigned.json").read_text())
    first = _rdfc_proof(doc, ALICE, id="urn:proof:1")
    second = _rdfc_proof({**doc, "proof": [first]}, BOB, id="urn:proof:2",
                         previousProof="urn:proof:1")
    return {**doc, "proof": [first, second]}


def test_rdfc_chain_verifies(chained):
    results = verify_proofs(chained, OfflineResolver())
    assert len(results) == 2


def test_rdfc_chain_with_missing_previous_proof_fails(chained):
    broken = {**chained, "proof": [chained["proof"][1]]}
    with pytest.raises(ProofVerificationError):
        verify_proofs(broken, OfflineResolver())


def test_rdfc_chain_with_replaced_previous_proof_fails(chained):
    doc = {k: v for k, v in chained.items() if k != "proof"}
    replaced = copy.deepcopy(chained)
    replaced["proof"][0] = _rdfc_proof(doc, ALICE, id="urn:proof:1",
                                       created="2026-02-01T00:00:00Z")
    with pytest.raises(ProofVerificationError):
        verify_proofs(replaced, OfflineResolver())
