"""Replayed state spilled to a temporary SQLite file (`ledger/spill.py`) against the same state
in memory: the same verdicts and the same state, on a ledger with every event kind, registry
entries and credential anchors (issuance, revocation, suspension). The spill threshold is
forced to one row, so the state goes to the file after every entry and every lookup after it
reads the file back. (What it saves in memory is measured by `make bench`, group `audit`.)"""

from __future__ import annotations

import io

import pytest
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.custody_store import encode_key
from batterytrace.ledger.derived_check import (
    _compare,
    _compare_rows,
    check_state,
    expected_anchor_rows,
    iter_custody_rows,
)
from batterytrace.ledger.engine import Replay
from batterytrace.ledger.pool import dumps_each, loads
from batterytrace.ledger.replay import replay_entries
from batterytrace.ledger.spill import WrittenKeys, key_text, text_key
from batterytrace.verifier.bundle import Header
from batterytrace.verifier.bundle_replay import BundleReplay
from batterytrace.verifier.bundle_verify import verify_bundle, verify_entries
from batterytrace.verifier.report import Report
from hypothesis import given
from hypothesis import strategies as st
from test_bundle_credentials import world  # noqa: F401 (the module fixture: the ledger used)

EVENT_TYPES = {"ObjectEvent", "AggregationEvent", "TransformationEvent", "TransactionEvent",
               "AssociationEvent"}


def _bundle(led, **scope) -> list[bytes]:
    buf = io.BytesIO()
    export_bundle(led, buf, **scope)
    return buf.getvalue().splitlines(keepends=True)


def _both(lines: list[bytes], trust, **options) -> tuple[dict, dict]:
    memory = verify_bundle(lines, trust, spill_rows=None, **options).to_json()
    spilled = verify_bundle(lines, trust, spill_rows=1, **options).to_json()
    return memory, spilled


def test_the_ledger_holds_every_kind(world):  # noqa: F811
    led = world["ledger"]
    kinds = {e.kind for e in led.iter_entries()}
    assert {"genesis", "registry", "anchor", "event"} <= kinds
    types = {s["type"][0] for e in led.iter_entries() if e.kind == "event"
             for s in e.document["credentialSubject"]}
    assert types == EVENT_TYPES


@pytest.mark.parametrize("scope", ["all", "item", "lot"])
def test_bundle_verdicts_are_the_same_spilled(world, scope):  # noqa: F811
    from test_bundle_credentials import bundle

    led = world["ledger"]
    if scope == "all":
        lines = _bundle(led, all_entries=True)
    elif scope == "item":  # with credentials judged at their first use, some failing
        lines = bundle(world, world["irma"], world["revoked_before_use"],
                       world["revoked_after_use"], world["stranger"])
    else:
        lines = _bundle(led, lot="https://id.example.com/lots/recovered-co-2031-001")
    memory, spilled = _both(lines, world["trust"])
    assert memory == spilled
    assert memory["replayed"] > 20
    if scope == "item":  # some credentials pass, some fail
        assert not memory["ok"] and memory["credentials_verified"] > 0


def test_bundle_failures_are_the_same_spilled(world):  # noqa: F811
    led = world["ledger"]
    lines = _bundle(led, all_entries=True)
    # An event's quantity raised: its signature fails (the line is re-serialized, so the
    # verifying process checks it itself), then the chain breaks at it.
    target = next(i for i, raw in enumerate(lines) if b'"quantity":' in raw)
    tampered = [*lines[:target], lines[target].replace(b'"quantity":', b'"quantity":1', 1),
                *lines[target + 1:]]
    memory, spilled = _both(tampered, world["trust"])
    assert memory == spilled and not memory["ok"]


def test_verify_entries_is_the_same_spilled(world):  # noqa: F811
    led = world["ledger"]
    ledger = world["trust"].ledgers[0]
    note = led.latest_checkpoint()[1]
    memory = verify_entries(led.iter_entry_bytes(), ledger, [note], spill_rows=None)
    spilled = verify_entries(led.iter_entry_bytes(), ledger, [note], spill_rows=1)
    assert memory.ok and memory.to_json() == spilled.to_json()


