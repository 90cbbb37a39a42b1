"""VC Data Model 2.0 as JSON-LD-aware verifiers read it: for each MUST implemented, a document
accepted and a document refused, at issue (`credential sign`, the credential store's check
before signing) and at verify (`verify_credential`, `verify_presentation`). Fixtures written
from the VC DM 2.0 text (sections cited per case)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.did import OfflineResolver
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.keys import Ed25519Key, write_key_file
from batterytrace.credentials.presentation import create_presentation, verify_presentation
from batterytrace.credentials.vc import check_credential, verify_credential

V2 = "https://www.w3.org/ns/credentials/v2"
EXAMPLES = "https://www.w3.org/ns/credentials/examples/v2"
UNDEFINED_TERMS = "https://www.w3.org/ns/credentials/undefined-terms/v2"
ISSUER = Ed25519Key.from_seed(b"\x41" * 32)
HOLDER = Ed25519Key.from_seed(b"\x42" * 32)
RESOLVER = OfflineResolver()


def base(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": [V2, EXAMPLES],
        "id": "urn:uuid:5c1f2a8e-0000-4000-8000-000000000021",
        "type": ["VerifiableCredential", "ExampleAssayCredential"],
        "issuer": ISSUER.did_key,
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": "https://id.example.com/lots/ore-1", "cobalt": "0.1"},
    }
    doc.update(changes)
    return doc


# (MUST, accepted document, refused document, error code)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    # 4.3 Contexts: every item of @context is a URL or an object; URLs have no whitespace.
    "context entry is a URL": (
        base(),
        base(**{"@context": [V2, "https://example.org/my context.jsonld"]}),
        "JSONLD_CONTEXT_INVALID"),
    # 4.3 / JSON-LD 1.1 4.1: a term maps to an IRI (a space makes it none).
    "term mapping is a URL": (
        base(**{"@context": [V2, EXAMPLES, {"cobalt": "https://example.org/vocab#cobalt"}]}),
        base(**{"@context": [V2, EXAMPLES, {"cobalt": "https://example.org/vo cab#cobalt"}]}),
        "JSONLD_CONTEXT_INVALID"),
    "@vocab is a URL": (
        base(**{"@context": [V2, {"@vocab": "https://example.org/vocab#"}]}),
        base(**{"@context": [V2, {"@vocab": "https://example.org/vo cab#"}]}),
        "JSONLD_CONTEXT_INVALID"),
    # 4.3: the VC 2.0 context's terms are @protected; a later context may not redefine them.
    "protected term not redefined": (
        base(**{"@context": [V2, EXAMPLES, {"name": "https://schema.org/name"}]}),
        base(**{"@context": [V2, EXAMPLES, {"name": "https://example.org/vocab#name"}]}),
        "JSONLD_PROTECTED_TERM_REDEFINED"),
    # 4.5 Types: every type maps to a URL; "@vocab": null leaves an undefined type unmapped.
    "type maps to a URL": (
        base(**{"@context": [V2, {"@vocab": None,
                                  "ExampleAssayCredential": "https://example.org/v#Assay",
                                  "cobalt": "https://example.org/v#cobalt"}]}),
        base(**{"@context": [V2, {"@vocab": None, "cobalt": "https://example.org/v#cobalt"}]}),
        "JSONLD_TYPE_UNMAPPED"),
    # 4.5 Types, with no @vocab at all: the VC 2.0 base context alone defines no
    # ExampleAssayCredential; the undefined-terms context maps it (to undefined-term#).
    "type maps to a URL without any @vocab": (
        base(**{"@context": [V2, UNDEFINED_TERMS]}),
        base(**{"@context": [V2]}),
        "JSONLD_TYPE_UNMAPPED"),
    # 11.1 Language and base direction: a value object holds @value, @language, @direction.
    "language value object members": (
        base(name=[{"@value": "Assay", "@language": "en", "@direction": "ltr"}]),
        base(name=[{"@value": "Assay", "@language": "en", "note": "x"}]),
        "JSONLD_VALUE_OBJECT_INVALID"),
    "language value object direction": (
        base(description={"@value": "تحليل", "@language": "ar", "@direction": "rtl"}),
        base(description={"@value": "Assay", "@direction": "up"}),
        "JSONLD_VALUE_OBJECT_INVALID"),
}


@pytest.mark.parametrize("must", sorted(CASES))
def test_at_verify(must: str) -> None:
    accepted, refused, code = CASES[must]
    at = None
    result = verify_credential(sign(copy.deepcopy(accepted), ISSUER), RESOLVER, at=at)
    assert result.ok
    with pytest.raises(BatterytraceError) as caught:
        # signed as if the issuer skipped the check: the verifier refuses it anyway
        verify_credential(sign(copy.deepcopy(refused), ISSUER), RESOLVER)
    assert caught.value.code == code


@pytest.mark.parametrize("must", sorted(CASES))
def test_at_issue(must: str, tmp_path: Path) -> None:
    from batterytrace.api.cli import app
    from typer.testing import CliRunner

    accepted, refused, code = CASES[must]
    key = tmp_path / "issuer.json"
    write_key_file(ISSUER, key)
    runner = CliRunner()
    for doc, ok in ((accepted, True), (refused, False)):
        source = tmp_path / "doc.json"
        source.write_text(json.dumps(doc))
        result = runner.invoke(app, ["credential", "sign", str(source), "--key", str(key)])
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        else:
            assert result.exception is not None and result.exception.code == code
    assert check_credential(accepted) == []  # the store's check before signing
    with pytest.raises(BatterytraceError):
        check_credential(refused)


def test_the_vc2_base_context_sets_no_vocab() -> None:
    # The Recommendation's base context (vendored, SHA-256 59955ced...) defines no @vocab: a
    # type no context defines maps to no URL under it (the undefined-terms context sets one).
    from batterytrace.credentials.rdfc import load_bundled_context

    assert "@vocab" not in load_bundled_context(V2)["@context"]
    assert "@vocab" in load_bundled_context(UNDEFINED_TERMS)["@context"]


def test_our_accreditation_credential_maps_its_types_through_the_project_context() -> None:
    from batterytrace.verifier.accreditation import accreditation_document

    doc = accreditation_document(
        id="urn:uuid:5c1f2a8e-0000-4000-8000-000000000022", issuer=ISSUER.did_key,
        subject=HOLDER.did_key, credential_types=["IRMAAuditCredential"],
        valid_from="2026-01-01T00:00:00Z", valid_until="2030-01-01T00:00:00Z",
        minerals=["cobalt"], regions=["CD"])
    assert check_credential(doc) == []
    assert verify_credential(sign(copy.deepcopy(doc), ISSUER), RESOLVER).ok
    old_style = {**doc, "@context": [V2]}  # what the project signed before issue 21
    with pytest.raises(BatterytraceError) as caught:
        verify_credential(sign(old_style, ISSUER), RESOLVER)
    assert caught.value.code == "JSONLD_TYPE_UNMAPPED"


def test_an_unknown_context_leaves_types_undecided_offline() -> None:
    doc = base(**{"@context": [V2, "https://contexts.example.org/unknown/v1"]})
    assert check_credential(doc) == []


# --- credentialStatus of a type the project does not implement (VC DM 2.0 4.10) ------------


def test_unknown_status_type_is_not_checked_and_fails_only_when_status_is_required() -> None:
    from batterytrace.credentials.status_list import StatusRetrievalError
    from batterytrace.verifier.status import decide_status

    doc = base(credentialStatus={"id": "https://status.example/1#5",
                                 "type": "ExampleStatusEntry2099"})
    signed = sign(doc, ISSUER)
    assert verify_credential(signed, RESOLVER).ok  # not a broken credential
    result = decide_status(signed, {}, RESOLVER)
    assert any(w.startswith("STATUS_NOT_CHECKED") and "ExampleStatusEntry2099" in w
               for w in result.warnings)
    assert not result.revoked and not result.suspended
    with pytest.raises(StatusRetrievalError):
        decide_status(signed, {}, RESOLVER, require_status=True)
    malformed = base(credentialStatus={"id": "https://status.example/1#5",
                                       "type": "BitstringStatusListEntry"})
    with pytest.raises(BatterytraceError):  # a known type, malformed: still an error
        decide_status(sign(malformed, ISSUER), {}, RESOLVER)


# --- presentations (VC DM 2.0 4.12.4, 4.13; VC-JOSE-COSE) ----------------------------------


CHALLENGE = "c-21"


def _presentation(credentials: list[dict[str, Any]]) -> dict[str, Any]:
    return create_presentation(credentials, HOLDER, challenge=CHALLENGE)


def test_self_asserted_claims_of_the_holder_are_accepted_under_its_proof() -> None:
    claim = base(issuer=HOLDER.did_key, credentialSubject={"id": HOLDER.did_key,
                                                           "role": "buyer"})
    result = verify_presentation(_presentation([claim]), RESOLVER, challenge=CHALLENGE)
    assert result.ok and result.credentials[0].checks[2] == "self-asserted"
    assert any("self-asserted" in w for w in result.warnings)


def test_an_unsigned_credential_of_someone_else_is_refused() -> None:
    claim = base()  # issued by ISSUER, not the holder, and without a proof
    with pytest.raises(BatterytraceError):
        verify_presentation(_presentation([claim]), RESOLVER, challenge=CHALLENGE)


def test_an_enveloped_credential_is_refused_as_unsupported() -> None:
    enveloped = {"@context": [V2], "id": "data:application/vc+jwt,eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
                 "type": "EnvelopedVerifiableCredential"}
    with pytest.raises(BatterytraceError) as caught:
        verify_presentation(_presentation([enveloped]), RESOLVER, challenge=CHALLENGE)
    assert caught.value.code == "ENVELOPED_CREDENTIAL_UNSUPPORTED"
    assert "not supported" in caught.value.message
    signed = sign(base(), ISSUER)  # and a Data Integrity credential beside it still verifies
    assert verify_presentation(_presentation([signed]), RESOLVER, challenge=CHALLENGE).ok
