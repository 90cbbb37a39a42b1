"""The one pool of worker processes for every parallel path, and the process-wide settings
changed around bulk work. No other module of the package starts processes, pickles, or
touches the garbage collector (tests/test_pool.py asserts it).

The pool maps a module-level function over the chunks of a job, in order:
`ordered_map(fn, items, processes, chunk=...)`, or `Pool.submit` for callers that keep several
jobs in flight (bundle windows). A job is handed to every worker at once (one message,
written by a sender thread); the workers claim its chunks from the front through counters in
shared memory, the caller claims from the back whenever the chunk it needs next is not ready
(work stealing), and receiver threads drain the workers' results, so that neither side waits
for a hand-off. A chunk a worker could not do (it died, or failed other than with a value)
is done by the caller: a dead worker costs speed, never results.

Workers die with their parent: on Linux they ask the kernel for SIGKILL when it goes
(PR_SET_PDEATHSIG), and any worker leaves when its task pipe closes or its parent changes.

Bulk work (`bulk_work`) pauses the cyclic collector's automatic passes: a batch append or a
bundle replay allocates and frees many objects that reference counting alone reclaims, and
each automatic full pass walks every object of the process for nothing; `collect_young`,
called now and then by a long job, collects the young generations meanwhile. A server settles
the collector once its startup is done (`settle_after_startup`: what startup built is frozen
out of the passes), and may time it (`time_collector`, `collector_seconds`: the service's
Server-Timing header).
"""

from __future__ import annotations

import copyreg
import dataclasses
import gc
import io
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: pipes keep their default size
    fcntl = None  # type: ignore[assignment]

CHUNK = 32  # default items per chunk
_SLOTS = 64  # jobs whose claim counters live in shared memory at once
_WAIT = 0.05  # seconds between checks that the workers are alive, while waiting on them
_PIPE_BYTES = 1 << 20  # Linux's default ceiling (pipe-max-size); the default is 64 KB
_PARENT_POLL = 1.0  # seconds between a waiting worker's checks that its parent is alive
_HEADER = 13  # a result message: job (8 bytes), chunk index (4), 1 if a payload follows


def default_processes() -> int:
    """Processes for parallel checks (the caller's included): the cores available, at most 2."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 2))


# --- process-wide settings around bulk work -------------------------------------------------


_BULK_OWNER: list[int] = []  # the thread whose bulk work paused the collector, if any


@contextmanager
def bulk_work() -> Iterator[None]:
    """Pause the collector's automatic passes for the block. Main thread only (the collector
    is process-wide: a server's worker threads must not switch it off for each other);
    restored on the way out, also on error. Nested uses, and a collector found off (a
    caller's choice), are left alone."""
    if threading.current_thread() is not threading.main_thread() or not gc.isenabled():
        yield
        return
    gc.disable()
    _BULK_OWNER.append(threading.get_ident())
    try:
        yield
    finally:
        _BULK_OWNER.clear()
        gc.enable()


def collect_young() -> None:
    """Collect the young generations, when this thread's `bulk_work` paused the collector
    (a long bulk job calls it now and then: its young garbage is not left to pile up)."""
    if _BULK_OWNER and _BULK_OWNER[0] == threading.get_ident():
        gc.collect(1)


def settle_after_startup() -> int:
    """Collect, then freeze the surviving objects out of the collector's passes (`gc.freeze`);
    the number of objects frozen. For a long-lived server once its startup is done: its
    modules, app and open ledger live as long as the process, and each automatic full pass
    would walk them all for nothing (116-148 ms on the service, docs/performance.md).
    Reference counting still frees everything; cycles made later are still collected.
    Idempotent: a later call freezes what is new."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


_COLLECTING = [0.0, 0.0]  # [seconds the collector has taken so far, start of the pass running]


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _COLLECTING[1] = time.perf_counter()
    else:
        _COLLECTING[0] += time.perf_counter() - _COLLECTING[1]


def time_collector() -> None:
    """Start counting the collector's time (`collector_seconds`); idempotent."""
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)


def collector_seconds() -> float:
    """Seconds (wall clock) the collector has taken since `time_collector` was first called."""
    return _COLLECTING[0]


# --- pickling -------------------------------------------------------------------------------


