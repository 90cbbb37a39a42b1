"""The ledger's own did:web document (`GET /.well-known/did.json`, and `GET /did.json` for a
ledger served under a path), derived from its genesis entry (ledger/did_web.py). Participants'
documents are served by the participants router (`/participants/{name}/did.json`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .common import PROBLEMS, ledger_of

router = APIRouter(tags=["participants"], responses=PROBLEMS)


@router.get("/.well-known/did.json", summary="The ledger's DID document (did:web)")
def ledger_did_document(request: Request) -> dict[str, Any]:
    from batterytrace.ledger.did_web import ledger_did_document as document

    ledger = ledger_of(request)
    return document(ledger.public_url, ledger.admin_did, ledger.verifier.vkey)


@router.get("/did.json", summary="The ledger's DID document, for a ledger under a path",
            include_in_schema=False)
def ledger_did_document_under_path(request: Request) -> dict[str, Any]:
    return ledger_did_document(request)
