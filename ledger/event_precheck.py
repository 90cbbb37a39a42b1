"""The position-independent half of checking an event credential, runnable in worker processes.

Checking a DTE credential is (a) schema, digest and signature, which depend on the document
alone, and (b) the key's validity at the entry's log position and the custody rules, which
depend on the state left by the entries before it. (a) is most of the CPU and runs here, in a
small process pool for batches large enough to pay for it; (b) stays in order in the caller.

The pool is a few forked workers driven through pipes by the calling thread itself, with no
helper threads: `concurrent.futures` feeds its workers from threads that need the GIL, and
while the caller applies custody rules (pure Python) each hand-over waited for a GIL switch
(5 ms), which kept two processes at 1.07x one. Work is split into chunks claimed from a shared
counter: workers claim from the front, and the caller, when the chunk it needs next is not
claimed yet, claims and checks it itself, so both cores stay busy whatever the rules cost.

The signature is checked against the key named by the proof's verification method
(`<did>#<publicKeyMultibase>`, how the registry names keys); the caller then requires the
registry to hold that very key, valid at the position, for the issuer (`PrecheckedEvent`).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.connection
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import verify_proofs
from batterytrace.credentials.did import VerificationMethod
from batterytrace.credentials.errors import (
    BatterytraceError,
    DidResolutionError,
    ProofVerificationError,
)
from batterytrace.credentials.keys import decode_public_multibase

from .events import validate_dte_schema

# Below this many documents a batch is checked in-process: handing work to the pool costs
# about a millisecond of latency, worth paying only when the batch is long.
POOL_THRESHOLD = 64
_CHUNK = 16


@dataclass(frozen=True)
class PrecheckedEvent:
    """An event credential whose schema and signature verified: its digest and signer, and
    its canonical bytes (RFC 8785), computed once here and reused for the ledger entry."""

    digest: str
    verification_method: str
    public_multibase: str
    canonical: bytes = field(default=b"", repr=False, compare=False)


class _NamedKeyResolver:
    """Resolves `<did>#<multibase>` to the key it names (the registry is consulted later)."""

    def resolve_verification_method(self, vm_id: str, relationship: str) -> VerificationMethod:
        did, _, fragment = vm_id.partition("#")
        if not did.startswith("did:") or not fragment.startswith("z"):
            raise DidResolutionError(f"{vm_id:.120} does not name a registered key")
        return VerificationMethod(vm_id, did, "Multikey", _public_key(fragment))


@lru_cache(maxsize=4096)
def _public_key(multibase: str) -> bytes:
    return decode_public_multibase(multibase)


def precheck_event(document: dict[str, Any], *, check_schema: bool = True) -> PrecheckedEvent:
    """Schema, digest, and the single proof's signature by the key its method names."""
    if check_schema:
        validate_dte_schema(document)
    canonical = canonicalize(document)
    results = verify_proofs(document, _NamedKeyResolver())
    issuer = document.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else None
    if len(results) != 1 or results[0].controller != issuer_id:
        raise ProofVerificationError(
            "a traceability event carries one proof, by a key of its issuer"
        )
    vm = results[0].verification_method
    return PrecheckedEvent(
        hashlib.sha256(canonical).hexdigest(), vm, vm.partition("#")[2], canonical
    )


def _precheck_or_error(
    document: dict[str, Any], canonical: bool = True
) -> PrecheckedEvent | BatterytraceError:
    # Errors travel back as values: the caller raises the first one in log order.
    try:
        check = precheck_event(document)
    except BatterytraceError as exc:
        return exc
    # Without the bytes (replay needs none) a result is ~150 bytes instead of ~2 KB.
    return check if canonical else replace(check, canonical=b"")


def _precheck_chunk(documents: list[dict[str, Any]], canonical: bool = True) -> list[Any]:
    return [_precheck_or_error(d, canonical) for d in documents]


# --- the pool -----------------------------------------------------------------------------

_GENERATION, _FRONT, _BACK = 0, 1, 2  # slots of the shared claim array: chunks [front, back)
# are unclaimed; workers take the front one, the caller steals the back one
# Results a worker may get ahead of the caller (who reads them only when it needs them, e.g.
# not while it writes the previous batch): a pipe buffer this large, where Linux allows it.
_RESULTS_PIPE_BYTES = 4 << 20


def _claim(shared: Any, generation: int) -> int | None:
    """The front unclaimed chunk of `generation`, or None when that run is over."""
    with shared.get_lock():
        if shared[_GENERATION] != generation or shared[_FRONT] >= shared[_BACK]:
            return None
        index = shared[_FRONT]
        shared[_FRONT] = index + 1
        return index


def _worker_main(tasks: Any, results: Any, shared: Any) -> None:
    """A worker: receive a run (generation, chunks, canonical), check the chunks it claims,
    send each result back, then report itself idle."""
    while True:
        try:
            generation, chunks, canonical = tasks.recv()
        except EOFError:  # the parent went away
            return
        while True:
            index = _claim(shared, generation)
            if index is None:
                break
            try:
                results.send((generation, index, _precheck_chunk(chunks[index], canonical)))
            except Exception:  # a bug: the caller redoes the chunk itself and raises it
                results.send((generation, index, None))
        results.send((generation, None, None))


def _enlarge(connection: Any) -> None:
    """Best effort: a larger kernel buffer for a pipe (Linux F_SETPIPE_SZ)."""
    try:
        import fcntl

        try:
            limit = int(open("/proc/sys/fs/pipe-max-size").read())
        except (OSError, ValueError):
            limit = 1 << 20
        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, min(limit, _RESULTS_PIPE_BYTES))
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or not allowed: the worker just waits for the caller to read


