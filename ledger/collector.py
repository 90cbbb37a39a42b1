"""Pausing the cyclic garbage collector's automatic passes around bulk work.

A batch append (or a bundle replay) allocates and frees thousands of objects that reference
counting alone reclaims; the automatic passes it triggers find no cycles there, but each full
pass walks every object the process holds (~50 ms in a process that imported the ledger's
libraries). Pausing them for the length of the work and letting them resume afterwards
skips those walks; the garbage they would have found waits for the next pass.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def automatic_collection_paused() -> Iterator[None]:
    """Switch the collector's automatic passes off for the block (on the main thread only:
    the collector is process-wide, and a server's worker threads must not switch it off for
    each other); restored on the way out, also on error. Nested uses are no-ops."""
    if not gc.isenabled() or threading.current_thread() is not threading.main_thread():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
