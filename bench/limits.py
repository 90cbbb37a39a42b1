"""Raw limits measured in the same run as each figure, each defined exactly here.

- ed25519_verify_per_s: `Ed25519PublicKey.verify` (pyca/cryptography) of a 64-byte message,
  one core, same key object.
- ed25519_verify_per_s_together(n): the sum of the rates of n processes each running the
  loop of ed25519_verify_per_s at the same time (started together): what n cores of this
  machine verify at once. On this VM two such loops reach ~0.83 of twice the lone rate (its
  vCPUs share execution resources), so "n x ed25519_verify_per_s" overstates n cores.
- ed25519_sign_per_s: `Ed25519PrivateKey.sign` of a 64-byte message, one core.
- rfc8785_per_s: `rfc8785.dumps` of the fixed 1.5 KB credential of `bench/fixtures.py`.
- sha256_per_s: `hashlib.sha256` of a 1 KB buffer (hashes per second).
- sqlite_executemany_rows_per_s: sqlite3 `executemany` of N rows (seq INTEGER PRIMARY KEY,
  hash BLOB(32), body BLOB(1 KB)) in one transaction, into a fresh file database with
  journal_mode=WAL and synchronous=NORMAL (the settings the ledger uses); the best of
  `rounds` runs (a disk stall of the shared VM in one run would halve it), as the ledger's
  append figure measured against it is.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def rate(fn: Callable[[], object], min_seconds: float = 1.0) -> float:
    """Calls of `fn` per second, measured for at least `min_seconds`."""
    n = 0
    batch = 1
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n / elapsed
        batch = min(batch * 2, 4096)


@cache
def ed25519_verify_per_s() -> float:
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    msg = os.urandom(64)
    sig = key.sign(msg)
    return rate(lambda: pub.verify(sig, msg))


def _verify_loop(start: Any, out: Any) -> None:
    start.wait()
    out.put(ed25519_verify_per_s.__wrapped__())


def ed25519_verify_per_s_together(processes: int = 2) -> float:
    """Summed verify rate of `processes` forked processes running at the same time (not
    cached: measured beside each figure that uses it)."""
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_verify_loop, args=(start, out))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    total = sum(out.get() for _ in workers)
    for worker in workers:
        worker.join()
    return float(total)


def verify_limit(processes: int) -> tuple[str, float]:
    """(name, rate) of the raw verify limit of `processes` cores, measured now (not cached):
    one loop for 1, that many loops running at once for more."""
    if processes == 1:
        return "ed25519_verify_per_s", ed25519_verify_per_s.__wrapped__()
    return (f"ed25519_verify_per_s_together({processes})",
            ed25519_verify_per_s_together(processes))


@cache
def ed25519_sign_per_s() -> float:
    key = Ed25519PrivateKey.generate()
    msg = os.urandom(64)
    return rate(lambda: key.sign(msg))


@cache
def rfc8785_per_s() -> float:
    import rfc8785

    from bench.fixtures import credential_1_5kb

    doc = credential_1_5kb()
    return rate(lambda: rfc8785.dumps(doc))


@cache
def sha256_per_s() -> float:
    buf = os.urandom(1024)
    return rate(lambda: hashlib.sha256(buf).digest())


@cache
def sqlite_executemany_rows_per_s(rows: int = 100_000, rounds: int = 3) -> float:
    body = os.urandom(1024)
    data = [(i, hashlib.sha256(i.to_bytes(8, "big")).digest(), body) for i in range(rows)]
    best = 0.0
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            conn = sqlite3.connect(Path(tmp) / "raw.sqlite", isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, hash BLOB NOT NULL, body BLOB)")
            start = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO t VALUES (?, ?, ?)", data)
            conn.execute("COMMIT")
            best = max(best, rows / (time.perf_counter() - start))
            conn.close()
    return best
