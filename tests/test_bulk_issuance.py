"""Bulk issuance: all or nothing, anchors that replay offline like single ones, the ledger's
skipped re-verification limited to what this process signed, status lists published once
per batch."""

from __future__ import annotations

import pytest
from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import sign, verify_proofs
from batterytrace.credentials.did import OfflineResolver
from batterytrace.credentials.errors import (
    MalformedValueError,
    ProofVerificationError,
    VerificationError,
)
from batterytrace.credentials.keys import Ed25519Key, write_key_file
from batterytrace.credentials.status_list import read_list_credential, status_entries
from batterytrace.ledger import anchors as an
from batterytrace.ledger.anchor_store import read_record
from batterytrace.ledger.credential_store import CredentialNotFoundError, CredentialStore
from batterytrace.ledger.engine import check_registry
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.registry import Registry, RegistryResolver
from custody_factory import ADMIN_KEY, PUBLIC_URL, did_for, key_for, participant_doc, sign_admin
from hypothesis import given
from hypothesis import strategies as st

AUDITOR = "auditor"
INTRUDER = "intruder"


def unsigned(issuer: str, n: int) -> dict:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://www.w3.org/ns/credentials/examples/v2"],  # maps the type
        "id": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        "type": ["VerifiableCredential", "ExampleCredential"],
        "issuer": issuer,
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": f"https://id.example.com/lots/lot-{n}", "massKg": 10 + n},
    }


def _open_store(tmp_path, database_url) -> CredentialStore:
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, database_url, "ledger.example/test", PUBLIC_URL)
    store = CredentialStore(led)
    led.append([Submission("registry", sign_admin(participant_doc(name, name.title(),
                                                                  ["auditor"], "CA")))
                for name in (AUDITOR, INTRUDER)])
    return store


@pytest.fixture
def store(tmp_path):
    s = _open_store(tmp_path, None)
    yield s
    s.ledger.close()


def _offline_registry(store: CredentialStore) -> Registry:
    """The registry rebuilt from the log's registry entries alone (no database)."""
    registry = Registry(ADMIN_KEY.did_key, PUBLIC_URL)
    for entry in store.ledger.iter_entries():
        if entry.kind == "registry":
            check_registry(registry, entry.document, entry.seq)
    return registry


def test_bulk_anchors_replay_offline_exactly_like_single_ones(store) -> None:
    key, issuer = key_for(AUDITOR), did_for(AUDITOR)
    single, single_result = store.issue(unsigned(issuer, 0), key)
    bulk = store.issue_many([unsigned(issuer, n) for n in range(1, 21)], key)
    entries = [(e.seq, e.kind, e.document) for e in store.ledger.iter_entries()]
    anchors = {d["credentialId"]: d for _, kind, d in entries if kind == "anchor"}
    assert len(anchors) == 21
    assert set(anchors[single["id"]]) == set(anchors[bulk[0][0]["id"]])  # same shape

    registry = _offline_registry(store)
    book = an.replay_anchors(entries, registry)  # every anchor signature re-checked here
    resolver = RegistryResolver(registry, store.ledger.size)
    for credential, result in [(single, single_result), *bulk]:
        record = book.record(credential["id"])
        assert record is not None and record.issued_at == result.seq
        assert record.digest == an.credential_digest(credential)
        assert [s[0] for s in record.status] == ["revocation", "suspension"]
        assert store.get(credential["id"]) == credential  # the stored body is the signed one
        [proof] = verify_proofs(credential, resolver)
        assert proof.controller == issuer
    stored = read_record(store.ledger, bulk[-1][0]["id"])
    assert stored == book.record(bulk[-1][0]["id"])  # the ledger's view is the replay's


