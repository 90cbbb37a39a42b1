"""HTTP load: batch appends/s and read latency through `batterytrace serve`, on 127.0.0.1.

For 1 and 2 workers, on SQLite and (when BATTERYTRACE_TEST_POSTGRES_URL is set) PostgreSQL:
POST /events with batches of BATCH signed extraction credentials (CONCURRENCY clients at
once, EVENTS in all), then READS GET /entries/{seq} (p50, p99). The limit beside each append
rate is the in-process `Ledger.append` rate of the same batches on the same engine, measured
in the same run (target: HTTP >= 50 % of it).

Mixed load (issue 17, the load of tests/test_api_load.py): MIXED_POSTS single-event POST
/events and MIXED_GETS GET /lots/{id}/history, all sent at once (one connection each) to
`serve` with 1 worker: requests/s over the whole load, p50 and p99 latency, and the counts of
503 answers (a full write queue: allowed) and 500 answers (must be 0). The limit beside the
request rate is the in-process rate of appending the same events one `Ledger.append` each
(what the server would do without its writer's grouping), measured in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.bench_custody import ADMIN, ORIGIN, PUBLIC_URL, _registry_docs, event_credential
from bench.run import row

EVENTS = 2000
BATCH = 100
CONCURRENCY = 4
READS = 1000
READ_CONCURRENCY = 8
MIXED_POSTS = 140
MIXED_GETS = 60
ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(os.environ["BATTERYTRACE_TEST_POSTGRES_URL"])
    name = f"bt_bench_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _home(root: Path, url: str | None) -> Path:
    from batterytrace.credentials.keys import write_key_file
    from batterytrace.ledger.log import Ledger, Submission
    from batterytrace.ledger.service import attach_validators

    home = root / uuid.uuid4().hex[:8]
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN, home / "keys" / "admin.json")
    ledger = attach_validators(Ledger.init(home, url, ORIGIN, PUBLIC_URL))
    ledger.append([Submission("registry", d) for d in _registry_docs()])
    ledger.close()
    return home


def _in_process(home: Path, url: str | None, batches: list[list[dict[str, Any]]]) -> float:
    """Events/s of `Ledger.append` over the batches (checkpoints signed at the end only,
    as the service does)."""
    from batterytrace.ledger.log import Submission
    from batterytrace.ledger.service import open_ledger

    ledger = open_ledger(home, url)
    ledger.checkpoint_every_batch = False
    try:
        start = time.perf_counter()
        for batch in batches:
            ledger.append([Submission("event", d) for d in batch])
        return sum(map(len, batches)) / (time.perf_counter() - start)
    finally:
        ledger.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _load(base: str, batches: list[list[dict[str, Any]]]) -> tuple[float, list[float]]:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        queue = list(batches)

        async def appender() -> None:
            while queue:
                response = await client.post("/events", json=queue.pop())
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(appender() for _ in range(CONCURRENCY)))
        rate = sum(map(len, batches)) / (time.perf_counter() - start)
        size = (await client.get("/log")).json()["size"]
        latencies: list[float] = []
        seqs = [i % size for i in range(READS)]

        async def reader() -> None:
            while seqs:
                seq = seqs.pop()
                began = time.perf_counter()
                response = await client.get(f"/entries/{seq}")
                latencies.append(time.perf_counter() - began)
                response.raise_for_status()

        await asyncio.gather(*(reader() for _ in range(READ_CONCURRENCY)))
        return rate, latencies


@contextlib.contextmanager
def _serve(home: Path, url: str | None, workers: int, *options: str) -> Iterator[str]:
    """`batterytrace serve` (with `options`) on a free loopback port; yields its base URL
    once it answers."""
    with _server(home, url, workers, *options) as (base, _):
        yield base


@contextlib.contextmanager
def _server(home: Path, url: str | None, workers: int, *options: str
            ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`_serve`, yielding the server's process too."""
    import httpx

    port = _free_port()
    env = {**os.environ, "BATTERYTRACE_HOME": str(home)}
    if url:
        env["BATTERYTRACE_DATABASE_URL"] = url
    else:
        env.pop("BATTERYTRACE_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "batterytrace.api.cli", "serve", "--port", str(port),
         "--workers", str(workers), *options], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/log", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        yield base, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _served(home: Path, url: str | None, workers: int,
            batches: list[list[dict[str, Any]]]) -> tuple[float, list[float]]:
    with _serve(home, url, workers) as base:
        return asyncio.run(_load(base, batches))


