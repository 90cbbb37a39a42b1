"""The engine's position-independent event checks (`engine.check_event_documents`) for long
batches, on several processes (`pool.ordered_map`); the in-order half stays with the caller.

Results carry each document's canonical bytes (the ledger entry reuses them), or none for a
replay; errors come back as values, in the documents' order, whatever process checked them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from batterytrace.credentials.errors import BatterytraceError

from . import pool
from .engine import EventCheck, check_event_documents
from .pool import default_processes

__all__ = ["POOL_THRESHOLD", "default_processes", "precheck_all"]

# Below this many documents a batch is checked in-process: handing work to the pool costs
# about a millisecond of latency, worth paying only when the batch is long.
POOL_THRESHOLD = 64
_CHUNK = 32


def _precheck_chunk(documents: list[dict[str, Any]], canonical: bool = True) -> list[Any]:
    # Errors travel back as values: the caller raises the first one in log order. The parse
    # is not sent back: the caller parses anyway (prefetch), cheaper than receiving it.
    return check_event_documents([(d, None) for d in documents], canonical=canonical,
                                 keep_credential=False)


def precheck_all(
    documents: Sequence[dict[str, Any]], processes: int | None = None, *, canonical: bool = True
) -> Iterator[EventCheck | BatterytraceError]:
    """The engine's check of each document, in order, errors as values.

    `processes` counts this process: with n > 1 the batch is mapped over n processes
    (`pool.ordered_map`: the workers start at once, this process does the chunks no worker
    has started while the caller applies the earlier results). Short batches, or n <= 1,
    run in-process. `canonical=False`: the results carry no canonical bytes (less to send
    back when no entry is built from them, as in a replay).
    """
    processes = default_processes() if processes is None else processes
    if processes <= 1 or len(documents) < POOL_THRESHOLD:
        return iter(check_event_documents([(d, None) for d in documents], canonical=canonical))
    return pool.ordered_map(_precheck_chunk, documents, processes, chunk=_CHUNK,
                            args=(canonical,))
