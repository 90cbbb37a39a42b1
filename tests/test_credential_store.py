"""The credential store: off-log credentials with their anchors, random status indexes, list
publication under the ledger's URL, status changes flipping bits, bad input writing nothing."""

from __future__ import annotations

import pytest
from batterytrace.credentials.data_integrity import sign, verify_proofs
from batterytrace.credentials.did import OfflineResolver
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.keys import Ed25519Key, write_key_file
from batterytrace.credentials.status_list import read_list_credential, status_entries
from batterytrace.ledger import anchors as an
from batterytrace.ledger.anchor_store import read_record
from batterytrace.ledger.credential_store import (
    CredentialNotFoundError,
    CredentialStore,
    IssuerKeyError,
    StatusListNotFoundError,
)
from batterytrace.ledger.log import Ledger, Submission
from custody_factory import ADMIN_KEY, PUBLIC_URL, did_for, key_for, participant_doc, sign_admin

AUDITOR = "auditor"


def unsigned(issuer: str, n: int) -> dict:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://www.w3.org/ns/credentials/examples/v2"],  # maps the type
        "id": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        "type": ["VerifiableCredential", "ExampleCredential"],
        "issuer": issuer,
        "credentialSubject": {"id": f"https://id.example.com/lots/lot-{n % 3}", "n": n},
    }


@pytest.fixture
def store(tmp_path):
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, None, "ledger.example/test", PUBLIC_URL)
    s = CredentialStore(led)
    led.append([Submission("registry", sign_admin(participant_doc(AUDITOR, "Auditor Inc",
                                                                  ["auditor"], "CA")))])
    yield s
    led.close()


def test_issue_allocates_random_entries_in_separate_lists_and_anchors(store) -> None:
    key = key_for(AUDITOR)
    signed, result = store.issue(unsigned(did_for(AUDITOR), 1), key)
    entries = status_entries(signed)
    assert [e.status_purpose for e in entries] == ["revocation", "suspension"]
    assert entries[0].status_list_credential == f"{PUBLIC_URL}/status-lists/auditor/revocation/0"
    assert entries[1].status_list_credential == f"{PUBLIC_URL}/status-lists/auditor/suspension/0"
    entry = store.ledger.entry(result.seq)
    assert entry.kind == "anchor"
    assert entry.document["credentialDigest"] == an.credential_digest(signed)
    assert "credentialSubject" not in entry.document  # content stays off the log
    assert store.get(signed["id"]) == signed
    assert store.record(signed["id"])["anchoredAt"] == result.seq


def test_bulk_issuance_indexes_never_repeat_and_find_by_subject(store) -> None:
    key = key_for(AUDITOR)
    issued = store.issue_many([unsigned(did_for(AUDITOR), n) for n in range(30)], key)
    indexes = [status_entries(c)[0].status_list_index for c, _ in issued]
    assert len(set(indexes)) == 30 and indexes != sorted(indexes)
    seqs = [r.seq for _, r in issued]
    assert seqs == list(range(seqs[0], seqs[0] + 30))
    found = store.find("https://id.example.com/lots/lot-1")
    assert [c["credentialSubject"]["n"] for c in found] == list(range(1, 30, 3))
    assert store.find("https://id.example.com/lots/none") == []


def test_did_key_issuer_gets_a_hashed_list_name(store) -> None:
    key = Ed25519Key.from_seed(b"\x05" * 32)
    signed, _ = store.issue(unsigned(key.did_key, 1), key, purposes=("revocation",))
    [entry] = status_entries(signed)
    slug = entry.status_list_credential.split("/")[-3]
    assert len(slug) == 16 and slug != "auditor"


def test_status_changes_flip_bits_and_republish_signed_lists(store) -> None:
    key = key_for(AUDITOR)
    signed, _ = store.issue(unsigned(did_for(AUDITOR), 1), key)
    revocation, suspension = status_entries(signed)
    for url in (revocation.status_list_credential, suspension.status_list_credential):
        store.publish_status_list(url, key)

    def bit(entry) -> bool:
        lst = store.status_list_credential(entry.status_list_credential)
        verify_proofs(lst, _registry_resolver(store))
        return read_list_credential(lst)[1].get(entry.status_list_index)

    assert not bit(suspension)
    store.change_status(signed["id"], an.SUSPENSION, key)
    assert bit(suspension) and not bit(revocation)
    store.change_status(signed["id"], an.REINSTATEMENT, key)
    assert not bit(suspension)
    out = store.change_status(signed["id"], an.REVOCATION, key)
    assert bit(revocation) and out["statusLists"] == [revocation.status_list_credential]
    with pytest.raises(an.AnchorStateError):
        store.change_status(signed["id"], an.REINSTATEMENT, key)
    assert read_record(store.ledger, signed["id"]).revoked_at() == out["seq"]