def test_replayed_state_is_the_same_spilled(world):  # noqa: F811
    led = world["ledger"]
    memory = replay_entries(led.iter_entries(), replay=Replay())
    spilled = replay_entries(led.iter_entries(), replay=Replay(spill_rows=1))
    try:
        assert spilled.spill is not None and spilled.spill.rows_written > 100
        assert dict(iter_custody_rows(spilled)) == dict(iter_custody_rows(memory))
        assert expected_anchor_rows(spilled) == expected_anchor_rows(memory)
        assert len(expected_anchor_rows(memory)) > 10
        # the derived tables against either replay: the same (empty) list of differences
        assert check_state(led, spilled) == check_state(led, memory) == []
    finally:
        spilled.close()


def test_first_uses_are_the_same_spilled(world):  # noqa: F811
    led = world["ledger"]
    header = Header(1, led.origin, "all", None, b"")
    replays = [BundleReplay(header, None, Report(origin=led.origin, scope="all"),
                            led.verifier.vkey, spill_rows=rows) for rows in (None, 1)]
    for replay in replays:
        assert replay.verify_bodies(led.iter_entry_bytes(), [led.latest_checkpoint()[1]],
                                    led.verifier)
        replay.finish()
    memory, spilled = (sorted(replay.uses.rows("first_use")) for replay in replays)
    assert memory == spilled and len(memory) > 15
    assert all(spilled_replay_use == replays[0].first_use(subject)
               for subject, spilled_replay_use in spilled)
    for replay in replays:
        replay.close()


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)
_rows = st.dictionaries(st.tuples(st.sampled_from(["item", "lot", "holding"]), _text), _text,
                        max_size=8)


@given(_rows, _rows, st.booleans(), st.booleans())
def test_the_streamed_comparison_names_the_row_the_in_memory_one_names(
        expected, found, expected_sorted, found_sorted):
    """In step when both sides are ordered, joined in a file otherwise: the same answer."""
    def side(rows, ordered):
        return lambda: sorted(rows.items()) if ordered else list(rows.items())

    assert _compare_rows("t", side(expected, expected_sorted), side(found, found_sorted)) == (
        _compare("t", expected, found))


@given(st.one_of(_text, st.integers(), st.tuples(_text, _text), st.tuples(_text)))
def test_state_keys_spell_back(key):
    assert text_key(key_text(key)) == key


_plain = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                        blacklist_characters="\x1f"), max_size=6)


@given(st.one_of(st.lists(_plain, unique=True), st.lists(st.integers(), unique=True),
                 st.lists(st.tuples(_plain, _plain), unique=True),
                 st.lists(st.tuples(_plain), unique=True)))
def test_a_tables_keys_come_back_from_the_file_in_the_order_of_the_stored_rows(keys):
    """A spilled table is read back ordered by `key_text`; the stored custody_state rows
    are ordered by `encode_key`: the same order, so the two are compared in step."""
    assert sorted(keys, key=key_text) == sorted(keys, key=encode_key)


@given(st.lists(st.tuples(st.sampled_from(["lot", "holding"]),
                          st.one_of(_text, st.integers(), st.tuples(_text, _text))),
                unique=True, max_size=50))
def test_the_written_keys_filter_never_forgets_a_key(keys):
    """A key written to the file is always looked up there (no false negatives)."""
    written = WrittenKeys()
    for table, key in keys:
        written.add(table, key)
    assert all(written.may_hold(table, key) for table, key in keys)


def test_the_written_keys_filter_lets_most_new_keys_skip_the_file():
    written = WrittenKeys()
    for n in range(20_000):
        written.add("lot", f"urn:lot:{n}")
    assert sum(written.may_hold("lot", f"urn:lot:new-{n}") for n in range(20_000)) < 200


@given(st.lists(st.one_of(_text, st.integers(), st.decimals(allow_nan=False),
                          st.tuples(_text, st.decimals(allow_nan=False, allow_infinity=False))),
                max_size=8))
def test_values_pickled_together_each_read_back_alone(values):
    assert [loads(data) for data in dumps_each(values)] == values
