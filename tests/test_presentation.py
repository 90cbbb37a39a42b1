"""Verifiable Presentations: holder proof for authentication, challenge and domain, every
credential inside, structure and schema."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.did import OfflineResolver
from batterytrace.credentials.errors import (
    ExpiredError,
    InvalidChallengeError,
    InvalidDomainError,
    MalformedProofError,
    MalformedValueError,
    MismatchedProofPurposeError,
    ParsingError,
    ProofGenerationError,
    ProofVerificationError,
    VerificationMethodError,
)
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.credentials.presentation import create_presentation, verify_presentation
from batterytrace.credentials.vc import VC_V2_CONTEXT

ISSUER = Ed25519Key.from_seed(b"\x21" * 32)
HOLDER = Ed25519Key.from_seed(b"\x22" * 32)
THIEF = Ed25519Key.from_seed(b"\x23" * 32)
RESOLVER = OfflineResolver()
AT = datetime(2026, 6, 1, tzinfo=UTC)
CHALLENGE = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
DOMAIN = "https://buyer.example"


def credential(subject: str = "https://ledger.example/lots/LI-7") -> dict:
    return sign(
        {
            "@context": [VC_V2_CONTEXT],
            "type": ["VerifiableCredential"],
            "issuer": ISSUER.did_key,
            "validFrom": "2026-01-01T00:00:00Z",
            "validUntil": "2026-12-31T00:00:00Z",
            "credentialSubject": {"id": subject, "recycledLithiumShare": 0.06},
        },
        ISSUER,
        created="2026-01-01T00:00:00Z",
    )


def present(credentials=None, key=HOLDER, **kw) -> dict:
    kw.setdefault("challenge", CHALLENGE)
    kw.setdefault("domain", DOMAIN)
    return create_presentation(
        credentials if credentials is not None else [credential()], key, **kw
    )


def verify(vp, **kw):
    kw.setdefault("challenge", CHALLENGE)
    kw.setdefault("domain", DOMAIN)
    return verify_presentation(vp, RESOLVER, at=AT, **kw)


def test_round_trip():
    vp = present([credential(), credential("https://ledger.example/lots/LI-8")])
    assert vp["proof"]["proofPurpose"] == "authentication"
    assert vp["proof"]["challenge"] == CHALLENGE and vp["proof"]["domain"] == DOMAIN
    result = verify(vp)
    assert result.ok and result.holder == HOLDER.did_key
    assert result.checks == ("structure", "schema", "proof", "holder", "credentials")
    assert [c.subject_ids[0][-4:] for c in result.credentials] == ["LI-7", "LI-8"]
    assert result.to_dict()["credentials"][0]["issuer"] == ISSUER.did_key


def test_wrong_challenge_or_domain():
    vp = present()
    with pytest.raises(InvalidChallengeError):
        verify(vp, challenge="another-session")
    with pytest.raises(InvalidDomainError):
        verify(vp, domain="https://other.example")
    with pytest.raises(ParsingError):
        verify(vp, challenge="")
    assert verify(present(domain=None), domain=None).ok
    with pytest.raises(InvalidDomainError):
        verify(present(domain=None))


def test_tampered_inner_credential_fails_with_its_position():
    inner = credential()
    inner["credentialSubject"]["recycledLithiumShare"] = 0.6
    vp = present([credential(), inner])  # the holder signs over the altered credential
    with pytest.raises(ProofVerificationError) as caught:
        verify(vp)
    assert "verifiableCredential[1]" in caught.value.message
    tampered_after = present()
    tampered_after["verifiableCredential"][0]["credentialSubject"]["id"] = "urn:other"
    with pytest.raises(ProofVerificationError):  # the holder's proof covers the credentials
        verify(tampered_after)


def test_expired_inner_credential():
    with pytest.raises(ExpiredError):
        later = datetime(2027, 1, 1, tzinfo=UTC)
        verify_presentation(present(), RESOLVER, challenge=CHALLENGE, domain=DOMAIN, at=later)


def test_holder_must_sign_and_purpose_must_be_authentication():
    stolen = present(key=THIEF, holder=HOLDER.did_key)
    with pytest.raises(VerificationMethodError):
        verify(stolen)
    vp = present()
    unsigned = {k: v for k, v in vp.items() if k != "proof"}
    with pytest.raises(MalformedProofError):
        verify(unsigned)
    asserted = sign(unsigned, HOLDER, challenge=CHALLENGE, domain=DOMAIN)  # assertionMethod
    with pytest.raises(MismatchedProofPurposeError):
        verify(asserted)


def test_presentation_without_holder_warns():
    vp = present()
    del vp["holder"]
    resigned = sign(
        {k: v for k, v in vp.items() if k != "proof"},
        HOLDER,
        proof_purpose="authentication",
        challenge=CHALLENGE,
        domain=DOMAIN,
    )
    result = verify(resigned)
    assert "holder" not in result.checks and any("no holder" in w for w in result.warnings)


@pytest.mark.parametrize(
    "changes",
    [
        {"@context": ["https://www.w3.org/2018/credentials/v1"]},
        {"type": ["VerifiableCredential"]},
        {"holder": "not a url"},
        {"verifiableCredential": ["a string"]},
    ],
)
def test_structure(changes):
    unsigned = {k: v for k, v in present().items() if k != "proof"}
    unsigned.update(changes)
    vp = sign(unsigned, HOLDER, proof_purpose="authentication", challenge=CHALLENGE)
    with pytest.raises(MalformedValueError):
        verify(vp, domain=None)


def test_create_refuses_bad_input():
    with pytest.raises(ProofGenerationError):
        present(challenge="")
    with pytest.raises(ProofGenerationError):
        present(["not an object"])
    assert present(holder="did:web:holder.example")["holder"] == "did:web:holder.example"
