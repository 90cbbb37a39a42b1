"""Ledger entries: canonical bytes, hash, leaf, and a strict parser."""

import hashlib
import json

import pytest
from batterytrace.credentials.canonical import canonicalize
from batterytrace.ledger.entry import (
    GENESIS_PREV,
    Entry,
    EntryHead,
    envelope_tail_template,
    known_kinds,
    register_kind,
)
from batterytrace.ledger.errors import EntryFormatError, UnknownEntryKindError
from hypothesis import given
from hypothesis import strategies as st

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


_json_documents = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
                  st.text(max_size=20)),
        lambda children: st.one_of(st.lists(children, max_size=4),
                                   st.dictionaries(st.text(max_size=8), children, max_size=4)),
        max_leaves=20,
    ),
    max_size=6,
)


@given(
    seq=st.integers(1, 2**53 - 1),
    prev=st.binary(min_size=32, max_size=32).map(bytes.hex).filter(lambda h: h != GENESIS_PREV),
    kind=st.sampled_from(["event", "registry", "settings", "anchor"]),
    document=_json_documents,
)
def test_build_splices_exactly_the_canonical_entry(seq, prev, kind, document):
    # Entry.build writes the envelope from a template around the document's bytes: it must
    # be byte-identical to canonicalizing the whole entry, and parse back to the same entry.
    entry = Entry.build(seq, prev, kind, document, RECEIVED)
    assert entry.canonical == canonicalize(entry.to_json())
    assert Entry.parse(entry.canonical) == entry
    given_bytes = Entry.build(seq, prev, kind, document, RECEIVED,
                              document_bytes=canonicalize(document))
    assert given_bytes.canonical == entry.canonical


@given(
    seq=st.integers(1, 2**53 - 1),
    prev=st.binary(min_size=32, max_size=32).map(bytes.hex).filter(lambda h: h != GENESIS_PREV),
    kind=st.sampled_from(["event", "registry", "settings", "anchor"]),
    document=_json_documents,
)
def test_entry_head_made_before_the_lock_gives_the_same_entry(seq, prev, kind, document):
    # The appender hashes the position-independent head before the sequencer lock and only
    # the tail under it: bytes, entry hash and leaf hash are those of the whole entry.
    entry = Entry.build(seq, prev, kind, document, RECEIVED)
    head = EntryHead(canonicalize(document), kind)
    body, entry_hash, leaf_hash = head.finish(
        envelope_tail_template(RECEIVED) % (prev.encode(), seq))
    assert (body, entry_hash, leaf_hash) == (entry.canonical, entry.hash, entry.leaf_hash)
    assert head.finish(envelope_tail_template(RECEIVED) % (prev.encode(), seq))[0] == body


@pytest.mark.parametrize(
    "overrides",
    [
        {"seq": -1}, {"seq": True}, {"seq": 2**53}, {"prev": PREV.upper()},
        {"prev": GENESIS_PREV}, {"kind": "genesis"}, {"received": "yesterday"},
        {"received": 'x"'}, {"document": [1]},
    ],
)
def test_build_refuses_what_the_parser_refuses(overrides):
    fields = _entry(**overrides)
    with pytest.raises(EntryFormatError):
        Entry.build(fields["seq"], fields["prev"], fields["kind"], fields["document"],
                    fields["received"])
