"""Bitstring Status List v1.0: the W3C vectors byte for byte, known answers, entries, errors."""

from __future__ import annotations

import base64
import gzip
import random

import pytest
from batterytrace.credentials.errors import RangeError
from batterytrace.credentials.status_list import (
    MIN_BITS,
    StatusEntry,
    StatusEntryError,
    StatusList,
    StatusListEncodingError,
    StatusListFullError,
    StatusListLengthError,
    StatusVerificationError,
    allocate_index,
    build_status_list_credential,
    decode_list,
    encode_list,
    read_list_credential,
    status_bit,
    status_entries,
    status_entry,
)
from conftest import W3C, load_json
from hypothesis import given
from hypothesis import strategies as st

BSL = W3C / "bitstring-status-list"
VECTOR_FILES = sorted(BSL.glob("bsl-rec-example-status-list-vc-*.json"))


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name)
def test_w3c_encoded_list_decodes_and_reencodes_byte_for_byte(path):
    encoded = load_json(path)["credentialSubject"]["encodedList"]
    status_list = StatusList.decode(encoded)
    assert status_list.length == MIN_BITS
    assert status_list.set_indexes() == []
    assert status_list.encode() == encoded


def test_vectors_were_found():
    assert len(VECTOR_FILES) == 3


def test_known_answer_index_94567_is_byte_11820_mask_0x01():
    status_list = StatusList()
    status_list.set(94567)
    raw = status_list.to_bytes()
    assert raw[11820] == 0x01
    assert sum(1 for b in raw if b) == 1
    assert status_list.get(94567) and not status_list.get(94566)


