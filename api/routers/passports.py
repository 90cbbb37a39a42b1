"""The battery passport page, its JSON twin, and the holder's evidence bundle download.

    GET /passports/{item}            HTML (Jinja2, autoescaped, inline CSS and SVG QR code)
    GET /api/passports/{item}        the same facts as JSON
    GET /api/passport-bundles/{item} the evidence bundle (legitimate-interest tier only)

`{item}` is the item URI percent-encoded as one path segment. Without a grant a request sees
the public tier; with a grant (`X-Passport-Grant` header or `grant` query parameter) AND the
grantee's access proof for the request path (`X-Passport-Proof` header or `proof` query
parameter), the grant's tier (legitimate-interest, or authority for a notified body, market
surveillance authority or the Commission: api/passport_access.py); a grant without a valid
proof, or one that does not verify, is refused with problem details (never silently
downgraded). An unknown item's page is an HTML 404 page unless the client asks for JSON
(`Accept: application/json` or `application/problem+json`): then the problem. The app puts
the open Ledger in `app.state.ledger`.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import quote

from batterytrace.api.passport import PassportNotFoundError
from batterytrace.api.passport_tiers import TIER_LABEL
from batterytrace.verifier.report import _CONTROL as CONTROL_CHARACTERS
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

    env = Environment(loader=PackageLoader("batterytrace.api", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      finalize=_visible)
    return env


def _visible(value: Any) -> Any:
    """Every value the templates print: control characters (ANSI escapes, bidi overrides,
    NUL, ...) shown as visible escapes (`\\x1b`), never passed to whoever reads the page or
    pipes it to a terminal (the report's rule: `verifier.report`). Autoescaping then makes
    markup inert."""
    if not isinstance(value, str) or hasattr(value, "__html__"):  # markup the app made
        return value
    return CONTROL_CHARACTERS.sub(lambda m: m.group().encode("unicode_escape").decode(), value)


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


def render_passport(passport: Any, grant: str | None = None, qr_url: str | None = None) -> str:
    """The HTML page of a passport (the template reads the JSON twin, so both show the same
    facts; `json_path` links to it)."""
    template = _templates().get_template("passport.html")
    # The bundle link carries the grant only: a proof is bound to one path, so the grantee's
    # client adds its own proof for the bundle path (the server holds no grantee key).
    grant_query = f"?grant={quote(grant, safe='')}" if grant else ""
    return template.render(passport=passport.to_json(), qr_svg=qr_svg(qr_url or passport.page_url),
                           grant_query=grant_query, tier_label=TIER_LABEL[passport.tier])


def render_not_found(item: str) -> str:
    """The HTML 404 page of an item the ledger does not know (escaped like the passport)."""
    return _templates().get_template("passport_404.html").render(item=item)


def _wants_json(request: Request) -> bool:
    """Whether the client asked for JSON rather than a page (`Accept` naming a JSON type
    before, or without, text/html)."""
    accept = request.headers.get("accept", "").lower()
    json_at = min((accept.find(t) for t in ("application/json", "application/problem+json",
                                            "+json") if t in accept), default=-1)
    html_at = accept.find("text/html")
    return json_at >= 0 and (html_at < 0 or json_at < html_at)


@router.get(PAGE_PREFIX + "{item:path}", response_class=HTMLResponse,
            summary="Battery passport page")
def passport_page(request: Request, item: str, x_passport_grant: str | None = GrantHeader,
                  grant: str | None = GrantQuery, x_passport_proof: str | None = ProofHeader,
                  proof: str | None = ProofQuery) -> HTMLResponse:
    """The passport page of an item: public tier, or legitimate-interest with a grant and
    the grantee's access proof."""
    presented = x_passport_grant or grant
    try:
        passport = _passport(request, item, presented, x_passport_proof or proof, PAGE_PREFIX)
    except PassportNotFoundError:
        if _wants_json(request):
            raise
        return HTMLResponse(render_not_found(item), status_code=404,
                            headers={"Cache-Control": "no-store"})
    from .resolver import label_url  # the QR encodes the label's identifier

    qr_url = label_url(request.app.state.ledger, item)
    return HTMLResponse(render_passport(passport, presented, qr_url),
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
    from batterytrace.api.passport_access import PassportGrantError
    from batterytrace.api.passport_tiers import PUBLIC

    passport = _passport(request, item, x_passport_grant or grant, x_passport_proof or proof,
                         BUNDLE_PREFIX)
    if passport.tier == PUBLIC:
        raise PassportGrantError("the evidence bundle needs a grant from the holder")
    if passport.withheld:
        # Signed credentials travel whole: a bundle is only for a tier that may see all of it.
        names = ", ".join(sorted({w["label"] for w in passport.withheld}))
        raise PassportGrantError(
            f"the evidence bundle carries signed credentials whole, including {names}, which "
            f"the {passport.tier} tier may not see: it needs an authority grant")
    data = export_item_bundle(request.app.state.ledger, item)
    return Response(data, media_type="application/jsonl", headers={
        "Content-Disposition": 'attachment; filename="bundle.jsonl"',
        "Cache-Control": "no-store"})
