"""Credential anchors: signed by the issuer, issue once, revoke for good, suspend and reinstate,
replays deduped, keys judged at the log position; and through the Ledger, atomically."""

from __future__ import annotations

from typing import Any

import pytest
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.keys import Ed25519Key, write_key_file
from batterytrace.ledger import anchors as an
from batterytrace.ledger.anchor_store import anchor_validators, read_record
from batterytrace.ledger.engine import check_registry
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.registry import Registry
from batterytrace.ledger.validators import validators_for
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    did_for,
    key_for,
    participant_doc,
    sign_admin,
    sign_as,
)

CREATED = "2026-01-15T08:00:00Z"
AUDITOR = "auditor"


def credential(issuer: str, key: Ed25519Key, n: int = 1, **extra: Any) -> dict[str, Any]:
    """A small signed VC 2.0 credential with a revocation and a suspension entry."""
    doc = {
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://www.w3.org/ns/credentials/examples/v2"],  # maps the type
        "id": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        "type": ["VerifiableCredential", "ExampleCredential"],
        "issuer": issuer,
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": f"https://id.example.com/lots/lot-{n}", "grade": "A"},
        "credentialStatus": [
            {"type": "BitstringStatusListEntry", "statusPurpose": "revocation",
             "statusListIndex": str(100 + n),
             "statusListCredential": f"{PUBLIC_URL}/status-lists/x/revocation/0"},
            {"type": "BitstringStatusListEntry", "statusPurpose": "suspension",
             "statusListIndex": str(200 + n),
             "statusListCredential": f"{PUBLIC_URL}/status-lists/x/suspension/0"},
        ],
        **extra,
    }
    method = None if issuer.startswith("did:key:") else f"{issuer}#{key.public_multibase}"
    return sign(doc, key, verification_method=method, created=CREATED)


def anchor(cred: dict[str, Any], action: str, key: Ed25519Key) -> dict[str, Any]:
    return an.sign_anchor(an.build_anchor(cred, action), key, created=CREATED)


def registry_with(*names: str) -> Registry:
    """An in-memory registry with participants registered at positions 1, 2, ..."""
    registry = Registry(ADMIN_KEY.did_key, PUBLIC_URL)
    for position, name in enumerate(names, 1):
        check_registry(registry, sign_admin(participant_doc(name, name.title(), ["auditor"],
                                                            "CA")), position)
    return registry


@pytest.fixture
def world() -> tuple[Registry, an.AnchorBook]:
    return registry_with(AUDITOR, "intruder"), an.AnchorBook()


# --- building ---------------------------------------------------------------------------------


def test_anchor_holds_digest_id_type_status_but_no_content() -> None:
    key = key_for(AUDITOR)
    cred = credential(did_for(AUDITOR), key)
    doc = an.build_anchor(cred)
    assert doc["credentialDigest"] == an.credential_digest(cred)
    assert doc["credentialId"] == cred["id"] and doc["issuer"] == did_for(AUDITOR)
    assert doc["credentialType"] == cred["type"]
    assert [s["statusPurpose"] for s in doc["status"]] == ["revocation", "suspension"]
    assert "credentialSubject" not in doc and "grade" not in str(doc)
    revocation = an.build_anchor(cred, an.REVOCATION)
    assert [s["statusListIndex"] for s in revocation["status"]] == ["101"]
    assert [s["statusPurpose"] for s in an.build_anchor(cred, an.REINSTATEMENT)["status"]] == [
        "suspension"]


@pytest.mark.parametrize("change", [
    {"credentialSubject": {"id": "x"}},
    {"credentialDigest": "ABC"},
    {"action": "deletion"},
    {"issuer": "not-a-did"},
    {"credentialType": []},
    {"status": [{"statusPurpose": "other", "statusListIndex": "1",
                 "statusListCredential": "https://x"}]},
])
def test_malformed_anchors_are_input_errors(change: dict[str, Any]) -> None:
    doc = {**an.build_anchor(credential(did_for(AUDITOR), key_for(AUDITOR))), **change}
    with pytest.raises(an.AnchorFormatError) as caught:
        an.Anchor.parse(doc)
    assert caught.value.exit_code == 2


def test_status_change_anchor_must_name_its_own_purpose() -> None:
    doc = an.build_anchor(credential(did_for(AUDITOR), key_for(AUDITOR)), an.SUSPENSION)
    doc["status"][0]["statusPurpose"] = "revocation"
    with pytest.raises(an.AnchorFormatError):
        an.Anchor.parse(doc)