def _state_reducer(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    # What pickle does for a plain dataclass (a new object, then its __dict__), without the
    # generic __reduce_ex__ machinery: half the time per object each way.
    return lambda obj: (copyreg.__newobj__, (cls,), obj.__dict__)  # type: ignore[attr-defined]


def _plain(cls: type) -> bool:
    """A dataclass that pickles by its __dict__ alone (no slots, no custom reduction)."""
    return (dataclasses.is_dataclass(cls) and "__slots__" not in vars(cls)
            and cls.__reduce_ex__ is object.__reduce_ex__
            and cls.__reduce__ is object.__reduce__
            and getattr(cls, "__getstate__", None) is getattr(object, "__getstate__", None))


class _Reducers(dict[type, Callable[[Any], Any]]):
    """copyreg's dispatch table, plus the state reducer of each plain dataclass met."""

    def __missing__(self, cls: type) -> Callable[[Any], Any]:
        if isinstance(cls, type) and _plain(cls):
            reducer = self[cls] = _state_reducer(cls)
            return reducer
        raise KeyError(cls)


_REDUCERS = _Reducers(copyreg.dispatch_table)
# What Decimal.__reduce__ gives, found here at once: a type the table lacks costs a KeyError
# from `_Reducers.__missing__` on every object of it (amounts are in most state rows).
_REDUCERS[Decimal] = lambda value: (Decimal, (str(value),))


def _dumps(value: Any) -> bytes:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _REDUCERS
    pickler.dump(value)
    return out.getvalue()


def dumps_each(values: Iterable[Any]) -> Iterator[bytes]:
    """Each value as bytes, pickled as the pool pickles (plain dataclasses by their
    __dict__), for state this process keeps out of memory (`spill.py`) and reads back
    itself: one pickler for all (a third less per small value than a pickler each), each
    value's bytes standing alone (the memo is cleared between them)."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _REDUCERS
    for value in values:
        out.seek(0)
        out.truncate()
        pickler.clear_memo()
        pickler.dump(value)
        yield out.getvalue()


def loads(data: bytes) -> Any:
    """The value of `dumps_each` bytes this process wrote (never bytes from anyone else)."""
    return pickle.loads(data)


# --- workers --------------------------------------------------------------------------------


def _widen(connection: Connection) -> None:
    """Enlarge a pipe's kernel buffer, so that a whole job or many chunks' results wait in
    it (Linux; best effort: the default size works, with more hand-offs)."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setsize is not None:
        try:
            fcntl.fcntl(connection.fileno(), setsize, _PIPE_BYTES)
        except OSError:  # above this system's pipe-max-size
            pass


def _die_with_parent(parent: int, deathsig: bool) -> None:
    """Ask the kernel to kill this worker when its parent goes (Linux), then make sure the
    parent did not go before the request (a worker reparented already leaves at once)."""
    if deathsig and sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # no prctl: the pipe and parent checks remain
            pass
    if os.getppid() != parent:
        os._exit(0)


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
            return int(raw[slot + 1] - 1)
        raw[slot + 2] -= 1
        return int(raw[slot + 2])


def _work(tasks: Connection, results: Connection, claims: Any, parent: int,
          deathsig: bool) -> None:
    """A worker: for each job received, run the function on the chunks it claims, send
    their results (None for a chunk that raised: the caller redoes it and sees why)."""
    _die_with_parent(parent, deathsig)
    # Forked with the parent's signal handlers (a server's, say): a worker ends on SIGTERM
    # (the parent's exit terminates its daemon workers and waits for them), and leaves a
    # terminal's Ctrl-C to its parent.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for connection in list(_PARENT_ENDS):  # inherited: the parent's ends of other pipes
        connection.close()
    gc.freeze()  # the parent's objects, shared copy-on-write: the collector leaves them be
    while True:
        try:
            while not tasks.poll(_PARENT_POLL):
                if os.getppid() != parent:
                    return
            message = tasks.recv_bytes()
        except (EOFError, OSError):
            return
        job = int.from_bytes(message[:8], "little")
        fn, args, items, size = pickle.loads(memoryview(message)[8:])
        # The items are trees freed by reference counting: the collector's passes over them
        # find nothing, at ~10 % of the time.
        gc.disable()
        try:
            while (index := _claim(claims, job, None)) is not None:
                try:
                    out = _dumps(fn(items[index * size:(index + 1) * size], *args))
                    flag = b"\x01"
                except Exception:  # not a value: the caller redoes the chunk
                    out, flag = b"", b"\x00"
                try:
                    results.send_bytes(job.to_bytes(8, "little") + index.to_bytes(4, "little")
                                       + flag + out)
                except OSError:  # the caller is gone
                    return
        finally:
            gc.enable()


# Every pool's parent-side pipe ends: a forked worker closes its copies, since a worker
# holding another's task pipe open would keep that one from seeing its parent go.
_PARENT_ENDS: weakref.WeakSet[Connection] = weakref.WeakSet()


class Pool:
    """Worker processes, created once per process (`get_pool`) and shared by its jobs."""

    def __init__(self, workers: int) -> None:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context: Any = multiprocessing.get_context(method)  # fork: compiled schemas along
        # Per slot: the job id, its next unclaimed chunk from the front, its end (exclusive).
        self.claims = context.Array("q", 3 * _SLOTS)
        self.next_job = 0
        self.tasks: list[Connection] = []
        self.results: list[Connection] = []
        self.processes: list[Any] = []
        self.broken = False
        self.lock = threading.Lock()
        # job -> {chunk index: results, None when to be redone} for the jobs still open.
        self.inbox: dict[int, dict[int, list[Any] | None]] = {}
        # PR_SET_PDEATHSIG fires when the forking *thread* ends: asked only from the main one.
        deathsig = threading.current_thread() is threading.main_thread()
        for _ in range(workers):
            task_out, task_in = context.Pipe(duplex=False)
            result_out, result_in = context.Pipe(duplex=False)
            _widen(task_in)
            _widen(result_in)
            process = context.Process(
                target=_work, args=(task_out, result_in, self.claims, os.getpid(), deathsig),
                daemon=True)
            self.tasks.append(task_in)
            self.results.append(result_out)
            _PARENT_ENDS.update((task_in, result_out))
            process.start()
            task_out.close()
            result_in.close()
            self.processes.append(process)
        self.outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        threading.Thread(target=self._send, daemon=True, name="pool-sender").start()
        self.arrived: list[bytes | None] = []
        self.ready = threading.Condition()
        for connection in self.results:
            threading.Thread(target=self._receive, args=(connection,), daemon=True,
                             name="pool-receiver").start()

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

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
                message = None
            with self.ready:
                self.arrived.append(message)
                self.ready.notify_all()
            if message is None:
                return

    def submit(self, fn: Callable[..., list[Any]], items: list[Any], chunk: int,
               args: tuple[Any, ...] = ()) -> Job | None:
        """Queue `fn(items[i*chunk:(i+1)*chunk], *args)` for each chunk i (`fn` a module-level
        function). None when the items or arguments do not pickle (the caller runs them)."""
        try:
            message = pickle.dumps((fn, args, items, chunk), pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
            return None
        chunks = -(-len(items) // chunk)
        with self.lock:  # threads may share the pool
            job = self.next_job
            self.next_job += 1
            self.withdraw(job - _SLOTS)  # its slot is reused (a job left open that long)
            with self.claims.get_lock():
                raw = self.claims.get_obj()
                slot = 3 * (job % _SLOTS)
                raw[slot], raw[slot + 1], raw[slot + 2] = job, 0, chunks
            self.inbox[job] = {}
            self.outbox.put(job.to_bytes(8, "little") + message)
        return Job(self, job, fn, args, items, chunk, chunks)

    def withdraw(self, job: int) -> None:
        """Stop handing out the job's chunks and drop its results (it is over)."""
        with self.claims.get_lock():
            raw = self.claims.get_obj()
            slot = 3 * (job % _SLOTS)
            if raw[slot] == job:
                raw[slot + 1] = raw[slot + 2]
        self.inbox.pop(job, None)

    def collect(self, timeout: float) -> None:
        """File the results that arrived (waiting up to `timeout` seconds for some); a dead
        worker marks the pool broken (its jobs then do the missing chunks themselves)."""
        with self.ready:
            if not self.arrived and timeout > 0:
                self.ready.wait(timeout)
            arrived, self.arrived = self.arrived, []
        for message in arrived:
            if message is None:
                self.close()
                continue
            inbox = self.inbox.get(int.from_bytes(message[:8], "little"))
            if inbox is not None:
                inbox[int.from_bytes(message[8:12], "little")] = _loads(message)
        if not arrived and timeout > 0 and not all(p.is_alive() for p in self.processes):
            self.close()

    def close(self) -> None:
        """End the workers and forget the pool (the next use makes a new one)."""
        if self.broken:
            return
        self.broken = True
        if _POOLS.get((len(self.processes), os.getpid())) is self:
            del _POOLS[(len(self.processes), os.getpid())]
        self.outbox.put(None)  # ends the sender thread
        for process in self.processes:
            if process.is_alive():
                process.kill()


def _loads(message: bytes) -> list[Any] | None:
    """A chunk's results, or None (redone by the caller) when there are none or they do not
    read back (e.g. an error class that does not unpickle)."""
    if message[12:_HEADER] != b"\x01":
        return None
    try:
        results: list[Any] = pickle.loads(memoryview(message)[_HEADER:])
        return results
    except Exception:
        return None


class Job:
    """The chunks of one submitted job, taken back in any order the caller likes (`take`),
    each done here when no worker has it (`steal`)."""

    def __init__(self, pool: Pool, job: int, fn: Callable[..., list[Any]], args: tuple[Any, ...],
                 items: list[Any], size: int, chunks: int) -> None:
        self.pool, self.job, self.fn, self.args = pool, job, fn, args
        self.items, self.size, self.chunks = items, size, chunks
        self.inbox = pool.inbox[job]

    def _here(self, index: int) -> None:
        self.inbox[index] = self.fn(self.items[index * self.size:(index + 1) * self.size],
                                    *self.args)

    def _open(self) -> bool:
        return not self.pool.broken and self.job in self.pool.inbox

    def done(self, index: int) -> bool:
        """Whether `take(index)` would not wait for a worker: its results are in (filing
        those that arrived), or no worker will send them (it is done here)."""
        if index not in self.inbox:
            self.pool.collect(0)
        return index in self.inbox or not self._open()

    def steal(self) -> bool:
        """Do here the last chunk no worker has claimed; False when there is none."""
        index = _claim(self.pool.claims, self.job, self.chunks) if self._open() else None
        if index is None:
            return False
        self._here(index)
        return True

    def take(self, index: int, idle: Callable[[], bool] | None = None) -> list[Any]:
        """Chunk `index`'s results: a worker's, or done here if no worker claimed it; while a
        worker has it, this process does the job's last unclaimed chunk, or calls `idle`
        (other work; False when there is none), or waits."""
        inbox = self.inbox
        while index not in inbox:
            if not self._open():  # a worker died, or the job's slot was reused
                break
            self.pool.collect(0)
            if index in inbox:
                break
            claimed = _claim(self.pool.claims, self.job, index)
            if claimed is not None:
                self._here(claimed)
            elif idle is None or not idle():
                self.pool.collect(_WAIT)
        out = inbox.pop(index, None)
        if out is None:  # no worker did it (died, withdrawn, or failed other than by value)
            out = self.fn(self.items[index * self.size:(index + 1) * self.size], *self.args)
        return out

    def close(self) -> None:
        self.pool.withdraw(self.job)


_POOLS: dict[tuple[int, int], Pool] = {}


def has_pool(workers: int) -> bool:
    """Whether this process has its pool of `workers` workers (forked already)."""
    return (workers, os.getpid()) in _POOLS


def get_pool(workers: int) -> Pool:
    """The pool of `workers` worker processes of this process (a forked child makes its own:
    the key holds the pid), created on first use and reused; a pool with a dead worker is
    ended and replaced."""
    key = (workers, os.getpid())
    pool = _POOLS.get(key)
    if pool is not None and not all(process.is_alive() for process in pool.processes):
        pool.close()
        pool = None
    if pool is None:
        pool = _POOLS[key] = Pool(workers)
    return pool


def ordered_map(fn: Callable[..., list[Any]], items: Sequence[Any], processes: int, *,
                chunk: int = CHUNK, args: tuple[Any, ...] = ()) -> Iterator[Any]:
    """The concatenated `fn(chunk, *args)` of the items' chunks, in order, computed on
    `processes` processes (this one included; `fn` module-level, its results lists). The job
    is submitted at once, so the workers start while the caller prepares; this process
    takes the results in order and, while the chunk it needs next is with a worker, does
    the last chunk no worker has claimed."""
    items = list(items)
    job = get_pool(processes - 1).submit(fn, items, chunk, args) if processes > 1 else None
    if job is None:
        return (result for i in range(0, len(items), chunk)
                for result in fn(items[i:i + chunk], *args))
    return _in_order(job)


def _in_order(job: Job) -> Iterator[Any]:
    try:
        for index in range(job.chunks):
            yield from job.take(index)
    finally:
        job.close()
