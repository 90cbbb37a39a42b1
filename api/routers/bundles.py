"""Evidence bundles: export for an item or a lot, streamed as JSON Lines."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from .common import PROBLEMS, ledger_of, store_of

router = APIRouter(prefix="/bundles", tags=["bundles"], responses=PROBLEMS)

JSONL = "application/jsonl"
CHUNK = 64 * 1024


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()


@router.get("", response_class=StreamingResponse,
            responses={200: {"content": {JSONL: {"schema": {"type": "string"}}}}},
            summary="Evidence bundle of an item or a lot (JSON Lines)")
def export(request: Request, item: str | None = Query(None, description="Item URI"),
           lot: str | None = Query(None, description="Lot URI")) -> StreamingResponse:
    from batterytrace.ledger.bundle_export import export_bundle

    store = store_of(request)
    # Written to a spooled file first: an unknown subject is a problem response, not a
    # half-sent stream; large bundles spill to disk instead of memory.
    handle = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    try:
        summary = export_bundle(ledger_of(request), handle, item=item, lot=lot,
                                find_credentials=store.find, lists_for=store.lists_for)
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    name = "bundle.jsonl"
    return StreamingResponse(_chunks(handle), media_type=JSONL, headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Bundle-Entries": str(summary.entries)})
