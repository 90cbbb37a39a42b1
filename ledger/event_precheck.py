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
from dataclasses import dataclass, field
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


def _precheck_or_error(document: dict[str, Any]) -> PrecheckedEvent | BatterytraceError:
    # Errors travel back as values: the caller raises the first one in log order.
    try:
        return precheck_event(document)
    except BatterytraceError as exc:
        return exc


def _precheck_chunk(documents: list[dict[str, Any]]) -> list[Any]:
    return [_precheck_or_error(d) for d in documents]


# --- the pool -----------------------------------------------------------------------------

_GENERATION, _NEXT = 0, 1  # slots of the shared claim array
_STOP = 1 << 30  # a claim counter past any chunk: the workers stop claiming


def _claim(shared: Any, generation: int) -> int | None:
    """The next unclaimed chunk of `generation`, or None when that run is over."""
    with shared.get_lock():
        if shared[_GENERATION] != generation or shared[_NEXT] >= _STOP:
            return None
        index = shared[_NEXT]
        shared[_NEXT] = index + 1
        return index


def _worker_main(conn: Any, shared: Any) -> None:
    """A worker: receive a run (generation, chunks), check the chunks it claims, send each
    result back, then report itself idle."""
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent went away
            return
        generation, chunks = message
        while True:
            index = _claim(shared, generation)
            if index is None or index >= len(chunks):
                break
            try:
                conn.send((generation, index, _precheck_chunk(chunks[index])))
            except Exception:
                conn.send((generation, index, None))
        conn.send((generation, None, None))


class _Pool:
    """Worker processes fed through pipes by the calling thread (see the module docstring)."""

    def __init__(self, workers: int) -> None:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        self.owner = os.getpid()
        self.shared = context.Array("q", [0, _STOP])
        self.conns: list[Any] = []
        self.busy: list[bool] = []
        for _ in range(workers):
            parent, child = context.Pipe()
            # fork: the workers start in milliseconds with the schema already compiled.
            process = context.Process(target=_worker_main, args=(child, self.shared),
                                      daemon=True)
            process.start()
            child.close()
            self.conns.append(parent)
            self.busy.append(False)
        self.generation = 0

    def _settle(self) -> None:
        """Stop the current run and wait until every worker is idle (so that a new run can
        be sent without both ends blocking on full pipes)."""
        with self.shared.get_lock():
            self.shared[_NEXT] = _STOP
        for i, conn in enumerate(self.conns):
            while self.busy[i]:
                generation, index, _ = conn.recv()
                if index is None and generation == self.generation:
                    self.busy[i] = False

    def run(self, documents: Sequence[dict[str, Any]]) -> Iterator[Any]:
        """Start checking `documents` now; iterate the results in order."""
        self._settle()
        chunks = [list(documents[i : i + _CHUNK]) for i in range(0, len(documents), _CHUNK)]
        self.generation += 1
        with self.shared.get_lock():
            self.shared[_GENERATION] = self.generation
            self.shared[_NEXT] = 0
        for i, conn in enumerate(self.conns):
            conn.send((self.generation, chunks))
            self.busy[i] = True
        return self._in_order(self.generation, chunks)

    def _in_order(self, generation: int, chunks: list[list[dict[str, Any]]]) -> Iterator[Any]:
        done: dict[int, list[Any] | None] = {}
        for i, chunk in enumerate(chunks):
            while i not in done:
                if generation != self.generation:  # a newer run took the workers
                    done[i] = None
                    break
                with self.shared.get_lock():
                    claimed = self.shared[_NEXT] > i
                    if not claimed:  # nobody started it: check it here
                        self.shared[_NEXT] = i + 1
                if not claimed or not any(self.busy):  # (idle workers: it was lost)
                    done[i] = None
                    break
                self._receive(generation, done)
            results = done.pop(i)
            yield from _precheck_chunk(chunk) if results is None else results

    def _receive(self, generation: int, done: dict[int, list[Any] | None]) -> None:
        """Wait for one message from any worker and file it."""
        waiting = [c for c, busy in zip(self.conns, self.busy, strict=True) if busy]
        for conn in multiprocessing.connection.wait(waiting):
            message_generation, index, results = conn.recv()
            if index is None:
                if message_generation == self.generation:
                    self.busy[self.conns.index(conn)] = False
            elif message_generation == generation:
                done[index] = results


_POOLS: dict[int, _Pool] = {}


def _pool(workers: int) -> _Pool:
    """A pool of `workers` processes, created once per process and reused."""
    pool = _POOLS.get(workers)
    if pool is None or pool.owner != os.getpid():  # a forked child must not share its parent's
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
    documents: Sequence[dict[str, Any]], processes: int | None = None
) -> Iterator[PrecheckedEvent | BatterytraceError]:
    """`precheck_event` of each document, in order, errors as values.

    `processes` counts this process: with n > 1, n - 1 workers start on the batch at once
    and this process checks the chunks nobody has claimed when it needs them, so every core
    stays busy while the caller applies the earlier results. Only one run is in flight per
    pool: starting another abandons the previous one (its remaining chunks are then checked
    in-process). Short batches, or n <= 1, run in-process.
    """
    processes = default_processes() if processes is None else processes
    if processes <= 1 or len(documents) < POOL_THRESHOLD:
        return (_precheck_or_error(document) for document in documents)
    return _pool(processes - 1).run(documents)
