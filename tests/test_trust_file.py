"""trust.toml: round trip, lookups, pinned did:web documents and every malformed case."""

from __future__ import annotations

import pytest
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.ledger.checkpoint import note_verifier_key
from batterytrace.verifier.trust import (
    GovernanceRoot,
    PinnedDidDocument,
    PinnedDocumentMismatchError,
    TrustConfig,
    TrustedLedger,
    TrustFileError,
    TrustFileVersionError,
    did_document_sha256,
    dump_trust,
    load_trust,
    parse_trust,
    write_trust,
)
from hypothesis import given
from hypothesis import strategies as st

LOG_KEY = Ed25519Key.from_seed(bytes([1]) * 32)
ROOT_KEY = Ed25519Key.from_seed(bytes([2]) * 32)
OTHER_KEY = Ed25519Key.from_seed(bytes([3]) * 32)
ORIGIN = "ledger.example/log"
VKEY = note_verifier_key(ORIGIN, LOG_KEY.public_key)
AUDITOR_DOC = {
    "@context": ["https://www.w3.org/ns/did/v1"],
    "id": "did:web:auditor.example",
    "verificationMethod": [{"id": "did:web:auditor.example#k1", "type": "Multikey",
                            "controller": "did:web:auditor.example",
                            "publicKeyMultibase": OTHER_KEY.public_multibase}],
    "assertionMethod": ["did:web:auditor.example#k1"],
}


def _config() -> TrustConfig:
    return TrustConfig(
        ledgers=(TrustedLedger(ORIGIN, VKEY),),
        governance_roots=(
            GovernanceRoot(ROOT_KEY.did_key, name='Board "GBA"\tv2'),
            GovernanceRoot("did:web:gov.example", (OTHER_KEY.public_multibase,)),
        ),
        pinned_did_documents=(
            PinnedDidDocument("did:web:auditor.example", did_document_sha256(AUDITOR_DOC)),
        ),
    )


def test_round_trip(tmp_path):
    config = _config()
    path = tmp_path / "trust.toml"
    write_trust(config, path)
    assert load_trust(path) == config
    text = path.read_text()
    assert text.count("[[governance_root]]") == 2 and "version = 1" in text


def test_did_key_root_derives_its_key():
    root = GovernanceRoot(ROOT_KEY.did_key)
    assert root.keys == (ROOT_KEY.public_multibase,)
    assert root.public_keys == (ROOT_KEY.public_key,)


def test_lookups_and_additions():
    config = _config()
    assert config.ledger(ORIGIN).note_verifier.public_key == LOG_KEY.public_key
    assert config.ledger("other/log") is None
    assert config.governance_root(ROOT_KEY.did_key) is not None
    assert config.governance_root(OTHER_KEY.did_key) is None
    grown = config.with_governance_root(GovernanceRoot(OTHER_KEY.did_key))
    assert len(grown.governance_roots) == 3 and len(config.governance_roots) == 2
    replaced = grown.with_governance_root(GovernanceRoot(OTHER_KEY.did_key, name="x"))
    assert len(replaced.governance_roots) == 3
    assert TrustConfig().with_ledger(TrustedLedger(ORIGIN, VKEY)).ledgers[0].origin == ORIGIN
    pinned = TrustConfig().with_pinned_did_document(config.pinned_did_documents[0])
    assert pinned.pinned("did:web:auditor.example") is not None


def test_pinned_document_accepted_only_when_identical():
    config = _config()
    reordered = dict(reversed(list(AUDITOR_DOC.items())))  # canonical form ignores key order
    config.check_pinned("did:web:auditor.example", reordered)
    swapped = {**AUDITOR_DOC, "assertionMethod": ["did:web:auditor.example#k2"]}
    with pytest.raises(PinnedDocumentMismatchError):
        config.check_pinned("did:web:auditor.example", swapped)
    with pytest.raises(PinnedDocumentMismatchError):
        config.check_pinned("did:web:other.example", {**AUDITOR_DOC, "id": "did:web:other.example"})
    with pytest.raises(PinnedDocumentMismatchError):
        config.check_pinned("did:web:auditor.example", {**AUDITOR_DOC, "id": "did:web:x"})


