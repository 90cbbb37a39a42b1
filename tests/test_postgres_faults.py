"""PostgreSQL under concurrency and faults: 8 appending processes, SIGKILL mid-batch (alone,
and of 3 writers among 8), the server restarted under load, and an older backup restored
under a newer checkpoint.txt."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from batterytrace.ledger.errors import LedgerForkError
from batterytrace.ledger.log import Ledger, Submission, verify_ledger
from conftest import fresh_postgres_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ORIGIN = "pg-faults.test/log"

# Appends batches of `size` entries tagged (name, b, i); prints "ack b" once append returned
# (acknowledged), "unavailable CODE" when the database refused (then moves on to b + 1, so
# a batch that did commit unacknowledged is never appended twice).
APPENDER = """
import sys, time
from pathlib import Path
from batterytrace.ledger.db_errors import StorageUnavailableError
from batterytrace.ledger.log import Ledger, Submission
home, url, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
batches, size, seconds = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
led = Ledger.open(home, url)
print("ready", flush=True)
end = time.monotonic() + seconds
b = 0
while (batches < 0 or b < batches) and (seconds <= 0 or time.monotonic() < end):
    try:
        led.append([Submission("event", {"p": name, "b": b, "i": i, "of": size})
                    for i in range(size)])
        print("ack", b, flush=True)
    except StorageUnavailableError as exc:
        print("unavailable", exc.code, flush=True)
        time.sleep(0.2)
    b += 1