class _Pool:
    """Worker processes fed through pipes by the calling thread (see the module docstring)."""

    def __init__(self, workers: int) -> None:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        self.owner = os.getpid()
        self.shared = context.Array("q", [0, 0, 0])
        self.tasks: list[Any] = []
        self.results: list[Any] = []
        self.busy: list[bool] = []
        self.processes: list[Any] = []
        for _ in range(workers):
            task_reader, task_writer = context.Pipe(duplex=False)
            result_reader, result_writer = context.Pipe(duplex=False)
            _enlarge(result_reader)
            # fork: the workers start in milliseconds with the schema already compiled.
            process = context.Process(
                target=_worker_main, args=(task_reader, result_writer, self.shared), daemon=True
            )
            process.start()
            task_reader.close()
            result_writer.close()
            self.processes.append(process)
            self.tasks.append(task_writer)
            self.results.append(result_reader)
            self.busy.append(False)
        self.generation = 0

    def _settle(self) -> None:
        """Stop the current run and wait until every worker is idle (so that a new run can
        be sent without both ends blocking on full pipes)."""
        with self.shared.get_lock():
            self.shared[_BACK] = self.shared[_FRONT]
        for i in range(len(self.results)):
            while self.busy[i]:
                generation, index, _ = self._recv(i)
                if index is None and generation == self.generation:
                    self.busy[i] = False

    def _recv(self, i: int) -> tuple[int, int | None, Any]:
        """A message from worker i; a worker that died counts as idle (its chunks, never
        answered, are checked in-process) and the pool is replaced on its next use."""
        try:
            return self.results[i].recv()
        except (EOFError, OSError):
            self.busy[i] = False
            self.owner = -1
            return (-1, -1, None)

    def run(self, documents: Sequence[dict[str, Any]], canonical: bool = True) -> Iterator[Any]:
        """Start checking `documents` now; iterate the results in order."""
        self._settle()
        chunks = [list(documents[i : i + _CHUNK]) for i in range(0, len(documents), _CHUNK)]
        self.generation += 1
        with self.shared.get_lock():
            self.shared[_GENERATION] = self.generation
            self.shared[_FRONT] = 0
            self.shared[_BACK] = len(chunks)
        for i, tasks in enumerate(self.tasks):
            try:
                tasks.send((self.generation, chunks, canonical))
                self.busy[i] = True
            except OSError:  # a dead worker: this run goes without it
                self.owner = -1
        return self._in_order(self.generation, chunks, canonical)

    def _in_order(
        self, generation: int, chunks: list[list[dict[str, Any]]], canonical: bool
    ) -> Iterator[Any]:
        done: dict[int, list[Any] | None] = {}
        for i, chunk in enumerate(chunks):
            while i not in done:
                if generation != self.generation or not any(self.busy):
                    done[i] = None  # a newer run took the workers, or they are gone
                    break
                take = self._steal(i)
                if take is None:  # every chunk is claimed: wait for the workers
                    self._receive(generation, done, None)
                    continue
                done[take] = _precheck_chunk(chunks[take], canonical)
                self._receive(generation, done, 0)  # make room for the workers
            results = done.pop(i)
            yield from _precheck_chunk(chunk, canonical) if results is None else results

    def _steal(self, needed: int) -> int | None:
        """Claim a chunk for this process: `needed` if no worker took it yet, else the back
        one (workers go front to back, this process back to front), else None."""
        with self.shared.get_lock():
            front, back = self.shared[_FRONT], self.shared[_BACK]
            if front <= needed < back:  # in order, so nothing before it is unclaimed
                self.shared[_FRONT] = needed + 1
                return needed
            if front < back:
                self.shared[_BACK] = back - 1
                return back - 1
            return None

    def _receive(
        self, generation: int, done: dict[int, list[Any] | None], timeout: float | None
    ) -> None:
        """File the messages the workers sent (waiting up to `timeout` for the first)."""
        waiting = [r for r, busy in zip(self.results, self.busy, strict=True) if busy]
        for reader in multiprocessing.connection.wait(waiting, timeout):
            worker = self.results.index(reader)
            while self.busy[worker]:
                message_generation, index, results = self._recv(worker)
                if index is None:
                    if message_generation == self.generation:
                        self.busy[worker] = False
                elif message_generation == generation:
                    done[index] = results
                if not reader.poll():
                    break


_POOLS: dict[int, _Pool] = {}


def _pool(workers: int) -> _Pool:
    """A pool of `workers` processes, created once per process and reused."""
    pool = _POOLS.get(workers)
    if pool is None or pool.owner != os.getpid():  # a forked child must not share its parent's
        if pool is not None and pool.owner == -1:  # broken (a worker died): end the rest
            for process in pool.processes:
                process.kill()
        pool = _POOLS[workers] = _Pool(workers)
    return pool


def default_processes() -> int:
    """Processes for signature checks (this one included): the cores available, at most 2."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 2))


def precheck_all(
    documents: Sequence[dict[str, Any]], processes: int | None = None, *, canonical: bool = True
) -> Iterator[PrecheckedEvent | BatterytraceError]:
    """`precheck_event` of each document, in order, errors as values.

    `processes` counts this process: with n > 1, n - 1 workers start on the batch at once
    and this process checks the chunks nobody has claimed when it needs them, so every core
    stays busy while the caller applies the earlier results. Only one run is in flight per
    pool: starting another abandons the previous one (its remaining chunks are then checked
    in-process). Short batches, or n <= 1, run in-process. `canonical=False`: the results
    carry no canonical bytes (less to send back when no entry is built from them).
    """
    processes = default_processes() if processes is None else processes
    if processes <= 1 or len(documents) < POOL_THRESHOLD:
        return (_precheck_or_error(document, canonical) for document in documents)
    return _pool(processes - 1).run(documents, canonical)
