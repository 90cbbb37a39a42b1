"""EPCIS 2.0 out: `GET /epcis/events?lot=URI | ?item=URI` answers the events of a lot or item as
an EPCISDocument (`application/ld+json`), each with its log position and inclusion proof
(`batterytrace:ledger`); the resolver's `gs1:epcis` link points here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from .common import PROBLEMS, ledger_of

router = APIRouter(tags=["epcis"], responses=PROBLEMS)


@router.get("/epcis/events", summary="Events of a lot or an item as an EPCIS 2.0 document")
def epcis_events(request: Request, lot: str | None = Query(None, description="Lot URI"),
                 item: str | None = Query(None, description="Item URI")) -> Any:
    from batterytrace.ledger.epcis_io import export_epcis

    document = export_epcis(ledger_of(request), lot=lot, item=item)
    return JSONResponse(document, media_type="application/ld+json")
