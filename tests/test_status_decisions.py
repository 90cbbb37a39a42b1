"""Status decisions: lists checked (proof, issuer, purpose, length), missing lists, and the
anchors winning over a stale or wrong list."""

from __future__ import annotations

import pytest
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.did import OfflineResolver
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.credentials.status_list import (
    StatusList,
    StatusListLengthError,
    StatusRetrievalError,
    StatusVerificationError,
    build_status_list_credential,
    encode_list,
    status_entry,
)
from batterytrace.ledger.anchors import AnchorRecord, credential_digest
from batterytrace.verifier.status import (
    AnchorMismatchError,
    CredentialRevokedError,
    CredentialSuspendedError,
    decide_status,
)

KEY = Ed25519Key.from_seed(b"\x11" * 32)
OTHER = Ed25519Key.from_seed(b"\x12" * 32)
BASE = "https://ledger.example/status-lists/abc"
REV, SUS = f"{BASE}/revocation/0", f"{BASE}/suspension/0"
RESOLVER = OfflineResolver()


def credential(issuer: Ed25519Key = KEY) -> dict:
    return sign({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "urn:uuid:11111111-1111-4111-8111-111111111111",
        "type": ["VerifiableCredential"],
        "issuer": issuer.did_key,
        "credentialSubject": {"id": "https://id.example.com/lots/1"},
        "credentialStatus": [status_entry("revocation", 94567, REV),
                             status_entry("suspension", 7, SUS)],
    }, issuer)


def status_list(url: str, purpose: str, *set_bits: int, key: Ed25519Key = KEY) -> dict:
    bits = StatusList()
    for index in set_bits:
        bits.set(index)
    return sign(build_status_list_credential(list_url=url, issuer=key.did_key, purpose=purpose,
                                             status_list=bits), key)


def lists(revoked: bool = False, suspended: bool = False) -> dict:
    return {
        REV: status_list(REV, "revocation", *([94567] if revoked else [])),
        SUS: status_list(SUS, "suspension", *([7] if suspended else [])),
    }


def record(history=((5, "issuance"),), cred=None) -> AnchorRecord:
    cred = cred or credential()
    return AnchorRecord(cred["id"], cred["issuer"], credential_digest(cred),
                        tuple(cred["type"]), 5, (), tuple(history))


def test_good_standing_by_lists() -> None:
    result = decide_status(credential(), lists(), RESOLVER)
    assert result.ok and not result.warnings
    assert [(d.purpose, d.value, d.source) for d in result.decisions] == [
        ("revocation", False, "list"), ("suspension", False, "list")]
    result.raise_for_status()


def test_revoked_and_suspended_by_lists() -> None:
    revoked = decide_status(credential(), lists(revoked=True), RESOLVER)
    assert revoked.revoked and not revoked.suspended
    with pytest.raises(CredentialRevokedError) as caught:
        revoked.raise_for_status("c1")
    assert caught.value.details["index"] == 94567 and caught.value.exit_code == 1
    suspended = decide_status(credential(), lists(suspended=True), RESOLVER)
    assert suspended.suspended and not suspended.revoked
    with pytest.raises(CredentialSuspendedError):
        suspended.raise_for_status()


def test_missing_list_warns_or_fails_with_require_status() -> None:
    only_revocation = {REV: lists()[REV]}
    result = decide_status(credential(), only_revocation, RESOLVER)
    assert result.ok and result.warnings[0].startswith("STATUS_RETRIEVAL_ERROR")
    with pytest.raises(StatusRetrievalError) as caught:
        decide_status(credential(), only_revocation, RESOLVER, require_status=True)
    assert caught.value.code == "STATUS_RETRIEVAL_ERROR" and caught.value.exit_code == 1


def test_lists_that_cannot_be_relied_on() -> None:
    swapped = {REV: status_list(REV, "suspension"), SUS: lists()[SUS]}
    with pytest.raises(StatusVerificationError, match="purpose"):
        decide_status(credential(), swapped, RESOLVER)
    foreign = {REV: status_list(REV, "revocation", key=OTHER), SUS: lists()[SUS]}
    with pytest.raises(StatusVerificationError, match="not by the credential's issuer"):
        decide_status(credential(), foreign, RESOLVER)
    tampered = lists()
    flipped = StatusList()
    flipped.set(94567)
    tampered[REV]["credentialSubject"] = {**tampered[REV]["credentialSubject"],
                                          "encodedList": flipped.encode()}
    with pytest.raises(StatusVerificationError):
        decide_status(credential(), tampered, RESOLVER)
    wrong_url = {REV: status_list(SUS, "revocation"), SUS: lists()[SUS]}
    with pytest.raises(StatusVerificationError, match="does not match"):
        decide_status(credential(), wrong_url, RESOLVER)


def test_short_list_is_a_length_error() -> None:
    short = build_status_list_credential(list_url=REV, issuer=KEY.did_key, purpose="revocation",
                                         status_list=StatusList())
    short["credentialSubject"]["encodedList"] = encode_list(bytes(1024))
    with pytest.raises(StatusListLengthError):
        decide_status(credential(), {REV: sign(short, KEY), SUS: lists()[SUS]}, RESOLVER)


def test_anchors_win_over_a_stale_list_and_say_so() -> None:
    anchors = record([(5, "issuance"), (10, "revocation")])
    result = decide_status(credential(), lists(), RESOLVER, anchors=anchors)
    assert result.revoked
    [revocation, _] = result.decisions
    assert revocation.source == "anchors" and revocation.list_value is False
    assert revocation.anchor_seq == 10
    assert any(w.startswith("STATUS_ANCHOR_DISAGREEMENT") for w in result.warnings)
    before = decide_status(credential(), lists(), RESOLVER, anchors=anchors, position=9)
    assert before.ok and not before.warnings


def test_anchors_win_over_a_list_claiming_a_revocation_never_anchored() -> None:
    result = decide_status(credential(), lists(revoked=True), RESOLVER, anchors=record())
    assert not result.revoked and "the anchors win" in result.warnings[0]


def test_suspension_then_reinstatement_by_anchors_at_positions() -> None:
    anchors = record([(5, "issuance"), (8, "suspension"), (12, "reinstatement")])
    stale = lists(suspended=True)  # the list was never republished after reinstatement
    assert decide_status(credential(), stale, RESOLVER, anchors=anchors, position=10).suspended
    now = decide_status(credential(), stale, RESOLVER, anchors=anchors)
    assert now.ok and now.warnings


def test_anchors_decide_when_lists_are_missing_and_without_entries() -> None:
    anchors = record([(5, "issuance"), (6, "revocation")])
    result = decide_status(credential(), {}, RESOLVER, anchors=anchors)
    assert result.revoked and len(result.warnings) == 2
    bare = credential()
    del bare["credentialStatus"]
    bare = sign({k: v for k, v in bare.items() if k != "proof"}, KEY)
    assert decide_status(bare, {}, RESOLVER, anchors=record(anchors.history, bare)).revoked


def test_anchor_record_of_another_credential_is_refused() -> None:
    other = credential(OTHER)
    with pytest.raises(AnchorMismatchError):
        decide_status(credential(), lists(), RESOLVER, anchors=record(cred=other))
