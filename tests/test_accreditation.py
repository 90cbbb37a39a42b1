"""Accreditation chains: trusted, untrusted, revoked, expired, out of scope, cycle, too deep."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from batterytrace.verifier.accreditation import (
    ACCREDITATION_CONTEXTS,
    Accreditation,
    AccreditationCycleError,
    AccreditationExpiredError,
    AccreditationFormatError,
    AccreditationNotDelegableError,
    AccreditationOutOfMineralError,
    AccreditationOutOfRegionError,
    AccreditationOutOfTypeError,
    AccreditationRevokedError,
    AccreditationTooDeepError,
    TrustQuery,
    UntrustedIssuerError,
    find_trust_path,
)

SCHEMA_PATH = (
    Path(__file__).resolve().parent.parent
    / "credentials/data/schemas/accreditation-credential-1.0.json"
)
ROOT = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
SCHEME = "did:web:irma.example"
BODY = "did:web:auditor.example"
OPERATOR = "did:web:ledger.example"
IRMA = "IRMAAuditCredential"
WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def accreditation(
    issuer: str,
    subject: str,
    types: list[str],
    *,
    minerals: list[str] | None = None,
    regions: list[str] | None = None,
    valid_from: str = "2025-01-01T00:00:00Z",
    valid_until: str = "2027-12-31T23:59:59Z",
    may_accredit: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    subject_doc: dict[str, Any] = {
        "id": subject,
        "type": "Accreditation",
        "credentialTypes": types,
        "mayAccredit": may_accredit,
    }
    if minerals is not None:
        subject_doc["minerals"] = minerals
    if regions is not None:
        subject_doc["regions"] = regions
    return {
        "@context": list(ACCREDITATION_CONTEXTS),
        "id": f"urn:accreditation:{name or subject.rsplit(':', 1)[-1]}",
        "type": ["VerifiableCredential", "AccreditationCredential"],
        "issuer": issuer,
        "validFrom": valid_from,
        "validUntil": valid_until,
        "credentialSchema": {
            "id": "https://batterytrace.dev/schemas/accreditation-credential-1.0.json",
            "type": "JsonSchema",
        },
        "credentialSubject": subject_doc,
    }


def network(**body_overrides: Any) -> list[dict[str, Any]]:
    """root -> IRMA scheme owner (may accredit) -> certification body; root -> operator."""
    body = {"minerals": ["cobalt"], "regions": ["CD"], **body_overrides}
    return [
        accreditation(ROOT, SCHEME, [IRMA], minerals=["cobalt", "lithium"],
                      regions=["CD", "AU"], may_accredit=True),
        accreditation(SCHEME, BODY, [IRMA], **body),
        accreditation(ROOT, OPERATOR, ["ParticipantCredential", "FacilityCredential"]),
    ]


def query(issuer: str = BODY, credential_type: str = IRMA, *, mineral: str | None = "cobalt",
          region: str | None = "CD-LU", at: datetime = WHEN) -> TrustQuery:
    return TrustQuery(issuer, credential_type, at, mineral, region)


def test_trusted_path_from_body_to_root():
    path = find_trust_path(query(), network(), [ROOT])
    assert path.root == ROOT
    assert path.dids == (BODY, SCHEME, ROOT)
    assert path.to_json() == [
        {"accreditation": "urn:accreditation:auditor.example", "issuer": SCHEME, "subject": BODY},
        {"accreditation": "urn:accreditation:irma.example", "issuer": ROOT, "subject": SCHEME},
    ]


def test_registry_authority_needs_no_mineral_or_region():
    path = find_trust_path(
        query(OPERATOR, "FacilityCredential", mineral=None, region=None), network(), [ROOT]
    )
    assert path.dids == (OPERATOR, ROOT)


def test_governance_root_trusts_itself():
    assert find_trust_path(query(ROOT), [], [ROOT]).links == ()


def test_untrusted_issuer():
    with pytest.raises(UntrustedIssuerError) as info:
        find_trust_path(query("did:web:stranger.example"), network(), [ROOT])
    assert info.value.code == "UNTRUSTED_ISSUER" and info.value.exit_code == 1


def test_chain_that_never_reaches_a_root_is_untrusted():
    # the same network, but the verifier trusts another root
    with pytest.raises(UntrustedIssuerError):
        find_trust_path(query(), network(), ["did:web:other-root.example"])


def test_self_issued_accreditation_adds_no_trust():
    forged = [accreditation(BODY, BODY, [IRMA], may_accredit=True)]
    with pytest.raises(AccreditationCycleError):
        find_trust_path(query(), forged, [ROOT])


@pytest.mark.parametrize("revoked", ["urn:accreditation:auditor.example",
                                     "urn:accreditation:irma.example"])
def test_accredited_then_revoked(revoked):
    assert find_trust_path(query(), network(), [ROOT])
    with pytest.raises(AccreditationRevokedError):
        find_trust_path(query(), network(), [ROOT], lambda a: a.id == revoked)


@pytest.mark.parametrize(
    "at", [datetime(2028, 1, 1, tzinfo=UTC), datetime(2024, 12, 31, tzinfo=UTC)]
)
def test_expired_or_not_yet_valid(at):
    with pytest.raises(AccreditationExpiredError):
        find_trust_path(query(at=at), network(), [ROOT])


def test_expired_upper_link():
    accreditations = network()
    accreditations[0]["validUntil"] = "2026-01-01T00:00:00Z"
    with pytest.raises(AccreditationExpiredError) as info:
        find_trust_path(query(), accreditations, [ROOT])
    assert info.value.details["subject"] == SCHEME


def test_out_of_type():
    with pytest.raises(AccreditationOutOfTypeError):
        find_trust_path(query(credential_type="CarbonFootprintCredential"), network(), [ROOT])


@pytest.mark.parametrize("mineral", ["nickel", None])
def test_out_of_mineral(mineral):
    with pytest.raises(AccreditationOutOfMineralError):
        find_trust_path(query(mineral=mineral), network(), [ROOT])


@pytest.mark.parametrize("region", ["AU", "CDX", None])
def test_out_of_region(region):
    with pytest.raises(AccreditationOutOfRegionError):
        find_trust_path(query(region=region), network(), [ROOT])


def test_delegate_cannot_exceed_its_accreditor():
    # the body claims nickel and Indonesia, which the scheme owner was never accredited for
    wide = network(minerals=["cobalt", "nickel"], regions=["CD", "ID"])
    assert find_trust_path(query(), wide, [ROOT])
    with pytest.raises(AccreditationOutOfMineralError) as info:
        find_trust_path(query(mineral="nickel"), wide, [ROOT])
    assert info.value.details["subject"] == SCHEME
    with pytest.raises(AccreditationOutOfRegionError):
        find_trust_path(query(region="ID"), wide, [ROOT])


def test_accreditor_must_be_allowed_to_accredit():
    accreditations = network()
    accreditations[0]["credentialSubject"]["mayAccredit"] = False
    with pytest.raises(AccreditationNotDelegableError):
        find_trust_path(query(), accreditations, [ROOT])


def test_cycle():
    a, b = "did:web:a.example", "did:web:b.example"
    cycle = [
        accreditation(a, b, [IRMA], may_accredit=True),
        accreditation(b, a, [IRMA], may_accredit=True),
    ]
    with pytest.raises(AccreditationCycleError):
        find_trust_path(query(b), cycle, [ROOT])


def _chain(length: int) -> tuple[str, list[dict[str, Any]]]:
    dids = [ROOT] + [f"did:web:level{i}.example" for i in range(1, length + 1)]
    links = [accreditation(dids[i], dids[i + 1], [IRMA], may_accredit=True)
             for i in range(length)]
    return dids[-1], links


def test_too_deep():
    issuer, links = _chain(5)
    with pytest.raises(AccreditationTooDeepError):
        find_trust_path(query(issuer), links, [ROOT], max_depth=4)
    assert len(find_trust_path(query(issuer), links, [ROOT], max_depth=5).links) == 5


def test_a_valid_path_is_found_beside_a_revoked_one():
    accreditations = [
        *network(),
        accreditation(ROOT, BODY, [IRMA], minerals=["cobalt"], name="direct"),
    ]
    path = find_trust_path(
        query(), accreditations, [ROOT], lambda a: a.id == "urn:accreditation:auditor.example"
    )
    assert path.dids == (BODY, ROOT) and path.links[0].id == "urn:accreditation:direct"


def test_failure_furthest_up_the_chain_is_reported():
    # a direct link that is out of type fails at depth 1; the delegated one is revoked higher up
    accreditations = [*network(), accreditation(ROOT, BODY, ["Other"], name="other")]
    with pytest.raises(AccreditationRevokedError):
        find_trust_path(query(), accreditations, [ROOT],
                        lambda a: a.id == "urn:accreditation:irma.example")


def test_naive_time_is_refused():
    with pytest.raises(ValueError):
        find_trust_path(query(at=datetime(2026, 1, 1)), network(), [ROOT])


def _mutate(path: str, value: Any) -> dict[str, Any]:
    doc = accreditation(ROOT, SCHEME, [IRMA])
    target = doc
    *parents, last = path.split(".")
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


MALFORMED = [
    ("type", ["VerifiableCredential"]),
    ("id", KeyError),
    ("issuer", "https://not-a-did.example"),
    ("credentialSubject", [{"id": SCHEME}]),
    ("credentialSubject.id", KeyError),
    ("credentialSubject.credentialTypes", []),
    ("credentialSubject.credentialTypes", "IRMAAuditCredential"),
    ("credentialSubject.minerals", []),
    ("credentialSubject.mayAccredit", "yes"),
    ("validFrom", KeyError),
    ("validUntil", "next year"),
    ("validUntil", "2024-01-01T00:00:00Z"),  # before validFrom
]


@pytest.mark.parametrize(("path", "value"), MALFORMED, ids=[f"{p}={v}" for p, v in MALFORMED])
def test_malformed_accreditations(path, value):
    with pytest.raises(AccreditationFormatError):
        Accreditation.from_credential(_mutate(path, value))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_accepts_the_examples(validator):
    for doc in network():
        validator.validate(doc)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        # every malformed case except the ordering of validFrom/validUntil, which no schema sees
        *[m for m in MALFORMED if m[1] not in (KeyError, "2024-01-01T00:00:00Z")],
        ("id", KeyError),
        ("validFrom", KeyError),
        ("credentialSubject.minerals", ["unobtainium"]),
        ("credentialSubject.regions", ["Congo"]),
        ("credentialSubject.scope", "everything"),
    ],
)
def test_schema_rejects_malformed(validator, path, value):
    assert not validator.is_valid(_mutate(path, value))
