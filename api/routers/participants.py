"""Participants: list, show, DID documents (did:web), admin-signed registration and keys."""

from __future__ import annotations

from typing import Any

from batterytrace.ledger.custody import CustodyState
from batterytrace.ledger.custody_errors import UnknownParticipantError
from batterytrace.ledger.log import Ledger
from batterytrace.ledger.queries import StateView
from batterytrace.ledger.registry import Registry
from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from ..admin_auth import AdminRequestMalformedError
from ..problems import problem_response
from .common import (
    PROBLEMS,
    all_rows,
    append_queued,
    created,
    ledger_of,
    results_json,
    with_state,
)

router = APIRouter(prefix="/participants", tags=["participants"], responses=PROBLEMS)

KEY_DOCUMENTS = ("KeyRotation", "KeyRevocation", "KeyRecovery")
ADMIN_BODY = Body(..., description="The registry document, Data Integrity-signed, with "
                  "`nonce` and `expires` (see docs/api.md, Authentication).")


def did_of(request: Request, name_or_did: str) -> str:
    """A participant DID from its short name (or the DID itself)."""
    from batterytrace.ledger.registry import participant_did

    if name_or_did.startswith("did:"):
        return name_or_did
    return participant_did(ledger_of(request).public_url, name_or_did)


async def append_admin(request: Request, document: dict[str, Any], kind: str = "registry"
                       ) -> Any:
    """Append an administrative document through the app's one writer, in arrival order (the
    guard checks nonce, expiry and signers); 503 when too many writes are waiting."""
    from batterytrace.ledger.log import Submission

    [result] = await append_queued(request, [Submission(kind, document)])
    return result


def _expect_type(document: dict[str, Any], *types: str) -> None:
    if document.get("type") not in types:
        raise AdminRequestMalformedError(f"this resource takes a {' or '.join(types)} document")


@router.get("", summary="Registered participants")
def list_participants(request: Request) -> list[dict[str, Any]]:
    return [p.to_json() for p in all_rows(request, "participant")]


@router.post("", status_code=201, summary="Register a participant (admin-signed)")
async def register_participant(request: Request, document: dict[str, Any] = ADMIN_BODY
                               ) -> JSONResponse:
    _expect_type(document, "ParticipantRegistration")
    result = await append_admin(request, document)
    name = document.get("name")
    did = document.get("id") or did_of(request, str(name))
    return created({"id": did, **results_json([result])[0]}, [result])


@router.get("/{name}/did.json", summary="DID document (did:web) derived from the registry")
def did_document(request: Request, name: str) -> dict[str, Any]:
    from batterytrace.ledger.did_web import participant_did_document

    did = did_of(request, name)  # every key of the registry, with its validity
    return with_state(request, lambda ledger, _c, registry, _s:
                      participant_did_document(registry, did, ledger.size))


@router.get("/{name}", summary="A participant, its keys and its DID document")
def show_participant(request: Request, name: str) -> dict[str, Any]:
    did = did_of(request, name)

    def show(ledger: Ledger, _view: StateView, registry: Registry, _state: CustodyState
             ) -> dict[str, Any]:
        participant = registry.participant(did)
        keys = [{"id": k.id, "validFrom": k.valid_from, "validUntil": k.valid_until,
                 "recovery": k.recovery, "endedBy": k.ended_by} for k in registry.keys_of(did)]
        return {**participant.to_json(), "keys": keys,
                "didDocument": registry.did_document(did, ledger.size)}

    return with_state(request, show)


@router.post("/{name}/keys", status_code=201,
             summary="Rotate, revoke or recover a key (signed as the registry requires)")
async def change_key(request: Request, name: str, document: dict[str, Any] = ADMIN_BODY
                     ) -> JSONResponse:
    _expect_type(document, *KEY_DOCUMENTS)
    if document.get("participant") != did_of(request, name):
        raise AdminRequestMalformedError(f"the document's participant is not {name}")
    try:
        result = await append_admin(request, document)
    except UnknownParticipantError as error:
        # The participant the path names does not exist: a missing resource, not a rule.
        return problem_response(error, request, 404)
    return created(results_json([result])[0], [result])
