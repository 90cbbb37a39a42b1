"""The battery passport page, its JSON twin, and the holder's evidence bundle download.

    GET /passports/{item}            HTML (Jinja2, autoescaped, inline CSS and SVG QR code)
    GET /api/passports/{item}        the same facts as JSON
    GET /api/passport-bundles/{item} the evidence bundle (legitimate-interest tier only)

`{item}` is the item URI percent-encoded as one path segment. Without a grant a request sees
the public tier; with a grant (`X-Passport-Grant` header or `grant` query parameter) that the
holder signed AND the grantee's access proof for the request path (`X-Passport-Proof` header
or `proof` query parameter), the legitimate-interest tier; a grant without a valid proof, or
one that does not verify, is refused with problem details (never silently downgraded). The
app puts the open Ledger in `app.state.ledger`.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..read_cache import JSON_OBJECT, cached_json, generation

router = APIRouter(tags=["passports"])

GrantHeader = Header(None, alias="X-Passport-Grant",
                     description="A holder-signed PassportAccessGrant (base64url JSON).")
GrantQuery = Query(None, alias="grant", description="The grant, as in X-Passport-Grant.")
ProofHeader = Header(None, alias="X-Passport-Proof",
                     description="The grantee's PassportAccessProof for this path "
                                 "(base64url JSON); required with a grant.")
ProofQuery = Query(None, alias="proof", description="The access proof, as in X-Passport-Proof.")

PAGE_PREFIX = "/passports/"
JSON_PREFIX = "/api/passports/"
BUNDLE_PREFIX = "/api/passport-bundles/"


@cache
def _templates() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(loader=PackageLoader("batterytrace.api", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True))


def _passport(request: Request, item: str, grant: str | None, proof: str | None,
              prefix: str) -> Any:
    from batterytrace.api.passport import build_passport
    from batterytrace.api.passport_access import access_for

    ledger = request.app.state.ledger
    # Unknown items are reported before the grant is judged (a 404, not a 403).
    build_passport(ledger, item, tier="public")
    # The proof names the canonical path (the item percent-encoded as one segment).
    path = prefix + quote(item, safe="")
    tier, _ = access_for(ledger, item, grant, proof, path=path)
    return build_passport(ledger, item, tier=tier)


def qr_svg(url: str) -> str:
    """An inline SVG QR code (segno) of `url`: no external image, readable offline."""
    import segno

    return segno.make_qr(url, error="m").svg_inline(scale=4, dark="#000", light="#fff")


def render_passport(passport: Any, grant: str | None = None) -> str:
    """The HTML page of a passport (the template reads the JSON twin, so both show the same
    facts)."""
    template = _templates().get_template("passport.html")
    # The bundle link carries the grant only: a proof is bound to one path, so the grantee's
    # client adds its own proof for the bundle path (the server holds no grantee key).
    grant_query = f"?grant={quote(grant, safe='')}" if grant else ""
    return template.render(passport=passport.to_json(), qr_svg=qr_svg(passport.page_url),
                           grant_query=grant_query)


@router.get(PAGE_PREFIX + "{item:path}", response_class=HTMLResponse,
            summary="Battery passport page")
def passport_page(request: Request, item: str, x_passport_grant: str | None = GrantHeader,
                  grant: str | None = GrantQuery, x_passport_proof: str | None = ProofHeader,
                  proof: str | None = ProofQuery) -> HTMLResponse:
    """The passport page of an item: public tier, or legitimate-interest with a grant and
    the grantee's access proof."""
    presented = x_passport_grant or grant
    passport = _passport(request, item, presented, x_passport_proof or proof, PAGE_PREFIX)
    return HTMLResponse(render_passport(passport, presented),
                        headers={"Cache-Control": "no-store" if presented else "max-age=60"})


@router.get(JSON_PREFIX + "{item:path}", summary="Battery passport (JSON)",
            response_class=Response, responses=JSON_OBJECT)
async def passport_json(request: Request, item: str,
                        x_passport_grant: str | None = GrantHeader,
                        grant: str | None = GrantQuery,
                        x_passport_proof: str | None = ProofHeader,
                        proof: str | None = ProofQuery) -> Response:
    """The JSON twin of the passport page. The public tier is cached under the log's
    generation (size, latest checkpoint) and revalidated by ETag; a granted view never is."""
    presented, proven = x_passport_grant or grant, x_passport_proof or proof
    if (presented and presented.strip()) or (proven and proven.strip()):
        passport = await run_in_threadpool(_passport, request, item, presented, proven,
                                           JSON_PREFIX)
        return JSONResponse(passport.to_json(), headers={"Cache-Control": "no-store"})
    from batterytrace.api.passport import build_passport, trust_stamp

    ledger = request.app.state.ledger
    _, checkpoint = await generation(request)  # a passport speaks as of the latest checkpoint
    return await cached_json(
        request, ("passport", item, checkpoint, trust_stamp(ledger)),
        lambda: build_passport(ledger, item, tier="public").to_json(), immutable=False)


@router.get(BUNDLE_PREFIX + "{item:path}", summary="Evidence bundle of a passport",
            response_class=Response)
def passport_bundle(request: Request, item: str, x_passport_grant: str | None = GrantHeader,
                    grant: str | None = GrantQuery, x_passport_proof: str | None = ProofHeader,
                    proof: str | None = ProofQuery) -> Response:
    """The item's evidence bundle (JSON Lines), for its holder and whom the holder grants
    (with an access proof for this path)."""
    from batterytrace.api.passport import export_item_bundle
    from batterytrace.api.passport_access import LEGITIMATE_INTEREST, PassportGrantError

    passport = _passport(request, item, x_passport_grant or grant, x_passport_proof or proof,
                         BUNDLE_PREFIX)
    if passport.tier != LEGITIMATE_INTEREST:
        raise PassportGrantError("the evidence bundle needs a grant from the holder")
    data = export_item_bundle(request.app.state.ledger, item)
    return Response(data, media_type="application/jsonl", headers={
        "Content-Disposition": 'attachment; filename="bundle.jsonl"',
        "Cache-Control": "no-store"})
