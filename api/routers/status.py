"""Bitstring Status List credentials kept by the ledger (signed by their issuers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from .common import PROBLEMS, ledger_of, store_of

router = APIRouter(prefix="/status-lists", tags=["status lists"], responses=PROBLEMS)


@router.get("", summary="The status lists kept here")
def list_status_lists(request: Request,
                      issuer: str | None = Query(None, description="Issuer DID")
                      ) -> list[dict[str, Any]]:
    return store_of(request).status_lists(issuer)


@router.get("/{path:path}", summary="A published BitstringStatusListCredential (its URL)")
def status_list(request: Request, path: str) -> dict[str, Any]:
    url = f"{ledger_of(request).public_url.rstrip('/')}/status-lists/{path}"
    return store_of(request).status_list_credential(url)
