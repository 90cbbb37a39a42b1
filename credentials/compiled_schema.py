"""JSON Schemas compiled once by fastjsonschema: the fast acceptance path of schema checks.

The reference validator stays jsonschema (Draft 2020-12): it decides every document the
compiled validator rejects, and names the failing field. The compiled validator only
accepts, so a verdict can differ only where it accepts what jsonschema would reject;
`tests/test_compiled_schema.py` checks the two agree on the W3C VC 2.0 schemas, the
credential type schemas, the UNTP DTE schema and generated invalid documents.

fastjsonschema knows Draft 7: `draft7_equivalent` rewrites the 2020-12 keywords these schemas
use, `$ref`s between the bundled schemas are served locally (never fetched), and formats are
asserted by jsonschema's own format checker (so "date" means exactly what jsonschema means).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import fastjsonschema
from fastjsonschema import JsonSchemaException

DRAFT7 = "http://json-schema.org/draft-07/schema#"

Accepts = Callable[[Any], bool]
# Keywords a Draft 7 validator may see beside a $ref without changing what it accepts.
_REF_SIBLINGS_DRAFT7_KEEPS = frozenset(
    {"$ref", "$id", "$defs", "$comment", "title", "description", "examples", "default"}
)


def draft7_equivalent(schema: Any) -> Any:
    """The schema with its 2020-12-only keywords rewritten for a Draft 7 validator.

    fastjsonschema knows Draft 7 and silently ignores `prefixItems`; in Draft 7 the same
    constraint is `items` as a list plus `additionalItems`. (`minContains` in the bundled
    schemas sits inside `contains` subschemas, where it is inert, so it needs no rewrite.)
    Two rewrites keep the meaning and help the compiled code: a `$ref` with sibling
    constraints becomes an `allOf` (Draft 7 would ignore the siblings), and a `oneOf` whose
    branches have disjoint types becomes an `anyOf`.
    """
    if isinstance(schema, list):
        return [draft7_equivalent(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: draft7_equivalent(v) for k, v in schema.items() if k != "$schema"}
    if "prefixItems" in out:
        out["additionalItems"] = out.pop("items", True)
        out["items"] = out.pop("prefixItems")
    if "oneOf" in out and _disjoint_types(out["oneOf"]):
        # At most one branch can hold, so oneOf is anyOf, which stops at the first branch
        # that holds (fastjsonschema raises and catches an exception per failing branch).
        out["anyOf"] = out.pop("oneOf")
    if "$ref" in out and set(out) - _REF_SIBLINGS_DRAFT7_KEEPS:
        # Draft 7 ignores a $ref's sibling keywords, 2020-12 applies them: keep both.
        ref = out.pop("$ref")
        out["allOf"] = [*out.get("allOf", []), {"$ref": ref}]
    return out


def _disjoint_types(branches: Any) -> bool:
    """True when every branch names its JSON types (`type`) and no value has two branches'
    types ("integer" counts as "number" too)."""
    if not isinstance(branches, list):
        return False
    seen: set[str] = set()
    for branch in branches:
        types = branch.get("type") if isinstance(branch, dict) else None
        names = {types} if isinstance(types, str) else set(types or ())
        if not names or not all(isinstance(n, str) for n in names):
            return False
        if "integer" in names or "number" in names:
            names |= {"integer", "number"}
        if names & seen:
            return False
        seen |= names
    return True


def _formats_in(schema: Any) -> set[str]:
    if isinstance(schema, list):
        return set().union(*(_formats_in(v) for v in schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    found = {schema["format"]} if isinstance(schema.get("format"), str) else set()
    return found.union(*(_formats_in(v) for v in schema.values()))


def _format_checks(schemas: list[Any]) -> dict[str, Callable[[Any], bool]]:
    """jsonschema's own check of every format the schemas name (its Draft 2020-12 format
    checker; a format it does not know is not asserted, as in jsonschema)."""
    from jsonschema import Draft202012Validator

    checker = Draft202012Validator.FORMAT_CHECKER

    def check(name: str) -> Callable[[Any], bool]:
        if name not in checker.checkers:
            return lambda value: True
        return lambda value: bool(checker.conforms(value, name))

    return {name: check(name) for name in set().union(*map(_formats_in, schemas))}


def compile_accepting(
    schema: Mapping[str, Any],
    *,
    resources: Mapping[str, Mapping[str, Any]] | None = None,
    assert_formats: bool = False,
) -> Accepts:
    """A function telling whether a document conforms to `schema` (2020-12, as bundled).

    `resources` maps the `$id` of each other schema `schema` refers to onto its contents
    (served locally, in Draft 7 form); `assert_formats` asserts formats as jsonschema with its
    format checker does (else none, as jsonschema without one).
    Compiling costs tens of milliseconds: cache the result.
    """
    local = {uri: draft7_equivalent(dict(doc)) for uri, doc in (resources or {}).items()}
    for doc in local.values():
        doc["$schema"] = DRAFT7
    handlers = {scheme: local.__getitem__ for scheme in ("http", "https")}
    definition = {**draft7_equivalent(dict(schema)), "$schema": DRAFT7}
    checks = _format_checks([definition, *local.values()]) if assert_formats else {}
    # use_default=False: fastjsonschema would otherwise write `default` values INTO the
    # document it checks, changing what was signed.
    validate = fastjsonschema.compile(
        definition, handlers=handlers, formats=checks, use_default=False,
        use_formats=assert_formats,
    )

    def accepts(doc: Any) -> bool:
        try:
            validate(doc)
        except JsonSchemaException:
            return False
        return True

    return accepts


__all__ = ["DRAFT7", "Accepts", "compile_accepting", "draft7_equivalent"]
