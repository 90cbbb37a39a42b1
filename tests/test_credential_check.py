"""The full credential decision: trust paths from the trust file, accreditation scope, validity
and revocation, issuer keys by log position, credential status by lists and anchors."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from batterytrace.credentials.credential_types import build_credential
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.did import did_key_document
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.credentials.status_list import (
    StatusList,
    build_status_list_credential,
    status_entry,
)
from batterytrace.ledger.anchors import AnchorRecord, credential_digest
from batterytrace.ledger.engine import check_registry
from batterytrace.ledger.registry import RegistryResolver
from batterytrace.verifier.accreditation import ACCREDITATION_CONTEXTS
from batterytrace.verifier.credential_check import (
    NOT_EVALUATED,
    TRUSTED,
    UNTRUSTED,
    check_credential,
)
from batterytrace.verifier.trust import GovernanceRoot, PinnedDidDocument, TrustConfig
from custody_factory import did_for, key_for, sign_admin, sign_as
from test_anchors import registry_with
from test_credential_types import EXAMPLES

ROOT = Ed25519Key.from_seed(b"\x21" * 32)
SCHEME = Ed25519Key.from_seed(b"\x22" * 32)
BODY = Ed25519Key.from_seed(b"\x23" * 32)
STRANGER = Ed25519Key.from_seed(b"\x24" * 32)
TRUST = TrustConfig(governance_roots=(GovernanceRoot(ROOT.did_key, name="Board"),))
AT = datetime(2026, 3, 1, tzinfo=UTC)
LISTS = "https://ledger.example/status-lists/body"
ORIGIN = "MineralOriginCredential"


def accreditation(issuer: Ed25519Key, subject: str, n: int, *, may_accredit: bool = False,
                  minerals=("cobalt",), regions=("ZM", "CD"), until="2027-01-01T00:00:00Z",
                  status: bool = False) -> dict:
    doc = {
        "@context": list(ACCREDITATION_CONTEXTS),
        "id": f"urn:uuid:acc00000-0000-4000-8000-{n:012d}",
        "type": ["VerifiableCredential", "AccreditationCredential"],
        "issuer": issuer.did_key,
        "validFrom": "2025-01-01T00:00:00Z",
        "validUntil": until,
        "credentialSubject": {
            "id": subject, "type": "Accreditation", "credentialTypes": [ORIGIN],
            "minerals": list(minerals), "regions": list(regions), "mayAccredit": may_accredit,
        },
    }
    if status:
        doc["credentialStatus"] = status_entry("revocation", 5, f"{LISTS}/revocation/9")
    return sign(doc, issuer)


def chain(**options) -> list[dict]:
    return [accreditation(ROOT, SCHEME.did_key, 1, may_accredit=True),
            accreditation(SCHEME, BODY.did_key, 2, **options)]


def origin(issuer: str, key: Ed25519Key, *, mineral: str = "cobalt", method: str | None = None,
           status: bool = True) -> dict:
    subject = copy.deepcopy(EXAMPLES[ORIGIN]["credentialSubject"])
    subject["mineral"] = mineral
    doc = build_credential(ORIGIN, subject, issuer=issuer, id="urn:uuid:c0000000-0000-4000-8000-0"
                           "00000000001", valid_from="2025-10-02T00:00:00Z")
    if status:
        doc["credentialStatus"] = [status_entry("revocation", 11, f"{LISTS}/revocation/0"),
                                   status_entry("suspension", 12, f"{LISTS}/suspension/0")]
    return sign(doc, key, verification_method=method)


def lists(key: Ed25519Key = BODY, revoked=(), suspended=()) -> dict:
    found = {}
    for purpose, bits in (("revocation", revoked), ("suspension", suspended)):
        url = f"{LISTS}/{purpose}/0"
        status = StatusList()
        for index in bits:
            status.set(index)
        found[url] = sign(build_status_list_credential(
            list_url=url, issuer=key.did_key, purpose=purpose, status_list=status), key)
    return found


def code_of(**kwargs) -> str:
    with pytest.raises(BatterytraceError) as caught:
        check_credential(**kwargs)
    return caught.value.code


# --- trust ------------------------------------------------------------------------------------


def test_trusted_issuer_reports_its_path() -> None:
    result = check_credential(origin(BODY.did_key, BODY), trust=TRUST, accreditations=chain(),
                              status_lists=lists(), at=AT)
    assert result.issuer_status == TRUSTED and result.trust_root == ROOT.did_key
    assert [link["subject"] for link in result.trust_path] == [BODY.did_key, SCHEME.did_key]
    assert {"proof", "structure", "validity", "type-schema", "status", "trust"} <= set(
        result.checks)
    assert not result.warnings


def test_without_a_trust_file_the_issuer_is_not_evaluated() -> None:
    result = check_credential(origin(BODY.did_key, BODY), status_lists=lists(), at=AT)
    assert result.issuer_status == NOT_EVALUATED
    assert any(w.startswith("NOT_EVALUATED") for w in result.warnings)
    assert code_of(doc=origin(BODY.did_key, BODY), status_lists=lists(), at=AT,
                   require_trust=True) == "UNTRUSTED_ISSUER"


def test_unknown_issuer_is_untrusted_a_warning_or_a_failure() -> None:
    doc = origin(STRANGER.did_key, STRANGER, status=False)
    result = check_credential(doc, trust=TRUST, accreditations=chain(), at=AT)
    assert result.issuer_status == UNTRUSTED and "UNTRUSTED_ISSUER" in result.warnings[0]
    assert code_of(doc=doc, trust=TRUST, accreditations=chain(), at=AT,
                   require_trust=True) == "UNTRUSTED_ISSUER"


def test_accreditations_in_the_artefact_do_not_add_trust() -> None:
    # A self-made chain to a root the trust file does not name is no path.
    fake = [accreditation(STRANGER, BODY.did_key, 3)]
    doc = origin(BODY.did_key, BODY, status=False)
    assert code_of(doc=doc, trust=TRUST, accreditations=fake, at=AT,
                   require_trust=True) == "UNTRUSTED_ISSUER"
    forged = chain()
    forged[1]["credentialSubject"]["minerals"] = ["cobalt", "lithium"]  # proof now broken
    result = check_credential(doc, trust=TRUST, accreditations=forged, at=AT)
    assert result.issuer_status == UNTRUSTED
    assert any("accreditation ignored: PROOF_VERIFICATION_ERROR" in w for w in result.warnings)


def test_out_of_scope_and_expired_accreditations_fail_with_named_codes() -> None:
    lithium = origin(BODY.did_key, BODY, mineral="lithium", status=False)
    assert code_of(doc=lithium, trust=TRUST, accreditations=chain(), at=AT) == \
        "ACCREDITATION_OUT_OF_MINERAL"
    elsewhere = chain(regions=("CD",))
    assert code_of(doc=origin(BODY.did_key, BODY, status=False), trust=TRUST,
                   accreditations=elsewhere, at=AT) == "ACCREDITATION_OUT_OF_REGION"
    assert code_of(doc=origin(BODY.did_key, BODY, status=False), trust=TRUST,
                   accreditations=chain(until="2026-02-01T00:00:00Z"), at=AT) == \
        "ACCREDITATION_EXPIRED"


def test_accredited_then_revoked_by_anchor_position() -> None:
    accreditations = chain(status=True)
    body_acc = accreditations[1]
    record = AnchorRecord(body_acc["id"], SCHEME.did_key, credential_digest(body_acc),
                          tuple(body_acc["type"]), 3, (), ((3, "issuance"), (10, "revocation")))
    doc = origin(BODY.did_key, BODY, status=False)
    anchors = {body_acc["id"]: record}
    before = check_credential(doc, trust=TRUST, accreditations=accreditations, at=AT,
                              anchors=anchors, position=9)
    assert before.issuer_status == TRUSTED
    assert code_of(doc=doc, trust=TRUST, accreditations=accreditations, at=AT,
                   anchors=anchors, position=11) == "ACCREDITATION_REVOKED"


def test_pinned_did_web_issuer() -> None:
    did = "did:web:body.example"
    document = did_key_document(BODY.did_key)
    document = {**document, "id": did}
    document = _rename(document, BODY.did_key, did)
    method = f"{did}#{BODY.did_key.removeprefix('did:key:')}"
    doc = origin(did, BODY, method=method, status=False)
    from batterytrace.verifier.trust import did_document_sha256

    pinned = TrustConfig(governance_roots=TRUST.governance_roots,
                         pinned_did_documents=(PinnedDidDocument(did, did_document_sha256(
                             document)),))
    ok = check_credential(doc, trust=pinned, did_documents=[document], at=AT)
    assert ok.issuer == did
    assert code_of(doc=doc, trust=TRUST, did_documents=[document], at=AT) == \
        "PINNED_DID_DOCUMENT_MISMATCH"


def _rename(value, old: str, new: str):
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_rename(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _rename(v, old, new) for k, v in value.items()}
    return value


# --- issuer keys by log position ---------------------------------------------------------------


def test_rotated_and_revoked_issuer_keys_by_log_position() -> None:
    registry = registry_with("body")  # registered at 1
    did, old = did_for("body"), key_for("body")
    new = Ed25519Key.from_seed(b"\x25" * 32)
    check_registry(registry, sign_as(sign_admin({"type": "KeyRotation", "participant": did,
                                                 "newKey": new.public_multibase}), "body"), 10)
    signed_old = origin(did, old, method=f"{did}#{old.public_multibase}", status=False)
    assert check_credential(signed_old, RegistryResolver(registry, 9), at=AT).issuer == did
    assert code_of(doc=signed_old, resolver=RegistryResolver(registry, 10), at=AT) == \
        "KEY_NOT_VALID"
    signed_new = origin(did, new, method=f"{did}#{new.public_multibase}", status=False)
    check_credential(signed_new, RegistryResolver(registry, 11), at=AT)
    check_registry(registry, sign_admin({"type": "KeyRevocation", "participant": did,
                                         "key": f"{did}#{new.public_multibase}"}), 20)
    check_credential(signed_new, RegistryResolver(registry, 19), at=AT)
    assert code_of(doc=signed_new, resolver=RegistryResolver(registry, 21), at=AT) == \
        "KEY_NOT_VALID"


# --- status -----------------------------------------------------------------------------------


def test_revoked_suspended_and_reinstated_credentials() -> None:
    doc = origin(BODY.did_key, BODY)
    revoked, suspended = "CREDENTIAL_STATUS_REVOKED", "CREDENTIAL_STATUS_SUSPENDED"
    assert code_of(doc=doc, status_lists=lists(revoked=[11]), at=AT) == revoked
    assert code_of(doc=doc, status_lists=lists(suspended=[12]), at=AT) == suspended
    record = AnchorRecord(doc["id"], BODY.did_key, credential_digest(doc), tuple(doc["type"]), 4,
                          (), ((4, "issuance"), (6, "suspension"), (8, "reinstatement")))
    anchors = {doc["id"]: record}
    stale = lists(suspended=[12])
    assert code_of(doc=doc, status_lists=stale, anchors=anchors, position=7, at=AT) == \
        "CREDENTIAL_STATUS_SUSPENDED"
    result = check_credential(doc, status_lists=stale, anchors=anchors, position=9, at=AT)
    assert result.anchored_at == 4 and "anchor" in result.checks
    assert any("the anchors win" in w for w in result.warnings)


def test_missing_lists_and_require_status() -> None:
    doc = origin(BODY.did_key, BODY)
    result = check_credential(doc, at=AT)
    assert sum(w.startswith("STATUS_RETRIEVAL_ERROR") for w in result.warnings) == 2
    assert code_of(doc=doc, at=AT, require_status=True) == "STATUS_RETRIEVAL_ERROR"


def test_tampered_expired_and_changed_since_anchored() -> None:
    doc = origin(BODY.did_key, BODY, status=False)
    tampered = copy.deepcopy(doc)
    tampered["credentialSubject"]["mineral"] = "nickel"
    assert code_of(doc=tampered, at=AT) == "PROOF_VERIFICATION_ERROR"
    early = datetime(2025, 1, 1, tzinfo=UTC)
    assert code_of(doc=doc, at=early) == "NOT_YET_VALID_ERROR"
    other = AnchorRecord(doc["id"], BODY.did_key, "0" * 64, tuple(doc["type"]), 4)
    assert code_of(doc=doc, at=AT, anchors={doc["id"]: other}) == "ANCHOR_MISMATCH"
    assert any(w.startswith("NOT_ANCHORED") for w in check_credential(
        doc, at=AT, anchors={}).warnings)
