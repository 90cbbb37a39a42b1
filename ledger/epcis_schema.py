"""GS1 EPCIS 2.0: its JSON Schema and JSON-LD context, vendored under
`credentials/data/epcis/` (see its SOURCE.txt), and the two offline checks of an EPCIS document
against them.

- `schema_errors`: the GS1 EPCIS 2.0 JSON Schema (draft-07, the inlined
  `EPCIS-JSON-Schema.json`), compiled once by fastjsonschema (the import's hot path); a
  rejected document is explained by jsonschema (Draft 7), with the JSON path. `format` is an
  annotation here, as JSON Schema allows and as the reference validator does by default (GS1's
  own samples name `type` in a sensor element, which `format: uri` on property names refuses);
- `undefined_terms`: every member name of the document (and of its events, lists and nested
  objects, as the context scopes them) is a JSON-LD keyword, a term of the EPCIS 2.0 context,
  or a compact IRI / absolute IRI whose prefix the document's own `@context` defines; no
  network, the GS1 context is the vendored one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

import fastjsonschema
from fastjsonschema import JsonSchemaValueException

EPCIS_CONTEXT_URL = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# The older published location of the same context, used by GS1's own examples.
EPCIS_CONTEXT_URLS = (EPCIS_CONTEXT_URL, "https://gs1.github.io/EPCIS/epcis-context.jsonld",
                      "https://gs1.github.io/EPCIS/epcis-context-simple.jsonld")
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _data(name: str) -> Any:
    files = resources.files("batterytrace.credentials")
    return json.loads(files.joinpath("data", "epcis", name).read_text("utf-8"))


@lru_cache(maxsize=1)
def _fast() -> Any:
    return fastjsonschema.compile(_data("EPCIS-JSON-Schema.json"), use_formats=False)


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft7Validator

    schema = _data("EPCIS-JSON-Schema.json")
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def schema_errors(document: Any) -> list[str]:
    """Violations of the GS1 EPCIS 2.0 JSON Schema (empty when the document conforms)."""
    try:
        _fast()(document)
        return []
    except JsonSchemaValueException as fast_error:
        errors = sorted(_validator().iter_errors(document),
                        key=lambda e: list(e.absolute_path))
        if not errors:
            return [str(fast_error)[:500]]
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '$'}: {e.message}"[:500]
            for e in errors]


@lru_cache(maxsize=1)
def context_terms() -> frozenset[str]:
    """The terms the EPCIS 2.0 JSON-LD context defines (with its scoped contexts)."""
    terms: set[str] = set()

    def walk(context: Any) -> None:
        if isinstance(context, dict):
            for term, definition in context.items():
                if not term.startswith("@"):
                    terms.add(term)
                if isinstance(definition, dict) and "@context" in definition:
                    walk(definition["@context"])
        elif isinstance(context, list):
            for entry in context:
                walk(entry)

    walk(_data("epcis-context.jsonld")["@context"])
    return frozenset(terms)


def _prefixes(context: Any) -> set[str]:
    """Prefixes and terms defined by the document's own (inline) context entries."""
    found: set[str] = set()
    for entry in context if isinstance(context, list) else [context]:
        if isinstance(entry, dict):
            found.update(k for k in entry if not k.startswith("@"))
    return found


def _literals(context: Any) -> set[str]:
    """Terms the document's inline context types `@json` (their values are JSON literals)."""
    found: set[str] = set()
    for entry in context if isinstance(context, list) else [context]:
        if isinstance(entry, dict):
            found.update(k for k, v in entry.items()
                         if isinstance(v, dict) and v.get("@type") == "@json")
    return found


def _names(value: Any, path: str, literals: set[str]) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, member in value.items():
            yield key, f"{path}/{key}"
            if key != "@context" and key not in literals:
                yield from _names(member, f"{path}/{key}", literals)
    elif isinstance(value, list):
        for i, member in enumerate(value):
            yield from _names(member, f"{path}/{i}", literals)


def undefined_terms(document: Any) -> list[str]:
    """Member names the document's JSON-LD context does not define (empty when all are)."""
    if not isinstance(document, dict):
        return ["$: an EPCIS document is a JSON object"]
    context = document.get("@context")
    entries = context if isinstance(context, list) else [context]
    problems = []
    if not any(e in EPCIS_CONTEXT_URLS for e in entries):
        problems.append(f"@context: names none of {', '.join(EPCIS_CONTEXT_URLS)}")
    known, prefixes = context_terms(), _prefixes(context)
    for name, where in _names(document, "$", _literals(context)):
        if name.startswith("@") or name in known or name in prefixes:
            continue
        prefix = name.split(":", 1)[0] if ":" in name else None
        if prefix is not None and (prefix in prefixes or prefix in known):
            continue
        if _ABSOLUTE.match(name) and "//" in name:
            continue  # an absolute IRI
        problems.append(f"{where}: the term {name!r} is not defined by the context")
    return problems


__all__ = ["EPCIS_CONTEXT_URL", "EPCIS_CONTEXT_URLS", "context_terms", "schema_errors",
           "undefined_terms"]
