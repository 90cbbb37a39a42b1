"""HTTP reads under load: an entry, an inclusion proof and a passport's JSON through
`batterytrace serve` with 1 worker on 127.0.0.1, beside a trivial route of the same server.

The ledger is the demo's (`batterytrace demo`: a battery's whole history, its passport). The
limit is `GET /health` of the same server in the same run: a FastAPI route that returns a
constant through the same middleware (what a worker answers at best). The server runs with
`--server-timing`, so each answer says how long the application took and how much of that
was the garbage collector (the same few microseconds of header on every route).

The load comes from bench/http_client.py in a process of its own: CLIENTS keep-alive
connections on raw sockets and epoll, each response timed by the kernel's receive timestamp
(so the client's own delays in reading never count), every send's lateness recorded.
- saturated: every connection sends its next request as soon as its answer is read, for
  SATURATED_SECONDS: throughput (the ratio to /health is the target, >= 0.5). Each route's
  run comes right after a run of /health. Latency there is queueing (50 requests in flight
  divided by the throughput), reported but not a target.
- steady: STEADY_RATE requests per second in all on a fixed schedule for STEADY_SECONDS,
  /health and the three reads interleaved request by request (so every route, the trivial
  one included, meets the same moments of the host): p50 and p99 latency of each, measured
  from the request's scheduled time (a late send counts against the server: no coordinated
  omission). Target: p99 <= 3 x p50 and p99 < 10 ms. Beside them, the parts of the tail:
  how late the client sent, the time from send to the answer's arrival, and the
  application's own time (Server-Timing) with its collector time.
- isolated: the same steady run again with the server's threads and the client at the lowest
  real-time priority (SCHED_FIFO 1), so neither waits behind the machine's other processes
  when it wakes: the tail the server and the client add by themselves. Only where that is
  permitted (CAP_SYS_NICE); elsewhere its `..._isolated_...` rows are left out. The server
  is set back to the ordinary policy right after. Nothing else differs, for any route.
BENCH_HTTP_READS_STEADY_SECONDS changes the steady runs' length (default 20 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.bench_http import _server
from bench.http_client import CLIENTS, RATE, ordinary, realtime
from bench.run import row

SATURATED_SECONDS = 3.0
STEADY_RATE = RATE  # requests/s in all (well below the capacity of every route)
STEADY_SECONDS = float(os.environ.get("BENCH_HTTP_READS_STEADY_SECONDS", "20"))
ITEM = "https://id.example.com/items/pack-EBS80-000117"  # the demo's battery
ROOT = Path(__file__).resolve().parent.parent
READS = ("entry", "proof", "passport_json")


def _client(mode: str, port: int, seconds: float, paths: list[str], *,
            isolated: bool = False) -> dict[str, Any]:
    """One run of bench/http_client.py (its own process, a fresh heap)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.http_client", *(["--realtime"] if isolated else []),
         mode, str(port), str(seconds), *paths],
        cwd=ROOT, check=False, capture_output=True)
    if done.returncode:
        raise RuntimeError(f"bench.http_client failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    bad = {s for s in result["status"] if s != 200}
    if bad:
        raise RuntimeError(f"GET {paths} answered {sorted(bad)}")
    return result


def _percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (p99 of 1,200 values: the 12th largest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100)
    return ordered[int(rank) - 1]


def _ms(result: dict[str, Any], which: int, end: str, begin: str) -> list[float]:
    return [(result[end][i] - result[begin][i]) / 1e6 for i, p in enumerate(result["path"])
            if p == which]


def _parts(result: dict[str, Any], which: int) -> dict[str, float]:
    """p50/p99 (ms) of the latency and of its parts, for the requests of path `which`."""
    latency = _ms(result, which, "arrived", "due")
    late = _ms(result, which, "sent", "due")
    server = _ms(result, which, "arrived", "sent")
    lag = _ms(result, which, "read", "arrived")
    app = [v for v, p in zip(result["app_ms"], result["path"], strict=True) if p == which]
    collector = [v for v, p in zip(result["gc_ms"], result["path"], strict=True)
                 if p == which]
    return {
        "count": len(latency),
        "p50": _percentile(latency, 50), "p99": _percentile(latency, 99),
        "send_late_p99_ms": _percentile(late, 99),
        "send_to_arrival_p50_ms": _percentile(server, 50),
        "send_to_arrival_p99_ms": _percentile(server, 99),
        "client_read_lag_p99_ms": _percentile(lag, 99),
        "app_p50_ms": _percentile(app, 50), "app_p99_ms": _percentile(app, 99),
        "gc_max_ms": max(collector),
    }


def _rate(result: dict[str, Any]) -> float:
    return len(result["due"]) / ((max(result["arrived"]) - min(result["due"])) / 1e9)


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


def _rounded(parts: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in parts.items() if k not in ("p50", "p99", "count")}


def run() -> list[dict[str, object]]:
    import httpx

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = _demo_home(Path(tmp))
        with _server(home, None, 1, "--server-timing") as (base, server):
            port = int(base.rsplit(":", 1)[1])
            paths = _paths(base)
            for path in paths.values():  # warm every route (imports, caches)
                httpx.get(base + path, timeout=120).raise_for_status()
            _client("steady", port, 1.0, list(paths.values()))
            throughput: dict[str, float] = {}
            saturated: dict[str, dict[str, Any]] = {}
            limit_runs: list[float] = []
            for name in READS:  # each right after a run of its limit
                limit_runs.append(_rate(_client("saturated", port, SATURATED_SECONDS,
                                                [paths["health"]])))
                saturated[name] = _client("saturated", port, SATURATED_SECONDS,
                                          [paths[name]])
                throughput[name] = _rate(saturated[name])
                throughput[f"{name}_limit"] = limit_runs[-1]
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            steady = _client("steady", port, STEADY_SECONDS, list(paths.values()))
            isolated: dict[str, Any] | None = None
            if realtime(server.pid):
                try:
                    isolated = _client("steady", port, STEADY_SECONDS, list(paths.values()),
                                       isolated=True)
                finally:
                    ordinary(server.pid)
                if not isolated["realtime"]:
                    isolated = None
    parts = {name: _parts(steady, i) for i, name in enumerate(paths)}
    alone = {name: _parts(isolated, i) for i, name in enumerate(paths)} if isolated else {}
    trivial = parts["health"]
    trivial_tail = trivial["p99"] / trivial["p50"]
    note = (f"{CLIENTS} clients, {STEADY_RATE:.0f} requests/s in all for "
            f"{STEADY_SECONDS:.0f} s, /health and the 3 reads interleaved "
            f"({trivial['count']:.0f} requests each); load average {load}")
    for name in READS:
        latency = _ms(saturated[name], 0, "arrived", "due")
        mine = parts[name]
        rows += [
            row(f"http_read_{name}_1w_c{CLIENTS}_per_s", throughput[name], "requests/s",
                f"http_trivial_route_1w_c{CLIENTS}_per_s", throughput[f"{name}_limit"],
                saturated_p50_ms=round(_percentile(latency, 50), 2),
                saturated_p99_ms=round(_percentile(latency, 99), 2)),
            row(f"http_read_{name}_steady_p50_ms", mine["p50"], "ms", "none", 0, note=note),
            row(f"http_read_{name}_steady_p99_ms", mine["p99"], "ms",
                f"http_read_{name}_steady_p50_ms", mine["p50"],
                note="target: p99 <= 3 x p50 (ratio) and p99 < 10 ms", **_rounded(mine)),
            row(f"http_read_{name}_steady_p99_over_p50", mine["p99"] / mine["p50"], "x",
                "http_trivial_route_steady_p99_over_p50", trivial_tail,
                note="the route's tail beside the trivial route's, in the same moments"),
        ]
        if alone:
            rows.append(row(
                f"http_read_{name}_isolated_p99_ms", alone[name]["p99"], "ms",
                f"http_read_{name}_isolated_p50_ms", alone[name]["p50"],
                note="the same steady run with server and client at real-time priority "
                     "(ahead of the machine's other processes); ratio: p99 / p50",
                **_rounded(alone[name])))
    rows += [
        row(f"http_trivial_route_1w_c{CLIENTS}_per_s", max(limit_runs), "requests/s",
            "none", 0, note="GET /health, the limit, measured before each route: "
                            + ", ".join(f"{r:,.0f}" for r in limit_runs)),
        row("http_trivial_route_steady_p99_ms", trivial["p99"], "ms",
            "http_trivial_route_steady_p50_ms", trivial["p50"], **_rounded(trivial)),
    ]
    if alone:
        rows.append(row("http_trivial_route_isolated_p99_ms", alone["health"]["p99"], "ms",
                        "http_trivial_route_isolated_p50_ms", alone["health"]["p50"],
                        **_rounded(alone["health"])))
    return rows
