"""The UNTP DTE JSON Schema (working data model, `data/untp/untp-dte-schema.json`): its check.

`validate_dte_schema` is the hot path of every event append and bundle verification: the schema
compiled once by fastjsonschema (Draft 7 form, `draft7_equivalent`), each event checked against
its own kind's branch (`_validate_by_kind`) when it names exactly one kind, else the whole schema.
Only a rejected document pays for jsonschema (Draft 2020-12, the reference validator), which
names the failing field in the message. `EVENT_KINDS` are the schema's five event kinds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

import fastjsonschema
from batterytrace.credentials.compiled_schema import draft7_equivalent
from batterytrace.credentials.errors import SchemaValidationError
from fastjsonschema import JsonSchemaValueException

# jsonschema stays imported lazily (`_dte_validator`, `_raise_detailed`): it adds ~170 ms to the
# import of this module (and of the engine, its workers and the CLI), and only a rejected
# document or `dte_schema()` needs it.

EVENT_KINDS = (
    "ObjectEvent",
    "TransformationEvent",
    "AggregationEvent",
    "AssociationEvent",
    "TransactionEvent",
)
_DRAFT7 = "http://json-schema.org/draft-07/schema#"


def _schema_text() -> str:
    return (
        resources.files(__package__)
        .joinpath("data/untp/untp-dte-schema.json")
        .read_text(encoding="utf-8")
    )


@lru_cache(maxsize=1)
def _dte_validator() -> Any:
    """The reference validator (jsonschema, Draft 2020-12): slow, used for error messages."""
    from jsonschema import Draft202012Validator

    schema = json.loads(_schema_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@lru_cache(maxsize=1)
def _fast_validator() -> Any:
    """The UNTP DTE schema compiled once by fastjsonschema (Draft 7 form of the schema).

    Formats are not asserted, as jsonschema does not assert them by default: both validators
    must accept exactly the same documents (tests/test_events_schema.py checks they agree).
    """
    schema = draft7_equivalent(json.loads(_schema_text()))
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    # use_default=False: fastjsonschema would otherwise write `default` values INTO the
    # document it checks, changing what was signed.
    return fastjsonschema.compile(schema, use_default=False, use_formats=False)


def _draft7_schema() -> dict[str, Any]:
    """A fresh copy of the schema in Draft 7 form (each compile gets its own)."""
    return draft7_equivalent(json.loads(_schema_text()))


@lru_cache(maxsize=1)
def _fast_shell() -> Any:
    """The credential shell compiled by fastjsonschema: events checked only as objects, each
    then checked by its kind's validator (`_kind_validator`)."""
    schema = _draft7_schema()
    defs = schema["$defs"]
    shell_defs = {**defs, "Event": {k: v for k, v in defs["Event"].items() if k != "oneOf"}}
    return fastjsonschema.compile(
        {**schema, "$schema": _DRAFT7, "$defs": shell_defs}, use_default=False,
        use_formats=False,
    )


@lru_cache(maxsize=8)  # one per event kind
def _kind_validator(kind: str) -> Any:
    """One event kind's branch of the schema, compiled by fastjsonschema on first use (each
    compile costs ~40 ms: a bundle of one kind should not pay for all five).

    The schema picks an event's branch with `oneOf` over the five kinds; every branch
    requires its own kind in `type` (`contains`), so an event naming exactly one kind can
    match that branch only, and `oneOf` holds exactly when that branch does. Trying all five
    costs fastjsonschema about a dozen internal exceptions per event; this checks one.
    """
    defs = _draft7_schema()["$defs"]
    return fastjsonschema.compile(
        {**defs[kind], "$schema": _DRAFT7, "$defs": defs}, use_default=False, use_formats=False
    )


def _single_kind(event: Any) -> str | None:
    """The one event kind `event` names in its `type` list, or None (none, several, no list)."""
    types = event.get("type") if isinstance(event, dict) else None
    if not isinstance(types, list):
        return None
    kinds = [kind for kind in EVENT_KINDS if kind in types]
    return kinds[0] if len(kinds) == 1 else None


def _validate_by_kind(credential: Mapping[str, Any]) -> bool:
    """Validate through the per-kind validators; False (nothing checked) when some event does
    not name exactly one kind, for the full schema to judge. Raises JsonSchemaValueException."""
    subjects = credential.get("credentialSubject") if isinstance(credential, dict) else None
    if not isinstance(subjects, list):
        return False
    kinds = [_single_kind(event) for event in subjects]
    if None in kinds:
        return False
    _fast_shell()(credential)
    for kind, event in zip(kinds, subjects, strict=True):
        _kind_validator(kind)(event)
    return True


def dte_schema() -> dict[str, Any]:
    """The packaged UNTP DTE JSON Schema (working data model)."""
    return _dte_validator().schema


def validate_dte_schema(credential: Mapping[str, Any]) -> None:
    """Raise SchemaValidationError when the credential does not conform to the UNTP schema.

    The compiled validators decide (the event kind's branch alone when each event names one
    kind, else the whole schema); only a rejected document pays for jsonschema, which names
    the failing field in the message.
    """
    try:
        if not _validate_by_kind(credential):
            _fast_validator()(credential)
        return
    except JsonSchemaValueException as fast_error:
        detail = fast_error
    _raise_detailed(credential, detail)


def _raise_detailed(credential: Mapping[str, Any], fast_error: Any) -> None:
    from jsonschema.exceptions import best_match

    validator = _dte_validator()
    error = best_match(validator.iter_errors(credential))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise SchemaValidationError(
            f"credential does not conform to the UNTP DTE schema at {where}: {error.message}",
            path=where,
        )
    # The validators disagree (a bug in the rewrite): reject, naming what the fast one saw.
    where = str(getattr(fast_error, "name", "data")).replace("data", "(root)", 1)
    raise SchemaValidationError(
        f"credential does not conform to the UNTP DTE schema at {where}: {fast_error.message}",
        path=where,
    )
