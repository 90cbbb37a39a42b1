"""Label resolution: the resolvable identifier of an item or a lot, and its RFC 9264 linkset.

A label (QR code) encodes one URI per item or lot (`label_identifier`):

- a GS1 Digital Link URI (`<base>/01/<GTIN-14>/21/<serial>` for an item,
  `<base>/01/<GTIN-14>/10/<lot>` for a lot) when the subject has a GTIN and a serial (or lot
  number): either its own URI is a Digital Link, or its declaration carries `gtin` with
  `serialNumber` (items) or `lotNumber` (lots). Any GS1-conformant resolver answers such a
  URI, so a label printed today keeps working when the ledger moves host;
- otherwise the ledger's own resolver path, `<base>/id/<subject URI percent-encoded>`.

An item with a GB/T 34014 code also resolves at `<base>/gbt34014/<code>`.

The linkset (`linkset`) follows RFC 9264's JSON shape: `{"linkset": [{"anchor": ..., <link
relation type>: [{"href": ..., "type"?, "title"?, ...}]}]}`. Link relation types come from
UNTP's identity-resolver vocabulary where it has one and from the GS1 Web Vocabulary otherwise
(the table in docs/interop.md). Pure: no storage, no web.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

# UNTP identity resolver link types (https://test.uncefact.org/vocabulary/linkTypes/).
UNTP = "https://test.uncefact.org/vocabulary/linkTypes/"
# GS1 Web Vocabulary link types (GS1 Digital Link / GS1-Conformant resolver standard).
GS1 = "https://gs1.org/voc/"

LINK_DPP = UNTP + "dpp"  # the passport (UNTP Digital Product Passport)
LINK_DTE = UNTP + "dte"  # traceability events (UNTP Digital Traceability Events)
LINK_DCC = UNTP + "dcc"  # conformity credentials (UNTP Digital Conformity Credential)
LINK_DFR = UNTP + "dfr"  # facility record (UNTP Digital Facility Record)
LINK_DEFAULT = GS1 + "defaultLink"  # where a plain request is redirected
LINK_PIP = GS1 + "pip"  # product information page (the passport page for people)
LINK_CERTIFICATION = GS1 + "certificationInfo"  # certifications (audits, accreditations)
LINK_EPCIS = GS1 + "epcis"  # the events as an EPCIS 2.0 document
LINK_TRACEABILITY = GS1 + "traceability"  # the evidence bundle for offline verification
LINK_MASTER_DATA = GS1 + "masterData"  # the ledger's JSON record of the item or lot

LINKSET_MEDIA = "application/linkset+json"
GTIN_LENGTHS = (8, 12, 13, 14)
ITEM_KEY, LOT_KEY = "21", "10"  # GS1 application identifiers: serial number, batch/lot
RESOLVER_PREFIX = "/id/"
GBT_PREFIX = "/gbt34014/"

# `/01/<gtin>[/10/<lot> | /21/<serial>]`, anywhere in a URI's path (any host).
_DIGITAL_LINK = re.compile(r"/01/(\d{8,14})(?:/(10|21)/([^/?#]+))?/?(?:[?#].*)?$")
# GS1 AI 21 and AI 10: up to 20 characters of GS1's "AI encodable character set 82".
_AI82 = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}$")


@dataclass(frozen=True)
class DigitalLink:
    """A GS1 Digital Link key: GTIN-14 with a serial (AI 21) or a lot (AI 10), or neither."""

    gtin: str
    qualifier: str | None = None  # "21" or "10"
    value: str | None = None

    def path(self) -> str:
        """The Digital Link path (`/01/<gtin>/21/<serial>`), values percent-encoded."""
        tail = ""
        if self.qualifier is not None and self.value is not None:
            tail = f"/{self.qualifier}/{quote(self.value, safe='')}"
        return f"/01/{self.gtin}{tail}"


def gtin_is_valid(gtin: str) -> bool:
    """A GTIN-8/12/13/14 with its GS1 mod-10 check digit."""
    if not gtin.isdigit() or len(gtin) not in GTIN_LENGTHS or not gtin.isascii():
        return False
    digits = [int(d) for d in gtin.zfill(14)]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:13]))
    return (10 - total % 10) % 10 == digits[13]


def digital_link_of(uri: str) -> DigitalLink | None:
    """The GS1 key in a Digital Link URI (GTIN padded to 14 digits), or None."""
    match = _DIGITAL_LINK.search(uri.split("?", 1)[0])
    if match is None or not gtin_is_valid(match.group(1)):
        return None
    value = unquote(match.group(3)) if match.group(3) else None
    if value is not None and not _AI82.match(value):
        return None
    return DigitalLink(match.group(1).zfill(14), match.group(2), value)


def declared_link(kind: str, details: Mapping[str, Any]) -> DigitalLink | None:
    """A Digital Link key from a declaration's `gtin` with `serialNumber` (an item) or
    `lotNumber` (a lot), when both are present and valid."""
    gtin = details.get("gtin")
    value = details.get("serialNumber" if kind == "item" else "lotNumber")
    if not isinstance(gtin, str) or not isinstance(value, str) or not gtin_is_valid(gtin):
        return None
    if not _AI82.match(value):
        return None
    return DigitalLink(gtin.zfill(14), ITEM_KEY if kind == "item" else LOT_KEY, value)


def subject_link(kind: str, subject: str, details: Mapping[str, Any]) -> DigitalLink | None:
    """The Digital Link key of an item or lot: its own URI's, else its declaration's. A key
    must fit the kind (an item needs a serial, a lot a lot number)."""
    own = digital_link_of(subject)
    wanted = ITEM_KEY if kind == "item" else LOT_KEY
    if own is not None and own.qualifier == wanted:
        return own
    return declared_link(kind, details)


def resolver_path(subject: str) -> str:
    """The ledger's own resolver path of a subject URI."""
    return RESOLVER_PREFIX + quote(subject, safe="")