@pytest.mark.parametrize("bad", ["malformed", "already issued"])
def test_a_bulk_batch_with_one_bad_credential_is_refused_and_changes_nothing(
    tmp_path, database_url, bad: str
) -> None:
    store = _open_store(tmp_path, database_url)
    try:
        key, issuer = key_for(AUDITOR), did_for(AUDITOR)
        store.issue(unsigned(issuer, 99), key)
        size = store.ledger.size
        batch = [unsigned(issuer, n) for n in range(10)]
        if bad == "malformed":
            del batch[6]["credentialSubject"]
            expected: type[Exception] = MalformedValueError
        else:
            batch[6] = unsigned(issuer, 99)  # refused by the anchor rules, inside the append
            expected = an.AnchorStateError
        with pytest.raises(expected):
            store.issue_many(batch, key)
        assert store.ledger.size == size
        for n in (0, 5, 9):
            with pytest.raises(CredentialNotFoundError):
                store.get(unsigned(issuer, n)["id"])
            assert read_record(store.ledger, unsigned(issuer, n)["id"]) is None
        assert store.find("https://id.example.com/lots/lot-0") == []
        issued = store.issue_many(batch[:6], key)  # the good ones go through afterwards
        assert [r.seq for _, r in issued] == list(range(size, size + 6))
    finally:
        store.ledger.close()


def test_signed_here_skips_only_the_arithmetic_of_that_key() -> None:
    mine, other = Ed25519Key.from_seed(b"\x11" * 32), Ed25519Key.from_seed(b"\x12" * 32)
    signed = sign(unsigned(mine.did_key, 1), mine)
    tampered = {**signed, "validFrom": "2020-01-01T00:00:00Z"}
    resolver = OfflineResolver()
    with pytest.raises(ProofVerificationError):
        verify_proofs(tampered, resolver)
    with pytest.raises(ProofVerificationError):  # another key's promise covers nothing here
        verify_proofs(tampered, resolver, signed_here_by=other.public_key)
    # The caller's promise is taken for its own key: only the equation is skipped ...
    verify_proofs(tampered, resolver, signed_here_by=mine.public_key)
    # ... the method is still resolved (here to another key, so the equation runs and fails)
    # and the proof's purpose still checked.
    moved = {**signed, "proof": {**signed["proof"], "verificationMethod":
                                 other.verification_method}}
    with pytest.raises(ProofVerificationError):
        verify_proofs(moved, resolver, signed_here_by=mine.public_key)
    with pytest.raises(VerificationError):
        verify_proofs(signed, resolver, signed_here_by=mine.public_key,
                      expected_purpose="authentication")


def test_the_ledger_still_verifies_anchors_it_did_not_sign(store) -> None:
    """A forged anchor in the validator's `signed_here` under another key is still checked:
    its method resolves to the auditor's key, not the one the promise was made for."""
    auditor, intruder = did_for(AUDITOR), key_for(INTRUDER)
    credential = sign(unsigned(auditor, 1), key_for(AUDITOR),
                      verification_method=f"{auditor}#{key_for(AUDITOR).public_multibase}")
    forged = an.build_anchor(credential)
    forged = sign(forged, intruder,
                  verification_method=f"{auditor}#{key_for(AUDITOR).public_multibase}")
    validator = store.ledger.validators["anchor"]
    validator.signed_here = {id(forged): (forged, an.document_digest(forged),
                                          intruder.public_key)}
    size = store.ledger.size
    with pytest.raises(an.AnchorSignerError):
        store.ledger.append([Submission("anchor", forged)])
    assert store.ledger.size == size
    validator.signed_here = {}
    with pytest.raises(an.AnchorSignerError):  # and through the store's public path
        store.publish(credential, forged)
    with pytest.raises(CredentialNotFoundError):
        store.get(credential["id"])