# --- rules --------------------------------------------------------------------------------------


def test_lifecycle_suspend_reinstate_revoke_and_history(world) -> None:
    registry, book = world
    key = key_for(AUDITOR)
    cred = credential(did_for(AUDITOR), key)
    for position, action in enumerate(
        [an.ISSUANCE, an.SUSPENSION, an.REINSTATEMENT, an.SUSPENSION, an.REVOCATION], 10
    ):
        _, seen = an.check_anchor(registry, book, anchor(cred, action, key), position)
        assert seen is None
    record = book.record(cred["id"])
    assert record.issued_at == 10
    assert record.suspended_at(10) is None and record.suspended_at(11) == 11
    assert record.suspended_at(12) is None and record.suspended_at(13) == 13
    assert record.revoked_at(13) is None and record.revoked_at(14) == 14 == record.revoked_at()
    assert record.status == (("revocation", 101, f"{PUBLIC_URL}/status-lists/x/revocation/0"),
                             ("suspension", 201, f"{PUBLIC_URL}/status-lists/x/suspension/0"))


def test_revocation_is_irreversible(world) -> None:
    registry, book = world
    key = key_for(AUDITOR)
    cred = credential(did_for(AUDITOR), key)
    an.check_anchor(registry, book, anchor(cred, an.ISSUANCE, key), 5)
    an.check_anchor(registry, book, anchor(cred, an.REVOCATION, key), 6)
    for action in (an.REINSTATEMENT, an.SUSPENSION):
        with pytest.raises(an.AnchorStateError, match="irreversible"):
            an.check_anchor(registry, book, anchor(cred, action, key), 7)
    other = an.sign_anchor(an.build_anchor(cred, an.REVOCATION, reason="again"), key)
    with pytest.raises(an.AnchorStateError):
        an.check_anchor(registry, book, other, 7)


def test_reinstating_an_active_credential_and_double_suspension_fail(world) -> None:
    registry, book = world
    key = key_for(AUDITOR)
    cred = credential(did_for(AUDITOR), key)
    an.check_anchor(registry, book, anchor(cred, an.ISSUANCE, key), 5)
    with pytest.raises(an.AnchorStateError, match="not suspended"):
        an.check_anchor(registry, book, anchor(cred, an.REINSTATEMENT, key), 6)
    an.check_anchor(registry, book, anchor(cred, an.SUSPENSION, key), 6)
    twice = an.sign_anchor(an.build_anchor(cred, an.SUSPENSION, reason="twice"), key)
    with pytest.raises(an.AnchorStateError, match="already suspended"):
        an.check_anchor(registry, book, twice, 7)


def test_replay_is_deduped_and_second_issuance_rejected(world) -> None:
    registry, book = world
    key = key_for(AUDITOR)
    cred = credential(did_for(AUDITOR), key)
    first = anchor(cred, an.ISSUANCE, key)
    assert an.check_anchor(registry, book, first, 5)[1] is None
    assert an.check_anchor(registry, book, first, 9)[1] == 5
    resigned = an.sign_anchor(an.build_anchor(cred), key, created="2026-02-01T00:00:00Z")
    with pytest.raises(an.AnchorStateError, match="already issued"):
        an.check_anchor(registry, book, resigned, 9)


def test_only_the_issuer_signs_and_revokes(world) -> None:
    registry, book = world
    key, intruder = key_for(AUDITOR), key_for("intruder")
    cred = credential(did_for(AUDITOR), key)
    # The intruder signs an anchor naming the auditor as issuer: not the issuer's proof.
    forged = an.build_anchor(cred)
    forged = sign(forged, intruder, verification_method=f"{did_for('intruder')}#"
                  f"{intruder.public_multibase}")
    with pytest.raises(an.AnchorSignerError):
        an.check_anchor(registry, book, forged, 5)
    an.check_anchor(registry, book, anchor(cred, an.ISSUANCE, key), 5)
    # The intruder's own revocation anchor names itself as issuer: not the credential's.
    revocation = {**an.build_anchor(cred, an.REVOCATION), "issuer": did_for("intruder")}
    revocation = sign(revocation, intruder, verification_method=f"{did_for('intruder')}#"
                      f"{intruder.public_multibase}")
    with pytest.raises(an.AnchorStateError, match="only the issuer"):
        an.check_anchor(registry, book, revocation, 6)
    assert book.record(cred["id"]).revoked_at() is None


