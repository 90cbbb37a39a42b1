"""Data Integrity eddsa-jcs-2022: the W3C vector reproduced exactly, tampering, malformed proofs,
proof sets and chains, purposes, challenge/domain, created/expires, the low-level key path."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import (
    format_date_time,
    jcs_hash_data,
    parse_date_time,
    sign,
    verify_proof_bytes,
    verify_proofs,
)
from batterytrace.credentials.did import OfflineResolver, b58decode, b58encode
from batterytrace.credentials.errors import (
    DidResolutionError,
    InvalidChallengeError,
    InvalidDomainError,
    MalformedProofError,
    MismatchedProofPurposeError,
    ProofExpiredError,
    ProofGenerationError,
    ProofVerificationError,
)
from batterytrace.credentials.keys import Ed25519Key
from conftest import W3C, load_json

EDDSA = W3C / "vc-di-eddsa"
JCS = EDDSA / "eddsa-jcs-2022"
UNSIGNED = load_json(EDDSA / "unsigned.json")
SIGNED = load_json(JCS / "signedJCS.json")
VECTOR_KEY = Ed25519Key.from_multikey(load_json(EDDSA / "keyPair.json"))
EXPECTED_PROOF_VALUE = (
    "z2HnFSSPPBzR36zdDgK8PbEHeXbR56YF24jwMpt3R1eHXQzJDMWS93FCzpvJpwTWd3GAVFuUfjoJdcnTMuVor51aX"
)
RESOLVER = OfflineResolver()
ALICE = Ed25519Key.from_seed(b"\x01" * 32)
BOB = Ed25519Key.from_seed(b"\x02" * 32)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _text(name: str) -> str:
    return (JCS / name).read_text(encoding="utf-8").strip()


def _vector_sign(document=UNSIGNED):
    return sign(
        document,
        VECTOR_KEY,
        created=SIGNED["proof"]["created"],
        verification_method=SIGNED["proof"]["verificationMethod"],
    )


# --- conformance ------------------------------------------------------------------------------


def test_signing_the_vector_reproduces_signed_jcs_exactly():
    signed = _vector_sign()
    assert signed == SIGNED
    assert list(signed["proof"]) == list(SIGNED["proof"])
    assert signed["proof"]["proofValue"] == EXPECTED_PROOF_VALUE == _text("sigBTC58JCS.txt")
    assert "proof" not in UNSIGNED  # the input is not modified


def test_every_intermediate_of_the_vector():
    proof_config = load_json(JCS / "proofConfigJCS.json")
    assert {k: v for k, v in SIGNED["proof"].items() if k != "proofValue"} == proof_config
    assert canonicalize(UNSIGNED).decode() == _text("canonDocJCS.txt")
    assert canonicalize(proof_config).decode() == _text("proofCanonJCS.txt")
    assert hashlib.sha256(canonicalize(UNSIGNED)).hexdigest() == _text("docHashJCS.txt")
    assert hashlib.sha256(canonicalize(proof_config)).hexdigest() == _text("proofHashJCS.txt")
    hash_data = jcs_hash_data(UNSIGNED, proof_config)
    assert hash_data.hex() == _text("combinedHashJCS.txt")
    assert VECTOR_KEY.sign(hash_data).hex() == _text("sigHexJCS.txt")
    assert b58decode(EXPECTED_PROOF_VALUE[1:]).hex() == _text("sigHexJCS.txt")


def test_the_vector_verifies():
    (result,) = verify_proofs(SIGNED, RESOLVER)
    assert result.controller == "did:key:" + VECTOR_KEY.public_multibase
    assert result.cryptosuite == "eddsa-jcs-2022" and result.proof_purpose == "assertionMethod"
    verify_proof_bytes(SIGNED, VECTOR_KEY.public_key)


def _flip_last_char(value: str) -> str:
    return value[:-1] + ("2" if value[-1] != "2" else "3")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d.__setitem__("name", "Alumni Credential!"),
        lambda d: d.__setitem__("validFrom", "2023-01-01T00:00:01Z"),
        lambda d: d["credentialSubject"].__setitem__("alumniOf", "Another School"),
        lambda d: d["credentialSubject"].__setitem__("extra", True),
        lambda d: d.pop("description"),
        lambda d: d["@context"].append("https://w3id.org/security/data-integrity/v2"),
        lambda d: d["proof"].__setitem__("created", "2023-02-24T23:36:39Z"),
        lambda d: d["proof"]["@context"].pop(),
        lambda d: d["proof"].__setitem__("proofValue", _flip_last_char(EXPECTED_PROOF_VALUE)),
        lambda d: d["proof"].__setitem__("verificationMethod", ALICE.verification_method),
        lambda d: d["proof"].__setitem__("domain", "example.org"),
    ],
)
def test_any_change_to_document_or_proof_fails(tamper):
    document = copy.deepcopy(SIGNED)
    tamper(document)
    with pytest.raises(ProofVerificationError) as caught:
        verify_proofs(document, RESOLVER)
    assert caught.value.code == "PROOF_VERIFICATION_ERROR"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p.__setitem__("proofValue", "not-multibase"),
        lambda p: p.__setitem__("proofValue", "z" + b58encode(b"\x01" * 63)),
        lambda p: p.__setitem__("proofValue", "z0OIl"),
        lambda p: p.__setitem__("proofValue", 12),
        lambda p: p.__setitem__("cryptosuite", "eddsa-2099"),
        lambda p: p.__setitem__("type", "Ed25519Signature2020"),
        lambda p: p.pop("proofValue"),
        lambda p: p.pop("verificationMethod"),
        lambda p: p.pop("cryptosuite"),
        lambda p: p.pop("proofPurpose"),
        lambda p: p.__setitem__("created", "yesterday"),
        lambda p: p.__setitem__("verificationMethod", ["did:key:x"]),
    ],
)
def test_malformed_proofs(tamper):
    document = copy.deepcopy(SIGNED)
    tamper(document["proof"])
    with pytest.raises(MalformedProofError) as caught:
        verify_proofs(document, RESOLVER)
    assert caught.value.code == "MALFORMED_PROOF_ERROR"


@pytest.mark.parametrize("proof", [None, [], "z2Hn", [SIGNED["proof"], "x"]])
def test_missing_or_non_object_proofs_are_malformed(proof):
    document = dict(UNSIGNED) if proof is None else {**UNSIGNED, "proof": proof}
    with pytest.raises(MalformedProofError):
        verify_proofs(document, RESOLVER)


def test_rdfc_suite_dispatches_to_the_rdfc_module():
    signed = load_json(EDDSA / "eddsa-rdfc-2022" / "signedDataInt.json")
    try:
        import batterytrace.credentials.rdfc  # noqa: F401
    except ImportError:
        with pytest.raises(MalformedProofError):
            verify_proofs(signed, RESOLVER)
        return
    (result,) = verify_proofs(signed, RESOLVER)
    assert result.cryptosuite == "eddsa-rdfc-2022"


# --- proof sets and chains --------------------------------------------------------------------

DOC = {"@context": ["https://www.w3.org/ns/credentials/v2"], "id": "urn:x:1", "value": 42}


def test_proof_set_signs_and_verifies_every_member():
    one = sign(DOC, ALICE, created="2026-01-01T00:00:00Z")
    both = sign(one, BOB, created="2026-01-02T00:00:00Z")
    assert isinstance(both["proof"], list) and len(both["proof"]) == 2
    assert both["proof"][0] == one["proof"]  # independent: the first proof is unchanged
    results = verify_proofs(both, RESOLVER, now=NOW)
    assert [r.controller for r in results] == [ALICE.did_key, BOB.did_key]
    three = sign(both, ALICE, created="2026-01-03T00:00:00Z")
    assert len(verify_proofs(three, RESOLVER, now=NOW)) == 3


def test_proof_set_with_one_bad_member_fails():
    both = sign(sign(DOC, ALICE), BOB)
    bad = copy.deepcopy(both)
    bad["proof"][1]["created"] = "2020-01-01T00:00:00Z"
    with pytest.raises(ProofVerificationError):
        verify_proofs(bad, RESOLVER)
    bad = copy.deepcopy(both)
    bad["proof"][0]["proofPurpose"] = "authentication"
    with pytest.raises(MismatchedProofPurposeError):
        verify_proofs(bad, RESOLVER)


def test_proof_chain_covers_the_previous_proof():
    first = sign(DOC, ALICE, proof_id="urn:proof:1")
    chained = sign(first, BOB, proof_id="urn:proof:2", previous_proof="urn:proof:1")
    assert len(verify_proofs(chained, RESOLVER)) == 2
    # Altering the earlier proof breaks both it and the proof chained onto it.
    swapped = copy.deepcopy(chained)
    swapped["proof"][0] = sign(DOC, ALICE, proof_id="urn:proof:1", created="2020-01-01T00:00:00Z")[
        "proof"
    ]
    verify_proofs({**swapped, "proof": [swapped["proof"][0]]}, RESOLVER)
    with pytest.raises(ProofVerificationError):
        verify_proofs(swapped, RESOLVER)
    # Removing the earlier proof leaves a dangling previousProof.
    with pytest.raises(ProofVerificationError):
        verify_proofs({**chained, "proof": [chained["proof"][1]]}, RESOLVER)
    with pytest.raises(ProofGenerationError):
        sign(first, BOB, previous_proof="urn:proof:missing")


# --- purposes, challenge, domain, times -------------------------------------------------------


def test_purpose_must_match_and_be_a_relationship_of_the_key():
    auth = sign(DOC, ALICE, proof_purpose="authentication", challenge="c1")
    assert verify_proofs(auth, RESOLVER, expected_purpose="authentication", challenge="c1")
    with pytest.raises(MismatchedProofPurposeError):
        verify_proofs(auth, RESOLVER)  # expected assertionMethod
    key_agreement = sign(DOC, ALICE, proof_purpose="keyAgreement")
    with pytest.raises(Exception) as caught:
        verify_proofs(key_agreement, RESOLVER, expected_purpose="keyAgreement")
    assert caught.value.code == "VERIFICATION_METHOD_ERROR"


def test_challenge_and_domain():
    signed = sign(DOC, ALICE, proof_purpose="authentication", challenge="n-1", domain="v.example")
    ok = {"expected_purpose": "authentication"}
    assert verify_proofs(signed, RESOLVER, challenge="n-1", domain="v.example", **ok)
    with pytest.raises(InvalidChallengeError):
        verify_proofs(signed, RESOLVER, challenge="n-2", **ok)
    with pytest.raises(InvalidDomainError):
        verify_proofs(signed, RESOLVER, challenge="n-1", domain="other.example", **ok)
    unchallenged = sign(DOC, ALICE, proof_purpose="authentication")
    with pytest.raises(InvalidChallengeError):
        verify_proofs(unchallenged, RESOLVER, challenge="n-1", **ok)
    with pytest.raises(InvalidDomainError):
        verify_proofs(unchallenged, RESOLVER, domain="v.example", **ok)


def test_created_and_expires_are_respected():
    signed = sign(DOC, ALICE, created="2026-01-01T00:00:00Z", expires="2026-12-31T00:00:00Z")
    assert verify_proofs(signed, RESOLVER, now=NOW)[0].expires == "2026-12-31T00:00:00Z"
    with pytest.raises(ProofExpiredError) as caught:
        verify_proofs(signed, RESOLVER, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert caught.value.code == "PROOF_EXPIRED_ERROR"
    # judged at an earlier time (a log position) the proof still verifies; from the future not
    assert verify_proofs(signed, RESOLVER, now=datetime(2025, 12, 1, tzinfo=UTC))
    future = format_date_time(datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(ProofVerificationError):
        verify_proofs(sign(DOC, ALICE, created=future), RESOLVER)
    backwards = sign(DOC, ALICE, created="2026-02-01T00:00:00Z", expires="2026-01-01T00:00:00Z")
    with pytest.raises(MalformedProofError):
        verify_proofs(backwards, RESOLVER, now=NOW)
    with pytest.raises(ProofGenerationError):
        sign(DOC, ALICE, created="2026-01-01")


def test_signing_refuses_bad_input():
    with pytest.raises(ProofGenerationError):
        sign([1, 2], ALICE)  # type: ignore[arg-type]
    with pytest.raises(ProofGenerationError):
        sign(DOC, Ed25519Key(public_key=ALICE.public_key))
    with pytest.raises(ProofGenerationError):
        sign({**DOC, "proof": "not a proof"}, ALICE)


def test_unknown_did_web_method_is_a_resolution_error():
    signed = sign(DOC, ALICE, verification_method="did:web:nowhere.example#key-1")
    with pytest.raises(DidResolutionError):
        verify_proofs(signed, RESOLVER)


def test_verify_proof_bytes_with_a_known_key():
    signed = sign(DOC, ALICE)
    verify_proof_bytes(signed, ALICE.public_key)
    with pytest.raises(ProofVerificationError):
        verify_proof_bytes(signed, BOB.public_key)
    with pytest.raises(ProofVerificationError):
        verify_proof_bytes({**signed, "value": 43}, ALICE.public_key)
    with pytest.raises(MalformedProofError):
        verify_proof_bytes(sign(signed, BOB), ALICE.public_key)  # a set: say which proof


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-01-01T00:00:00Z", datetime(2023, 1, 1, tzinfo=UTC)),
        ("2023-01-01T00:00:00", datetime(2023, 1, 1, tzinfo=UTC)),  # no offset: UTC
        ("2023-01-01T02:30:00+02:30", datetime(2023, 1, 1, tzinfo=UTC)),
        ("2023-01-01T00:00:00.1234567-01:00", datetime(2023, 1, 1, 1, 0, 0, 123456, UTC)),
        ("2022-12-31T24:00:00Z", datetime(2023, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_date_time(text, expected):
    assert parse_date_time(text) == expected


@pytest.mark.parametrize(
    "text", ["2023-01-01", "2023-02-30T00:00:00Z", "2023-01-01T00:00:00+15:00", "x", 2023]
)
def test_parse_date_time_rejects(text):
    with pytest.raises(ValueError):
        parse_date_time(text)