async def _mixed_load(base: str, events: list[dict[str, Any]], lot: str
                      ) -> tuple[float, dict[str, list[float]], dict[int, int]]:
    """Every request of the mixed load at once: (requests/s, latencies by method, count by
    status)."""
    import httpx

    limits = httpx.Limits(max_connections=len(events) + MIXED_GETS,
                          max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        go = asyncio.Event()
        latencies: dict[str, list[float]] = {"POST": [], "GET": []}
        statuses: dict[int, int] = {}

        async def send(method: str, path: str, body: Any = None) -> None:
            await go.wait()
            began = time.perf_counter()
            response = await client.request(method, path, json=body)
            latencies[method].append(time.perf_counter() - began)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        tasks = [asyncio.ensure_future(send("POST", "/events", e)) for e in events]
        tasks += [asyncio.ensure_future(send("GET", f"/lots/{lot}/history"))
                  for _ in range(MIXED_GETS)]
        start = time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
        return len(tasks) / (time.perf_counter() - start), latencies, statuses


def _in_process_singles(home: Path, url: str | None, events: list[dict[str, Any]]) -> float:
    """Events/s of `Ledger.append` of one event per call (checkpoints at the end only)."""
    from batterytrace.ledger.log import Submission
    from batterytrace.ledger.service import open_ledger

    ledger = open_ledger(home, url)
    ledger.checkpoint_every_batch = False
    try:
        start = time.perf_counter()
        for event in events:
            ledger.append([Submission("event", event)])
        return len(events) / (time.perf_counter() - start)
    finally:
        ledger.close()


def _mixed_rows(engine: str, url_factory: Any) -> list[dict[str, object]]:
    import httpx

    seed = event_credential(0, "mixed-seed")
    lot = "https://id.example.com/lots/mixed-seed-0"
    events = [event_credential(i, "mixed") for i in range(MIXED_POSTS)]
    with tempfile.TemporaryDirectory() as tmp:
        with url_factory() as url:
            singles = _in_process_singles(_home(Path(tmp), url), url, events)
        with url_factory() as url:
            home = _home(Path(tmp), url)
            with _serve(home, url, 1) as base:
                httpx.post(f"{base}/events", json=seed, timeout=60).raise_for_status()
                rate, latencies, statuses = asyncio.run(_mixed_load(base, events, lot))
    tag = f"http_{engine}_mixed{MIXED_POSTS + MIXED_GETS}"
    load = (f"{MIXED_POSTS} POST /events (1 event each) + {MIXED_GETS} GET "
            f"/lots/{{id}}/history, all at once, 1 worker")
    answers = ", ".join(f"{n} x {code}" for code, n in sorted(statuses.items()))
    rows = [row(f"{tag}_requests_per_s", rate, "requests/s",
                f"inprocess_{engine}_single_append_per_s", singles,
                note=f"{load}; answers: {answers}")]
    every = latencies["POST"] + latencies["GET"]
    for q in (50, 99):
        rows.append(row(f"{tag}_p{q}_ms", _percentile(every, q), "ms", "none", 0,
                        note=f"every request; {load}"))
    rows.append(row(f"{tag}_get_p99_ms", _percentile(latencies["GET"], 99), "ms", "none", 0,
                    note=f"the GET /lots/{{id}}/history only; {load}"))
    rows.append(row(f"{tag}_503_count", statuses.get(503, 0), "responses", "none", 0,
                    note="write queue full (allowed, with Retry-After)"))
    rows.append(row(f"{tag}_500_count", statuses.get(500, 0), "responses", "none", 0,
                    note="must be 0"))
    return rows


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def _engine_rows(engine: str, url_factory: Any, batches: list[list[dict[str, Any]]]
                 ) -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with url_factory() as url:
            inproc = _in_process(_home(Path(tmp), url), url, batches)
        for workers in (1, 2):
            with url_factory() as url:
                rate, latencies = _served(_home(Path(tmp), url), url, workers, batches)
            tag = f"http_{engine}_{workers}w"
            rows.append(row(f"{tag}_batch{BATCH}_append_per_s", rate, "events/s",
                            f"inprocess_{engine}_append_per_s", inproc, target=0.5,
                            note=f"{EVENTS} events, {CONCURRENCY} concurrent clients"))
            for q in (50, 99):
                rows.append(row(f"{tag}_read_p{q}_ms", _percentile(latencies, q), "ms",
                                "none", 0, note=f"GET /entries, {READS} reads, "
                                f"{READ_CONCURRENCY} concurrent"))
    return rows


@contextlib.contextmanager
def _sqlite() -> Iterator[None]:
    yield None


def run() -> list[dict[str, object]]:
    events = [event_credential(i, "http") for i in range(EVENTS)]
    batches = [events[i:i + BATCH] for i in range(0, EVENTS, BATCH)]
    rows = _engine_rows("sqlite", _sqlite, batches) + _mixed_rows("sqlite", _sqlite)
    if os.environ.get("BATTERYTRACE_TEST_POSTGRES_URL"):
        rows += _engine_rows("postgresql", _postgres, batches)
        rows += _mixed_rows("postgresql", _postgres)
    return rows
