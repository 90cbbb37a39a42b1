"""VC Data Model 2.0: every structural rule passing and failing, the W3C JSON Schema, and
verification (issuer binding, validity at a time, typed errors)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.did import OfflineResolver
from batterytrace.credentials.errors import (
    ExpiredError,
    MalformedValueError,
    NotYetValidError,
    ParsingError,
    ProofVerificationError,
    RangeError,
    SchemaValidationError,
    VerificationMethodError,
)
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.credentials.vc import (
    VC_V2_CONTEXT,
    check_credential,
    validate_schema,
    verify_credential,
)
from conftest import W3C, load_json
from hypothesis import given
from hypothesis import strategies as st

ISSUER = Ed25519Key.from_seed(b"\x03" * 32)
OTHER = Ed25519Key.from_seed(b"\x04" * 32)
RESOLVER = OfflineResolver()
AT = datetime(2026, 6, 1, tzinfo=UTC)
SIGNED_JCS = load_json(W3C / "vc-di-eddsa" / "eddsa-jcs-2022" / "signedJCS.json")


def credential(**changes) -> dict:
    doc = {
        "@context": [VC_V2_CONTEXT, "https://www.w3.org/ns/credentials/examples/v2"],
        "id": "urn:uuid:0b7c6a4e-0000-4000-8000-000000000001",
        "type": ["VerifiableCredential", "MineralOriginCredential"],
        "issuer": ISSUER.did_key,
        "validFrom": "2026-01-01T00:00:00Z",
        "validUntil": "2027-01-01T00:00:00Z",
        "credentialSubject": {"id": "https://ledger.example/lots/CO-1", "mineral": "cobalt"},
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def signed(doc=None, key=ISSUER, **kw) -> dict:
    return sign(doc or credential(), key, created="2026-01-01T00:00:00Z", **kw)


VALID_VARIANTS = {
    "issuer object": {"issuer": {"id": ISSUER.did_key, "name": "Assay Lab"}},
    "subject list": {"credentialSubject": [{"id": "urn:a"}, {"mineral": "li"}]},
    "type string": {"type": "VerifiableCredential"},
    "no id, no dates": {"id": None, "validFrom": None, "validUntil": None},
    "offset dates": {"validFrom": "2026-01-01T01:00:00+01:00"},
    "equal dates": {"validFrom": "2026-06-01T00:00:00Z", "validUntil": "2026-06-01T00:00:00Z"},
    "context object": {"@context": [VC_V2_CONTEXT, {"ex": "https://example.org/#",
                                                    "@vocab": "https://example.org/#"}]},
    "status": {"credentialStatus": {"id": "https://s.example/1#5", "type": "StatusEntry"}},
    "schema": {"credentialSchema": [{"id": "https://s.example/schema.json", "type": "JsonSchema"}]},
    "evidence": {"evidence": [{"type": ["Evidence", "AuditReport"]}]},
    "terms": {"termsOfUse": {"type": "TrustFrameworkPolicy"}},
    "refresh": {"refreshService": {"id": "https://r.example/", "type": "RefreshService"}},
    "language name": {"name": [{"@value": "Origin", "@language": "en"}, "Origine"]},
}


@pytest.mark.parametrize("name", sorted(VALID_VARIANTS))
def test_structural_rules_pass(name):
    doc = credential(**VALID_VARIANTS[name])
    assert check_credential(doc) == []
    assert validate_schema(doc) == []
    assert verify_credential(signed(doc), RESOLVER, at=AT).ok


INVALID_VARIANTS = {
    "no context": ({"@context": None}, MalformedValueError),
    "context string": ({"@context": VC_V2_CONTEXT}, MalformedValueError),
    "v1 context first": (
        {"@context": ["https://www.w3.org/2018/credentials/v1", VC_V2_CONTEXT]},
        MalformedValueError,
    ),
    "duplicate context": ({"@context": [VC_V2_CONTEXT, VC_V2_CONTEXT]}, MalformedValueError),
    "empty context item": ({"@context": [VC_V2_CONTEXT, ""]}, MalformedValueError),
    "no type": ({"type": None}, MalformedValueError),
    "type without VC": ({"type": ["MineralOriginCredential"]}, MalformedValueError),
    "type number": ({"type": ["VerifiableCredential", 3]}, MalformedValueError),
    "id not a URL": ({"id": "not a url"}, MalformedValueError),
    "no issuer": ({"issuer": None}, MalformedValueError),
    "issuer not a URL": ({"issuer": "ACME Labs"}, MalformedValueError),
    "issuer object without id": ({"issuer": {"name": "ACME"}}, MalformedValueError),
    "no subject": ({"credentialSubject": None}, MalformedValueError),
    "subject string": ({"credentialSubject": "did:example:1"}, MalformedValueError),
    "empty subject": ({"credentialSubject": {}}, MalformedValueError),
    "empty subject list": ({"credentialSubject": []}, MalformedValueError),
    "subject id not a URL": ({"credentialSubject": {"id": "lot 1"}}, MalformedValueError),
    "validFrom date only": ({"validFrom": "2026-01-01"}, MalformedValueError),
    "validUntil garbage": ({"validUntil": "soon"}, MalformedValueError),
    "validFrom after validUntil": ({"validFrom": "2027-06-01T00:00:00Z"}, RangeError),
    "status untyped": ({"credentialStatus": {"id": "https://s.example/1"}}, MalformedValueError),
    "status string": ({"credentialStatus": "https://s.example/1"}, MalformedValueError),
    "schema without id": ({"credentialSchema": {"type": "JsonSchema"}}, MalformedValueError),
    "evidence untyped": ({"evidence": [{"id": "https://e.example/1"}]}, MalformedValueError),
    "terms empty list": ({"termsOfUse": []}, MalformedValueError),
    "refresh without id": ({"refreshService": {"type": "Refresh"}}, MalformedValueError),
    "name number": ({"name": 7}, MalformedValueError),
}


@pytest.mark.parametrize("name", sorted(INVALID_VARIANTS))
def test_structural_rules_fail(name):
    changes, error = INVALID_VARIANTS[name]
    doc = credential(**changes)
    with pytest.raises(error):
        check_credential(doc)
    with pytest.raises(error):  # the same typed error through verification, after signing
        verify_credential(signed(doc), RESOLVER, at=AT)


def test_not_an_object_is_a_parsing_error():
    for doc in ([], "x", None):
        with pytest.raises(ParsingError):
            check_credential(doc)
        with pytest.raises(ParsingError):
            verify_credential(doc, RESOLVER)


def test_date_without_offset_is_utc_with_a_warning():
    doc = credential(validFrom="2026-01-01T00:00:00")
    assert any("offset" in w for w in check_credential(doc))
    assert any("offset" in w for w in validate_schema(doc))  # W3C pattern wants an offset
    result = verify_credential(signed(doc), RESOLVER, at=AT)
    assert result.ok and any("UTC" in w for w in result.warnings)
    with pytest.raises(NotYetValidError):
        verify_credential(signed(doc), RESOLVER, at=datetime(2025, 12, 31, 23, 59, tzinfo=UTC))


def test_schema_catches_what_the_schema_says():
    doc = signed()
    doc["proof"] = {**doc["proof"], "proofPurpose": 5}
    with pytest.raises(SchemaValidationError):
        validate_schema(doc)
    with pytest.raises(SchemaValidationError):
        validate_schema(credential(credentialSubject={"id": 5}))


@given(
    st.dictionaries(
        st.sampled_from(["@context", "type", "issuer", "credentialSubject", "validFrom", "id"]),
        st.one_of(
            st.none(),
            st.text(max_size=4),
            st.sampled_from([VC_V2_CONTEXT, "VerifiableCredential", "did:example:1"]),
            st.lists(st.sampled_from([VC_V2_CONTEXT, "VerifiableCredential", "x"]), max_size=3),
            st.dictionaries(st.sampled_from(["id", "name"]), st.text(max_size=3), max_size=2),
        ),
    )
)
def test_structure_implies_schema(changes):
    """Whatever the structural checks accept, the W3C schema accepts too (they are stricter)."""
    doc = credential(**changes)
    try:
        check_credential(doc)
    except (MalformedValueError, RangeError):
        return
    validate_schema(doc)


def test_verify_credential_result():
    result = verify_credential(signed(), RESOLVER, at=AT)
    assert result.ok and result.issuer == ISSUER.did_key
    assert result.subject_ids == ("https://ledger.example/lots/CO-1",)
    assert result.checks == ("structure", "schema", "proof", "issuer", "validity")
    assert result.proofs[0].controller == ISSUER.did_key
    assert result.to_dict()["proofs"][0]["cryptosuite"] == "eddsa-jcs-2022"


def test_validity_window():
    doc = signed()
    with pytest.raises(NotYetValidError):
        verify_credential(doc, RESOLVER, at=datetime(2025, 12, 31, tzinfo=UTC))
    with pytest.raises(ExpiredError):
        verify_credential(doc, RESOLVER, at=datetime(2027, 1, 2, tzinfo=UTC))
    assert verify_credential(doc, RESOLVER, at=datetime(2026, 1, 1, tzinfo=UTC)).ok


def test_issuer_must_control_the_verification_method():
    forged = signed(key=OTHER)  # issuer says ISSUER, OTHER signed
    with pytest.raises(VerificationMethodError):
        verify_credential(forged, RESOLVER, at=AT)
    assert verify_credential(forged, RESOLVER, at=AT, proof_only=True).checks == ("proof",)
    # bare did:key verification method, as in the W3C status-list examples
    bare = signed(verification_method=ISSUER.did_key)
    assert verify_credential(bare, RESOLVER, at=AT).ok
    # an endorsement by someone else beside the issuer's proof is a warning, not a failure
    endorsed = sign(signed(), OTHER, created="2026-01-02T00:00:00Z")
    result = verify_credential(endorsed, RESOLVER, at=AT)
    assert len(result.proofs) == 2 and any("not the issuer" in w for w in result.warnings)


def test_did_web_issuer_binding():
    web = "did:web:assay.example"
    doc_web = {
        "id": web,
        "verificationMethod": [
            {
                "id": f"{web}#k1",
                "type": "Multikey",
                "controller": web,
                "publicKeyMultibase": ISSUER.public_multibase,
            }
        ],
        "assertionMethod": ["#k1"],
    }
    cred = signed(credential(issuer=web), verification_method=f"{web}#k1")
    assert verify_credential(cred, OfflineResolver({web: doc_web}), at=AT).issuer == web
    doc_web["assertionMethod"] = []
    with pytest.raises(VerificationMethodError):
        verify_credential(cred, OfflineResolver({web: doc_web}), at=AT)


def test_w3c_vector_needs_proof_only():
    assert verify_credential(SIGNED_JCS, RESOLVER, proof_only=True).ok
    with pytest.raises(VerificationMethodError):  # https://vc.example issuer: not bindable
        verify_credential(SIGNED_JCS, RESOLVER)
    tampered = copy.deepcopy(SIGNED_JCS)
    tampered["credentialSubject"]["alumniOf"] = "Elsewhere"
    with pytest.raises(ProofVerificationError):
        verify_credential(tampered, RESOLVER, proof_only=True)
