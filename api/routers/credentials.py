"""Credentials: publish (by the issuer), fetch when made public, anchors, status changes.

Publishing takes the signed credential and its issuance anchor signed by the issuer: the
anchor authenticates the request (the ledger's anchor validator checks the issuer's key at
the log position, and the credential's own proof), so nobody publishes in another's name.
Credentials live off the log; the publisher says whether the document may be served to
anyone (`public`, kept in `api_credential_visibility`); the anchor record (digest, types,
positions) is public like every log entry.
"""

from __future__ import annotations

from typing import Any

from batterytrace.credentials.errors import InputError
from batterytrace.ledger.credential_store import CredentialNotFoundError
from batterytrace.ledger.service import is_public, set_public
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .common import (
    PROBLEMS,
    append_queued,
    created,
    ledger_of,
    results_json,
    store_of,
    writer_of,
)
from .events import entry_json

router = APIRouter(prefix="/credentials", tags=["credentials"], responses=PROBLEMS)

STATUS_ACTIONS = ("revocation", "suspension", "reinstatement")


class CredentialNotPublicError(InputError):
    code = "CREDENTIAL_NOT_PUBLIC"
    title = "Credential not public"
    http_status = 403


class PublishRequest(BaseModel):
    credential: dict[str, Any] = Field(description="The signed credential")
    anchor: dict[str, Any] = Field(description="Its issuance anchor, signed by the issuer")
    public: bool = Field(False, description="Serve the credential's content to anyone")


def _set_public(request: Request, credential_id: str, public: bool) -> None:
    set_public(ledger_of(request), credential_id, public)


def _is_public(request: Request, credential_id: str) -> bool:
    return is_public(ledger_of(request), credential_id)


@router.post("", status_code=201, summary="Publish a signed credential with its issuer-signed "
             "issuance anchor")
async def publish(request: Request, body: PublishRequest) -> JSONResponse:
    # On the app's one writer, in arrival order with the other writes (503 when too many wait).
    result = await writer_of(request).run(
        lambda: store_of(request).publish(body.credential, body.anchor))
    credential_id = str(body.credential.get("id"))
    if not result.duplicate or body.public:
        _set_public(request, credential_id, body.public)
    return created({"id": credential_id, **results_json([result])[0]}, [result])


@router.get("", summary="Public credentials about a subject URI")
def find(request: Request, subject: str = Query(..., description="credentialSubject.id")
         ) -> list[dict[str, Any]]:
    found = store_of(request).find(subject)
    return [c for c in found if _is_public(request, str(c.get("id")))]


@router.post("/{credential_id:path}/status", status_code=201,
             summary="Revoke, suspend or reinstate: an anchor signed by the issuer")
async def change_status(request: Request, credential_id: str,
                        anchor: dict[str, Any] = Body(..., description="Signed CredentialAnchor")
                        ) -> JSONResponse:
    from batterytrace.ledger.anchors import AnchorFormatError
    from batterytrace.ledger.log import Submission

    if anchor.get("credentialId") != credential_id or anchor.get("action") not in STATUS_ACTIONS:
        raise AnchorFormatError(f"expected a {', '.join(STATUS_ACTIONS)} anchor of "
                                f"{credential_id}")
    [result] = await append_queued(request, [Submission("anchor", anchor)])
    return created(results_json([result])[0], [result])


@router.get("/{credential_id:path}/anchors",
            summary="The credential's anchor record and anchor entries (always public)")
def anchors(request: Request, credential_id: str) -> dict[str, Any]:
    from batterytrace.ledger.anchor_store import read_record

    ledger = ledger_of(request)
    record = read_record(ledger, credential_id)
    if record is None:
        raise CredentialNotFoundError(f"no anchor names {credential_id}", id=credential_id)
    positions = [record.issued_at, *(seq for seq, _ in record.history)]
    return {"record": record.to_json(),
            "entries": [entry_json(ledger.entry(seq)) for seq in sorted(set(positions))]}


@router.get("/{credential_id:path}", summary="A stored credential, when it was made public")
def get_credential(request: Request, credential_id: str) -> dict[str, Any]:
    document = store_of(request).get(credential_id)
    if not _is_public(request, credential_id):
        raise CredentialNotPublicError(f"credential {credential_id} is not public",
                                       id=credential_id)
    return document
