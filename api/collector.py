"""The garbage collector of a server process, settled once its startup is done.

A server's heap after startup is mostly objects that live as long as the process: modules,
the FastAPI app and its routes, pydantic models, SQLAlchemy's metadata, the open ledger. The
collector's full (oldest-generation) passes walk all of them each time, for nothing, and a
request that arrives during one waits for it. `settle_after_startup` collects once and then
freezes what is left (`gc.freeze`): those objects move to a permanent generation the
collector never walks, so a later full pass walks only what the server allocated since.
Reference counting still frees everything as before; cycles made after startup are still
collected. `batterytrace serve`'s app calls it at the end of its startup (api/app.py).
"""

from __future__ import annotations

import gc


def settle_after_startup() -> int:
    """Collect, then freeze the surviving objects out of the collector's passes; the number
    of objects frozen (for logs and tests). Idempotent: later calls freeze what is new."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