def _registry_resolver(store):
    from batterytrace.ledger.custody_store import StoredRegistry
    from batterytrace.ledger.registry import RegistryResolver

    connection = store.ledger.storage.engine.connect()
    registry = StoredRegistry(connection, store.ledger.admin_did, store.ledger.public_url)
    return RegistryResolver(registry, store.ledger.size)


def test_publish_checks_everything_and_writes_nothing_on_bad_input(store) -> None:
    key = key_for(AUDITOR)
    did = did_for(AUDITOR)
    good = sign(unsigned(did, 1), key, verification_method=f"{did}#{key.public_multibase}")
    size = store.ledger.size
    tampered = {**good, "credentialSubject": {"id": "https://x.example/1"}}
    bad_cases = [
        (tampered, an.sign_anchor(an.build_anchor(good), key)),  # digest mismatch
        ({**good, "@context": []}, an.sign_anchor(an.build_anchor(good), key)),  # malformed
        (good, an.sign_anchor(an.build_anchor(good, an.REVOCATION), key)),  # not issuance
    ]
    # A credential signed by someone else, anchored by the issuer: the hook rejects it.
    other = Ed25519Key.from_seed(b"\x06" * 32)
    foreign = sign(unsigned(did, 2), other)
    bad_cases.append((foreign, an.sign_anchor(an.build_anchor(foreign), key)))
    for credential, anchor in bad_cases:
        with pytest.raises(BatterytraceError):
            store.publish(credential, anchor)
        assert store.ledger.size == size
    with pytest.raises(CredentialNotFoundError):
        store.get(good["id"])
    with pytest.raises(CredentialNotFoundError):
        store.get(foreign["id"])
    result = store.publish(good, an.sign_anchor(an.build_anchor(good), key))
    assert store.get(good["id"]) == good and result.seq == size


def test_wrong_keys_and_missing_lists(store) -> None:
    with pytest.raises(IssuerKeyError):
        store.issue(unsigned(did_for(AUDITOR), 1), key_for("someone-else"))
    with pytest.raises(StatusListNotFoundError) as caught:
        store.status_list_credential(f"{PUBLIC_URL}/status-lists/auditor/revocation/9")
    assert caught.value.code == "STATUS_LIST_NOT_FOUND"
    url = store.create_status_list(did_for(AUDITOR), "revocation")
    with pytest.raises(StatusListNotFoundError):
        store.status_list_credential(url)  # created but never published
    [info] = store.status_lists(did_for(AUDITOR))
    assert info["url"] == url and info["stale"] and not info["published"]
    with pytest.raises(BatterytraceError):
        store.create_status_list(did_for(AUDITOR), "other")


def test_lists_roll_over_when_half_full(store) -> None:
    from batterytrace.credentials.status_list import MIN_BITS

    url = store.create_status_list(did_for(AUDITOR), "suspension")
    entries = store.allocate(did_for(AUDITOR), "suspension", MIN_BITS // 2 + 3)
    urls = {e.status_list_credential for e in entries}
    assert url in urls and len(urls) == 2
    assert sum(e.status_list_credential == url for e in entries) == MIN_BITS // 2


def test_resolver_is_offline_for_did_key(store) -> None:
    key = Ed25519Key.from_seed(b"\x05" * 32)
    signed, _ = store.issue(unsigned(key.did_key, 3), key, purposes=())
    assert "credentialStatus" not in signed
    assert verify_proofs(signed, OfflineResolver())[0].controller == key.did_key


def test_a_reader_reads_what_the_store_wrote_and_leaves_the_validators_alone(store) -> None:
    signed, _ = store.issue(unsigned(did_for(AUDITOR), 7), key_for(AUDITOR))
    before = dict(store.ledger.validators)
    reader = CredentialStore.reader(store.ledger)
    assert store.ledger.validators == before  # nothing installed or replaced
    assert reader.get(signed["id"]) == signed
    assert [c["id"] for c in reader.find("https://id.example.com/lots/lot-1")] == [signed["id"]]
