"""The stored log: append rates, proofs at 10^6 entries, `ledger verify` speed and memory.

The 10^5 and 10^6 entry ledgers are built once into bench/.cache (fast path: entries, leaves
and subtree hashes precomputed in Python with the ledger's own functions and bulk-inserted
with sqlite3; checkpoints signed every 100,000 entries). What is measured is real: appends go
through `Ledger.append`, proofs through `Ledger`/`TreeStore` reading the database, verification
through `verify_ledger` in a fresh process (so its peak RSS is its own).
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batterytrace.ledger import merkle
from batterytrace.ledger.checkpoint import Checkpoint, sign_checkpoint
from batterytrace.ledger.entry import Entry
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.migrations.schema import head_revision
from batterytrace.ledger.storage import pack_tiles, tile_slot
from batterytrace.ledger.tree_store import extend

from bench.limits import sha256_per_s, sqlite_executemany_rows_per_s
from bench.run import row

CACHE = Path(__file__).parent / ".cache"
ORIGIN = "bench.batterytrace/log"
KB_PAD = "x" * 940  # makes an event entry about 1 KB


def _kb_submission(i: int) -> Submission:
    return Submission("event", {"type": "BenchEvent", "n": i, "pad": KB_PAD})


def _append_rows(rounds: int = 3) -> list[dict[str, object]]:
    """Appends of 1 KB entries: singly, and in batches of 1,000 (the best of `rounds` rounds
    of 10 batches, as the raw bulk insert rate it is compared with is the best of its runs:
    a disk stall of the shared VM in one round would otherwise decide the ratio)."""
    raw = sqlite_executemany_rows_per_s()
    with tempfile.TemporaryDirectory() as tmp:
        led = Ledger.init(Path(tmp) / "h", None, ORIGIN)
        n_single = 300
        start = time.perf_counter()
        for i in range(n_single):
            led.append([_kb_submission(i)])
        single = n_single / (time.perf_counter() - start)
        subs = [_kb_submission(i) for i in range(1000)]
        rates = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(10):
                led.append(subs)
            rates.append(10 * 1000 / (time.perf_counter() - start))
        entry_bytes = len(led.storage.entry_body(led.size - 1) or b"")
        led.close()
    return [
        row("ledger_append_single_1kb_per_s", single, "entries/s",
            "sqlite_executemany_rows_per_s", raw, entry_bytes=entry_bytes,
            note="one transaction, one signed checkpoint and one fsynced checkpoint.txt each"),
        row("ledger_append_batch1000_1kb_per_s", max(rates), "entries/s",
            "sqlite_executemany_rows_per_s", raw, entry_bytes=entry_bytes, target_ratio=0.25,
            rounds=[round(r) for r in rates],
            note="best of 3 rounds of 10 batches; a signed checkpoint per batch"),
    ]


def build_fixture(size: int) -> Path:
    """A home folder holding a valid ledger of `size` entries (cached under bench/.cache)."""
    home = CACHE / f"ledger-{size}"
    marker = home / "built"
    # Rebuilt when the schema changes (the marker holds the Alembic revision it was built at).
    if marker.exists() and marker.read_text().split() == [str(size), head_revision()]:
        return home
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    led = Ledger.init(home, None, ORIGIN)
    genesis = led.entry(0)
    log_key = led.home.log_key()
    led.close()
    db = sqlite3.connect(home / "ledger.sqlite", isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    frontier = [(0, 0, genesis.leaf_hash)]
    prev, done, chunk = genesis.hash, 1, 100_000
    received = genesis.received
    note = b""
    while done < size:
        n = min(chunk, size - done)
        entries, nodes, leaves = [], [], []
        for seq in range(done, done + n):
            doc = {"type": "BenchEvent", "n": seq, "lot": f"urn:bench:lot:{seq % 9973}"}
            entry = Entry.build(seq, prev.hex(), "event", doc, received)
            prev, leaf = entry.hash, entry.leaf_hash
            entries.append((seq, "event", prev, entry.canonical))
            leaves.append(leaf)
        first = done
        created, frontier, root = extend(frontier, leaves)
        nodes = [(0, first + j, h) for j, h in enumerate(leaves)] + created
        keys = sorted({tile_slot(lv, i)[0] for lv, i, _ in nodes})
        tiles = {k: bytearray(h) for k, h in db.execute(
            f"SELECT key, hashes FROM ledger_tree_tiles WHERE key IN ({','.join(map(str, keys))})")}
        pack_tiles(tiles, nodes)
        done += n
        note = sign_checkpoint(Checkpoint(ORIGIN, done, root), ORIGIN, log_key)
        db.execute("BEGIN")
        db.executemany("INSERT INTO ledger_entries (seq, kind, hash, body) "
                       "VALUES (?, ?, ?, ?)", entries)
        db.executemany("INSERT OR REPLACE INTO ledger_tree_tiles (key, hashes) VALUES (?, ?)",
                       [(k, bytes(t)) for k, t in tiles.items()])
        db.execute("INSERT INTO ledger_checkpoints (size, root, note) VALUES (?, ?, ?)",
                   (done, root, note))
        db.execute("UPDATE ledger_sequencer SET size=?, head=?, root=? WHERE id=1",
                   (done, prev, root))
        db.execute("COMMIT")
    db.close()
    (home / "checkpoint.txt").write_bytes(note)
    marker.write_text(f"{size} {head_revision()}")
    return home


def _proof_rows(home: Path) -> list[dict[str, object]]:
    led = Ledger.open(home)
    size = led.size
    rng = random.Random(6962)
    leaves_by_seq = {}
    # Generation: random indexes, hashes read from the database (cache bounded, counted).
    indexes = [rng.randrange(size) for _ in range(20_000)]
    start = time.perf_counter()
    proofs = [led.tree.inclusion_proof(i, size) for i in indexes]
    inc_gen = len(indexes) / (time.perf_counter() - start)
    root = led.root(size)
    sample = indexes[:2000]
    for i in sample:
        leaves_by_seq[i] = merkle.leaf_hash(led.storage.entry_body(i) or b"")
    start = time.perf_counter()
    for i, proof in zip(sample, proofs, strict=False):
        merkle.verify_inclusion(leaves_by_seq[i], i, size, proof, root)
    inc_ver = len(sample) / (time.perf_counter() - start)
    inc_bytes = sum(len(p) for p in proofs) * 32 / len(proofs)

    olds = [rng.randrange(1, size) for _ in range(10_000)]
    start = time.perf_counter()
    cons = [led.tree.consistency_proof(m, size) for m in olds]
    con_gen = len(olds) / (time.perf_counter() - start)
    old_roots = {m: led.root(m) for m in olds[:2000]}
    start = time.perf_counter()
    for m, proof in zip(olds[:2000], cons, strict=False):
        merkle.verify_consistency(m, size, old_roots[m], root, proof)
    con_ver = 2000 / (time.perf_counter() - start)
    con_bytes = sum(len(p) for p in cons) * 32 / len(cons)
    cache = led.tree.cache_info()
    led.close()
    sha = sha256_per_s()
    extra = {"tree_size": size, "cache_entries": cache["entries"],
             "cache_max_entries": cache["max_entries"], "cache_tiles": cache["tiles"],
             "cache_bytes": cache["bytes"], "cache_max_bytes": cache["max_bytes"],
             "queries": cache["queries"]}
    return [
        row("ledger_inclusion_proof_gen_per_s_1e6", inc_gen, "proofs/s", "sha256_per_s", sha,
            proof_bytes=round(inc_bytes, 1), target=10_000, **extra),
        row("ledger_inclusion_proof_verify_per_s_1e6", inc_ver, "proofs/s", "sha256_per_s", sha,
            proof_bytes=round(inc_bytes, 1), **extra),
        row("ledger_consistency_proof_gen_per_s_1e6", con_gen, "proofs/s", "sha256_per_s", sha,
            proof_bytes=round(con_bytes, 1), **extra),
        row("ledger_consistency_proof_verify_per_s_1e6", con_ver, "proofs/s", "sha256_per_s",
            sha, proof_bytes=round(con_bytes, 1), **extra),
    ]


# Peak memory is VmHWM: ru_maxrss carries the parent's high-water mark across fork and exec.
_VERIFY_SCRIPT = """
import json, sys, time
from batterytrace.ledger.log import verify_ledger
start = time.perf_counter()
summary, _ = verify_ledger(sys.argv[1])
elapsed = time.perf_counter() - start
peak = next(int(line.split()[1]) for line in open("/proc/self/status")
            if line.startswith("VmHWM:")) / 1024
print(json.dumps({"size": summary.size, "seconds": elapsed, "peak_mb": peak}))
"""


def _verify_rows(homes: dict[str, Path]) -> list[dict[str, object]]:
    rows = []
    sha = sha256_per_s()
    for label, home in homes.items():
        out = subprocess.run([sys.executable, "-c", _VERIFY_SCRIPT, str(home)], check=True,
                             capture_output=True, text=True).stdout
        result = json.loads(out)
        rows.append(row(f"ledger_verify_entries_per_s_{label}", result["size"] /
                        result["seconds"], "entries/s", "sha256_per_s", sha,
                        peak_memory_mb=round(result["peak_mb"], 1)))
    return rows


def run() -> list[dict[str, object]]:
    rows = _append_rows()
    small, large = build_fixture(100_000), build_fixture(1_000_000)
    rows += _proof_rows(large)
    rows += _verify_rows({"1e5": small, "1e6": large})
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
