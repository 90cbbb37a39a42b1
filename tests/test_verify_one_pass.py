"""`ledger verify` reads the entries once and feeds every check from that one read (issue
23). It must name the same fault as the checks made one after the other, each in its own
pass over the entries (the command as it was): the entries against checkpoint.txt, the tree
tables, the stored checkpoints and sequencer, the replay, the derived custody tables.
Each damage below, alone and together with later ones, is judged both ways."""

from __future__ import annotations

import json

import pytest
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.ledger.derived_check import check_state, check_tree, open_view
from batterytrace.ledger.log import Ledger, Submission, verify_ledger
from batterytrace.ledger.log_verify import verify_log
from batterytrace.verifier.bundle_verify import verify_entries
from batterytrace.verifier.trust import TrustedLedger
from custody_factory import registered_ledger, shipping, signed_credential
from test_derived_tamper import built, change_byte, delete_row, home, run, sql

__all__ = ["built", "home"]  # fixtures: a small custody ledger, a copy of it per test


def sequential(home):
    """The first fault of the checks made one after the other, each reading the entries
    itself (the order of `ledger verify` before the one pass): (code, seq or table, row)."""
    try:
        view = open_view(home)
        try:
            note = view.home.read_checkpoint()
            verify_log((body for _, body in view.storage.iter_bodies()), [note],
                       [view.verifier], view.origin)
            mismatches = check_tree(view)
        finally:
            view.close()
        if mismatches:
            return ("LEDGER_DERIVED_MISMATCH", mismatches[0].table, mismatches[0].key)
        verify_ledger(home)
        ledger = Ledger.open(home)
        state: list = []

        def compare(replayed):
            view = open_view(home)
            try:
                state.extend(check_state(view, replayed))
            finally:
                view.close()

        try:
            report = verify_entries(ledger.iter_entry_bytes(),
                                    TrustedLedger(ledger.origin, ledger.verifier.vkey),
                                    [ledger.latest_checkpoint()[1]], on_replayed=compare)
        finally:
            ledger.close()
        report.raise_first()
        if state:
            return ("LEDGER_DERIVED_MISMATCH", state[0].table, state[0].key)
    except BatterytraceError as error:
        return (error.code, error.details.get("seq"), error.message)
    return ("ok",)


def one_pass(home, processes=1):
    """The same, from `ledger verify` (one pass): its exit code and first fault."""
    code, result = run(home, "ledger", "verify", "--processes", str(processes))
    error = result.exception
    if code == 0:
        return code, ("ok",)
    assert isinstance(error, BatterytraceError), result.output
    if error.code == "LEDGER_DERIVED_MISMATCH":
        return code, (error.code, error.details["table"], error.details["row"])
    return code, (error.code, error.details.get("seq"), error.message)


def _entry(home, text):
    [(seq, body)] = [(s, b) for s, b in sql(home, "SELECT seq, body FROM ledger_entries")
                     if text.encode() in b]
    return seq, body


def entry_renamed(home):  # still canonical JSON: its hash, the link after it, the leaf
    seq, body = _entry(home, "ore-1")
    sql(home, "UPDATE ledger_entries SET body = ? WHERE seq = ?",
        (body.replace(b"ore-1", b"ore-7"), seq))


def entry_not_canonical(home):  # malformed: a space
    seq, body = _entry(home, "ore-2")
    sql(home, "UPDATE ledger_entries SET body = ? WHERE seq = ?", (b" " + body, seq))


def entry_prev_changed(home):
    seq, body = _entry(home, "ore-0")
    start = body.index(b'"prev":"') + len(b'"prev":"')
    flipped = b"0" if body[start:start + 1] != b"0" else b"1"
    sql(home, "UPDATE ledger_entries SET body = ? WHERE seq = ?",
        (body[:start] + flipped + body[start + 1:], seq))


def checkpoint_file_older(home):  # the oldest stored note as checkpoint.txt
    [(note,)] = sql(home, "SELECT note FROM ledger_checkpoints ORDER BY size LIMIT 1")
    (home / "checkpoint.txt").write_bytes(bytes(note))


def checkpoint_note_broken(home):
    [(size, note)] = sql(home, "SELECT size, note FROM ledger_checkpoints ORDER BY size DESC "
                               "LIMIT 1")
    sql(home, "UPDATE ledger_checkpoints SET note = ? WHERE size = ?",
        (bytes(note).replace(b"\n", b"\n\n", 1), size))


def sequencer_size(home):
    sql(home, "UPDATE ledger_sequencer SET size = size - 1")


def tiles(home):
    change_byte(home, "ledger_tree_tiles")


def custody(home):
    change_byte(home, "custody_state")


def anchors(home):
    delete_row(home, "credential_anchor")


DAMAGE = [entry_renamed, entry_not_canonical, entry_prev_changed, checkpoint_file_older,
          checkpoint_note_broken, sequencer_size, tiles, custody, anchors]
# Two at once: an earlier check's fault, then a later one's (the earlier must be named).
PAIRS = [(entry_renamed, tiles), (entry_prev_changed, custody), (entry_not_canonical, anchors),
         (tiles, custody), (checkpoint_note_broken, custody), (sequencer_size, anchors),
         (checkpoint_file_older, tiles), (tiles, entry_renamed)]


def test_the_untouched_ledger_passes_both_ways(home):
    assert sequential(home) == ("ok",)
    code, result = run(home, "ledger", "verify", "--json")
    assert code == 0, result.output
    data = json.loads(result.stdout)
    ledger = Ledger.open(home)
    try:
        assert data["size"] == ledger.size and data["sequencerSize"] == ledger.size
        assert data["replay"]["entries"] == ledger.size
    finally:
        ledger.close()


@pytest.mark.parametrize("damage", [[d] for d in DAMAGE] + [list(p) for p in PAIRS],
                         ids=lambda d: "+".join(f.__name__ for f in d))
def test_the_one_pass_names_the_fault_the_separate_passes_name(home, damage):
    for tamper in damage:
        tamper(home)
    expected = sequential(home)
    assert expected != ("ok",)
    code, found = one_pass(home)
    assert code == 1 and found == expected


def test_a_bad_entry_in_a_sound_log_is_named_by_the_replay(tmp_path):
    """Entries appended without the custody rules (the log itself is sound): the replay
    names the first one breaking a rule, as the separate replay does."""
    home = tmp_path / "home"
    led = registered_ledger(home, None, rules=False)
    led.append([Submission("event", signed_credential("miner", [shipping(
        "kolwezi-mine", "miner", "refiner", "nantong-refinery", [("ore-1", 1000)])]))])
    led.sign_checkpoint()
    led.close()
    expected = sequential(home)
    assert expected[0] == "UNKNOWN_LOT"
    assert one_pass(home) == (1, expected)


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__)
def test_with_worker_processes_the_one_pass_names_the_same_fault(home, damage):
    """`--processes 2`: entries checked in a worker, the stored custody rows digested in
    one; a malformed or changed entry, a damaged table, each named as by the separate
    passes."""
    damage(home)
    expected = sequential(home)
    assert one_pass(home, processes=2) == (1, expected)
