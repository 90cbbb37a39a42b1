"""The log as C2SP tlog-tiles, on the paths `ledger publish` writes: `GET /tile/...` (hash
tiles and entry bundles of the latest signed checkpoint's tree; `GET /checkpoint` is in
checkpoints.py). Full tiles are immutable (cached a year), partial ones for a few seconds."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from .common import PROBLEMS, ledger_of

router = APIRouter(tags=["tiles"], responses=PROBLEMS)
IMMUTABLE = "public, max-age=31536000, immutable"
MUTABLE = "public, max-age=5"


@router.get("/tile/{path:path}", summary="A C2SP tlog-tiles hash tile or entry bundle",
            response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
async def tile(request: Request, path: str) -> Response:
    from batterytrace.ledger.publish import tile_bytes
    from batterytrace.ledger.tiles import TileNotFoundError

    ledger = ledger_of(request)
    size = ledger.latest_checkpoint()[0].size
    data = await run_in_threadpool(tile_bytes, ledger, size, f"tile/{path}")
    if data is None:
        raise TileNotFoundError(f"no tile {path!r:.80} in the tree of size {size}")
    cache = MUTABLE if ".p/" in path else IMMUTABLE
    return Response(data, media_type="application/octet-stream",
                    headers={"Cache-Control": cache})
