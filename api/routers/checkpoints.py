"""Signed checkpoints (C2SP signed notes) and the log's identity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from .common import PROBLEMS, SeqPath, ledger_of

router = APIRouter(tags=["checkpoints"], responses=PROBLEMS)

TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}


def _json(cp: Any, note: bytes) -> dict[str, Any]:
    return {"origin": cp.origin, "size": cp.size, "root": cp.root.hex(), "note": note.decode()}


@router.get("/log", summary="Origin, size, root and verifier key of the log")
def log_info(request: Request) -> dict[str, Any]:
    return {k: v for k, v in ledger_of(request).info().items() if k != "treeCache"}


@router.get("/checkpoint", response_class=PlainTextResponse, responses={200: TEXT},
            summary="The latest signed checkpoint with its witness cosignatures, C2SP text "
            "(the tlog-tiles checkpoint)")
def checkpoint_text(request: Request) -> PlainTextResponse:
    _, note = ledger_of(request).published_checkpoint()
    return PlainTextResponse(note.decode(), headers={"Cache-Control": "no-cache"})


@router.get("/checkpoints/latest", summary="The latest signed checkpoint (JSON)")
def latest(request: Request) -> dict[str, Any]:
    return _json(*ledger_of(request).latest_checkpoint())


@router.get("/checkpoints/{size}", summary="The checkpoint signed at a tree size (JSON)")
def by_size(request: Request, size: SeqPath) -> dict[str, Any]:
    from batterytrace.ledger.checkpoint import Checkpoint

    ledger = ledger_of(request)
    note = ledger.checkpoint_note(size)
    return _json(Checkpoint(ledger.origin, size, ledger.root(size)), note)


@router.get("/checkpoints/{size}/note", response_class=PlainTextResponse,
            responses={200: TEXT}, summary="The checkpoint signed at a size, C2SP text")
def note_by_size(request: Request, size: SeqPath) -> PlainTextResponse:
    return PlainTextResponse(ledger_of(request).checkpoint_note(size).decode())
