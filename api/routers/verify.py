"""Verification as a service: POST a bundle or a credential, get the report.

Trust comes only from the server's configuration, `<home>/trust.toml` (never from the
request); without it, verification is refused (503 TRUST_NOT_CONFIGURED), as the CLI fails
closed without --trust.
"""

from __future__ import annotations

from typing import Any

from batterytrace.credentials.errors import BatterytraceError
from batterytrace.ledger.custody import CustodyState
from batterytrace.ledger.log import Ledger
from batterytrace.ledger.queries import StateView
from batterytrace.ledger.registry import Registry
from fastapi import APIRouter, Body, Request

from .bundles import JSONL
from .common import PROBLEMS, store_of, with_state

router = APIRouter(prefix="/verify", tags=["verification"], responses=PROBLEMS)
TRUST_FILE = "trust.toml"


class TrustNotConfiguredError(BatterytraceError):
    code = "TRUST_NOT_CONFIGURED"
    title = "The server has no trust file"
    exit_code = 2
    http_status = 503


def server_trust(request: Request) -> Any:
    """The trust configuration of the server's home."""
    from batterytrace.verifier.trust import load_trust

    path = request.app.state.home / TRUST_FILE
    if not path.is_file():
        raise TrustNotConfiguredError(f"the server has no {TRUST_FILE} in its home")
    return load_trust(path)


@router.post("/bundle", summary="Verify an evidence bundle (JSON Lines body)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 JSONL: {"schema": {"type": "string"}}}}})
async def verify_bundle_endpoint(request: Request) -> dict[str, Any]:
    from batterytrace.verifier.bundle_verify import verify_bundle
    from starlette.concurrency import run_in_threadpool

    body = await request.body()  # bounded by the request limits
    trust = server_trust(request)
    lines = body.splitlines(keepends=True)
    report = await run_in_threadpool(verify_bundle, iter(lines), trust)
    return report.to_json()


@router.post("/credential", summary="Verify a credential against the server's trust file")
def verify_credential_endpoint(request: Request,
                               credential: dict[str, Any] = Body(...)) -> dict[str, Any]:
    from batterytrace.credentials.did import OfflineResolver
    from batterytrace.credentials.vc import issuer_id
    from batterytrace.verifier.credential_check import check_credential

    trust = server_trust(request)
    resolver = OfflineResolver()
    issuer = issuer_id(credential)

    def documents(ledger: Ledger, _view: StateView, registry: Registry, _s: CustodyState) -> None:
        # A registered issuer's DID document, as the registry derives it now.
        if issuer and registry.is_participant(issuer):
            resolver.add_document(registry.did_document(issuer, ledger.size))

    with_state(request, documents)
    result = check_credential(credential, resolver, trust=trust,
                              status_lists=store_of(request).lists_for(credential))
    return result.to_dict()
