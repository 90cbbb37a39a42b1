"""did:web documents served by the ledger (participants and the ledger itself), resolved over
HTTP with an independent implementation of the did:web URL transform, read by an independent
DID library (pydid), and used to verify a participant-issued credential without the ledger's
code (rfc8785, cryptography and multiformats only); then with `credential verify
--did-document`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from custody_factory import BUILDERS, did_for, key_for
from transparency_support import served_app

ROTATED = BUILDERS.key_for("miner-rotated")


def did_web_url(did: str) -> str:
    """The did:web method's DID-to-HTTPS transform (W3C CCG did:web, section 3.2), written
    here from the text, not taken from batterytrace."""
    assert did.startswith("did:web:")
    parts = did[len("did:web:"):].split(":")
    host = unquote(parts[0])
    path = "/".join(unquote(p) for p in parts[1:])
    return f"https://{host}/{path}/did.json" if path else f"https://{host}/.well-known/did.json"


def verify_eddsa_jcs_2022(credential: dict[str, Any], document: dict[str, Any]) -> None:
    """eddsa-jcs-2022 verification from the W3C text (VC DI EdDSA 3.3), against a resolved
    DID document: the method must be one of its assertionMethod keys."""
    import rfc8785
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from multiformats import multibase

    proof = dict(credential["proof"])
    assert proof["type"] == "DataIntegrityProof" and proof["cryptosuite"] == "eddsa-jcs-2022"
    method_id = proof["verificationMethod"]
    assertion = [m if isinstance(m, str) else m["id"] for m in document["assertionMethod"]]
    if method_id not in assertion:
        raise PermissionError(f"{method_id} is not an assertion method of {document['id']}")
    [method] = [m for m in document["verificationMethod"] if m["id"] == method_id]
    raw = multibase.decode(method["publicKeyMultibase"])
    assert raw[:2] == b"\xed\x01"
    signature = multibase.decode(proof.pop("proofValue"))
    unsecured = {k: v for k, v in credential.items() if k != "proof"}
    proof["@context"] = credential["@context"]
    data = (hashlib.sha256(rfc8785.dumps(proof)).digest()
            + hashlib.sha256(rfc8785.dumps(unsecured)).digest())
    Ed25519PublicKey.from_public_bytes(raw[2:]).verify(signature, data)


def _credential(key: Any) -> dict[str, Any]:
    from batterytrace.credentials.data_integrity import sign

    did = did_for("miner")
    unsigned = {
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://www.w3.org/ns/credentials/examples/v2"],
        "type": ["VerifiableCredential", "ExampleAssayCredential"],
        "id": "urn:uuid:0d4e4bb4-4f3b-4d55-9f62-0c4f6a3a0a11",
        "issuer": did, "validFrom": "2026-02-01T00:00:00Z",
        "credentialSubject": {"id": "https://id.example.com/lots/ore-1", "cobalt": "0.1"},
    }
    return sign(unsigned, key, verification_method=f"{did}#{key.public_multibase}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from batterytrace.api.app import create_app
    from batterytrace.credentials.data_integrity import sign
    from batterytrace.ledger.log import Submission
    from batterytrace.ledger.service import open_ledger
    from test_api_support import make_home

    home = make_home(tmp_path_factory.mktemp("didweb"), None)
    ledger = open_ledger(home, None)
    try:  # the miner rotates its key: the old one ends, the new one begins
        rotation = BUILDERS.sign_admin({"type": "KeyRotation", "participant": did_for("miner"),
                                        "newKey": ROTATED.public_multibase})
        old = key_for("miner")
        rotation = sign(rotation, old,
                        verification_method=f"{did_for('miner')}#{old.public_multibase}")
        ledger.append([Submission("registry", rotation)])
    finally:
        ledger.close()
    with served_app(create_app(home, checkpoint_interval=3600)) as base:
        yield {"home": home, "base": base}


def resolve(served: dict[str, Any], did: str) -> dict[str, Any]:
    """Resolve over HTTP: the transform's https://ledger.example is the test server."""
    import httpx

    url = did_web_url(did)
    assert url.startswith("https://ledger.example/")
    answer = httpx.get(served["base"] + url[len("https://ledger.example"):], timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(
        "application/json")
    document: dict[str, Any] = answer.json()
    assert document["id"] == did
    return document


def test_participant_document_resolves_validates_and_verifies(served: dict[str, Any]) -> None:
    from pydid import DIDDocument

    did = did_for("miner")
    document = resolve(served, did)
    parsed = DIDDocument.deserialize(document)
    assert str(parsed.id) == did
    # Every key of the registry, with its validity; only the current one may assert.
    validity = {m["publicKeyMultibase"]: m["keyValidity"] for m in document["verificationMethod"]}
    old, new = key_for("miner").public_multibase, ROTATED.public_multibase
    assert set(validity) == {old, new}
    assert validity[old]["validUntil"] == validity[new]["validFrom"]
    assert "validUntil" not in validity[new] and validity[old]["endedBy"]
    assert document["assertionMethod"] == [f"{did}#{new}"]
    verify_eddsa_jcs_2022(_credential(ROTATED), document)
    with pytest.raises(PermissionError):  # a retired key asserts nothing any more
        verify_eddsa_jcs_2022(_credential(key_for("miner")), document)
    tampered = _credential(ROTATED)
    tampered["credentialSubject"]["cobalt"] = "0.9"
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        verify_eddsa_jcs_2022(tampered, document)


def test_ledger_document_at_the_well_known_path(served: dict[str, Any]) -> None:
    from batterytrace.ledger.service import open_ledger
    from pydid import DIDDocument

    document = resolve(served, "did:web:ledger.example")
    DIDDocument.deserialize(document)
    ledger = open_ledger(served["home"], None)
    try:
        admin = ledger.home.admin_key()
        log = ledger.home.log_key()
    finally:
        ledger.close()
    keys = {m["id"].split("#")[1]: m["publicKeyMultibase"] for m in document["verificationMethod"]}
    assert keys["admin"] == admin.public_multibase
    assert keys["log"] == log.public_multibase
    # A registry entry, signed by the admin key, verifies with the resolved document.
    from batterytrace.credentials.data_integrity import sign

    entry = sign({"@context": ["https://www.w3.org/ns/credentials/v2"],
                  "type": ["VerifiableCredential"], "issuer": "did:web:ledger.example",
                  "credentialSubject": {"id": did_for("miner")}}, admin,
                 verification_method="did:web:ledger.example#admin")
    verify_eddsa_jcs_2022(entry, document)


def test_credential_verify_with_the_served_document(served: dict[str, Any],
                                                     tmp_path: Path) -> None:
    from batterytrace.api.cli import app
    from typer.testing import CliRunner

    document = resolve(served, did_for("miner"))
    doc_file, good, old = tmp_path / "did.json", tmp_path / "good.json", tmp_path / "old.json"
    doc_file.write_text(json.dumps(document))
    good.write_text(json.dumps(_credential(ROTATED)))
    old.write_text(json.dumps(_credential(key_for("miner"))))
    runner = CliRunner()
    result = runner.invoke(app, ["credential", "verify", str(good), "--did-document",
                                 str(doc_file), "--proof-only", "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    result = runner.invoke(app, ["credential", "verify", str(old), "--did-document",
                                 str(doc_file), "--proof-only", "--json"])
    assert result.exit_code != 0