@given(st.text(max_size=20))
def test_names_with_any_characters_round_trip(name):
    config = TrustConfig(governance_roots=(GovernanceRoot(ROOT_KEY.did_key, name=name),))
    assert parse_trust(dump_trust(config)) == config


GOOD_ROOT = f'[[governance_root]]\ndid = "{ROOT_KEY.did_key}"\n'
GOOD_LEDGER = f'[[ledger]]\norigin = "{ORIGIN}"\nverifier_key = "{VKEY}"\n'


@pytest.mark.parametrize(
    "text",
    [
        "",
        'version = 2\n',
        'version = "1"\n',
        "version = true\n",
        "version = 0\n",
    ],
)
def test_unknown_or_missing_version(text):
    with pytest.raises(TrustFileVersionError) as info:
        parse_trust(text + GOOD_ROOT)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "body",
    [
        "version = 1\nversion = 1\n",  # invalid TOML
        "version = 1\ntrusted = true\n",  # unknown top-level key
        "version = 1\nledger = \"x\"\n",  # not an array of tables
        "version = 1\n[ledger]\norigin = \"a\"\n",  # a table, not an array of tables
        f"version = 1\n{GOOD_LEDGER}extra = 1\n",  # unknown key in a table
        'version = 1\n[[ledger]]\norigin = "ledger.example/log"\n',  # missing verifier_key
        f'version = 1\n[[ledger]]\norigin = "other/log"\nverifier_key = "{VKEY}"\n',  # name
        'version = 1\n[[ledger]]\norigin = "a"\nverifier_key = "a+00000000+AQ=="\n',
        f'version = 1\n[[ledger]]\norigin = 5\nverifier_key = "{VKEY}"\n',  # wrong type
        f"version = 1\n{GOOD_LEDGER}{GOOD_LEDGER}",  # duplicate origin
        f"version = 1\n{GOOD_ROOT}{GOOD_ROOT}",  # duplicate root
        'version = 1\n[[governance_root]]\ndid = "not-a-did"\nkeys = ["z6Mk"]\n',
        'version = 1\n[[governance_root]]\ndid = "did:web:gov.example"\n',  # no keys
        'version = 1\n[[governance_root]]\ndid = "did:web:gov.example"\nkeys = [1]\n',
        'version = 1\n[[governance_root]]\ndid = "did:web:gov.example"\nkeys = "z6Mk"\n',
        'version = 1\n[[governance_root]]\ndid = "did:web:gov.example"\nkeys = ["zBad"]\n',
        f'version = 1\n[[governance_root]]\ndid = "{ROOT_KEY.did_key}"\n'
        f'keys = ["{OTHER_KEY.public_multibase}"]\n',  # did:key with another key
        f'version = 1\n[[governance_root]]\ndid = "did:web:g.example"\n'
        f'keys = ["{OTHER_KEY.public_multibase}", "{OTHER_KEY.public_multibase}"]\n',
        'version = 1\n[[pinned_did_document]]\ndid = "did:web:a.example"\nsha256 = "abc"\n',
        f'version = 1\n[[pinned_did_document]]\ndid = "{ROOT_KEY.did_key}"\n'
        f'sha256 = "{"0" * 64}"\n',  # only did:web is pinned
        f'version = 1\n[[pinned_did_document]]\ndid = "did:web:a.example"\n'
        f'sha256 = "{"A" * 64}"\n',  # uppercase hex
        'version = 1\n[[pinned_did_document]]\ndid = "did:web:a.example"\n',  # missing sha256
    ],
)
def test_malformed_trust_files(body):
    with pytest.raises(TrustFileError) as info:
        parse_trust(body)
    assert info.value.code in ("TRUST_FILE_ERROR", "TRUST_FILE_VERSION_ERROR")


def test_unreadable_file(tmp_path):
    with pytest.raises(TrustFileError):
        load_trust(tmp_path / "missing.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(TrustFileError):
        load_trust(tmp_path / "bin.toml")


def test_minimal_file_is_empty_trust():
    assert parse_trust("version = 1\n") == TrustConfig()
