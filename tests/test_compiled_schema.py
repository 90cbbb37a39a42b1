"""The compiled schema validators (credentials/compiled_schema.py) agree with jsonschema.

The compiled validator only ever accepts (jsonschema decides every document it rejects), so
the property that matters is: it never accepts what jsonschema rejects. Checked on the W3C VC
2.0 credential and presentation schemas, every credential type schema, and the UNTP DTE
schema, over the W3C vectors, the documented examples, a UNTP DTE event and their mutations
(every top-level and nested field removed or replaced by values of the wrong shape), and over
hypothesis-generated documents.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from batterytrace.credentials import credential_types as ct
from batterytrace.credentials import vc
from batterytrace.credentials.compiled_schema import compile_accepting, draft7_equivalent
from batterytrace.ledger import event_schema
from conftest import ROOT, W3C
from custody_factory import extraction, signed_credential
from hypothesis import given, settings
from hypothesis import strategies as st

TYPE_NAMES = [t.name for t in ct.credential_types()]
SHAPES: list[Any] = [
    None, True, 0, 1.5, -1, "", "x", "2026-02-30", "2026-01-01T00:00:00", "urn:x", [], [""],
    [1], ["VerifiableCredential"], [{}], {}, {"id": 1}, {"type": []}, {"id": "urn:a"},
]


def _w3c_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(W3C.rglob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and "credentialSubject" in doc:
            docs.append(doc)
    return docs


def _type_examples() -> dict[str, dict[str, Any]]:
    """The first JSON block under each `## <TypeName>` heading of docs/credentials.md."""
    text = (ROOT / "docs" / "credentials.md").read_text(encoding="utf-8")
    found = {}
    for match in re.finditer(r"^## (\w+)\n.*?```json\n(.*?)\n```", text, re.S | re.M):
        found[match.group(1)] = json.loads(match.group(2))
    return found


def _mutations(doc: Any, depth: int = 3) -> Iterator[Any]:
    """`doc` with one field removed or replaced by each of SHAPES, at every place up to
    `depth` levels down (lists: their first item)."""
    if depth == 0 or not isinstance(doc, dict | list):
        return
    places = list(doc) if isinstance(doc, dict) else list(range(min(len(doc), 1)))
    for place in places:
        removed = copy.deepcopy(doc)
        del removed[place]
        yield removed
        for shape in SHAPES:
            changed = copy.deepcopy(doc)
            changed[place] = copy.deepcopy(shape)
            yield changed
        for inner in _mutations(doc[place], depth - 1):
            changed = copy.deepcopy(doc)
            changed[place] = inner
            yield changed


def _disagreements(accepts: Any, reference: Any, docs: list[Any]) -> list[Any]:
    return [d for d in docs if accepts(d) != reference.is_valid(d)]


@pytest.mark.parametrize("name", [vc.CREDENTIAL_SCHEMA, vc.PRESENTATION_SCHEMA])
def test_w3c_schemas_agree_on_vectors_and_mutations(name: str) -> None:
    # The W3C vectors and three typed examples (each type's schema has its own test below).
    credentials = _w3c_documents() + list(_type_examples().values())[:3]
    if name == vc.PRESENTATION_SCHEMA:
        docs = [{"@context": [vc.VC_V2_CONTEXT], "type": ["VerifiablePresentation"],
                 "verifiableCredential": [c]} for c in credentials[:3]]
    else:
        docs = credentials
    checked = [m for d in docs for m in [d, *_mutations(d)]]
    accepted = [d for d in checked if vc._accepts(name)(d)]
    assert accepted and len(accepted) < len(checked)  # both verdicts are exercised
    assert _disagreements(vc._accepts(name), vc._validator(name), checked) == []


@pytest.mark.parametrize("type_name", TYPE_NAMES)
def test_type_schemas_agree_on_examples_and_mutations(type_name: str) -> None:
    example = _type_examples()[type_name]
    checked = [example, *_mutations(example, depth=4)]
    accepts = ct._accepts(type_name)
    assert accepts(example)
    assert _disagreements(accepts, ct._validator(type_name), checked) == []


def test_type_schema_formats_are_jsonschemas() -> None:
    """"date" is asserted exactly as jsonschema's format checker asserts it."""
    schema = {"type": "object", "properties": {"d": {"type": "string", "format": "date"}}}
    accepts = compile_accepting(schema, assert_formats=True)
    for value in ("2026-01-31", "2026-02-30", "2026-1-1", "20260101", "2026-01-31T00:00:00Z"):
        expected = ct.jsonschema.Draft202012Validator(
            schema, format_checker=ct.jsonschema.Draft202012Validator.FORMAT_CHECKER
        ).is_valid({"d": value})
        assert accepts({"d": value}) == expected, value


def test_untp_schema_agrees_on_samples_and_mutations() -> None:
    accepts = compile_accepting(event_schema.dte_schema())
    valid = signed_credential("miner", [extraction("kolwezi-mine", "ore", 12.5, {"Co": 0.3})])
    checked = [valid, *_mutations(valid, depth=5)]
    assert accepts(valid)
    assert _disagreements(accepts, event_schema._dte_validator(), checked) == []


def test_ref_siblings_keep_their_2020_12_meaning() -> None:
    """Draft 7 ignores the siblings of a $ref; the rewrite keeps them as 2020-12 does."""
    schema = {"$defs": {"s": {"type": "string"}}, "properties": {
        "a": {"$ref": "#/$defs/s", "minLength": 3, "description": "kept inert"}}}
    rewritten = draft7_equivalent(schema)
    assert rewritten["properties"]["a"] == {
        "minLength": 3, "description": "kept inert", "allOf": [{"$ref": "#/$defs/s"}]}
    assert not compile_accepting(schema)({"a": "ab"})
    assert compile_accepting(schema)({"a": "abc"})


def test_one_of_becomes_any_of_only_when_branches_are_disjoint_by_type() -> None:
    disjoint = {"oneOf": [{"type": "string"}, {"type": ["array", "object"]}]}
    assert draft7_equivalent(disjoint) == {"anyOf": disjoint["oneOf"]}
    for overlapping in (
        {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 2}]},
        {"oneOf": [{"type": "string"}, {"minLength": 2}]},
    ):
        assert draft7_equivalent(overlapping) == overlapping
    accepts = compile_accepting({"oneOf": [{"type": "integer"}, {"type": "number"}]})
    assert not accepts(3) and accepts(2.5)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(
        ["", "x", "VerifiableCredential", vc.VC_V2_CONTEXT, "2026-01-01T00:00:00Z", "urn:a"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "type", "issuer", "@context", "credentialSubject", "proof",
                         "validFrom", "credentialStatus", "proofPurpose",
                         "verificationMethod"]), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(extra=st.dictionaries(
    st.sampled_from(["@context", "type", "issuer", "credentialSubject", "proof", "validFrom",
                     "validUntil", "credentialStatus", "credentialSchema", "evidence"]),
    JSON, max_size=3))
def test_w3c_credential_schema_agrees_on_generated_documents(extra: dict[str, Any]) -> None:
    doc = {**_w3c_documents()[0], **extra}
    name = vc.CREDENTIAL_SCHEMA
    assert vc._accepts(name)(doc) == vc._validator(name).is_valid(doc)
