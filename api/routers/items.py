"""Serialized items (cells, modules, packs, vehicles): holder, history, trace."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .common import PROBLEMS, with_state

router = APIRouter(prefix="/items", tags=["items"], responses=PROBLEMS)

# Item ids are URIs: see lots.py for the order of the routes.


def item_view(request: Request, item_id: str) -> dict[str, Any]:
    return with_state(request, lambda _l, view, _r, _s: view.item(item_id))


@router.get("/{item_id:path}/holders", summary="The holder of an item (its assembly root's)")
def item_holders(request: Request, item_id: str) -> list[dict[str, Any]]:
    view = item_view(request, item_id)
    return [{"holder": view["holder"], "status": view["status"]}]


@router.get("/{item_id:path}/history", summary="Events of an item, in log order")
def item_history(request: Request, item_id: str) -> list[dict[str, Any]]:
    return item_view(request, item_id)["history"]


@router.get("/{item_id:path}/trace", summary="An item with everything upstream and downstream")
def item_trace(request: Request, item_id: str) -> dict[str, Any]:
    view = item_view(request, item_id)
    return {**view, **with_state(request, lambda _l, state, _r, _s: state.trace(item_id))}


@router.get("/{item_id:path}", summary="Holder, mass, composition, assembly and history")
def show_item(request: Request, item_id: str) -> dict[str, Any]:
    return item_view(request, item_id)
