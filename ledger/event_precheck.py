"""The engine's position-independent event checks (`engine.check_event_documents`) for long
batches, in a small pool of worker processes; the in-order half stays with the caller.

The pool (forked workers, created once per process) is handed a whole batch as one job; the
workers claim its chunks from the front and the caller, whenever the chunk it needs next is
not ready, claims the last unclaimed one (work stealing), so both cores stay busy whatever
the rules cost. Results carry each document's canonical bytes (the ledger entry reuses
them), or none for a replay.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import threading
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: pipes keep their default size
    fcntl = None  # type: ignore[assignment]

from batterytrace.credentials.errors import BatterytraceError

from .engine import EventCheck, check_event_documents

# Below this many documents a batch is checked in-process: handing work to the pool costs
# about a millisecond of latency, worth paying only when the batch is long.
POOL_THRESHOLD = 64
_CHUNK = 32


def _precheck_chunk(documents: list[dict[str, Any]], canonical: bool = True) -> list[Any]:
    # Errors travel back as values: the caller raises the first one in log order. The parse
    # is not sent back: the caller parses anyway (prefetch), cheaper than unpickling it.
    return check_event_documents([(d, None) for d in documents], canonical=canonical,
                                 keep_credential=False)


# --- the pool ---------------------------------------------------------------------------
#
# Why not concurrent.futures: a ProcessPoolExecutor feeds its workers one chunk at a time
# from two threads of this process (its manager and queue feeder), each needing the GIL that
# the rules hold here; every hand-off waits up to the interpreter's 5 ms switch interval, and
# a worker idled for 10-20 % of a batch append between chunks. Here a worker receives a whole
# job (one pickled message, written by a sender thread whose blocking write holds no GIL),
# claims its chunks from the front through counters in shared memory while this process
# claims from the back, and writes each chunk's results into a pipe that a receiver thread
# drains (a worker never waits for a hand-off: its job is already in its pipe, results have
# room in theirs).

_SLOTS = 16  # jobs whose claim counters live in shared memory at once (2 or 3 are in flight)
_WAIT = 0.05  # seconds between checks that the workers are alive, while waiting on them
_PIPE_BYTES = 1 << 20  # Linux's default ceiling (pipe-max-size); the default is 64 KB


def _widen(connection: Connection) -> None:
    """Enlarge a pipe's kernel buffer, so that a whole job or many chunks' results wait in
    it (Linux; best effort: the default size works, with more hand-offs)."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setsize is not None:
        try:
            fcntl.fcntl(connection.fileno(), setsize, _PIPE_BYTES)
        except OSError:  # above this system's pipe-max-size
            pass


def _claim(claims: Any, job: int, index: int | None) -> int | None:
    """Claim a chunk of `job`: the first unclaimed one (a worker: `index` None), or, for the
    caller that needs chunk `index` next, that one if unclaimed, else the last unclaimed.
    None when every chunk is claimed (or the job was withdrawn)."""
    with claims.get_lock():
        raw = claims.get_obj()
        slot = 3 * (job % _SLOTS)
        if raw[slot] != job or raw[slot + 1] >= raw[slot + 2]:
            return None
        if index is None or raw[slot + 1] == index:
            raw[slot + 1] += 1
            return raw[slot + 1] - 1
        raw[slot + 2] -= 1
        return raw[slot + 2]


def _work(tasks: Connection, results: Connection, claims: Any) -> None:
    """A worker: for each job received, check the chunks it claims, send their results."""
    while True:
        try:
            message = tasks.recv_bytes()
        except (EOFError, OSError):
            return
        job = int.from_bytes(message[:8], "little")
        documents, canonical = pickle.loads(memoryview(message)[8:])
        while (index := _claim(claims, job, None)) is not None:
            try:
                out = pickle.dumps(_precheck_chunk(
                    documents[index * _CHUNK : (index + 1) * _CHUNK], canonical),
                    pickle.HIGHEST_PROTOCOL)
            except Exception:  # not a verdict (a bug): the caller redoes it and sees it
                out = None
            try:
                results.send_bytes(pickle.dumps((job, index, out), pickle.HIGHEST_PROTOCOL))
            except OSError:  # the caller is gone
                return


