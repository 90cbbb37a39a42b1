"""The identity resolver (UNTP identity resolver, ISO/IEC 18975, GS1 Digital Link).

    GET /01/{gtin}/21/{serial}   an item by its GS1 Digital Link key
    GET /01/{gtin}/10/{lot}      a lot by its GS1 Digital Link key
    GET /id/{subject}            any item or lot by its URI (the ledger's own resolver path)
    GET /gbt34014/{code}         an item by its GB/T 34014 traction battery code

Each answers with a `Link` header and, by what the client asks:
- `?linkType=linkset` (or `all`), or `Accept: application/linkset+json`: the RFC 9264 linkset;
- `?linkType=<type>` (a full link type URI, `gs1:<name>` or `untp:<name>`): a redirect to it;
- `Accept: text/html` (a browser): a redirect to the default link (the passport page of an
  item, the lot's record for a lot);
- `Accept: application/json` (a machine client): a redirect to the JSON twin.
Link targets are absolute URLs on the host that answered the request. `label_url` is what a
label and the passport page's QR code encode (`ledger.resolver_links.label_identifier` on the
ledger's public URL). See docs/interop.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from batterytrace.credentials.errors import InputError
from batterytrace.ledger import resolver_links as rl
from batterytrace.ledger.log import Ledger
from batterytrace.ledger.queries import StateView, read_state
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from .common import PROBLEMS, with_state

router = APIRouter(tags=["resolver"], responses=PROBLEMS)

GRANT_TIER = "legitimate-interest"
PREFIXES = {"gs1:": rl.GS1, "untp:": rl.UNTP}


class UnresolvedIdentifierError(InputError):
    """No item or lot answers to the identifier (or it is not a valid GS1 key)."""

    code = "IDENTIFIER_NOT_FOUND"
    title = "No item or lot with this identifier"
    http_status = 404


class LinkTypeNotFoundError(InputError):
    """The subject has no link of the requested link type."""

    code = "LINK_TYPE_NOT_FOUND"
    title = "No link of this type"
    http_status = 404


@dataclass(frozen=True)
class Subject:
    """A resolved item or lot."""

    kind: str  # "item" or "lot"
    id: str
    details: dict[str, Any]
    facility: str | None  # where it was made (the bizLocation of its first event)


def _subject_of(ledger: Ledger, view: StateView, kind: str, subject_id: str) -> Subject | None:
    state = view.state.item(subject_id) if kind == "item" else view.state.lot(subject_id)
    if state is None:
        return None
    facility = None
    history = view.history(subject_id)
    if history:
        document = ledger.entry(history[0]["seq"]).document
        events = document.get("credentialSubject")
        for event in events if isinstance(events, list) else [events]:
            if isinstance(event, dict) and event.get("id") == history[0]["event"]:
                location = event.get("bizLocation")
                facility = location if isinstance(location, str) else None
    return Subject(kind, subject_id, dict(state.details), facility)


def find_subject(ledger: Ledger, view: StateView, *, uri: str | None = None,
                 link: rl.DigitalLink | None = None, battery_code: str | None = None
                 ) -> Subject:
    """The item or lot named by its URI, its Digital Link key or its GB/T 34014 code."""
    if uri is not None:
        for kind in ("item", "lot"):
            found = _subject_of(ledger, view, kind, uri)
            if found is not None:
                return found
        raise UnresolvedIdentifierError(f"no item or lot {uri}")
    if link is not None:
        kind = "item" if link.qualifier == rl.ITEM_KEY else "lot"
        # Fast path: the subject's URI is the Digital Link on GS1's resolver or this ledger.
        for base in ("https://id.gs1.org", ledger.public_url.rstrip("/")):
            found = _subject_of(ledger, view, kind, base + link.path())
            if found is not None:
                return found
        # Any host, or a declared gtin + serial / lot number: the custody state's index.
        indexed = view.state.get("gs1_key", link.path())
        if isinstance(indexed, str):
            return _require(_subject_of(ledger, view, kind, indexed), indexed)
        raise UnresolvedIdentifierError(f"no {kind} with the GS1 key {link.path()}")
    named = view.state.get("battery_code", battery_code) if battery_code is not None else None
    if isinstance(named, str):  # a GB/T 34014 code names one item of the ledger
        return _require(_subject_of(ledger, view, "item", named), named)
    raise UnresolvedIdentifierError(f"no item with the GB/T 34014 code {battery_code}")


def _require(subject: Subject | None, subject_id: str) -> Subject:
    if subject is None:  # pragma: no cover - the row was just read
        raise UnresolvedIdentifierError(f"no item or lot {subject_id}")
    return subject


def links_of(base: str, subject: Subject) -> list[rl.Link]:
    """The links of an item or lot, absolute on `base` (see docs/interop.md for the types)."""
    base = base.rstrip("/")
    q = quote(subject.id, safe="")
    links: list[rl.Link] = []
    if subject.kind == "item":
        page = f"{base}/passports/{q}"
        twin = f"{base}/api/passports/{q}"
        links += [
            rl.Link(rl.LINK_DEFAULT, page, "text/html", "Battery passport"),
            rl.Link(rl.LINK_PIP, page, "text/html", "Battery passport page"),
            rl.Link(rl.LINK_DPP, twin, "application/json", "Battery passport (JSON)"),
            rl.Link(rl.LINK_DPP, twin, "application/json",
                    "Battery passport, legitimate-interest tier (send a holder's grant and "
                    "an access proof)", access=(GRANT_TIER,)),
            rl.Link(rl.LINK_TRACEABILITY, f"{base}/api/passport-bundles/{q}",
                    "application/jsonl", "Evidence bundle for offline verification (send a "
                    "holder's grant and an access proof)", access=(GRANT_TIER,)),
        ]
    else:
        links += [
            rl.Link(rl.LINK_DEFAULT, f"{base}/lots/{q}", "application/json", "Lot record"),
            rl.Link(rl.LINK_TRACEABILITY, f"{base}/bundles?lot={q}", "application/jsonl",
                    "Evidence bundle for offline verification"),
        ]
    param = "item" if subject.kind == "item" else "lot"
    links += [
        rl.Link(rl.LINK_MASTER_DATA, f"{base}/{subject.kind}s/{q}", "application/json",
                "Ledger record"),
        rl.Link(rl.LINK_DTE, f"{base}/events?{param}={q}", "application/json",
                "Traceability events (signed UNTP DTE credentials, with log positions)"),
        rl.Link(rl.LINK_EPCIS, f"{base}/epcis/events?{param}={q}", "application/ld+json",
                "Traceability events as an EPCIS 2.0 document"),
        rl.Link(rl.LINK_DCC, f"{base}/credentials?subject={q}", "application/json",
                "Conformity credentials about this " + subject.kind),
    ]
    if subject.facility is not None:
        fq = quote(subject.facility, safe="")
        links += [
            rl.Link(rl.LINK_DFR, f"{base}/facilities/{fq}", "application/json",
                    "Facility record of where it was made"),
            rl.Link(rl.LINK_CERTIFICATION, f"{base}/credentials?subject={fq}",
                    "application/json", "Certifications of that facility"),
        ]
    return links


def label_url(ledger: Ledger, subject_id: str) -> str:
    """What the label of an item or lot encodes (its Digital Link or resolver URI on the
    ledger's public URL); UnresolvedIdentifierError for an unknown subject."""
    with read_state(ledger) as view:
        subject = find_subject(ledger, view, uri=subject_id)
    return rl.label_identifier(ledger.public_url, subject.kind, subject.id, subject.details)


def _wants(request: Request, media: str) -> bool:
    return media in request.headers.get("accept", "").lower()


def _expand(link_type: str) -> str:
    for prefix, namespace in PREFIXES.items():
        if link_type.startswith(prefix):
            return namespace + link_type[len(prefix):]
    return link_type


def _answer(request: Request, subject: Subject, link_type: str | None) -> Response:
    base = str(request.base_url)
    links = links_of(base, subject)
    anchor = rl.label_identifier(base, subject.kind, subject.id, subject.details)
    here = str(request.url.replace(query=None))
    headers = {"Link": rl.link_header(links, here + "?linkType=linkset"), "Vary": "Accept"}
    if link_type in ("linkset", "all") or (link_type is None and _wants(request, rl.LINKSET_MEDIA)):
        return JSONResponse(rl.linkset(anchor, links), media_type=rl.LINKSET_MEDIA,
                            headers=headers)
    if link_type is not None:
        wanted = _expand(link_type)
        target = next((link for link in links if link.rel == wanted), None)
        if target is None:
            raise LinkTypeNotFoundError(f"no link of type {link_type} for {subject.id}")
        return RedirectResponse(target.href, status_code=307, headers=headers)
    default = next(link for link in links if link.rel == rl.LINK_DEFAULT)
    if _wants(request, "application/json") and not _wants(request, "text/html"):
        rel = rl.LINK_DPP if subject.kind == "item" else rl.LINK_MASTER_DATA
        default = next(link for link in links if link.rel == rel)
    return RedirectResponse(default.href, status_code=307, headers=headers)


LinkTypeQuery = Query(None, alias="linkType",
                      description="`linkset`, or a link type (URI, gs1:name or untp:name)")


@router.get("/01/{gtin}/21/{serial}", summary="Resolve an item by its GS1 Digital Link")
def resolve_item_link(request: Request, gtin: str, serial: str,
                      link_type: str | None = LinkTypeQuery) -> Response:
    return _resolve_link(request, f"/01/{gtin}/21/{quote(serial, safe='')}", link_type)


@router.get("/01/{gtin}/10/{lot}", summary="Resolve a lot by its GS1 Digital Link")
def resolve_lot_link(request: Request, gtin: str, lot: str,
                     link_type: str | None = LinkTypeQuery) -> Response:
    return _resolve_link(request, f"/01/{gtin}/10/{quote(lot, safe='')}", link_type)


def _resolve_link(request: Request, path: str, link_type: str | None) -> Response:
    link = rl.digital_link_of(path)
    if link is None:
        raise UnresolvedIdentifierError(f"{path} is not a valid GS1 Digital Link key")
    subject = with_state(request, lambda ledger, view, _r, _s: find_subject(
        ledger, view, link=link))
    return _answer(request, subject, link_type)


@router.get("/id/{subject:path}", summary="Resolve an item or lot by its URI")
def resolve_uri(request: Request, subject: str,
                link_type: str | None = LinkTypeQuery) -> Response:
    found = with_state(request, lambda ledger, view, _r, _s: find_subject(
        ledger, view, uri=subject))
    return _answer(request, found, link_type)


@router.get("/gbt34014/{code}", summary="Resolve an item by its GB/T 34014 battery code")
def resolve_battery_code(request: Request, code: str,
                         link_type: str | None = LinkTypeQuery) -> Response:
    found = with_state(request, lambda ledger, view, _r, _s: find_subject(
        ledger, view, battery_code=code))
    return _answer(request, found, link_type)
