"""Merkle proofs: inclusion, consistency, and C2SP tlog-proof files."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from .checkpoints import TEXT
from .common import PROBLEMS, OptionalSeqQuery, SeqPath, SeqQuery, ledger_of

router = APIRouter(prefix="/proofs", tags=["proofs"], responses=PROBLEMS)


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@router.get("/inclusion", summary="Inclusion proof of an entry (default: latest checkpoint)")
def inclusion(request: Request, seq: SeqQuery, size: OptionalSeqQuery = None) -> dict[str, Any]:
    ledger = ledger_of(request)
    size = ledger.latest_checkpoint()[0].size if size is None else size
    proof = ledger.inclusion_proof(seq, size)
    return {"index": seq, "size": size, "leafHash": ledger.entry(seq).leaf_hash.hex(),
            "root": ledger.root(size).hex(), "hashes": _b64(proof)}


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
