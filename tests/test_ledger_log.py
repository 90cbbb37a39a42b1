"""The stored log: init/open, atomic batches, validators, settings, checkpoints, proofs."""

import itertools
import shutil
import sqlite3

import pytest
from batterytrace.credentials.errors import InputError
from batterytrace.ledger import merkle
from batterytrace.ledger.checkpoint import open_checkpoint
from batterytrace.ledger.errors import (
    CheckpointNotSignedError,
    EntryFormatError,
    EntryNotFoundError,
    LedgerExistsError,
    LedgerForkError,
    LedgerNotFoundError,
    UnknownEntryKindError,
)
from batterytrace.ledger.log import Ledger, Submission, verify_ledger
from batterytrace.ledger.tlog_proof import verify_tlog_proof

ORIGIN = "ledger.test/log"


@pytest.fixture
def ledger(tmp_path, database_url):
    led = Ledger.init(tmp_path / "home", database_url, ORIGIN, "https://ledger.test")
    yield led
    led.close()


def _events(n, start=0):
    return [Submission("event", {"n": i}) for i in range(start, start + n)]


def test_init_writes_a_signed_genesis_and_checkpoint(ledger, tmp_path):
    genesis = ledger.entry(0)
    assert genesis.kind == "genesis" and genesis.document["type"] == "LedgerGenesis"
    assert genesis.document["origin"] == ORIGIN
    assert genesis.document["publicUrl"] == "https://ledger.test"
    assert genesis.document["logKey"] == ledger.verifier.vkey
    assert genesis.document["adminKey"].startswith("did:key:z6Mk")
    assert genesis.document["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    note = (tmp_path / "home" / "checkpoint.txt").read_bytes()
    cp = open_checkpoint(note, [ledger.verifier], ORIGIN)
    assert cp.size == 1 and cp.root == merkle.root_hash([genesis.leaf_hash])
    info = ledger.info()
    assert info["size"] == 1 and info["verifierKey"] == ledger.verifier.vkey
    mode = (tmp_path / "home" / "keys" / "log.json").stat().st_mode & 0o777
    assert mode == 0o600
    with pytest.raises(LedgerExistsError):
        Ledger.init(tmp_path / "home", ledger.storage.url, ORIGIN)
    other = tmp_path / "other"  # a second home on the same database is refused as well
    with pytest.raises(LedgerExistsError):
        Ledger.init(other, ledger.storage.url, ORIGIN)


def test_open_without_ledger(tmp_path):
    with pytest.raises(LedgerNotFoundError):
        Ledger.open(tmp_path / "nothing")


def test_append_chains_entries_and_signs_each_batch(ledger, tmp_path):
    results = ledger.append(_events(3))
    assert [r.seq for r in results] == [1, 2, 3] and not any(r.duplicate for r in results)
    assert ledger.append(_events(2, 3))[-1].seq == 5
    entries = list(ledger.iter_entries())
    assert [e.seq for e in entries] == list(range(6))
    for before, after in itertools.pairwise(entries):
        assert after.prev == before.hash.hex()
    assert results[1].entry_hash == entries[2].hash
    cp, note = ledger.latest_checkpoint()
    assert cp.size == 6 and cp.root == merkle.root_hash([e.leaf_hash for e in entries])
    assert (tmp_path / "home" / "checkpoint.txt").read_bytes() == note
    assert ledger.storage.count_checkpoints() == 3
    assert [e.seq for e in ledger.iter_entries(2, 4)] == [2, 3]
    assert ledger.append([]) == []


def test_proofs_against_signed_checkpoints(ledger):
    for i in range(1, 12):
        ledger.append(_events(i))
    leaves = [e.leaf_hash for e in ledger.iter_entries()]
    n = len(leaves)
    for seq in (0, 1, n // 2, n - 1):
        proof = ledger.tlog_proof(seq)
        assert verify_tlog_proof(proof, leaves[seq], [ledger.verifier], ORIGIN).size == n
    signed_size = 1 + 1 + 2  # after the second batch
    proof = ledger.tlog_proof(2, size=signed_size)
    assert verify_tlog_proof(proof, leaves[2], [ledger.verifier], ORIGIN).size == signed_size
    with pytest.raises(CheckpointNotSignedError):
        ledger.tlog_proof(2, size=signed_size + 1)
    for old in (1, 5, 30, n):
        proof = ledger.consistency_proof(old, n)
        merkle.verify_consistency(old, n, ledger.root(old), ledger.root(n), proof)
        assert proof == merkle.consistency_proof(leaves, old)
    with pytest.raises(EntryNotFoundError):
        ledger.inclusion_proof(n, n)
    with pytest.raises(EntryNotFoundError):
        ledger.consistency_proof(1, n + 1)
    with pytest.raises(EntryNotFoundError):
        ledger.entry(n)


def test_submissions_are_checked(ledger):
    with pytest.raises(UnknownEntryKindError):
        ledger.append([Submission("gossip", {})])
    with pytest.raises(EntryFormatError):
        ledger.append([Submission("genesis", {})])
    with pytest.raises(InputError):
        ledger.append([Submission("event", {"n": 2**60})])  # not canonicalizable
    with pytest.raises(EntryFormatError):
        ledger.append([Submission("event", ["not", "an", "object"])])
    # A bad document after good ones: the entries already spliced are not written either.
    with pytest.raises(InputError):
        ledger.append([Submission("event", {"n": 1}), Submission("event", {"x": float("nan")})])
    assert ledger.size == 1
    assert ledger.append([Submission("event", {"n": 1})])[0].seq == 1  # the chain goes on


class Rejecting:
    def validate(self, session, first_seq, submissions):
        from batterytrace.credentials.errors import VerificationError

        if any(s.document.get("bad") for s in submissions):
            raise VerificationError("rejected")
        return [None] * len(submissions)


class Deduping:
    """Dedupes by document["id"], remembering ids through the write session's entries."""

    def __init__(self):
        self.calls = []

    def validate(self, session, first_seq, submissions):
        import json

        from batterytrace.ledger.storage import ENTRIES
        from sqlalchemy import select

        self.calls.append((first_seq, len(submissions)))
        seen = {}
        rows = session.connection().execute(
            select(ENTRIES.c.seq, ENTRIES.c.body).where(ENTRIES.c.kind == "registry"))
        for seq, body in rows:
            seen[json.loads(body)["document"]["id"]] = seq
        return [seen.get(s.document["id"]) for s in submissions]


def test_validators_reject_whole_batches_and_dedupe(tmp_path, database_url):
    dedupe = Deduping()
    led = Ledger.init(tmp_path / "h", database_url, ORIGIN,
                      validators={"event": Rejecting(), "registry": dedupe})
    from batterytrace.credentials.errors import VerificationError

    with pytest.raises(VerificationError):
        led.append([Submission("registry", {"id": "a"}), Submission("event", {"bad": 1})])
    assert led.size == 1  # nothing of the batch was written
    first = led.append([Submission("registry", {"id": "a"}), Submission("event", {"n": 1})])
    again = led.append([Submission("event", {"n": 2}), Submission("registry", {"id": "a"})])
    assert again[1].duplicate and again[1].seq == first[0].seq
    assert again[1].entry_hash == first[0].entry_hash
    assert again[0].seq == 3 and led.size == 4
    # each run of one kind is told its exact position: the "note" run starts after seq 3
    assert dedupe.calls[-1] == (4, 1)
    led.close()


def test_settings_are_admin_signed_entries(ledger):
    ledger.update_settings({"custodyTolerance": 0.01, "unit": "KGM"})
    ledger.append(_events(2))
    seq = ledger.update_settings({"custodyTolerance": 0.02}).seq
    assert ledger.entry(seq).document["proof"]["verificationMethod"].startswith(
        ledger.admin_did)
    assert ledger.settings_at(0) == {}
    assert ledger.settings_at(seq - 1) == {"custodyTolerance": 0.01, "unit": "KGM"}
    assert ledger.settings_at(seq) == {"custodyTolerance": 0.02, "unit": "KGM"}


def test_settings_lookup_uses_the_partial_index_and_events_stay_out_of_it(tmp_path):
    # Appending an event must touch no secondary index; the settings lookup must still be
    # an index search, not a scan of every entry.
    led = Ledger.init(tmp_path / "home", None, ORIGIN)
    led.update_settings({"unit": "KGM"})
    led.append(_events(5))
    db = sqlite3.connect(tmp_path / "home" / "ledger.sqlite")
    plan = db.execute(
        "EXPLAIN QUERY PLAN SELECT seq, body FROM ledger_entries "
        "WHERE kind = 'settings' AND seq > ? AND seq < ? ORDER BY seq LIMIT 10", (-1, 99)
    ).fetchall()
    assert "USING INDEX ix_ledger_entries_settings" in plan[0][3]
    indexed = db.execute("SELECT count(*) FROM ledger_entries INDEXED BY "
                         "ix_ledger_entries_settings WHERE kind = 'settings'").fetchone()[0]
    assert indexed == 1
    db.close()
    assert led.settings_at(led.size - 1) == {"unit": "KGM"}
    led.close()


def test_restored_backup_is_refused(tmp_path):
    home = tmp_path / "home"
    led = Ledger.init(home, None, ORIGIN)
    led.append(_events(3))
    led.close()
    backup = tmp_path / "backup.sqlite"
    shutil.copy(home / "ledger.sqlite", backup)
    led = Ledger.open(home)
    led.append(_events(2))
    led.close()
    for suffix in ("-wal", "-shm"):
        (home / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, home / "ledger.sqlite")
    with pytest.raises(LedgerForkError, match="restored backup"):
        Ledger.open(home)


def test_database_of_another_log_is_refused(tmp_path):
    Ledger.init(tmp_path / "a", None, ORIGIN).close()
    Ledger.init(tmp_path / "b", None, ORIGIN).close()
    with pytest.raises(LedgerForkError):
        Ledger.open(tmp_path / "a", f"sqlite:///{tmp_path / 'b' / 'ledger.sqlite'}")


def test_never_signs_a_checkpoint_inconsistent_with_the_file(ledger, tmp_path):
    from batterytrace.ledger.checkpoint import Checkpoint, sign_checkpoint

    ledger.append(_events(2))
    # A checkpoint of a larger, different tree in checkpoint.txt (as if signed by a fork).
    forged = sign_checkpoint(Checkpoint(ORIGIN, 5, b"\x07" * 32), ORIGIN, ledger.home.log_key())
    (tmp_path / "home" / "checkpoint.txt").write_bytes(forged)
    with pytest.raises(LedgerForkError):
        ledger.append(_events(3))
    assert ledger.size == 3  # the batch was rolled back with the refused signature


def test_checkpoint_on_demand(tmp_path, database_url):
    led = Ledger.init(tmp_path / "h", database_url, ORIGIN, checkpoint_every_batch=False)
    led.append(_events(4))
    assert led.latest_checkpoint()[0].size == 1
    cp, note = led.sign_checkpoint()
    assert cp.size == 5 and led.sign_checkpoint() == (cp, note)
    summary, claimed = verify_ledger(tmp_path / "h", database_url)
    assert summary.size == claimed == 5 and summary.checkpoints_checked == 2
    led.close()