@pytest.mark.parametrize(
    ("index", "byte", "mask"),
    [(0, 0, 0x80), (7, 0, 0x01), (8, 1, 0x80), (MIN_BITS - 1, MIN_BITS // 8 - 1, 0x01)],
)
def test_most_significant_bit_first(index, byte, mask):
    status_list = StatusList()
    status_list.set(index)
    assert status_list.to_bytes()[byte] == mask
    roundtrip = StatusList.decode(status_list.encode())
    assert roundtrip.get(index) and roundtrip.set_indexes() == [index]


def test_set_clear_read_first_last_and_random():
    rng = random.Random(5)
    indexes = [0, MIN_BITS - 1, *rng.sample(range(1, MIN_BITS - 1), 20)]
    status_list = StatusList()
    for index in indexes:
        status_list.set(index)
    decoded = StatusList.decode(status_list.encode())
    assert decoded == status_list
    assert decoded.set_indexes() == sorted(indexes)
    for index in indexes[::2]:
        decoded.clear(index)
    assert decoded.set_indexes() == sorted(indexes[1::2])
    assert not decoded.get(0) and decoded.get(MIN_BITS - 1) == (MIN_BITS - 1 in indexes[1::2])


@given(st.sets(st.integers(0, MIN_BITS - 1), max_size=30))
def test_encode_decode_roundtrip(indexes):
    status_list = StatusList()
    for index in indexes:
        status_list.set(index)
    assert StatusList.decode(status_list.encode()).set_indexes() == sorted(indexes)


def test_encoding_matches_the_gzip_module_semantics():
    raw = bytes(MIN_BITS // 8)
    encoded = encode_list(raw)
    packed = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
    assert gzip.decompress(packed) == raw
    assert "=" not in encoded and encoded[0] == "u"


@pytest.mark.parametrize("index", [-1, MIN_BITS])
def test_out_of_range_index(index):
    with pytest.raises(RangeError):
        StatusList().get(index)


def test_minimum_length():
    with pytest.raises(StatusListLengthError):
        StatusList(MIN_BITS - 8)
    short = encode_list(bytes(1024))
    with pytest.raises(StatusListLengthError) as info:
        StatusList.decode(short)
    assert info.value.code == "STATUS_LIST_LENGTH_ERROR"


@pytest.mark.parametrize(
    "encoded",
    [
        "H4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA",  # no "u"
        "u!!!!",
        "u" + base64.urlsafe_b64encode(b"not gzip at all").decode().rstrip("="),
        "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQ",  # truncated
        "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA==",
        42,
    ],
)
def test_malformed_encoded_list_is_typed(encoded):
    with pytest.raises(StatusListEncodingError) as info:
        decode_list(encoded)
    assert isinstance(info.value, StatusVerificationError)


def test_gzip_bomb_is_refused(monkeypatch):
    from batterytrace.credentials import status_list

    # a lower ceiling keeps the test fast; the mechanism is the same as at 2^27 bits
    monkeypatch.setattr(status_list, "MAX_BITS", 4 * MIN_BITS)
    assert decode_list(encode_list(bytes(4 * MIN_BITS // 8)))
    bomb = encode_list(bytes(4 * MIN_BITS // 8 + 1))  # one byte past the ceiling
    with pytest.raises(StatusListEncodingError):
        decode_list(bomb)


def test_allocate_index_never_reuses():
    rng = random.Random(1)
    length = 64
    taken: set[int] = set()
    for _ in range(length):
        index = allocate_index(length, taken, rng)
        assert 0 <= index < length and index not in taken
        taken.add(index)
    with pytest.raises(StatusListFullError):
        allocate_index(length, taken, rng)


def test_allocate_index_is_random_not_sequential():
    picks = [allocate_index(MIN_BITS, set()) for _ in range(8)]
    assert len(set(picks)) > 1


def test_status_entry_shape_and_parse():
    entry = status_entry("suspension", 94567, "https://ledger.example/status/2")
    assert entry == {
        "type": "BitstringStatusListEntry",
        "statusPurpose": "suspension",
        "statusListIndex": "94567",
        "statusListCredential": "https://ledger.example/status/2",
    }
    assert StatusEntry.from_json(entry) == StatusEntry(
        "suspension", 94567, "https://ledger.example/status/2"
    )
    revocable = load_json(BSL / "bsl-rec-example-revocable-vc-unsigned.json")
    (parsed,) = status_entries(revocable)
    assert parsed.status_list_index == 94567 and parsed.status_purpose == "revocation"


@pytest.mark.parametrize(
    "change",
    [
        {"type": "StatusList2021Entry"},
        {"statusPurpose": "message"},
        {"statusListIndex": 5},
        {"statusListIndex": "-5"},
        {"statusListIndex": "05"},
        {"statusListIndex": "5.0"},
        {"statusListCredential": None},
        {"statusSize": 2},
    ],
)
def test_malformed_entries(change):
    entry = {**status_entry("revocation", 5, "https://l.example/s/1"), **change}
    with pytest.raises(StatusEntryError):
        StatusEntry.from_json(entry)


def _list_credential(purpose: str = "revocation", *indexes: int) -> dict:
    status_list = StatusList()
    for index in indexes:
        status_list.set(index)
    return build_status_list_credential(
        list_url="https://ledger.example/status/1",
        issuer="did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
        purpose=purpose,
        status_list=status_list,
        valid_from="2025-01-01T00:00:00Z",
    )


def test_build_list_credential_matches_w3c_shape():
    built = _list_credential()
    example = load_json(BSL / "bsl-rec-example-status-list-vc-unsigned.json")
    assert built["type"] == example["type"]
    assert built["credentialSubject"]["type"] == "BitstringStatusList"
    assert built["credentialSubject"]["encodedList"] == example["credentialSubject"]["encodedList"]
    assert built["credentialSubject"]["id"] == "https://ledger.example/status/1#list"
    assert read_list_credential(built)[0] == "revocation"


def test_status_bit_reads_the_entry_and_checks_purpose_and_id():
    credential = _list_credential("revocation", 77)
    url = "https://ledger.example/status/1"
    assert status_bit(StatusEntry("revocation", 77, url), credential) is True
    assert status_bit(StatusEntry("revocation", 78, url), credential) is False
    with pytest.raises(StatusVerificationError):
        status_bit(StatusEntry("suspension", 77, url), credential)
    with pytest.raises(StatusVerificationError):
        status_bit(StatusEntry("revocation", 77, url + "x"), credential)
    with pytest.raises(RangeError):
        status_bit(StatusEntry("revocation", MIN_BITS, url), credential)


def test_error_codes():
    from batterytrace.credentials.status_list import StatusRetrievalError

    assert StatusRetrievalError.code == "STATUS_RETRIEVAL_ERROR"
    assert StatusVerificationError.code == "STATUS_VERIFICATION_ERROR"
    assert StatusListLengthError.code == "STATUS_LIST_LENGTH_ERROR"
    assert StatusVerificationError.exit_code == 1
