"""Registry: did:web derivation, registration, key validity ranges, DID documents, resolver."""

from __future__ import annotations

import pytest
from batterytrace.credentials.data_integrity import verify_proofs
from batterytrace.credentials.errors import BatterytraceError, VerificationMethodError
from batterytrace.ledger import custody_errors as errors
from batterytrace.ledger.registry import RegistryResolver, participant_did
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    Network,
    did_for,
    extraction,
    facility_doc,
    key_for,
    participant_doc,
    sign_admin,
    signed_credential,
)


@pytest.mark.parametrize("url,did", [
    ("https://ledger.example", "did:web:ledger.example:participants:acme"),
    ("http://127.0.0.1:8000", "did:web:127.0.0.1%3A8000:participants:acme"),
    ("https://Ledger.Example:8443/eu/", "did:web:ledger.example%3A8443:eu:participants:acme"),
])
def test_participant_did_from_public_url(url, did):
    assert participant_did(url, "acme") == did


def test_participant_name_is_checked():
    with pytest.raises(errors.RegistryError):
        participant_did(PUBLIC_URL, "Acme Corp")


def test_registration_needs_admin():
    net = Network()
    doc = participant_doc("acme", "Acme SA", ["miner"], "CD")
    with pytest.raises(errors.RegistryAuthorizationError):
        net.register(doc, signers=[f"{did_for('acme')}#x"])
    assert not net.registry.is_participant(did_for("acme"))
    net.register(doc)
    assert net.registry.participant(did_for("acme")).roles == ("miner",)


@pytest.mark.parametrize("change", [
    {"roles": ["astronaut"]}, {"roles": []}, {"country": "Congo"}, {"keys": []},
    {"keys": ["zNotAKey"]},
])
def test_bad_registrations_rejected(change):
    net = Network()
    doc = {**participant_doc("acme", "Acme SA", ["miner"], "CD"), **change}
    with pytest.raises(BatterytraceError):
        net.register(doc)
    assert not net.registry.is_participant(did_for("acme"))


def test_participant_and_facility_unique():
    net = Network.standard()
    with pytest.raises(errors.ParticipantExistsError):
        net.register(participant_doc("miner", "Other", ["miner"], "CD", [key_for("x")]))
    with pytest.raises(errors.FacilityExistsError):  # (an identical document is a repeat)
        net.register(facility_doc("kolwezi-mine", "miner", "plant", "CD"))
    with pytest.raises(errors.UnknownParticipantError):
        net.register(facility_doc("new-mine", "ghost", "mine", "CD"))


def test_same_registry_document_returns_its_position():
    net = Network()
    doc = participant_doc("acme", "Acme SA", ["miner"], "CD")
    assert net.register(doc) is None
    assert net.register(doc) == 1


def test_key_validity_range_and_did_document():
    net = Network.standard()
    miner = did_for("miner")
    old = f"{miner}#{key_for('miner').public_multibase}"
    new = key_for("miner-new")
    rotation = {"type": "KeyRotation", "participant": miner, "newKey": new.public_multibase}
    with pytest.raises(errors.RegistryAuthorizationError):
        net.register(rotation, signers=[ADMIN_KEY.verification_method])
    net.register(rotation, signers=[ADMIN_KEY.verification_method, old])
    at = net.position
    assert net.registry.key_at(old, at - 1)
    with pytest.raises(errors.KeyNotValidError):
        net.registry.key_at(old, at)
    assert net.registry.key_at(f"{miner}#{new.public_multibase}", at)
    doc_before = net.registry.did_document(miner, at - 1)
    doc_after = net.registry.did_document(miner, at)
    assert doc_before["assertionMethod"] == [old]
    assert doc_after["verificationMethod"][0]["publicKeyMultibase"] == new.public_multibase
    assert doc_after["verificationMethod"][0]["controller"] == miner


def test_revocation_by_participant_itself_and_no_reuse():
    net = Network.standard()
    fleet = did_for("fleet")
    vm = f"{fleet}#{key_for('fleet').public_multibase}"
    net.register({"type": "KeyRevocation", "participant": fleet, "key": vm}, signers=[vm])
    with pytest.raises(errors.KeyNotValidError):
        net.registry.key_at(vm, net.position)
    with pytest.raises(errors.KeyNotValidError):
        net.register({"type": "KeyRevocation", "participant": fleet, "key": vm, "n": 2})
    with pytest.raises(errors.RegistryError):
        net.register({"type": "KeyRecovery", "participant": fleet,
                      "newKey": key_for("fleet").public_multibase})


def test_recovery_is_admin_only_and_marked():
    net = Network.standard()
    fleet = did_for("fleet")
    vm = f"{fleet}#{key_for('fleet').public_multibase}"
    doc = {"type": "KeyRecovery", "participant": fleet,
           "newKey": key_for("fleet-2").public_multibase}
    with pytest.raises(errors.RegistryAuthorizationError):
        net.register(doc, signers=[vm])
    net.register(doc)
    [current] = [k for k in net.registry.keys_of(fleet) if k.valid_at(net.position)]
    assert current.recovery and net.registry.key(vm).ended_by == "recovery"


def test_resolver_at_position_verifies_participant_and_admin_proofs():
    net = Network.standard()
    doc = signed_credential("miner", [extraction("kolwezi-mine", "o", 1, {})])
    [result] = verify_proofs(doc, RegistryResolver(net.registry, net.position))
    assert result.controller == did_for("miner")
    with pytest.raises(errors.KeyNotValidError):
        verify_proofs(doc, RegistryResolver(net.registry, 0))
    admin_doc = sign_admin({"type": "FacilityRegistration"})
    with pytest.raises(VerificationMethodError):
        verify_proofs(admin_doc, RegistryResolver(net.registry, net.position))
    assert verify_proofs(admin_doc, RegistryResolver(net.registry, net.position, admin=True))
