"""Battery-domain credential types: schemas, models, the docs' examples, UNTP alignment, JSON-LD
expansion under bundled contexts only, and signing + verifying each example with a did:key."""

from __future__ import annotations

import copy
import json
import re
import typing
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from batterytrace.credentials import credential_types as ct
from batterytrace.credentials import domain_models as dm
from batterytrace.credentials.errors import (
    ParsingError,
    SchemaValidationError,
    VerificationError,
)
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.ledger import registry
from conftest import DOMAIN_SAMPLES, ROOT, W3C
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

DOCS = ROOT / "docs" / "credentials.md"
UNTP_DIR = DOMAIN_SAMPLES / "untp" / "data-models-working"
CONTEXTS = ROOT / "credentials" / "data" / "contexts"
TYPE_NAMES = [t.name for t in ct.credential_types()]


def _doc_examples() -> dict[str, dict[str, Any]]:
    """The first JSON block under each `## <TypeName>` heading of docs/credentials.md."""
    text = DOCS.read_text(encoding="utf-8")
    found = {}
    for match in re.finditer(r"^## (\w+)\n.*?```json\n(.*?)\n```", text, re.S | re.M):
        found[match.group(1)] = json.loads(match.group(2))
    return found


EXAMPLES = _doc_examples()


@pytest.fixture(params=TYPE_NAMES)
def example(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, copy.deepcopy(EXAMPLES[request.param])


def _rebuild(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """build_credential with the arguments that produced `doc`, optionally changed."""
    issuer = doc["issuer"]
    args: dict[str, Any] = {
        "issuer": issuer["id"] if isinstance(issuer, dict) else issuer,
        "issuer_name": issuer.get("name") if isinstance(issuer, dict) else None,
        "id": doc["id"],
        "valid_from": doc.get("validFrom"),
        "valid_until": doc.get("validUntil"),
    }
    args.update(changes)
    name = ct.type_of_document(doc).name
    return ct.build_credential(name, doc["credentialSubject"], **args)


# --- registry ------------------------------------------------------------------------------


def test_registry_has_every_issue_6_type_and_docs_have_an_example_each() -> None:
    assert set(TYPE_NAMES) == {
        "IRMAAuditCredential",
        "MineralOriginCredential",
        "CarbonFootprintCredential",
        "RecycledContentCredential",
        "DueDiligenceCredential",
        "BatteryPassportCredential",
        "FacilityCredential",
        "ParticipantCredential",
        "RecyclingEfficiencyCredential",
    }
    assert set(EXAMPLES) == set(TYPE_NAMES)


def test_subject_kinds_and_schema_ids() -> None:
    assert ct.subject_kind("IRMAAuditCredential") == "facility"
    assert ct.subject_kind("MineralOriginCredential") == "lot"
    assert ct.subject_kind("BatteryPassportCredential") == "item"
    assert ct.subject_kind("ParticipantCredential") == "participant"
    irma = ct.credential_type("IRMAAuditCredential")
    assert irma.schema_id == "https://batterytrace.dev/schemas/irma-audit-credential-1.0.json"
    assert irma.contexts[1] == "https://test.uncefact.org/vocabulary/untp/dcc/working/"
    with pytest.raises(ct.UnknownCredentialTypeError):
        ct.subject_kind("AccreditationCredential")  # written elsewhere, not registered here


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_bundled_schema_is_the_model_schema(name: str) -> None:
    schema = ct.load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == ct.generate_schema(name), "run credential_types.write_schemas()"


# --- examples: valid, rebuilt identically, UNTP-aligned --------------------------------------


def test_example_is_valid_and_matches_the_builder(example: tuple[str, dict[str, Any]]) -> None:
    name, doc = example
    ct.validate_credential_document(doc)
    model = ct.validate_subject(name, doc["credentialSubject"])
    assert isinstance(model, ct.credential_type(name).model)
    assert model.id == doc["credentialSubject"]["id"]  # type: ignore[attr-defined]
    assert _rebuild(doc) == doc  # the docs show exactly what issuance produces


def test_example_validates_against_its_untp_schema(example: tuple[str, dict[str, Any]]) -> None:
    name, doc = example
    family = ct.credential_type(name).untp
    schema = json.loads((UNTP_DIR / family.schema_file).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []
    assert family.credential_type in doc["type"]


def test_the_vendored_untp_schemas_are_the_pinned_ones() -> None:
    # What the project validates with at run time (credentials/data/schemas/untp) is byte for
    # byte the pinned working version in ../shared/domain/samples/untp.
    vendored = ROOT / "credentials" / "data" / "schemas" / "untp"
    for family in (ct.DCC, ct.DFR, ct.DIA, ct.DPP):
        assert (vendored / family.schema_file).read_bytes() == \
            (UNTP_DIR / family.schema_file).read_bytes(), family.short


def test_untp_schema_rejects_a_plain_string_issuer() -> None:
    # Why build_credential takes issuer_name: UNTP requires an issuer object with a name.
    doc = _rebuild(EXAMPLES["IRMAAuditCredential"], issuer_name=None)
    assert isinstance(doc["issuer"], str)
    ct.validate_credential_document(doc)  # fine for the project's own schema
    schema = json.loads((UNTP_DIR / "untp-dcc-schema.json").read_text(encoding="utf-8"))
    assert not jsonschema.Draft202012Validator(schema).is_valid(doc)


def test_build_credential_defaults() -> None:
    subject = EXAMPLES["ParticipantCredential"]["credentialSubject"]
    bare = {k: v for k, v in subject.items() if k != "type"}
    doc = ct.build_credential(
        "ParticipantCredential",
        bare,
        issuer="did:web:ledger.example",
        valid_from=datetime(2025, 1, 14, 9, 0, 0),  # naive: read as UTC
    )
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", doc["id"])
    assert doc["validFrom"] == "2025-01-14T09:00:00Z" and "validUntil" not in doc
    assert doc["issuer"] == "did:web:ledger.example"
    assert doc["credentialSubject"]["type"] == ["RegisteredIdentity"]  # filled in
    assert doc["type"] == ["VerifiableCredential", "DigitalIdentityAnchor", "ParticipantCredential"]
    with pytest.raises(ct.UnknownCredentialTypeError):
        ct.build_credential("NoSuchCredential", bare, issuer="did:web:ledger.example")


# --- invalid subjects are rejected with the field named -------------------------------------

# (type, path to change, new value or DELETE, field the error must name)
DELETE = object()
BAD_FIELDS = [
    ("IRMAAuditCredential", ["achievementLevel"], "IRMA 80", "credentialSubject.achievementLevel"),
    ("IRMAAuditCredential", ["issuedToParty"], DELETE, "credentialSubject.issuedToParty"),
    ("IRMAAuditCredential", ["achievmentLevel"], "IRMA 75", "credentialSubject.achievmentLevel"),
    (
        "IRMAAuditCredential",
        ["conformityCertificate", "hashDigest"],
        "abc",
        "credentialSubject.conformityCertificate.hashDigest",
    ),
    ("MineralOriginCredential", ["countryOfOrigin"], "Zambia", "credentialSubject.countryOfOrigin"),
    (
        "CarbonFootprintCredential",
        ["carbonFootprintPerLifecycleStage", 1, "lifecycleStage"],
        "Assembly",
        "credentialSubject.carbonFootprintPerLifecycleStage[1].lifecycleStage",
    ),
    (
        "RecycledContentCredential",
        ["recycledContent", 0, "postConsumerShare"],
        120,
        "credentialSubject.recycledContent[0].postConsumerShare",
    ),
    (
        "DueDiligenceCredential",
        ["chainOfCustodySystem"],
        "trust-me",
        "credentialSubject.chainOfCustodySystem",
    ),
    (
        "BatteryPassportCredential",
        ["gbt34014Code"],
        "XHEPA01C240315R3F000042",
        "credentialSubject.gbt34014Code",
    ),
    (
        "BatteryPassportCredential",
        ["product", "countryOfProduction"],
        "CHN",
        "credentialSubject.product.countryOfProduction",
    ),
    (
        "FacilityCredential",
        ["facility", "locationInformation", "geoLocation", "coordinates"],
        [200.0, 0.0],
        "credentialSubject.facility.locationInformation.geoLocation.coordinates",
    ),
    ("ParticipantCredential", ["id"], "https://hanbit.example", "credentialSubject.id"),
    (
        "RecyclingEfficiencyCredential",
        ["materialRecovery", 0, "material"],
        "Gold",
        "credentialSubject.materialRecovery[0].material",
    ),
]


def _set(subject: dict[str, Any], path: list[Any], value: Any) -> None:
    target = subject
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


@pytest.mark.parametrize(("name", "path", "value", "field"), BAD_FIELDS)
def test_invalid_subject_names_the_field(
    name: str, path: list[Any], value: Any, field: str
) -> None:
    doc = copy.deepcopy(EXAMPLES[name])
    _set(doc["credentialSubject"], path, value)
    with pytest.raises(ct.CredentialSubjectError) as caught:
        ct.validate_subject(name, doc["credentialSubject"])
    assert caught.value.details["field"] == field
    assert field in caught.value.message and caught.value.code == "CREDENTIAL_SUBJECT_ERROR"
    with pytest.raises(ct.CredentialSubjectError):  # issuance refuses it too
        _rebuild(doc)
    with pytest.raises(VerificationError):  # and so does verification
        ct.validate_credential_document(doc)


# Rules across fields, which only the model knows (the schema cannot say them).
CROSS_FIELD = [
    ("IRMAAuditCredential", ["certified"], True, "certified must be true exactly"),
    ("IRMAAuditCredential", ["correctiveActionDeadline"], DELETE, "correctiveActionDeadline"),
    ("IRMAAuditCredential", ["auditDates", "stage1Date"], "2025-06-01", "out of order"),
    ("CarbonFootprintCredential", ["batteryCarbonFootprint"], 55.0, "batteryCarbonFootprint"),
    ("RecycledContentCredential", ["recycledContent", 0, "preConsumerShare"], 90.0, "exceeds 100"),
    (
        "BatteryPassportCredential",
        ["product", "id"],
        "https://id.gs1.org/01/0690/21/OTHER",
        "product.id must equal",
    ),
    ("MineralOriginCredential", ["extractionPeriod", "endDate"], "2025-07-01", "endDate"),
]


@pytest.mark.parametrize(("name", "path", "value", "words"), CROSS_FIELD)
def test_cross_field_rules_fail_issuance_and_verification(
    name: str, path: list[Any], value: Any, words: str
) -> None:
    doc = copy.deepcopy(EXAMPLES[name])
    _set(doc["credentialSubject"], path, value)
    jsonschema.Draft202012Validator(ct.load_schema(name)).validate(doc)  # schema: fine
    with pytest.raises(ct.CredentialSubjectError, match=re.escape(words)):
        ct.validate_credential_document(doc)


def test_schema_errors_name_the_json_path() -> None:
    doc = copy.deepcopy(EXAMPLES["IRMAAuditCredential"])
    doc["credentialSchema"]["id"] = "https://batterytrace.dev/schemas/other-1.0.json"
    with pytest.raises(SchemaValidationError, match="credentialSchema/id"):
        ct.validate_credential_document(doc)
    doc = copy.deepcopy(EXAMPLES["FacilityCredential"])
    doc["@context"] = doc["@context"][:1]
    with pytest.raises(SchemaValidationError, match="@context"):
        ct.validate_credential_document(doc)


def test_a_document_must_name_exactly_one_registered_type() -> None:
    doc = copy.deepcopy(EXAMPLES["FacilityCredential"])
    doc["type"] = ["VerifiableCredential", "DigitalFacilityRecord"]
    with pytest.raises(ct.UnknownCredentialTypeError):
        ct.validate_credential_document(doc)
    doc["type"] += ["FacilityCredential", "ParticipantCredential"]
    with pytest.raises(ct.UnknownCredentialTypeError):
        ct.validate_credential_document(doc)


def test_gbt34014_code_is_optional_and_the_catena_x_example_passes() -> None:
    subject = copy.deepcopy(EXAMPLES["BatteryPassportCredential"]["credentialSubject"])
    del subject["gbt34014Code"]
    ct.validate_subject("BatteryPassportCredential", subject)
    sample = json.loads(
        (DOMAIN_SAMPLES / "china" / "catenax-traction-battery-code-regex.json").read_text()
    )
    assert sample["regex_24_or_18"] == dm.GBT34014_PATTERN  # 24 or 19 characters, in fact
    # the Catena-X example's battery type letter is C (lithium manganese oxide): it fits an
    # LMO battery, not the example's LFP pack
    subject["gbt34014Code"] = sample["exampleValue"]
    with pytest.raises(ct.CredentialSubjectError, match="battery type C"):
        ct.validate_subject("BatteryPassportCredential", subject)
    subject["batteryChemistry"] = {"shortName": "LMO", "clearName": "Lithium manganese oxide"}
    ct.validate_subject("BatteryPassportCredential", subject)
    # the docs' example: B for its lithium iron phosphate pack
    assert EXAMPLES["BatteryPassportCredential"]["credentialSubject"]["gbt34014Code"][4] == "B"


@given(pre=st.floats(-10, 110), post=st.floats(-10, 110))
def test_recycled_shares_are_percentages_that_fit_in_the_whole(pre: float, post: float) -> None:
    ok = 0 <= pre <= 100 and 0 <= post <= 100 and pre + post <= 100
    share = {"recycledMaterial": "Cobalt", "preConsumerShare": pre, "postConsumerShare": post}
    try:
        dm.RecycledShare.model_validate(share)
    except ValueError:
        assert not ok
    else:
        assert ok


# --- JSON-LD: every property defined by the bundled contexts --------------------------------


def _bundled_context(url: str) -> Any:
    """Only contexts bundled in the package; the W3C ones from ../shared if not copied yet."""
    host_path = url.split("://", 1)[1]
    for base in (CONTEXTS, W3C / "contexts"):
        relative = host_path if base == CONTEXTS else host_path.split("/ns/", 1)[-1]
        path = base / relative
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    raise LookupError(f"context {url} is not bundled (nothing is fetched)")


def _loader(url: str, options: Any = None) -> dict[str, Any]:
    return {"contextUrl": None, "documentUrl": url, "document": _bundled_context(url)}


def _dropped(prop: str | None) -> None:
    raise AssertionError(f"JSON-LD expansion dropped {prop!r}")


def _scalars(value: Any, *, expanded: bool) -> int:
    if isinstance(value, list):
        return sum(_scalars(v, expanded=expanded) for v in value)
    if isinstance(value, dict):
        count = 0
        for key, item in value.items():
            if key == "@context" or (expanded and key == "@type" and "@value" in value):
                continue  # contexts are not data; a value's datatype is added by coercion
            count += _scalars(item, expanded=expanded)
        return count
    return 1


def _expand(doc: dict[str, Any]) -> list[Any]:
    from pyld import jsonld

    # The UNTP working contexts are not bundled (not in ../shared, and not ours to copy):
    # the project's context must define every term alone, so they are left out here.
    doc = {**doc, "@context": [c for c in doc["@context"] if not c.startswith(ct.UNTP_BASE)]}
    processor = jsonld.JsonLdProcessor(on_property_dropped=_dropped)
    return processor.expand(
        doc, {"documentLoader": _loader, "base": None, "processingMode": "json-ld-1.1"}
    )


def _predicates(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _predicates(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if not key.startswith("@"):
                found.add(key)
            found |= _predicates(value)
    return found


def test_example_expands_with_bundled_contexts_and_drops_nothing(
    example: tuple[str, dict[str, Any]],
) -> None:
    name, doc = example
    expanded = _expand(doc)
    assert _scalars(expanded, expanded=True) == _scalars(doc, expanded=False)
    assert all(re.match(r"https?://", p) for p in _predicates(expanded))
    assert expanded[0]["@type"] == [
        "https://www.w3.org/2018/credentials#VerifiableCredential",
        f"{ct.UNTP_BASE}{ct.credential_type(name).untp.short}/working/"
        f"{ct.credential_type(name).untp.credential_type}",
        f"https://batterytrace.dev/vocab#{name}",
    ]


def test_expansion_check_catches_an_undefined_property() -> None:
    doc = copy.deepcopy(EXAMPLES["MineralOriginCredential"])
    doc["credentialSubject"]["smelterNotes"] = "not in any context"
    with pytest.raises(Exception, match="smelterNotes"):
        _expand(doc)


def _aliases(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        stack = [info.annotation]
        while stack:
            ann = stack.pop()
            stack.extend(typing.get_args(ann))
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                names |= _aliases(ann, seen)
    return names


def test_context_defines_every_property_a_model_can_emit() -> None:
    context = _bundled_context(ct.BATTERYTRACE_CONTEXT)["@context"]
    vc_terms = {"id", "type", "name", "description"}  # defined (protected) by VC 2.0
    emitted: set[str] = set()
    for ctype in ct.credential_types():
        emitted |= _aliases(ctype.model, set())
        assert ctype.name in context and ctype.untp.credential_type in context
    assert sorted(emitted - vc_terms - set(context)) == []


# --- signing and verifying each example with a did:key --------------------------------------


def test_example_signs_and_verifies(example: tuple[str, dict[str, Any]]) -> None:
    data_integrity = pytest.importorskip("batterytrace.credentials.data_integrity")
    vc = pytest.importorskip("batterytrace.credentials.vc")
    did = pytest.importorskip("batterytrace.credentials.did")
    name, doc = example
    key = Ed25519Key.from_seed(bytes(range(32)))
    unsigned = _rebuild(doc, issuer=key.did_key)
    signed = data_integrity.sign(unsigned, key, created=doc["validFrom"])
    ct.validate_credential_document(signed)  # a proof does not upset the type's schema
    at = datetime.fromisoformat(doc["validFrom"].replace("Z", "+00:00"))
    result = vc.verify_credential(signed, did.OfflineResolver(), at=at)
    assert result.issuer == key.did_key
    assert result.subject_ids == (doc["credentialSubject"]["id"],)
    assert name in result.types

    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["name" if "name" in doc["credentialSubject"] else "id"] += "x"
    with pytest.raises(VerificationError):
        vc.verify_credential(tampered, did.OfflineResolver(), at=at)


def test_dates_in_examples_are_utc_timestamps() -> None:
    for doc in EXAMPLES.values():
        for field in ("validFrom", "validUntil"):
            if field in doc:
                parsed = datetime.fromisoformat(doc[field].replace("Z", "+00:00"))
                assert parsed.tzinfo == UTC and doc[field].endswith("Z")


def test_validate_credential_document_refuses_a_non_object() -> None:
    with pytest.raises(ParsingError):
        ct.validate_credential_document(["not", "a", "credential"])  # type: ignore[arg-type]


@pytest.mark.parametrize("role", registry.ROLES)
def test_every_role_the_registry_accepts_a_participant_credential_carries(role: str) -> None:
    """One list of roles: a participant registered with a role (ledger/registry.py) can be
    issued a ParticipantCredential naming it (the demo's cooperative is an
    artisanal-cooperative)."""
    doc = copy.deepcopy(EXAMPLES["ParticipantCredential"])
    doc["credentialSubject"]["roles"] = [role]
    ct.validate_credential_document(doc)
    ct.validate_subject("ParticipantCredential", doc["credentialSubject"])


def test_the_participant_schema_lists_the_one_role_list() -> None:
    schema = ct.load_schema("ParticipantCredential")
    assert tuple(_find_enum(schema, "miner")) == dm.PARTICIPANT_ROLES == registry.ROLES


def _find_enum(node: Any, member: str) -> list[str]:
    """The first `enum` under `node` that holds `member`."""
    if isinstance(node, dict):
        if member in node.get("enum", ()):
            return list(node["enum"])
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            if found := _find_enum(child, member):
                return found
    return []
