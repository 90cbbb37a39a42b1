"""VC Data Model 2.0 as a JSON-LD-aware verifier reads it, checked offline (no JSON-LD
processor, no network: the document's contexts against the bundled ones, `rdfc.py`'s index).

A document signed with eddsa-jcs-2022 is never expanded, so without these checks the project
would sign and accept documents that JSON-LD-aware verifiers refuse. `check_jsonld` raises a
typed error for the first of:

- an `@context` entry that is neither a valid URL (a scheme, no whitespace) nor an object, or
  an inline context whose term mapping (`"term": IRI` or `{"@id": IRI}`, `@vocab`, `@base`) is
  not a valid IRI, compact IRI, keyword or defined term (VC DM 2.0 section 4.3):
  `JSONLD_CONTEXT_INVALID`;
- an inline context after the VC 2.0 context that redefines one of its protected terms with
  another definition (JSON-LD 1.1 section 4.1.11; VC DM 2.0 section 4.3):
  `JSONLD_PROTECTED_TERM_REDEFINED`;
- a `type` value that maps to no URL: not an absolute URL, not a compact IRI with a defined
  prefix, not a term of the contexts, and no `@vocab` applies (VC DM 2.0 section 4.5: type
  values are terms or URLs, and a JSON-LD processor maps each term to a URL):
  `JSONLD_TYPE_UNMAPPED`. The VC 2.0 base context (the Recommendation's, vendored) defines no
  `@vocab`; the W3C's `https://www.w3.org/ns/credentials/undefined-terms/v2` context sets one
  for issuers without a vocabulary of their own, and `"@vocab": null` in a later context takes
  any `@vocab` away again. When a context is neither inline nor bundled its terms are unknown
  offline, and an unknown type is not judged;
- a language value object (an object with `@value`) holding members other than `@value`,
  `@language` and `@direction`, a `@direction` other than `ltr` / `rtl`, or a `@language`
  that is not a well-formed BCP 47 tag (VC DM 2.0 section 11.1): `JSONLD_VALUE_OBJECT_INVALID`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from .errors import MalformedValueError
from .rdfc import ContextUnavailableError, load_bundled_context

VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
VALUE_OBJECT_KEYS = frozenset({"@value", "@language", "@direction"})
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
_TERM = re.compile(r"[^\s:]+")
_BCP47 = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_KEYWORDS = frozenset({"@id", "@type", "@vocab", "@base", "@context", "@value", "@language",
                       "@direction", "@graph", "@json", "@list", "@set", "@none", "@index",
                       "@nest", "@included", "@reverse", "@protected", "@propagate",
                       "@import", "@version", "@container", "@prefix"})


class JsonLdContextError(MalformedValueError):
    code = "JSONLD_CONTEXT_INVALID"
    title = "Invalid JSON-LD context"


class ProtectedTermError(MalformedValueError):
    code = "JSONLD_PROTECTED_TERM_REDEFINED"
    title = "A protected term of the VC 2.0 context is redefined"


class UnmappedTypeError(MalformedValueError):
    code = "JSONLD_TYPE_UNMAPPED"
    title = "A type maps to no URL"


class ValueObjectError(MalformedValueError):
    code = "JSONLD_VALUE_OBJECT_INVALID"
    title = "Invalid language value object"


@dataclass
class _Active:
    """What the contexts define, as far as they are known offline."""

    terms: dict[str, Any] = field(default_factory=dict)
    vocab: str | None = None
    complete: bool = True  # False when a context could not be read offline
    vocab_nulled: bool = False  # a context set "@vocab": null


@cache
def _protected_terms() -> Mapping[str, Any]:
    context = load_bundled_context(VC_V2_CONTEXT)["@context"]
    return {k: v for k, v in context.items() if not k.startswith("@")}


def _normal(definition: Any) -> Any:
    if isinstance(definition, str):
        return {"@id": definition}
    if isinstance(definition, Mapping):
        return {k: v for k, v in definition.items() if k != "@protected"}
    return definition


def _valid_iri(value: Any, terms: Mapping[str, Any]) -> bool:
    if not isinstance(value, str) or not value or re.search(r"\s", value):
        return False
    if value in _KEYWORDS or value in terms:
        return True
    if ":" in value:
        prefix = value.split(":", 1)[0]
        return _URL.fullmatch(value) is not None or prefix in terms
    return _TERM.fullmatch(value) is not None and value in terms


def _check_inline(context: Mapping[str, Any], active: _Active, after_vc: bool) -> None:
    for key in ("@vocab", "@base"):
        if key in context and context[key] is not None and not (
                isinstance(context[key], str) and _URL.fullmatch(context[key])):
            raise JsonLdContextError(f"@context {key} {context[key]!r} is not a valid URL")
    if "@vocab" in context:
        active.vocab = context["@vocab"]
        active.vocab_nulled = context["@vocab"] is None
    protected = _protected_terms() if after_vc else {}
    local = {**active.terms, **{k: v for k, v in context.items() if not k.startswith("@")}}
    for term, definition in context.items():
        if term.startswith("@"):
            continue
        if re.search(r"\s", term) or not term:
            raise JsonLdContextError(f"@context term {term!r} is not a valid term")
        iri = definition.get("@id") if isinstance(definition, Mapping) else definition
        if definition is not None and iri is not None and not _valid_iri(iri, local):
            if not (isinstance(iri, str) and ":" not in iri and _TERM.fullmatch(iri)
                    and not active.complete):
                raise JsonLdContextError(
                    f"@context maps {term!r} to {iri!r}, which is not a valid URL")
        if term in protected and _normal(definition) != _normal(protected[term]):
            raise ProtectedTermError(
                f"@context redefines the protected term {term!r} of {VC_V2_CONTEXT}")
        active.terms[term] = definition


def active_context(document: Mapping[str, Any]) -> _Active:
    """Check the document's `@context` entries and gather what they define."""
    context = document.get("@context")
    entries = context if isinstance(context, list) else [context]
    active = _Active()
    seen_vc = False
    for entry in entries:
        if isinstance(entry, str):
            if not _URL.fullmatch(entry):
                raise JsonLdContextError(f"@context entry {entry!r} is not a valid URL")
            try:
                loaded = load_bundled_context(entry).get("@context")
            except ContextUnavailableError:
                active.complete = False
                continue
            for part in loaded if isinstance(loaded, list) else [loaded]:
                if isinstance(part, Mapping):
                    if "@vocab" in part:
                        active.vocab = part["@vocab"]
                    active.terms.update({k: v for k, v in part.items()
                                         if not k.startswith("@")})
            seen_vc = seen_vc or entry == VC_V2_CONTEXT
        elif isinstance(entry, Mapping):
            _check_inline(entry, active, seen_vc)
        elif entry is not None:
            raise JsonLdContextError("@context entries must be URLs or objects")
    return active


