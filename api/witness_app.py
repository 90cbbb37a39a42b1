"""The witness's HTTP face (C2SP tlog-witness): `POST /add-checkpoint`.

200: the cosignature line(s), `text/plain; charset=utf-8`; 409: the size last cosigned and a
newline, `text/x.tlog.size`; other refusals: RFC 9457 problem details with the spec's status
(400, 403, 404, 422). Thin: `ledger/witness.py` decides. Bodies over 1 MiB are refused before
they are read (413, `api/limits.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from batterytrace.ledger.witness import SizeConflictError, Witness, WitnessRefusal
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from .limits import RequestLimits

MAX_REQUEST_BYTES = 1024 * 1024


def create_witness_app(home: Path) -> FastAPI:
    """The app of the witness in `home` (one `Witness`, opened once)."""
    witness = Witness(home)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        witness.close()

    app = FastAPI(title="batterytrace witness", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.witness = witness

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()  # bounded by RequestLimits (413 above 1 MiB)
        try:
            # The SQLite transaction blocks: off the event loop.
            lines = await asyncio.to_thread(witness.add_checkpoint, body)
        except SizeConflictError as exc:
            return Response(f"{exc.details['size']}\n", status_code=409,
                            media_type="text/x.tlog.size")
        except WitnessRefusal as exc:
            return JSONResponse(exc.to_problem("/add-checkpoint"), status_code=exc.http_status,
                                media_type="application/problem+json")
        return Response(lines, media_type="text/plain; charset=utf-8")

    app.add_middleware(RequestLimits, max_body_bytes=MAX_REQUEST_BYTES)
    return app
