"""Merkle proofs: inclusion, consistency, and C2SP tlog-proof files."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from ..read_cache import JSON_OBJECT, cached_json, generation
from .checkpoints import TEXT
from .common import PROBLEMS, OptionalSeqQuery, SeqPath, SeqQuery, ledger_of

router = APIRouter(prefix="/proofs", tags=["proofs"], responses=PROBLEMS)


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@router.get("/inclusion", summary="Inclusion proof of an entry (default: latest checkpoint)",
            response_class=Response, responses=JSON_OBJECT)
async def inclusion(request: Request, seq: SeqQuery, size: OptionalSeqQuery = None
                    ) -> Response:
    """A proof at a given size never changes (immutable); against the latest checkpoint it is
    cached under that checkpoint's size and revalidated by ETag."""
    ledger = ledger_of(request)

    def proof_at(at: int) -> dict[str, Any]:
        proof = ledger.inclusion_proof(seq, at)
        return {"index": seq, "size": at, "leafHash": ledger.entry(seq).leaf_hash.hex(),
                "root": ledger.root(at).hex(), "hashes": _b64(proof)}

    if size is not None:
        return await cached_json(request, ("inclusion", seq, size), lambda: proof_at(size),
                                 immutable=True)
    _, latest = await generation(request)
    if latest == 0:  # no checkpoint yet: the ledger says so (CheckpointNotSignedError)
        await run_in_threadpool(ledger.latest_checkpoint)
    return await cached_json(request, ("inclusion", seq, latest), lambda: proof_at(latest),
                             immutable=False)


@router.get("/consistency", summary="Consistency proof between two tree sizes")
def consistency(request: Request, old: SeqQuery, new: SeqQuery) -> dict[str, Any]:
    ledger = ledger_of(request)
    proof = ledger.consistency_proof(old, new)
    return {"oldSize": old, "newSize": new, "oldRoot": ledger.root(old).hex(),
            "newRoot": ledger.root(new).hex(), "proof": _b64(proof)}


@router.get("/tlog/{seq}", response_class=PlainTextResponse, responses={200: TEXT},
            summary="C2SP tlog-proof of an entry against a signed checkpoint")
def tlog(request: Request, seq: SeqPath, size: OptionalSeqQuery = None) -> PlainTextResponse:
    return PlainTextResponse(ledger_of(request).tlog_proof(seq, size).decode())