class _Pool:
    """Worker processes for precheck jobs, created once per process (see `_pool`)."""

    def __init__(self, workers: int) -> None:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)  # fork: the schema comes compiled
        # Per slot: the job id, its next unclaimed chunk from the front, its end (exclusive).
        self.claims = context.Array("q", 3 * _SLOTS)
        self.next_job = 0
        self.tasks: list[Connection] = []
        self.results: list[Connection] = []
        self.processes: list[Any] = []
        self.broken = False
        self.lock = threading.Lock()
        # job -> {chunk index: results} for the jobs whose runs are still open.
        self.inbox: dict[int, dict[int, list[Any] | None]] = {}
        for _ in range(workers):
            task_out, task_in = context.Pipe(duplex=False)
            result_out, result_in = context.Pipe(duplex=False)
            _widen(task_in)
            _widen(result_in)
            process = context.Process(
                target=_work, args=(task_out, result_in, self.claims), daemon=True
            )
            process.start()
            task_out.close()
            result_in.close()
            self.tasks.append(task_in)
            self.results.append(result_out)
            self.processes.append(process)
        self.outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        threading.Thread(target=self._send, daemon=True, name="precheck-sender").start()
        # Results as they come, drained from the pipes by one thread per worker: a pipe
        # holds ~18 chunks' results, fewer than a worker checks while this process writes
        # the previous batch, and a full pipe would stop the worker.
        self.arrived: list[bytes | None] = []
        self.ready = threading.Condition()
        for connection in self.results:
            threading.Thread(target=self._receive, args=(connection,), daemon=True,
                             name="precheck-receiver").start()

    def _send(self) -> None:
        while (message := self.outbox.get()) is not None:
            for connection in self.tasks:
                try:
                    connection.send_bytes(message)
                except OSError:  # a dead worker: its receiver thread reports it
                    pass

    def _receive(self, connection: Connection) -> None:
        """Move a worker's messages into `arrived` as they come; None when it is gone."""
        while True:
            try:
                message: bytes | None = connection.recv_bytes()
            except (EOFError, OSError):
                message = None  # the worker is gone
            with self.ready:
                self.arrived.append(message)
                self.ready.notify_all()
            if message is None:
                return

    def submit(self, documents: list[dict[str, Any]], chunks: int, canonical: bool) -> int:
        """Queue a job of `chunks` chunks; returns its id."""
        message = pickle.dumps((documents, canonical), pickle.HIGHEST_PROTOCOL)
        with self.lock:  # threads may share the pool
            job = self.next_job
            self.next_job += 1
            self.withdraw(job - _SLOTS)  # its slot is reused (a run left open that long)
            with self.claims.get_lock():
                raw = self.claims.get_obj()
                slot = 3 * (job % _SLOTS)
                raw[slot], raw[slot + 1], raw[slot + 2] = job, 0, chunks
            self.inbox[job] = {}
            self.outbox.put(job.to_bytes(8, "little") + message)
        return job

    def withdraw(self, job: int) -> None:
        """Stop handing out the job's chunks and drop its results (its run is over)."""
        with self.claims.get_lock():
            raw = self.claims.get_obj()
            slot = 3 * (job % _SLOTS)
            if raw[slot] == job:
                raw[slot + 1] = raw[slot + 2]
        self.inbox.pop(job, None)

    def collect(self, timeout: float) -> None:
        """File the results that arrived (waiting up to `timeout` seconds for some); a dead
        worker marks the pool broken (its runs then do the missing chunks themselves)."""
        with self.ready:
            if not self.arrived and timeout > 0:
                self.ready.wait(timeout)
            arrived, self.arrived = self.arrived, []
        for message in arrived:
            if message is None:
                self._break()
                continue
            job, index, out = pickle.loads(message)
            if job in self.inbox:
                self.inbox[job][index] = _loads(out)
        if not arrived and timeout > 0 and not all(p.is_alive() for p in self.processes):
            self._break()

    def _break(self) -> None:
        if self.broken:
            return
        self.broken = True
        _POOLS.pop((len(self.processes), os.getpid()), None)
        self.outbox.put(None)  # ends the sender thread
        for process in self.processes:
            if process.is_alive():
                process.kill()


