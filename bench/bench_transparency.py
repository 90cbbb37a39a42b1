"""Transparency: `ledger publish` (tiles per second, bytes per entry), inclusion proofs read
from a mirror over HTTP on loopback (per second), witness cosignatures (per second), each
beside the in-process figure of the same run.

A 20,000-entry ledger of ~1 KB events is built with `Ledger.append` in batches of 1,000.
Published into a temporary directory served by the standard library's static HTTP server
(what any web server does); proofs are built by `TileReader` (a new one per proof) from tiles
fetched with `api/mirror.py` (tiles cached in memory, as an HTTP cache would), each checked
against the root; "cold": no cache at all, every tile fetched over HTTP for every proof
(one client, keep-alive where the server allows it: http.server closes each connection).
Cosignatures: the same checkpoint submitted again (old size = size, the full path minus a
proof check) to `witness serve` over HTTP with keep-alive, and to `Witness` in process.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
from batterytrace.api.mirror import mirror_fetch
from batterytrace.ledger import merkle
from batterytrace.ledger.cosignature import format_add_checkpoint
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.publish import publish_ledger
from batterytrace.ledger.tiles import TileReader
from batterytrace.ledger.witness import Witness, init_witness

from bench.run import row

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from transparency_support import served_witness, static_http

ORIGIN = "bench.batterytrace/transparency"
ENTRIES = 20_000
PAD = "x" * 940


def _ledger(home: Path) -> Ledger:
    led = Ledger.init(home, None, ORIGIN)
    for start in range(0, ENTRIES, 1000):
        led.append([Submission("event", {"type": "BenchEvent", "n": i, "pad": PAD})
                    for i in range(start, start + 1000)])
    return led


def _proofs_per_s(fetch, size: int, root: bytes, leaves: list[bytes], seconds: float) -> float:
    rng = random.Random(7)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        index = rng.randrange(size)
        reader = TileReader(fetch, size)  # a new client: only the fetch cache is shared
        proof = reader.inclusion_proof(index)
        merkle.verify_inclusion(leaves[index], index, size, proof, root)
        n += 1
    return n / (time.perf_counter() - start)


def run() -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        led = _ledger(base / "home")
        try:
            cp, note = led.latest_checkpoint()
            start = time.perf_counter()
            result = publish_ledger(led, base / "mirror")
            elapsed = time.perf_counter() - start
            files = result.tiles_written + result.bundles_written
            entry_bytes = sum(len(b) for b in led.iter_entry_bytes())
            rows.append(row("publish_tiles_and_bundles_per_s", files / elapsed, "files/s",
                            "raw_8kib_file_write_rename_per_s", _file_rate(base / "raw")))
            rows.append(row("publish_entries_per_s", cp.size / elapsed,
                            "entries/s", "db_entry_read_per_s",
                            _read_rate(led)))
            rows.append(row("publish_bytes_per_entry", result.bytes_written
                            / cp.size, "B/entry", "entry_canonical_bytes",
                            entry_bytes / cp.size))
            leaves = [led.entry(i).leaf_hash for i in range(cp.size)]
            local = _local_proofs_per_s(led, cp.size, cp.root, leaves)
            with static_http(base / "mirror") as url:
                fetch = mirror_fetch(url)
                remote = _proofs_per_s(fetch, cp.size, cp.root, leaves, 2.0)
                cold = _proofs_per_s(mirror_fetch(url, cache=False), cp.size, cp.root,
                                     leaves, 2.0)
            rows.append(row("mirror_http_cold_inclusion_proofs_per_s", cold, "proofs/s",
                            "inprocess_inclusion_proofs_per_s", local))
            rows.append(row("mirror_http_inclusion_proofs_per_s",
                            remote, "proofs/s", "inprocess_inclusion_proofs_per_s",
                            local))
            direct = _proofs_per_s(mirror_fetch(str(base / "mirror")), cp.size, cp.root,
                                   leaves, 1.0)
            rows.append(row("mirror_dir_inclusion_proofs_per_s", direct,
                            "proofs/s", "inprocess_inclusion_proofs_per_s", local))
            init_witness(base / "w", "bench.witness/w", None, [led.verifier.vkey])
            request = format_add_checkpoint(0, [], note)
            witness = Witness(base / "w")
            witness.add_checkpoint(request)
            again = format_add_checkpoint(cp.size, [], note)
            in_process = _count(lambda: witness.add_checkpoint(again), 1.0)
            witness.close()
            with served_witness(base / "w") as url, httpx.Client() as client:
                over_http = _count(lambda: client.post(url + "/add-checkpoint",
                                                       content=again).raise_for_status(), 2.0)
            rows.append(row("witness_http_cosignatures_per_s",
                            over_http, "cosignatures/s", "inprocess_witness_cosignatures_per_s",
                            in_process))
        finally:
            led.close()
    return rows


def _file_rate(folder: Path, n: int = 300) -> float:
    """What publish does per file, without computing anything: write 8 KiB beside the
    target, rename it over."""
    folder.mkdir()
    data = b"\0" * 8192
    start = time.perf_counter()
    for i in range(n):
        tmp = folder / f".{i}.tmp"
        tmp.write_bytes(data)
        tmp.replace(folder / str(i))
    return n / (time.perf_counter() - start)


def _read_rate(led: Ledger) -> float:
    start = time.perf_counter()
    n = sum(1 for _ in led.iter_entry_bytes())
    return n / (time.perf_counter() - start)


def _local_proofs_per_s(led: Ledger, size: int, root: bytes, leaves: list[bytes]) -> float:
    rng = random.Random(7)

    def one() -> None:
        index = rng.randrange(size)
        merkle.verify_inclusion(leaves[index], index, size, led.inclusion_proof(index, size),
                                root)

    return _count(one, 1.0)


def _count(fn, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)