def label_identifier(base_url: str, kind: str, subject: str,
                     details: Mapping[str, Any]) -> str:
    """What a label encodes: a GS1 Digital Link URI on `base_url` when the subject has a GTIN
    and serial (or lot number), else the ledger's own resolver path on `base_url`."""
    link = subject_link(kind, subject, details)
    path = link.path() if link is not None else resolver_path(subject)
    return base_url.rstrip("/") + path


@dataclass(frozen=True)
class Link:
    """One link target of a linkset (RFC 9264 section 4.2.2)."""

    rel: str
    href: str
    type: str | None = None
    title: str | None = None
    # Extension target attribute (RFC 9264 section 4.2.4.3: an array of strings): the access
    # tier a link needs ("legitimate-interest": a holder's grant), absent when public.
    access: tuple[str, ...] = ()
    hreflang: tuple[str, ...] = field(default_factory=tuple)

    def target(self) -> dict[str, Any]:
        """The RFC 9264 target object."""
        out: dict[str, Any] = {"href": self.href}
        if self.type:
            out["type"] = self.type
        if self.title:
            out["title"] = self.title
        if self.hreflang:
            out["hreflang"] = list(self.hreflang)
        if self.access:
            out["accessTier"] = list(self.access)
        return out


def linkset(anchor: str, links: Sequence[Link]) -> dict[str, Any]:
    """The RFC 9264 JSON linkset of one anchor: relation types in first-seen order."""
    context: dict[str, Any] = {"anchor": anchor}
    for link in links:
        context.setdefault(link.rel, []).append(link.target())
    return {"linkset": [context]}


def link_header(links: Sequence[Link], linkset_url: str) -> str:
    """An RFC 8288 `Link` header value: the linkset itself, then the default link."""
    parts = [f'<{linkset_url}>; rel="linkset"; type="{LINKSET_MEDIA}"']
    for link in links:
        if link.rel in (LINK_DEFAULT, LINK_DPP):
            media = f'; type="{link.type}"' if link.type else ""
            parts.append(f'<{link.href}>; rel="{link.rel}"{media}')
    return ", ".join(parts)


def check_linkset_shape(document: Any) -> list[str]:
    """What breaks RFC 9264's JSON linkset shape (section 4.2), empty when it conforms: a
    `linkset` array of context objects, each with an `anchor` string (optional in the RFC,
    required here) and relation members holding arrays of target objects with an `href`;
    `hreflang` and extension attributes are arrays; `title*` and internationalised
    attributes are arrays of {value, language?}."""
    problems: list[str] = []
    if not isinstance(document, dict) or set(document) != {"linkset"}:
        return ["the document must be an object with exactly the member `linkset`"]
    contexts = document["linkset"]
    if not isinstance(contexts, list) or not contexts:
        return ["`linkset` must be a non-empty array"]
    for i, context in enumerate(contexts):
        if not isinstance(context, dict):
            problems.append(f"linkset[{i}] must be an object")
            continue
        if not isinstance(context.get("anchor"), str):
            problems.append(f"linkset[{i}].anchor must be a string")
        for rel, targets in context.items():
            if rel == "anchor":
                continue
            if not isinstance(targets, list) or not targets:
                problems.append(f"linkset[{i}][{rel!r}] must be a non-empty array")
                continue
            for j, target in enumerate(targets):
                where = f"linkset[{i}][{rel!r}][{j}]"
                problems.extend(_target_problems(target, where))
    return problems


_STRING_ATTRS = ("href", "type", "title", "media")


def _target_problems(target: Any, where: str) -> list[str]:
    if not isinstance(target, dict):
        return [f"{where} must be an object"]
    problems = [] if isinstance(target.get("href"), str) else [f"{where}.href must be a string"]
    for name, value in target.items():
        if name in _STRING_ATTRS:
            if not isinstance(value, str):
                problems.append(f"{where}.{name} must be a string")
        elif name.endswith("*"):
            ok = isinstance(value, list) and all(
                isinstance(v, dict) and isinstance(v.get("value"), str) for v in value)
            if not ok:
                problems.append(f"{where}.{name} must be an array of {{value, language}}")
        elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{where}.{name} must be an array of strings")
    return problems


__all__ = [
    "GS1",
    "ITEM_KEY",
    "LINKSET_MEDIA",
    "LINK_CERTIFICATION",
    "LINK_DCC",
    "LINK_DEFAULT",
    "LINK_DFR",
    "LINK_DPP",
    "LINK_DTE",
    "LINK_EPCIS",
    "LINK_MASTER_DATA",
    "LINK_PIP",
    "LINK_TRACEABILITY",
    "LOT_KEY",
    "UNTP",
    "DigitalLink",
    "Link",
    "check_linkset_shape",
    "declared_link",
    "digital_link_of",
    "gtin_is_valid",
    "label_identifier",
    "link_header",
    "linkset",
    "resolver_path",
    "subject_link",
]
