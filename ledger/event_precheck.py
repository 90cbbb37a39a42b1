"""The position-independent half of checking an event credential, runnable in worker processes.

Checking a DTE credential is (a) schema, digest and signature, which depend on the document
alone, and (b) the key's validity at the entry's log position and the custody rules, which
depend on the state left by the entries before it. (a) is most of the CPU and runs here, in a
small process pool for batches large enough to pay for it; (b) stays in order in the caller.

The pool is a `ProcessPoolExecutor` (forked workers, created once per process) fed chunks of
a batch; the caller takes the last chunk no worker has started whenever the one it needs next
is not ready (work stealing), so both cores stay busy whatever the rules cost. Results carry
each document's canonical bytes (the ledger entry reuses them), or none for a replay.

The signature is checked against the key named by the proof's verification method
(`<did>#<publicKeyMultibase>`, how the registry names keys); the caller then requires the
registry to hold that very key, valid at the position, for the issuer (`PrecheckedEvent`).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from batterytrace.credentials.data_integrity import secured_canonical_parts, verify_proofs
from batterytrace.credentials.did import VerificationMethod
from batterytrace.credentials.errors import (
    BatterytraceError,
    DidResolutionError,
    MalformedProofError,
    ProofVerificationError,
)
from batterytrace.credentials.keys import decode_public_multibase

from .events import validate_dte_schema

# Below this many documents a batch is checked in-process: handing work to the pool costs
# about a millisecond of latency, worth paying only when the batch is long.
POOL_THRESHOLD = 64
_CHUNK = 32


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


def precheck_event(
    document: dict[str, Any], *, check_schema: bool = True, canonical: bool = True
) -> PrecheckedEvent:
    """Schema, digest, and the single proof's signature by the key its method names.

    The document is canonicalized once for both the digest and the signature (the signed
    bytes are the document without its proof); `canonical=False` leaves the bytes out of the
    result (the digest is still computed: replay and bundles compare it).
    """
    if check_schema:
        validate_dte_schema(document)
    if not isinstance(document, dict):
        raise MalformedProofError("a secured document must be a JSON object")
    unsecured, whole = secured_canonical_parts(document)
    results = verify_proofs(document, _NamedKeyResolver(), unsecured_canonical=unsecured)
    issuer = document.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else None
    if len(results) != 1 or results[0].controller != issuer_id:
        raise ProofVerificationError(
            "a traceability event carries one proof, by a key of its issuer"
        )
    vm = results[0].verification_method
    return PrecheckedEvent(
        hashlib.sha256(whole).hexdigest(), vm, vm.partition("#")[2], whole if canonical else b""
    )


def _precheck_or_error(
    document: dict[str, Any], canonical: bool = True
) -> PrecheckedEvent | BatterytraceError:
    # Errors travel back as values: the caller raises the first one in log order.
    try:
        # Without the bytes (replay needs none) a result is ~150 bytes instead of ~2 KB.
        return precheck_event(document, canonical=canonical)
    except BatterytraceError as exc:
        return exc


def _precheck_chunk(documents: list[dict[str, Any]], canonical: bool = True) -> list[Any]:
    return [_precheck_or_error(d, canonical) for d in documents]


# --- the pool ---------------------------------------------------------------------------

_POOLS: dict[tuple[int, int], Executor] = {}


def _pool(processes: int) -> Executor:
    """A process pool of `processes` workers, created once per process (a forked child makes
    its own: the key holds the pid) and reused."""
    key = (processes, os.getpid())
    pool = _POOLS.get(key)
    if pool is None:
        # fork: the workers start in milliseconds with the schema already compiled.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context(method))
        _POOLS[key] = pool
    return pool


def _in_order(
    chunks: list[list[dict[str, Any]]],
    futures: list[Future[list[Any]]],
    canonical: bool,
    processes: int,
) -> Iterator[PrecheckedEvent | BatterytraceError]:
    stolen: dict[int, list[Any]] = {}
    last = len(chunks) - 1
    for i, future in enumerate(futures):
        while i not in stolen and not future.done() and last > i:
            if futures[last].cancel():
                stolen[last] = _precheck_chunk(chunks[last], canonical)
            last -= 1
        if i in stolen:
            yield from stolen.pop(i)
        elif future.cancel():  # not started by a worker yet: do it here
            yield from _precheck_chunk(chunks[i], canonical)
        else:
            try:
                yield from future.result()
            except BrokenProcessPool:  # a worker died: this chunk here, a new pool next time
                _POOLS.pop((processes, os.getpid()), None)
                yield from _precheck_chunk(chunks[i], canonical)


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

    `processes` counts this process: with n > 1, a pool of n - 1 workers takes chunks of the
    batch, and this process, whenever the chunk it needs next is not ready, takes the last
    chunk no worker has started (work stealing), so every core stays busy while the caller
    applies the earlier results. Short batches, or n <= 1, run in-process.
    `canonical=False`: the results carry no canonical bytes (less to send back when no
    entry is built from them, as in a replay).
    """
    processes = default_processes() if processes is None else processes
    if processes <= 1 or len(documents) < POOL_THRESHOLD:
        return (_precheck_or_error(document, canonical) for document in documents)
    chunks = [list(documents[i : i + _CHUNK]) for i in range(0, len(documents), _CHUNK)]
    # Submitted now, so the workers start while the caller prepares (parsing, prefetch).
    try:
        futures = [_pool(processes - 1).submit(_precheck_chunk, c, canonical) for c in chunks]
    except BrokenProcessPool:  # a worker died since the last batch: start a new pool
        _POOLS.pop((processes - 1, os.getpid()), None)
        futures = [_pool(processes - 1).submit(_precheck_chunk, c, canonical) for c in chunks]
    return _in_order(chunks, futures, canonical, processes - 1)
