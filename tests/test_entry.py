"""Ledger entries: canonical bytes, hash, leaf, and a strict parser."""

import hashlib
import json

import pytest
from batterytrace.credentials.canonical import canonicalize
from batterytrace.ledger.entry import (
    GENESIS_PREV,
    Entry,
    known_kinds,
    register_kind,
)
from batterytrace.ledger.errors import EntryFormatError, UnknownEntryKindError

PREV = "ab" * 32
RECEIVED = "2026-01-15T08:30:00.123Z"


def _entry(**overrides):
    obj = {"v": 1, "seq": 3, "prev": PREV, "kind": "event", "received": RECEIVED,
           "document": {"b": 1, "a": "é"}}
    obj.update(overrides)
    return obj


def test_exact_bytes_hash_and_leaf():
    entry = Entry.build(3, PREV, "event", {"b": 1, "a": "é"}, RECEIVED)
    expected = (
        '{"document":{"a":"é","b":1},"kind":"event","prev":"' + PREV + '","received":"'
        + RECEIVED + '","seq":3,"v":1}'
    ).encode()
    assert entry.canonical == expected
    assert entry.hash == hashlib.sha256(expected).digest()
    assert entry.leaf_hash == hashlib.sha256(b"\x00" + expected).digest()
    assert Entry.parse(expected) == entry
    assert entry.to_json() == json.loads(expected)


def test_received_defaults_to_utc_z_time():
    entry = Entry.build(1, PREV, "event", {})
    assert entry.received.endswith("Z") and len(entry.received) == len(RECEIVED)


@pytest.mark.parametrize(
    "overrides",
    [
        {"v": 2},
        {"v": True},
        {"seq": -1},
        {"prev": PREV.upper()},
        {"prev": PREV[:-2]},
        {"prev": GENESIS_PREV},  # only entry 0 has the zero prev
        {"seq": 0, "prev": GENESIS_PREV, "kind": "event"},  # entry 0 is genesis
        {"kind": "genesis"},  # and only entry 0
        {"received": "2026-01-15T08:30:00+00:00"},
        {"received": "yesterday"},
        {"document": [1]},
        {"extra": 1},
    ],
)
def test_parser_rejects_malformed_entries(overrides):
    with pytest.raises(EntryFormatError):
        Entry.parse(canonicalize(_entry(**overrides)))


def test_parser_rejects_unknown_kind_and_missing_member():
    with pytest.raises(UnknownEntryKindError):
        Entry.parse(canonicalize(_entry(kind="gossip")))
    obj = _entry()
    del obj["received"]
    with pytest.raises(EntryFormatError, match="missing"):
        Entry.parse(canonicalize(obj))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b"\xff\xfe",
        json.dumps(_entry()).encode(),  # valid JSON, not canonical (spaces, order)
        canonicalize(_entry()) + b" ",
        canonicalize(_entry()).replace(b'"seq":3', b'"seq":3,"seq":3'),  # duplicate member
    ],
)
def test_parser_requires_canonical_json(data):
    with pytest.raises(EntryFormatError):
        Entry.parse(data)


def test_kind_registry_is_open():
    assert {"genesis", "settings", "registry", "event", "anchor"} <= known_kinds()
    with pytest.raises(UnknownEntryKindError):
        Entry.build(1, PREV, "recall-notice", {})
    register_kind("recall-notice")
    assert Entry.build(1, PREV, "recall-notice", {}).kind == "recall-notice"
    with pytest.raises(EntryFormatError):
        register_kind("Bad Kind")
