"""Faults: tampered databases are caught at the right seq; concurrent appenders (threads and
processes) never fork, gap or duplicate; SIGKILL mid-batch leaves whole batches only."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter

import pytest
from batterytrace.ledger.entry import Entry
from batterytrace.ledger.errors import LogVerificationError
from batterytrace.ledger.log import Ledger, Submission, verify_ledger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ORIGIN = "faults.test/log"
N = 12  # entries 0..11, one signed checkpoint per entry


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    home = tmp_path_factory.mktemp("pristine") / "home"
    led = Ledger.init(home, None, ORIGIN)
    for i in range(1, N):
        led.append([Submission("event", {"n": i, "note": "x" * i})])
    led.close()
    return home


def _copy(pristine, tmp_path):
    home = tmp_path / "home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(pristine, home)
    return home, sqlite3.connect(home / "ledger.sqlite", isolation_level=None)


def _bad_seq(home):
    with pytest.raises(LogVerificationError) as info:
        verify_ledger(home)
    return info.value.seq


def test_pristine_ledger_verifies(pristine):
    summary, claimed = verify_ledger(pristine)
    assert summary.size == claimed == N and summary.checkpoints_checked == N


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, N - 1), st.data())
def test_any_changed_byte_is_found_at_its_seq(pristine, tmp_path, seq, data):
    home, db = _copy(pristine, tmp_path)
    (body,) = db.execute("SELECT body FROM ledger_entries WHERE seq=?", (seq,)).fetchone()
    pos = data.draw(st.integers(0, len(body) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[pos]))
    changed = body[:pos] + bytes([byte]) + body[pos + 1:]
    db.execute("UPDATE ledger_entries SET body=? WHERE seq=?", (changed, seq))
    db.close()
    assert _bad_seq(home) == seq


@pytest.mark.parametrize("seq", [0, 1, 5, N - 1])
def test_deleted_entry(pristine, tmp_path, seq):
    home, db = _copy(pristine, tmp_path)
    db.execute("DELETE FROM ledger_entries WHERE seq=?", (seq,))
    db.close()
    assert _bad_seq(home) == seq


@pytest.mark.parametrize(("i", "j"), [(1, 2), (3, 9), (0, 4)])
def test_swapped_entries(pristine, tmp_path, i, j):
    home, db = _copy(pristine, tmp_path)
    rows = dict(db.execute("SELECT seq, body FROM ledger_entries WHERE seq IN (?, ?)", (i, j)))
    db.execute("UPDATE ledger_entries SET body=? WHERE seq=?", (rows[j], i))
    db.execute("UPDATE ledger_entries SET body=? WHERE seq=?", (rows[i], j))
    db.close()
    assert _bad_seq(home) == i


@pytest.mark.parametrize("cut", [1, 6, N - 1])
def test_truncated_and_re_extended(pristine, tmp_path, cut):
    home, db = _copy(pristine, tmp_path)
    db.execute("DELETE FROM ledger_entries WHERE seq>=?", (cut,))
    (prev,) = db.execute("SELECT hash FROM ledger_entries WHERE seq=?", (cut - 1,)).fetchone()
    for seq in range(cut, N):  # a well-formed, well-chained but different history
        entry = Entry.build(seq, prev.hex(), "event", {"forged": seq})
        db.execute("INSERT INTO ledger_entries (seq, kind, hash, body) VALUES (?, ?, ?, ?)",
                   (seq, "event", entry.hash, entry.canonical))
        prev = entry.hash
    db.close()
    assert _bad_seq(home) == cut


def test_truncated_tail(pristine, tmp_path):
    home, db = _copy(pristine, tmp_path)
    db.execute("DELETE FROM ledger_entries WHERE seq>=8")
    db.close()
    assert _bad_seq(home) == 8


def test_threads_never_fork_gap_or_duplicate(tmp_path, database_url):
    led = Ledger.init(tmp_path / "h", database_url, ORIGIN)
    errors = []

    def work(t):
        try:
            for b in range(8):
                led.append([Submission("event", {"t": t, "b": b, "i": i}) for i in range(3)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    docs = [e.document for e in led.iter_entries(1)]
    assert len(docs) == 4 * 8 * 3
    assert len({(d["t"], d["b"], d["i"]) for d in docs}) == len(docs)
    # batches stay contiguous
    for k in range(0, len(docs), 3):
        assert len({(d["t"], d["b"]) for d in docs[k:k + 3]}) == 1
    summary, claimed = verify_ledger(tmp_path / "h", database_url)
    assert summary.size == claimed == 97
    led.close()


APPENDER = """
import sys
from pathlib import Path
from batterytrace.ledger.log import Ledger, Submission
home, name, batches, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
led = Ledger.open(home, sys.argv[5] if len(sys.argv) > 5 else None)
b = 0
while batches < 0 or b < batches:
    led.append([Submission("event", {"p": name, "b": b, "i": i, "of": size, "pad": "x" * 200})
                for i in range(size)])
    print(b, flush=True)
    b += 1
"""


def _appender(home, name, batches, size, database_url=None):
    return subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(home), name, str(batches), str(size),
         *([database_url] if database_url else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_processes_never_fork_gap_or_duplicate(tmp_path, database_url):
    home = tmp_path / "h"
    Ledger.init(home, database_url, ORIGIN).close()
    procs = [_appender(home, f"p{k}", 4, 3, database_url) for k in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    summary, claimed = verify_ledger(home, database_url)
    assert summary.size == claimed == 1 + 3 * 4 * 3
    led = Ledger.open(home, database_url)
    docs = [e.document for e in led.iter_entries(1)]
    led.close()
    assert len({(d["p"], d["b"], d["i"]) for d in docs}) == len(docs)


def test_sigkill_mid_batch_leaves_whole_batches(tmp_path, database_url):
    home = tmp_path / "h"
    Ledger.init(home, database_url, ORIGIN).close()
    proc = _appender(home, "victim", -1, 2000, database_url)
    for _ in range(2):  # let two batches commit, then kill during a later one
        assert proc.stdout.readline() != ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    summary, claimed = verify_ledger(home, database_url)
    assert summary.size == claimed
    led = Ledger.open(home, database_url)  # checkpoint.txt is never ahead of the database
    counts = Counter(json.dumps(e.document["b"]) for e in led.iter_entries(1))
    assert counts and set(counts.values()) == {2000}
    led.append([Submission("event", {"after": "kill"})])
    led.close()
    assert verify_ledger(home, database_url)[0].size == summary.size + 1
