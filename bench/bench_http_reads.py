"""HTTP reads under load: an entry, an inclusion proof and a passport's JSON through
`batterytrace serve` with 1 worker on 127.0.0.1, beside a trivial route of the same server.

The ledger is the demo's (`batterytrace demo`: a battery's whole history, its passport). The
limit is `GET /health` of the same server in the same run: a FastAPI route that returns a
constant through the same middleware (what a worker answers at best).

Two loads, each from CLIENTS keep-alive connections of a minimal HTTP/1.1 client written on
asyncio streams in this process (httpx costs more per request than the server's route, so the
client would be the limit):
- saturated: every client sends its next request as soon as its answer arrives, for
  SATURATED_SECONDS: throughput (the ratio to /health is the target, >= 0.5);
- steady: the clients together send STEADY_RATE requests per second on a fixed schedule
  (each client one request every CLIENTS / STEADY_RATE seconds, staggered), for
  STEADY_SECONDS: p50 and p99 latency, each measured from the request's scheduled time (a
  late send counts against the server, no coordinated omission). Target: p99 <= 3 x p50 and
  p99 < 10 ms. Each route's steady run comes right after a steady run of the trivial route,
  whose p99/p50 is kept beside the route's (`..._steady_p99_over_p50`): the tail the host
  itself adds at that moment (shared vCPUs), which no route can beat. Under the saturated
  load latency is queueing (50 requests in flight divided by the throughput), reported
  too but not a target.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from bench.bench_http import _serve
from bench.run import row

CLIENTS = 50
SATURATED_SECONDS = 3.0
STEADY_RATE = 200.0  # requests/s in all (well below the capacity of every route)
STEADY_SECONDS = 4.0
ITEM = "https://id.example.com/items/pack-EBS80-000117"  # the demo's battery
ROOT = Path(__file__).resolve().parent.parent


async def _connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
               ) -> int:
    """Send one GET on a keep-alive connection and read the whole answer; its status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


def _request(path: str, etag: str | None = None) -> bytes:
    extra = f"If-None-Match: {etag}\r\n" if etag else ""
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode()


async def _saturated(port: int, path: str) -> tuple[float, list[float]]:
    """Closed loop: requests/s and latencies (s) of CLIENTS clients for SATURATED_SECONDS."""
    connections = [await _connection(port) for _ in range(CLIENTS)]
    request = _request(path)
    latencies: list[float] = []
    statuses: set[int] = set()
    end = time.perf_counter() + SATURATED_SECONDS

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while time.perf_counter() < end:
            began = time.perf_counter()
            statuses.add(await _get(reader, writer, request))
            latencies.append(time.perf_counter() - began)

    start = time.perf_counter()
    await asyncio.gather(*(client(r, w) for r, w in connections))
    elapsed = time.perf_counter() - start
    for _, writer in connections:
        writer.close()
    if statuses != {200}:
        raise RuntimeError(f"GET {path} answered {sorted(statuses)}")
    return len(latencies) / elapsed, latencies


async def _steady(port: int, path: str) -> list[float]:
    """Open loop: latencies (s) from each request's scheduled time, STEADY_RATE in all."""
    connections = [await _connection(port) for _ in range(CLIENTS)]
    request = _request(path)
    interval = CLIENTS / STEADY_RATE
    latencies: list[float] = []
    start = time.perf_counter() + 0.05

    async def client(index: int, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        due = start + index * interval / CLIENTS
        while due < start + STEADY_SECONDS:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await _get(reader, writer, request)
            latencies.append(time.perf_counter() - due)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
            due += interval

    await asyncio.gather(*(client(i, r, w) for i, (r, w) in enumerate(connections)))
    for _, writer in connections:
        writer.close()
    return latencies


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(
        values)


def _demo_home(root: Path) -> Path:
    home = root / "demo"
    subprocess.run([sys.executable, "-m", "batterytrace.api.cli", "demo", "--demo-home",
                    str(home)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return home


def _paths(base: str) -> dict[str, str]:
    import httpx

    size = httpx.get(f"{base}/log").json()["size"]
    seq = size // 2
    return {
        "health": "/health",
        "entry": f"/entries/{seq}",
        "proof": f"/proofs/inclusion?seq={seq}",
        "passport_json": f"/api/passports/{quote(ITEM, safe='')}",
    }


def run() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = _demo_home(Path(tmp))
        with _serve(home, None, 1) as base:
            port = int(base.rsplit(":", 1)[1])
            paths = _paths(base)
            for path in paths.values():  # warm every route once (imports, caches)
                asyncio.run(_saturated_once(port, path))
            throughput: dict[str, float] = {}
            saturated: dict[str, list[float]] = {}
            steady: dict[str, list[float]] = {}
            # Each route's saturated run is measured right after a run of the trivial
            # route (its limit), so a quiet or a busy moment of the machine hits both.
            limit_runs: list[float] = []
            for name, path in paths.items():
                if name == "health":
                    continue
                limit_rate, _ = asyncio.run(_saturated(port, paths["health"]))
                limit_runs.append(limit_rate)
                throughput[name], saturated[name] = asyncio.run(_saturated(port, path))
                # The trivial route's steady latencies right before the route's: the
                # host's own tail at that moment, beside the route's.
                steady[f"{name}_limit"] = asyncio.run(_steady(port, paths["health"]))
                steady[name] = asyncio.run(_steady(port, path))
                throughput[f"{name}_limit"] = limit_rate
            health_rate, saturated["health"] = asyncio.run(_saturated(port, paths["health"]))
            steady["health"] = asyncio.run(_steady(port, paths["health"]))
    for name in ("entry", "proof", "passport_json"):
        limit = throughput[f"{name}_limit"]
        p50 = _percentile(steady[name], 50) * 1000
        p99 = _percentile(steady[name], 99) * 1000
        trivial = steady[f"{name}_limit"]
        trivial_tail = _percentile(trivial, 99) / _percentile(trivial, 50)
        rows += [
            row(f"http_read_{name}_1w_c{CLIENTS}_per_s", throughput[name], "requests/s",
                f"http_trivial_route_1w_c{CLIENTS}_per_s", limit,
                saturated_p50_ms=round(_percentile(saturated[name], 50) * 1000, 2),
                saturated_p99_ms=round(_percentile(saturated[name], 99) * 1000, 2)),
            row(f"http_read_{name}_steady_p50_ms", p50, "ms", "none", 0,
                note=f"{CLIENTS} clients, {STEADY_RATE:.0f} requests/s in all"),
            row(f"http_read_{name}_steady_p99_ms", p99, "ms",
                f"http_read_{name}_steady_p50_ms", p50,
                note="target: p99 <= 3 x p50 (ratio) and p99 < 10 ms"),
            row(f"http_read_{name}_steady_p99_over_p50", p99 / p50, "x",
                "http_trivial_route_steady_p99_over_p50", trivial_tail,
                note="the route's tail beside the trivial route's, measured just before"),
        ]
    rows += [
        row(f"http_trivial_route_1w_c{CLIENTS}_per_s", health_rate, "requests/s", "none", 0,
            note="GET /health, the limit (also measured before each route: "
                 + ", ".join(f"{r:,.0f}" for r in limit_runs) + ")"),
        row("http_trivial_route_steady_p99_ms", _percentile(steady["health"], 99) * 1000,
            "ms", "http_trivial_route_steady_p50_ms",
            _percentile(steady["health"], 50) * 1000),
    ]
    return rows


async def _saturated_once(port: int, path: str) -> int:
    reader, writer = await _connection(port)
    try:
        return await _get(reader, writer, _request(path))
    finally:
        writer.close()