def _typed(value: Any, embedded: list[Mapping[str, Any]]) -> Iterator[str]:
    """The type values of `value`; an embedded node with its own `@context` (a credential in a
    presentation) goes to `embedded` instead, to be judged under its own contexts."""
    if isinstance(value, Mapping):
        for key, member in value.items():
            if key == "type":
                for t in member if isinstance(member, list) else [member]:
                    if isinstance(t, str):
                        yield t
            if key in ("@context", "proof") or (isinstance(member, Mapping)
                                                 and "@value" in member):
                continue
            if isinstance(member, Mapping) and "@context" in member:
                embedded.append(member)
            else:
                yield from _typed(member, embedded)
    elif isinstance(value, list):
        for member in value:
            if isinstance(member, Mapping) and "@context" in member:
                embedded.append(member)
            else:
                yield from _typed(member, embedded)


def _scoped_terms(active: _Active) -> set[str]:
    """Terms of the contexts, with those their type- and property-scoped contexts define."""
    names = set(active.terms)
    for definition in active.terms.values():
        scoped = definition.get("@context") if isinstance(definition, Mapping) else None
        if isinstance(scoped, Mapping):
            names.update(k for k in scoped if not k.startswith("@"))
    return names


def _value_objects(value: Any, path: str) -> Iterator[tuple[Mapping[str, Any], str]]:
    if isinstance(value, Mapping):
        if "@value" in value:
            yield value, path
            return
        for key, member in value.items():
            if key not in ("@context", "proof"):
                yield from _value_objects(member, f"{path}.{key}")
    elif isinstance(value, list):
        for i, member in enumerate(value):
            yield from _value_objects(member, f"{path}[{i}]")


