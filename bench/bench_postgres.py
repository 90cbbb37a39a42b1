"""PostgreSQL: batch append with 1 and 4 writer processes, proofs at 10^6 entries.

Needs BATTERYTRACE_TEST_POSTGRES_URL (a server URL; `make test` with CI=true starts one); without
it, one row says why. Every figure sits beside a limit of the same run:
- raw insert rate: psycopg `executemany` and `COPY` of N rows (seq BIGINT PRIMARY KEY,
  hash BYTEA(32), body BYTEA(1 KB)) in one transaction, into a fresh table;
- batch append: `Ledger.append` of batches of 1,000 entries of about 1 KB (the workload of
  bench_ledger), with the SQLite figure measured in the same run as the 50 % target's base;
- 4 writers: 4 processes appending at once, total entries per wall-clock second (from the
  start signal to the last writer's last append returned: process exits are not counted);
  each writer appends one batch before the start signal, as the one-writer figure does one
  before its clock (a fresh process's first batch is not the steady state);
- 4 writers on one core: the same 4-writer run with the writers and the local server confined
  to one core (where this process may move the server's processes: root, a server on this
  machine), beside the run on every core: "scaling with cores" as a 2-core host can show it;
- proofs: the cached 10^6-entry SQLite ledger of bench_ledger copied once (COPY) into a kept
  database `bt_bench_<size>_<revision>`, then random inclusion proofs read from PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.migrations.schema import head_revision

from bench.bench_ledger import CACHE, ORIGIN, build_fixture
from bench.limits import sha256_per_s
from bench.run import row

URL_ENV = "BATTERYTRACE_TEST_POSTGRES_URL"
BATCH = 1000
PAD = "x" * 940  # about 1 KB per entry, as bench_ledger


def _libpq(url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if database:
        u = u.set(database=database)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def _sa(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _create_db(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_db(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _raw_insert_rates(url: str, rows: int = 50_000) -> tuple[float, float]:
    """(executemany rows/s, COPY rows/s) into a fresh table of a fresh database."""
    import psycopg

    body = os.urandom(1024)
    data = [(i, hashlib.sha256(i.to_bytes(8, "big")).digest(), body) for i in range(rows)]
    name = f"bt_raw_{uuid.uuid4().hex[:12]}"
    _create_db(url, name)
    try:
        with psycopg.connect(_libpq(url, name)) as conn:
            rates = []
            for method in ("executemany", "copy"):
                conn.execute("DROP TABLE IF EXISTS t")
                conn.execute("CREATE TABLE t (seq BIGINT PRIMARY KEY, hash BYTEA NOT NULL, "
                             "body BYTEA)")
                conn.commit()
                start = time.perf_counter()
                with conn.cursor() as cur:
                    if method == "executemany":
                        cur.executemany("INSERT INTO t VALUES (%s, %s, %s)", data)
                    else:
                        with cur.copy("COPY t (seq, hash, body) FROM STDIN") as copy:
                            for r in data:
                                copy.write_row(r)
                conn.commit()
                rates.append(rows / (time.perf_counter() - start))
    finally:
        _drop_db(url, name)
    return rates[0], rates[1]


def _subs(tag: str, b: int) -> list[Submission]:
    return [Submission("event", {"type": "BenchEvent", "w": tag, "b": b, "n": i, "pad": PAD})
            for i in range(BATCH)]


def _batch_append_rate(home: Path, url: str | None, batches: int = 10) -> float:
    led = Ledger.init(home, url, ORIGIN)
    led.append(_subs("warm", -1))
    start = time.perf_counter()
    for b in range(batches):
        led.append(_subs("one", b))
    rate = batches * BATCH / (time.perf_counter() - start)
    led.close()
    return rate


WRITER = """
import sys
from pathlib import Path
from batterytrace.ledger.log import Ledger, Submission
home, url, tag, batches = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
led = Ledger.open(home, url)
pad = "x" * 940
# One append before the clock, as the one-writer figure has (a fresh process's first batch
# costs about twice a later one: first use of the code paths, the connection, the caches).
led.append([Submission("event", {"type": "BenchEvent", "w": tag, "b": -1, "n": i, "pad": pad})
            for i in range(1000)])
print("ready", flush=True)
sys.stdin.readline()
for b in range(batches):
    led.append([Submission("event", {"type": "BenchEvent", "w": tag, "b": b, "n": i,
                                     "pad": pad}) for i in range(1000)])
print("done", flush=True)
"""


def _writers_rate(home: Path, url: str, writers: int, batches: int = 5) -> float:
    Ledger.init(home, url, ORIGIN).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(home), url, f"w{k}",
                               str(batches)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for k in range(writers)]
    for p in procs:  # every writer has imported and connected before the clock starts
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:  # the clock stops when the last append has returned, not at exit
        assert p.stdout is not None
        if p.stdout.readline().strip() != "done":
            p.communicate(timeout=600)
            raise RuntimeError(f"writer exited with {p.returncode}")
    elapsed = time.perf_counter() - start
    for p in procs:
        p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"writer exited with {p.returncode}")
    return writers * batches * BATCH / elapsed


def _server_pids() -> list[int]:
    """The processes of a PostgreSQL server on this machine (postmaster, its helpers and
    backends): what `_on_cores` pins with the writers."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                pids.append(int(comm.parent.name))
        except OSError:  # gone meanwhile
            continue
    return pids


@contextmanager
def _on_cores(cpus: set[int]) -> Iterator[None]:
    """Run this process, the writers it starts and the local PostgreSQL server on `cpus`
    only (new backends inherit the postmaster's set), then give every process its set back.
    PermissionError when the server's processes cannot be moved (not root, or none here)."""
    pids = _server_pids()
    if not pids:
        raise PermissionError("no PostgreSQL server process on this machine")
    before = {pid: os.sched_getaffinity(pid) for pid in [0, *pids]}
    try:
        for pid in before:
            os.sched_setaffinity(pid, cpus)
        yield
    finally:
        for pid, old in before.items():
            with suppress(OSError):  # a backend that ended meanwhile
                os.sched_setaffinity(pid, old)


