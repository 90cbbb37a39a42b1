"""The compiled (fastjsonschema) UNTP DTE validator agrees with jsonschema Draft 2020-12."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from batterytrace.credentials.errors import SchemaValidationError
from batterytrace.ledger.event_schema import (
    _dte_validator,
    _fast_validator,
    draft7_equivalent,
    validate_dte_schema,
)
from conftest import DOMAIN_SAMPLES, ROOT, load_json
from custody_factory import credential, extraction, signed_credential

UNTP = DOMAIN_SAMPLES / "untp" / "data-models-working"


def _fast_accepts(document: Any) -> bool:
    from fastjsonschema import JsonSchemaValueException

    try:
        _fast_validator()(document)
    except JsonSchemaValueException:
        return False
    return True


def _agree(document: Any) -> bool:
    """Both validators' verdict, asserting they are the same (and the document unchanged)."""
    before = copy.deepcopy(document)
    fast = _fast_accepts(document)
    assert document == before, "the fast validator must not write defaults into the document"
    slow = _dte_validator().is_valid(document)
    assert fast == slow, f"fastjsonschema says {fast}, jsonschema says {slow}"
    return fast


def _doc_examples() -> list[dict[str, Any]]:
    text = (ROOT / "docs" / "events.md").read_text("utf-8")
    blocks = re.findall(r"<!-- issuer: (\w+) -->\n```json\n(.*?)\n```", text, re.S)
    assert len(blocks) >= 25
    return [signed_credential(who, [json.loads(body)]) for who, body in blocks]


def _valid() -> dict[str, Any]:
    return signed_credential("miner", [extraction("kolwezi-mine", "ore", 12.5, {"Co": 0.3})])


def test_agrees_on_every_documented_example():
    for document in _doc_examples():
        assert _agree(document)


@pytest.mark.parametrize("path", sorted(UNTP.glob("dte-*.json")), ids=lambda p: p.name)
def test_agrees_on_untp_samples(path: Path):
    _agree(load_json(path))


def _mutations() -> list[tuple[str, Any]]:
    """(name, change) of invalid documents: each breaks one constraint of the schema."""

    def ctx_order(d):
        d["@context"][0], d["@context"][1] = d["@context"][1], d["@context"][0]

    def ctx_first_wrong(d):  # prefixItems: Draft 7 validators ignore it unless rewritten
        d["@context"][0] = "https://www.w3.org/2018/credentials/v1"

    def ctx_duplicate(d):
        d["@context"].append(d["@context"][0])

    def ctx_short(d):
        d["@context"] = d["@context"][:1]

    def no_dte_type(d):
        d["type"] = ["VerifiableCredential"]

    def issuer_string(d):
        d["issuer"] = d["issuer"]["id"]

    def issuer_type(d):
        d["issuer"]["type"] = ["Organisation"]

    def subject_object(d):
        d["credentialSubject"] = d["credentialSubject"][0]

    def closed_quantity(d):
        d["credentialSubject"][0]["quantityList"][0]["composition"] = {"Co": 0.3}

    def quantity_string(d):
        d["credentialSubject"][0]["quantityList"][0]["quantity"] = "12.5"

    def valid_from_bad(d):
        d["validFrom"] = "2026-02-01 10:00"

    def no_event_type(d):
        d["credentialSubject"][0]["type"] = ["Event"]

    def action_bad(d):
        d["credentialSubject"][0]["action"] = "explode"

    def id_number(d):
        d["id"] = 42

    return [
        (f.__name__, f)
        for f in (ctx_order, ctx_first_wrong, ctx_duplicate, ctx_short, no_dte_type,
                  issuer_string, issuer_type, subject_object, closed_quantity, quantity_string,
                  valid_from_bad, no_event_type, action_bad, id_number)
    ]


@pytest.mark.parametrize("name,change", _mutations(), ids=[n for n, _ in _mutations()])
def test_agrees_on_invalid_documents(name, change):
    document = _valid()
    assert _agree(document)
    change(document)
    verdict = _agree(document)
    if name not in ("issuer_type", "no_event_type", "action_bad"):
        assert not verdict, f"{name} should break the schema"


def test_rejection_names_the_field():
    document = credential("miner", [extraction("kolwezi-mine", "ore", 1, {})])
    document["credentialSubject"][0]["quantityList"][0]["composition"] = {"Co": 0.3}
    with pytest.raises(SchemaValidationError) as caught:
        validate_dte_schema(document)
    # jsonschema's best match names the event (the quantity sits under a oneOf of event kinds)
    assert "UNTP DTE schema at credentialSubject/0:" in caught.value.message
    assert caught.value.details["path"] == "credentialSubject/0"


def test_prefix_items_rewritten_for_draft7():
    schema = {"type": "array", "prefixItems": [{"const": 1}], "items": {"type": "integer"}}
    assert draft7_equivalent(schema) == {
        "type": "array", "items": [{"const": 1}], "additionalItems": {"type": "integer"},
    }