def _context_terms(document: Mapping[str, Any]) -> tuple[_Active, frozenset[str]]:
    """The active context and the terms it defines (scoped ones included). A `@context` of
    URLs alone (the usual case) depends on nothing else: computed once per list of URLs."""
    context = document.get("@context")
    if isinstance(context, list) and all(type(entry) is str for entry in context):
        return _context_terms_of_urls(tuple(context))
    active = active_context(document)
    return active, frozenset(_scoped_terms(active))


@lru_cache(maxsize=256)
def _context_terms_of_urls(urls: tuple[str, ...]) -> tuple[_Active, frozenset[str]]:
    """`_context_terms` of a `@context` list of URLs (its result is only read, never changed;
    an invalid URL raises every time, as nothing is cached for it)."""
    active = active_context({"@context": list(urls)})
    return active, frozenset(_scoped_terms(active))


def _check_types(document: Mapping[str, Any]) -> None:
    """Every type of `document` maps to a URL (embedded nodes with a `@context` of their own
    under the document's contexts followed by theirs, as JSON-LD processes them)."""
    active, known = _context_terms(document)
    embedded: list[Mapping[str, Any]] = []
    types = list(dict.fromkeys(_typed(document, embedded)))
    if active.vocab is None and active.complete:
        for t in types:
            if t in known:
                continue
            if ":" in t and (t.split(":", 1)[0] in known or _URL.fullmatch(t)):
                continue  # a compact IRI with a defined prefix, or an absolute IRI
            why = "@vocab is null" if active.vocab_nulled else "no context sets @vocab"
            raise UnmappedTypeError(f"type {t!r} maps to no URL: no context defines it and "
                                    f"{why}")
    outer = document.get("@context")
    outer_list = outer if isinstance(outer, list) else [outer]
    for node in embedded:
        inner = node["@context"]
        _check_types({**node, "@context": [*outer_list, *(inner if isinstance(inner, list)
                                                           else [inner])]})


def check_jsonld(document: Any) -> list[str]:
    """Raise the typed error of the first JSON-LD problem of a credential or presentation;
    return warnings (none today: every problem found is a refusal)."""
    warnings: list[str] = []
    if not isinstance(document, Mapping) or "@context" not in document:
        return warnings  # not JSON-LD (a VC without @context fails its structure check)
    _check_types(document)
    for value, path in _value_objects(document, "$"):
        extra = sorted(set(value) - VALUE_OBJECT_KEYS)
        if extra:
            raise ValueObjectError(f"{path}: a language value object holds only @value, "
                                   f"@language and @direction, not {', '.join(extra)}")
        direction = value.get("@direction")
        if direction is not None and direction not in ("ltr", "rtl"):
            raise ValueObjectError(f"{path}: @direction must be ltr or rtl")
        language = value.get("@language")
        if language is not None and not (isinstance(language, str)
                                         and _BCP47.fullmatch(language)):
            raise ValueObjectError(f"{path}: @language must be a BCP 47 language tag")
    return warnings


__all__ = ["JsonLdContextError", "ProtectedTermError", "UnmappedTypeError",
           "ValueObjectError", "active_context", "check_jsonld"]