def _cores_rows(url: str, tmp: Path, two_cores: float) -> list[dict[str, object]]:
    """"Scaling with cores" as this host can show it: the 4-writer run again with the
    writers and the server confined to one core, beside the run on every core."""
    cores = os.sched_getaffinity(0)
    if len(cores) < 2:
        return []
    name = f"bt_bench_{uuid.uuid4().hex[:12]}"
    _create_db(url, name)
    try:
        with _on_cores({min(cores)}):
            one_core = _writers_rate(tmp / "pg4-one-core", _sa(url, name), 4)
    except PermissionError as error:
        return [row("postgres_append_batch1000_1kb_4_writers_1_core_per_s", 0, "n/a", "none",
                    0, None, note=f"not measured: {error}")]
    finally:
        _drop_db(url, name)
    return [row("postgres_append_batch1000_1kb_4_writers_1_core_per_s", one_core,
                "entries/s", "postgres_append_batch1000_1kb_4_writers_per_s", two_cores,
                cores=len(cores), cores_over_one_core=round(two_cores / one_core, 3),
                note="writers and server on one core; ratio: this over the same run on "
                     f"{len(cores)} cores (scaling with cores: {two_cores / one_core:.2f} x)")]


def _proof_fixture(url: str, size: int) -> tuple[Path, str]:
    """A home and a kept PostgreSQL database holding the cached SQLite ledger of `size`."""
    import psycopg

    source = build_fixture(size)
    name = f"bt_bench_{size}_{head_revision()}"
    home = CACHE / f"pg-ledger-{size}"
    marker = home / "built"
    target = _sa(url, name)
    if marker.exists() and marker.read_text().strip() == name:
        return home, target
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(source / "keys", home / "keys")
    shutil.copy(source / "checkpoint.txt", home / "checkpoint.txt")
    _create_db(url, name)
    from batterytrace.ledger.storage import SqlStorage

    storage = SqlStorage(target)
    storage.create_schema()
    storage.close()
    lite = sqlite3.connect(source / "ledger.sqlite")
    tables = {"ledger_entries": "seq, kind, hash, body", "ledger_tree_tiles": "key, hashes",
              "ledger_checkpoints": "size, root, note", "ledger_sequencer": "id, size, head, root"}
    with psycopg.connect(_libpq(url, name)) as conn, conn.cursor() as cur:
        for table, cols in tables.items():
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for r in lite.execute(f"SELECT {cols} FROM {table}"):
                    copy.write_row(r)
        conn.commit()
        cur.execute("ANALYZE")
    lite.close()
    marker.write_text(name)
    return home, target


def _proof_rate(home: Path, url: str) -> tuple[float, dict[str, int]]:
    led = Ledger.open(home, url)
    size = led.size
    rng = random.Random(6962)
    indexes = [rng.randrange(size) for _ in range(10_000)]
    start = time.perf_counter()
    for i in indexes:
        led.tree.inclusion_proof(i, size)
    rate = len(indexes) / (time.perf_counter() - start)
    info = led.tree.cache_info()
    led.close()
    return rate, info


def run() -> list[dict[str, object]]:
    url = os.environ.get(URL_ENV)
    if not url:
        return [row("postgres_skipped", 0, "n/a", "none", 0, None,
                    note=f"{URL_ENV} is not set: no PostgreSQL server to measure")]
    executemany, copy = _raw_insert_rates(url)
    rows: list[dict[str, object]] = [
        row("postgres_raw_executemany_rows_per_s", executemany, "rows/s", "none", 0, None),
        row("postgres_raw_copy_rows_per_s", copy, "rows/s", "none", 0, None),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        lite = _batch_append_rate(Path(tmp) / "sqlite", None)
        names = []
        try:
            name = f"bt_bench_{uuid.uuid4().hex[:12]}"
            names.append(name)
            _create_db(url, name)
            one = _batch_append_rate(Path(tmp) / "pg1", _sa(url, name))
            name = f"bt_bench_{uuid.uuid4().hex[:12]}"
            names.append(name)
            _create_db(url, name)
            four = _writers_rate(Path(tmp) / "pg4", _sa(url, name), 4)
        finally:
            for name in names:
                _drop_db(url, name)
        cores = _cores_rows(url, Path(tmp), four)
    rows += [
        row("postgres_append_batch1000_1kb_per_s", one, "entries/s",
            "postgres_raw_executemany_rows_per_s", executemany,
            sqlite_same_run=round(lite, 1), ratio_to_sqlite=round(one / lite, 3),
            target_ratio_to_sqlite=0.5),
        row("postgres_append_batch1000_1kb_4_writers_per_s", four, "entries/s",
            "postgres_raw_executemany_rows_per_s", executemany,
            sqlite_one_writer_same_run=round(lite, 1), one_writer_same_run=round(one, 1),
            ratio_to_one_writer=round(four / one, 3), target_ratio_to_one_writer=1.0),
    ]
    rows += cores
    home, target = _proof_fixture(url, 1_000_000)
    rate, info = _proof_rate(home, target)
    rows.append(row("postgres_inclusion_proof_gen_per_s_1e6", rate, "proofs/s", "sha256_per_s",
                    sha256_per_s(), target=10_000, cache_tiles=info["tiles"],
                    cache_bytes=info["bytes"], queries=info["queries"]))
    return rows


if __name__ == "__main__":
    for r in run():
        print(json.dumps(r))