"""


def _appender(home: Path, url: str, name: str, batches: int, size: int,
              seconds: float = 0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(home), url, name, str(batches), str(size),
         str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _batches(home: Path, url: str) -> Counter[tuple[str, int]]:
    """Entries per (process, batch), after checking no entry appears twice."""
    led = Ledger.open(home, url)
    docs = [e.document for e in led.iter_entries(1)]
    led.close()
    assert len({(d["p"], d["b"], d["i"]) for d in docs}) == len(docs), "duplicate entry"
    # batches are contiguous runs in the log: atomic, never interleaved
    runs = [(d["p"], d["b"]) for d in docs]
    starts = [k for k in range(len(runs)) if k == 0 or runs[k] != runs[k - 1]]
    assert len(starts) == len(set(runs)), "a batch was split"
    return Counter(runs)


def _acks(out: str) -> set[int]:
    return {int(line.split()[1]) for line in out.splitlines() if line.startswith("ack ")}


def test_eight_processes_append_without_gap_fork_or_duplicate(tmp_path, postgres_url):
    home = tmp_path / "h"
    Ledger.init(home, postgres_url, ORIGIN).close()
    procs = [_appender(home, postgres_url, f"p{k}", 5, 20) for k in range(8)]
    acked = {}
    for k, p in enumerate(procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        acked[f"p{k}"] = _acks(out)
    summary, claimed = verify_ledger(home, postgres_url)
    assert summary.size == claimed == 1 + 8 * 5 * 20
    counts = _batches(home, postgres_url)
    assert set(counts.values()) == {20}
    assert {(p, b) for p, bs in acked.items() for b in bs} == set(counts)


def test_sigkill_mid_batch_leaves_whole_batches_and_no_lock(tmp_path, postgres_url):
    home = tmp_path / "h"
    Ledger.init(home, postgres_url, ORIGIN).close()
    proc = _appender(home, postgres_url, "victim", -1, 3000)
    assert proc.stdout.readline().strip() == "ready"
    for _ in range(2):
        assert proc.stdout.readline().startswith("ack")
    time.sleep(0.05)  # most likely inside the third batch's transaction
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # The server aborts the dead client's transaction and frees the sequencer row lock.
    led = Ledger.open(home, postgres_url)
    led.append([Submission("event", {"p": "after", "b": 0, "i": 0, "of": 1})])
    led.close()
    summary, claimed = verify_ledger(home, postgres_url)
    assert summary.size == claimed
    counts = _batches(home, postgres_url)
    assert counts[("after", 0)] == 1
    assert all(n == 3000 for (p, _), n in counts.items() if p == "victim")
    assert sum(1 for p, _ in counts if p == "victim") >= 2


def test_sigkill_of_writers_among_eight_leaves_no_gap_fork_or_lock(tmp_path, postgres_url):
    """8 writers append at once; 3 are SIGKILLed mid-run (most likely inside a batch, maybe
    holding the sequencer row lock): every batch in the log is whole, every acknowledged one
    is there, nothing is duplicated, the chain verifies and the lock is free."""
    home = tmp_path / "h"
    Ledger.init(home, postgres_url, ORIGIN).close()
    procs = {f"p{k}": _appender(home, postgres_url, f"p{k}", -1, 200, seconds=4)
             for k in range(8)}
    victims = ("p0", "p3", "p6")
    for proc in procs.values():
        assert proc.stdout.readline().strip() == "ready"
    out: dict[str, str] = {}
    for name in victims:
        proc = procs[name]
        lines = [proc.stdout.readline() for _ in range(2)]
        assert all(line.startswith("ack") for line in lines), lines
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        out[name] = "".join(lines)  # acknowledged before the kill
    for name, proc in procs.items():
        if name not in victims:
            # Read through the same buffered pipe as "ready" (communicate() would skip what
            # readline() already buffered).
            out[name] = proc.stdout.read()
            assert proc.wait(timeout=300) == 0, proc.stderr.read()
    led = Ledger.open(home, postgres_url)  # no lock left behind: the next append goes in
    led.append([Submission("event", {"p": "after", "b": 0, "i": 0, "of": 1})])
    led.close()
    summary, claimed = verify_ledger(home, postgres_url)
    assert summary.size == claimed
    counts = _batches(home, postgres_url)
    assert counts.pop(("after", 0)) == 1
    assert set(counts.values()) == {200}  # whole batches only
    acked = {(name, b) for name, text in out.items() for b in _acks(text)}
    assert acked <= set(counts)
    # a survivor's batches are exactly its acknowledged ones
    assert {k for k in counts if k[0] not in victims} == {
        k for k in acked if k[0] not in victims}


def _pg_ctl() -> str | None:
    found = shutil.which("pg_ctl")
    if found is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        found = str(candidates[-1]) if candidates else None
    return found


def _as_postgres(command: str, timeout: float = 120) -> None:
    subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], check=True,
                   timeout=timeout, capture_output=True)


@pytest.fixture
def private_cluster() -> Iterator[tuple[str, str]]:
    """A PostgreSQL cluster of this test alone (restarting the shared one would break the
    tests running beside it): yields (its URL, its pg_ctl command prefix)."""
    pg_ctl = _pg_ctl()
    if os.geteuid() != 0 or pg_ctl is None or shutil.which("su") is None:
        pytest.skip("restarting a server needs root (to run it as `postgres`) and pg_ctl")
    bindir = Path(pg_ctl).parent
    data = Path(tempfile.mkdtemp(prefix="bt-pg-restart-"))
    shutil.chown(data, "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _as_postgres(f"{bindir}/initdb -A trust -U postgres -D {data}/db")
    ctl = f"{pg_ctl} -D {data}/db"
    options = f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off"
    _as_postgres(f"{ctl} -l {data}/log -w -o '{options}' start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", ctl
    finally:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", f"{ctl} -m immediate stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(data, ignore_errors=True)


def test_server_restart_under_load_gives_typed_errors_and_loses_nothing(tmp_path,
                                                                        private_cluster):
    url, ctl = private_cluster
    home = tmp_path / "h"
    Ledger.init(home, url, ORIGIN).close()
    procs = [_appender(home, url, f"p{k}", -1, 50, seconds=12) for k in range(3)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    time.sleep(2)
    _as_postgres(f"{ctl} -m fast -w restart >/dev/null")
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err  # no raw psycopg traceback: typed errors were handled
        outputs.append(out)
    joined = "\n".join(outputs)
    assert "unavailable STORAGE_UNAVAILABLE" in joined  # the clients saw the restart
    counts = _batches(home, url)
    assert set(counts.values()) == {50}  # whole batches only
    for k, out in enumerate(outputs):
        assert {(f"p{k}", b) for b in _acks(out)} <= set(counts)  # nothing acked is lost
    summary, claimed = verify_ledger(home, url)
    assert summary.size == claimed == 1 + 50 * len(counts)


def _dump_and_restore(source: str, target: str) -> None:
    """pg_dump | psql when the client tools are installed, else a copy of the tables."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    def libpq(url: str) -> str:
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    pg_dump, psql = shutil.which("pg_dump"), shutil.which("psql")
    if pg_dump and psql:
        dump = subprocess.run([pg_dump, "--no-owner", libpq(source)], check=True,
                              capture_output=True, timeout=120).stdout
        subprocess.run([psql, "-q", "-v", "ON_ERROR_STOP=1", libpq(target)], input=dump,
                       check=True, capture_output=True, timeout=120)
        return
    from batterytrace.ledger.migrations.schema import target_metadata

    src, dst = create_engine(source), create_engine(target)
    from batterytrace.ledger.storage import SqlStorage

    SqlStorage(target, dst).create_schema()
    with src.connect() as a, dst.begin() as b:
        for table in target_metadata().sorted_tables:
            rows = [dict(r._mapping) for r in a.execute(table.select())]
            if rows:
                b.execute(table.insert(), rows)
        b.execute(text("SELECT 1"))
    src.dispose()
    dst.dispose()


def test_older_backup_under_a_newer_checkpoint_is_refused(tmp_path, postgres_url):
    home = tmp_path / "h"
    led = Ledger.init(home, postgres_url, ORIGIN)
    led.append([Submission("event", {"p": "a", "b": 0, "i": i, "of": 3}) for i in range(3)])
    led.close()
    with fresh_postgres_database() as backup_url:
        _dump_and_restore(postgres_url, backup_url)
        verified, _ = verify_ledger(home, backup_url)  # the backup itself is sound
        assert verified.size == 4
        led = Ledger.open(home, postgres_url)
        led.append([Submission("event", {"p": "a", "b": 1, "i": 0, "of": 1})])
        led.close()
        # checkpoint.txt (size 5) is newer than the backup (size 4): refuse, never fork.
        with pytest.raises(LedgerForkError, match="restored backup"):
            Ledger.open(home, backup_url)
        # the current database is still fine
        assert json.dumps(verify_ledger(home, postgres_url)[0].size) == "5"
