"""Lots of bulk material: holders and quantities, history, trace (the CLI's views)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .common import PROBLEMS, with_state

router = APIRouter(prefix="/lots", tags=["lots"], responses=PROBLEMS)

# Lot ids are URIs: the `path` converter takes them with their slashes (or URL-encoded); the
# sub-resources are declared first so that ".../trace" is not read as part of the id.


def lot_view(request: Request, lot_id: str) -> dict[str, Any]:
    return with_state(request, lambda _l, view, _r, _s: view.lot(lot_id))


@router.get("/{lot_id:path}/holders", summary="Who holds how much of a lot (kg, exact)")
def lot_holders(request: Request, lot_id: str) -> list[dict[str, Any]]:
    return lot_view(request, lot_id)["holders"]


@router.get("/{lot_id:path}/history", summary="Events of a lot, in log order")
def lot_history(request: Request, lot_id: str) -> list[dict[str, Any]]:
    return lot_view(request, lot_id)["history"]


@router.get("/{lot_id:path}/trace", summary="A lot with everything upstream and downstream")
def lot_trace(request: Request, lot_id: str) -> dict[str, Any]:
    view = lot_view(request, lot_id)
    return {**view, **with_state(request, lambda _l, state, _r, _s: state.trace(lot_id))}


@router.get("/{lot_id:path}", summary="Holders, composition and history of a lot")
def show_lot(request: Request, lot_id: str) -> dict[str, Any]:
    return lot_view(request, lot_id)
