"""Facilities (mine sites, plants, depots): list, show, admin-signed registration."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from batterytrace.ledger.custody_errors import UnknownFacilityError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .common import PROBLEMS, all_rows, created, results_json, with_state
from .participants import ADMIN_BODY, _expect_type, append_admin

router = APIRouter(prefix="/facilities", tags=["facilities"], responses=PROBLEMS)


@router.get("", summary="Registered facilities")
def list_facilities(request: Request) -> list[dict[str, Any]]:
    return [asdict(f) for f in all_rows(request, "facility")]


@router.post("", status_code=201, summary="Register a facility (admin-signed)")
async def register_facility(request: Request, document: dict[str, Any] = ADMIN_BODY
                            ) -> JSONResponse:
    _expect_type(document, "FacilityRegistration")
    result = await append_admin(request, document)
    return created({"id": document.get("id"), **results_json([result])[0]}, [result])


@router.get("/{facility_id:path}", summary="A facility (its URI, URL-encoded or not)")
def show_facility(request: Request, facility_id: str) -> dict[str, Any]:
    def show(_l: Any, _c: Any, registry: Any, _s: Any) -> dict[str, Any]:
        facility = registry.facility(facility_id)
        if facility is None:
            raise UnknownFacilityError(f"facility {facility_id} is not registered")
        return asdict(facility)

    return with_state(request, show)
