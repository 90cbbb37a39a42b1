"""Ledger settings: read the settings in force, change them by an admin-signed request."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .common import PROBLEMS, created, ledger_of, results_json
from .participants import ADMIN_BODY, _expect_type, append_admin

router = APIRouter(prefix="/settings", tags=["settings"], responses=PROBLEMS)


@router.get("", summary="Settings in force at the current log size")
def current_settings(request: Request) -> dict[str, Any]:
    ledger = ledger_of(request)
    return ledger.settings_at(ledger.size)


@router.post("", status_code=201, summary="Change settings (admin-signed LedgerSettings)")
async def change_settings(request: Request, document: dict[str, Any] = ADMIN_BODY
                          ) -> JSONResponse:
    _expect_type(document, "LedgerSettings")
    result = await append_admin(request, document, kind="settings")
    return created(results_json([result])[0], [result])