def test_publish_status_signs_each_list_once_per_batch(store, monkeypatch) -> None:
    key, issuer = key_for(AUDITOR), did_for(AUDITOR)
    calls: list[str] = []
    publish = store.publish_status_list

    def counting(url: str, k: Ed25519Key, **options: object) -> dict:
        calls.append(url)
        return publish(url, k, **options)

    monkeypatch.setattr(store, "publish_status_list", counting)
    issued = store.issue_many([unsigned(issuer, n) for n in range(25)], key,
                              publish_status=True)
    assert sorted(calls) == sorted({e.status_list_credential for c, _ in issued
                                    for e in status_entries(c)})
    assert len(calls) == 2  # revocation and suspension, not 2 per credential
    listed = store.status_lists(issuer)
    assert all(x["published"] and not x["stale"] and x["allocated"] == 25 for x in listed)
    published = store.status_list_credential(calls[0])
    verify_proofs(published, RegistryResolver(_offline_registry(store), store.ledger.size))
    entry = status_entries(issued[0][0])[0]
    purpose, bits = read_list_credential(published)
    assert purpose == "revocation" and bits.get(entry.status_list_index) is False
    assert canonicalize(store.get(issued[0][0]["id"])) == canonicalize(issued[0][0])


def test_issuance_does_not_re_run_the_signatures_it_just_made(store, monkeypatch) -> None:
    from batterytrace.credentials import data_integrity

    checked: list[bytes] = []
    original = data_integrity._check_signature

    def counting(hash_data: bytes, signature: bytes, public_key: bytes) -> None:
        checked.append(public_key)
        original(hash_data, signature, public_key)

    monkeypatch.setattr(data_integrity, "_check_signature", counting)
    key, issuer = key_for(AUDITOR), did_for(AUDITOR)
    issued = store.issue_many([unsigned(issuer, n) for n in range(5)], key)
    assert checked == []
    store.publish(*_resigned(issued[0][0], key, 50))  # a pair signed elsewhere: checked
    assert checked.count(key.public_key) == 2  # the credential's proof and the anchor's


def _resigned(credential: dict, key: Ed25519Key, n: int) -> tuple[dict, dict]:
    issuer = credential["issuer"]
    doc = {k: v for k, v in credential.items() if k != "proof"}
    doc["id"] = unsigned(issuer, n)["id"]
    signed = sign(doc, key, verification_method=f"{issuer}#{key.public_multibase}")
    return signed, an.sign_anchor(an.build_anchor(signed), key)


@pytest.mark.parametrize("config", [
    {"type": "DataIntegrityProof", "created": "2026-01-01T00:00:00Z", "proofPurpose": "a",
     "@context": ["https://www.w3.org/ns/credentials/v2", "https://x.example/c"]},
    {"proofPurpose": "a", "created": "2026-01-01T00:00:00Z", "type": "DataIntegrityProof",
     "@context": ["https://www.w3.org/ns/credentials/v2", "https://x.example/c"]},
    {"type": "DataIntegrityProof", "@context": [{"@vocab": "https://x.example/"}]},
    {"type": "DataIntegrityProof", "@context": "https://www.w3.org/ns/credentials/v2"},
    {"type": "DataIntegrityProof", "flag": True},
])
def test_remembered_proof_config_digest_is_the_jcs_digest(config: dict) -> None:
    import hashlib

    from batterytrace.credentials import data_integrity

    for _ in range(2):  # computed, then remembered
        assert data_integrity._config_digest(config) == hashlib.sha256(
            canonicalize(config)).digest()


_KEYS = st.sampled_from(["@context", "id", "issuer", "pro", "proofs", "proo", "zeta", "é",
                         "\U0001F600", "\ue000", "type", "a"])
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=3),
    max_leaves=5,
)


@given(document=st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_sign_canonical_equals_sign_then_canonicalize(document):
    """Bulk issuance splices the proof into the document's canonical bytes: the result must be
    exactly `sign` followed by `canonicalize`, whatever members sort before or after "proof"."""
    key = Ed25519Key.from_seed(bytes(32))
    method = f"{key.did_key}#{key.public_multibase}"
    created = "2026-11-23T00:00:00Z"
    signed, canonical = an.sign_canonical(document, key, verification_method=method,
                                          created=created)
    expected = sign(document, key, verification_method=method, created=created)
    assert signed == expected
    assert canonical == canonicalize(expected)