def _loads(payload: bytes | None) -> list[Any] | None:
    """A chunk's results, or None (redone by the caller) when they do not read back."""
    if payload is None:
        return None
    try:
        return pickle.loads(payload)  # type: ignore[no-any-return]
    except Exception:  # e.g. an error class that does not unpickle
        return None


_POOLS: dict[tuple[int, int], _Pool] = {}


def _pool(workers: int) -> _Pool:
    """The pool of `workers` worker processes of this process (a forked child makes its own:
    the key holds the pid), created on first use and reused."""
    key = (workers, os.getpid())
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = _Pool(workers)
    return pool


def _in_order(
    pool: _Pool,
    job: int,
    inbox: dict[int, list[Any] | None],
    documents: list[dict[str, Any]],
    chunks: int,
    canonical: bool,
) -> Iterator[EventCheck | BatterytraceError]:
    """The results of a job in order. For each chunk: its result if a worker sent it; else
    this process checks it if no worker claimed it, or checks the last unclaimed chunk
    (work stealing) while the worker finishes it, or, with nothing left to claim, waits."""
    try:
        for i in range(chunks):
            while i not in inbox:
                if pool.broken or job not in pool.inbox:
                    # A worker died, or the job's slot was reused: the rest is done here.
                    inbox[i] = None
                    break
                pool.collect(0)
                if i in inbox:
                    break
                index = _claim(pool.claims, job, i)
                if index is not None:
                    inbox[index] = _precheck_chunk(
                        documents[index * _CHUNK : (index + 1) * _CHUNK], canonical)
                else:
                    pool.collect(_WAIT)
            out = inbox.pop(i)
            if out is None:  # the worker could not check it (died, or failed unexpectedly)
                out = _precheck_chunk(documents[i * _CHUNK : (i + 1) * _CHUNK], canonical)
            yield from out
    finally:
        pool.withdraw(job)


def default_processes() -> int:
    """Processes for signature checks (this one included): the cores available, at most 2."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 2))


def precheck_all(
    documents: Sequence[dict[str, Any]], processes: int | None = None, *, canonical: bool = True
) -> Iterator[EventCheck | BatterytraceError]:
    """`precheck_event` of each document, in order, errors as values.

    `processes` counts this process: with n > 1, a pool of n - 1 workers takes chunks of the
    batch, and this process, whenever the chunk it needs next is not ready, takes the last
    chunk no worker has started (work stealing), so every core stays busy while the caller
    applies the earlier results. Short batches, or n <= 1, run in-process.
    `canonical=False`: the results carry no canonical bytes (less to send back when no
    entry is built from them, as in a replay).
    """
    processes = default_processes() if processes is None else processes
    if processes <= 1 or len(documents) < POOL_THRESHOLD:
        return iter(check_event_documents([(d, None) for d in documents], canonical=canonical))
    documents = list(documents)
    chunks = -(-len(documents) // _CHUNK)
    # Submitted now, so the workers start while the caller prepares (parsing, prefetch).
    pool = _pool(processes - 1)
    try:
        job = pool.submit(documents, chunks, canonical)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        # Not plain JSON data: checked here, each document's error in its place.
        return iter(check_event_documents([(d, None) for d in documents], canonical=canonical))
    return _in_order(pool, job, pool.inbox[job], documents, chunks, canonical)