def test_revocation_must_name_the_anchored_digest(world) -> None:
    registry, book = world
    key = key_for(AUDITOR)
    cred = credential(did_for(AUDITOR), key)
    an.check_anchor(registry, book, anchor(cred, an.ISSUANCE, key), 5)
    changed = credential(did_for(AUDITOR), key, name="other")
    with pytest.raises(an.AnchorStateError, match="another version"):
        an.check_anchor(registry, book, anchor(changed, an.REVOCATION, key), 6)


def test_did_key_issuer_and_unregistered_did_web(world) -> None:
    registry, book = world
    outsider = Ed25519Key.from_seed(b"\x07" * 32)
    cred = credential(outsider.did_key, outsider)
    an.check_anchor(registry, book, anchor(cred, an.ISSUANCE, outsider), 5)
    web = credential("did:web:auditor.example", outsider, n=2)
    with pytest.raises(an.AnchorSignerError, match="neither a registered participant"):
        an.check_anchor(registry, book, anchor(web, an.ISSUANCE, outsider), 6)


def test_rotated_and_revoked_issuer_keys_by_log_position() -> None:
    registry = registry_with(AUDITOR)  # registered at position 1
    book = an.AnchorBook()
    old, new = key_for(AUDITOR), Ed25519Key.from_seed(b"\x09" * 32)
    did = did_for(AUDITOR)
    rotation = sign_as(sign_admin({"type": "KeyRotation", "participant": did,
                                   "newKey": new.public_multibase}), AUDITOR)
    check_registry(registry, rotation, 10)
    before = credential(did, old, n=1)
    an.check_anchor(registry, book, anchor(before, an.ISSUANCE, old), 9)  # old key valid at 9
    late = credential(did, old, n=2)
    with pytest.raises(an.AnchorSignerError):
        an.check_anchor(registry, book, anchor(late, an.ISSUANCE, old), 11)
    fresh = credential(did, new, n=3)
    an.check_anchor(registry, book, anchor(fresh, an.ISSUANCE, new), 11)
    revoke = sign_admin({"type": "KeyRevocation", "participant": did,
                         "key": f"{did}#{new.public_multibase}"})
    check_registry(registry, revoke, 20)
    with pytest.raises(an.AnchorSignerError):
        an.check_anchor(registry, book, anchor(fresh, an.REVOCATION, new), 21)
    an.check_anchor(registry, book, anchor(fresh, an.SUSPENSION, new), 19)


def test_replay_anchors_matches_incremental_application(world) -> None:
    registry, _ = world
    key = key_for(AUDITOR)
    cred = credential(did_for(AUDITOR), key)
    entries = [(5, "anchor", anchor(cred, an.ISSUANCE, key)), (6, "event", {}),
               (7, "anchor", anchor(cred, an.SUSPENSION, key))]
    book = an.replay_anchors(entries, registry)
    assert book.record(cred["id"]).history == ((5, an.ISSUANCE), (7, an.SUSPENSION))
    bad = [(5, "anchor", anchor(cred, an.REVOCATION, key))]
    with pytest.raises(an.AnchorStateError) as caught:
        an.replay_anchors(bad, registry)
    assert caught.value.details["seq"] == 5


# --- through the ledger -------------------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path):
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, None, "ledger.example/test", PUBLIC_URL)
    led.validators.update(validators_for(led))
    led.validators.update(anchor_validators(led))
    led.append([Submission("registry", sign_admin(participant_doc(AUDITOR, "Auditor Inc",
                                                                  ["auditor"], "CA")))])
    yield led
    led.close()


def test_ledger_appends_dedupes_and_rejects_atomically(ledger) -> None:
    key = key_for(AUDITOR)
    one, two = credential(did_for(AUDITOR), key, 1), credential(did_for(AUDITOR), key, 2)
    issuance = anchor(one, an.ISSUANCE, key)
    [first] = ledger.append([Submission("anchor", issuance)])
    assert not first.duplicate and ledger.entry(first.seq).kind == "anchor"
    [again] = ledger.append([Submission("anchor", issuance)])
    assert again.duplicate and again.seq == first.seq
    size = ledger.size
    with pytest.raises(an.AnchorStateError):
        ledger.append([Submission("anchor", anchor(two, an.ISSUANCE, key)),
                       Submission("anchor", anchor(two, an.REINSTATEMENT, key))])
    assert ledger.size == size and read_record(ledger, two["id"]) is None
    record = read_record(ledger, one["id"])
    assert record is not None and record.issued_at == first.seq
