"""Fast paths on the event append/verify path agree with the slow, reference ones.

1. The UNTP DTE schema checked by event kind (one `oneOf` branch) accepts and rejects exactly
   what the whole schema does (jsonschema Draft 2020-12 is the reference).
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from typing import Any

import pytest
from batterytrace.credentials.errors import SchemaValidationError
from batterytrace.ledger.event_schema import (
    EVENT_KINDS,
    _dte_validator,
    _validate_by_kind,
    validate_dte_schema,
)
from conftest import DOMAIN_SAMPLES, ROOT, load_json
from custody_factory import ADMIN_KEY, signed_credential
from hypothesis import given
from hypothesis import strategies as st

UNTP = DOMAIN_SAMPLES / "untp" / "data-models-working"


# --- 1. schema by event kind ------------------------------------------------------------


@lru_cache(maxsize=1)
def _corpus() -> tuple[dict[str, Any], ...]:
    """Every documented event (docs/events.md) as a signed credential, and the UNTP samples."""
    text = (ROOT / "docs" / "events.md").read_text("utf-8")
    blocks = re.findall(r"<!-- issuer: (\w+) -->\n```json\n(.*?)\n```", text, re.S)
    docs = [signed_credential(who, [json.loads(body)]) for who, body in blocks]
    for path in sorted(UNTP.glob("dte-*.json")):
        sample = load_json(path)  # a credential, or a bare event: put it in one
        docs.append(sample if "credentialSubject" in sample else
                    {**copy.deepcopy(docs[0]), "credentialSubject": [sample]})
    return tuple(docs)


def _by_kind_verdict(document: Any) -> bool | None:
    """The per-kind validators' verdict, or None when they leave the document to the full one."""
    from fastjsonschema import JsonSchemaValueException

    try:
        return _validate_by_kind(document) or None
    except JsonSchemaValueException:
        return False


def _assert_same_verdict(document: Any) -> None:
    before = copy.deepcopy(document)
    reference = _dte_validator().is_valid(document)
    fast = _by_kind_verdict(document)
    assert document == before, "validators must not write defaults into the document"
    assert fast in (None, reference), f"by kind: {fast}, full schema: {reference}"
    try:
        validate_dte_schema(document)
        accepted = True
    except SchemaValidationError:
        accepted = False
    assert accepted == reference


def test_corpus_takes_the_fast_path_and_is_accepted():
    assert len(_corpus()) >= 25
    for document in _corpus():
        assert _by_kind_verdict(document) is True
        _assert_same_verdict(document)


def test_unknown_or_ambiguous_kind_falls_back_to_the_full_schema():
    document = copy.deepcopy(_corpus()[0])
    event = document["credentialSubject"][0]
    for types in (["Event"], ["ObjectEvent", "TransformationEvent", "Event"], "ObjectEvent"):
        event["type"] = types
        assert _by_kind_verdict(document) is None
        _assert_same_verdict(document)
    del event["type"]
    assert _by_kind_verdict(document) is None
    _assert_same_verdict(document)


def test_wrong_kind_for_the_fields_is_rejected_with_the_reference_message():
    # A TransactionEvent requires sourceParty and destinationParty; relabel another kind.
    document = next(
        d for d in _corpus()
        if "sourceParty" not in d["credentialSubject"][0]
        and "ObjectEvent" in d["credentialSubject"][0]["type"]
    )
    document = copy.deepcopy(document)
    document["credentialSubject"][0]["type"] = ["TransactionEvent", "Event"]
    assert _by_kind_verdict(document) is False
    with pytest.raises(SchemaValidationError) as caught:
        validate_dte_schema(document)
    assert caught.value.code == "SCHEMA_INVALID" or caught.value.code
    assert "credentialSubject/0" in caught.value.message
    _assert_same_verdict(document)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(0.5, 9.5) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=6,
)
_TYPES = st.lists(st.sampled_from([*EVENT_KINDS, "Event", "Other"]), max_size=4)


@given(data=st.data())
def test_mutated_events_get_the_full_schemas_verdict(data: st.DataObject):
    document = copy.deepcopy(data.draw(st.sampled_from(_corpus())))
    events = document["credentialSubject"]
    event = events[data.draw(st.integers(0, len(events) - 1))]
    change = data.draw(st.sampled_from(["type", "drop", "set", "set_nested"]))
    if change == "type":
        event["type"] = data.draw(_TYPES)
    elif change == "drop":
        event.pop(data.draw(st.sampled_from(sorted(event))))
    elif change == "set":
        event[data.draw(st.sampled_from([*sorted(event), "custom"]))] = data.draw(_JSON)
    else:
        nested = [k for k, v in event.items() if isinstance(v, list) and v and
                  isinstance(v[0], dict)]
        if nested:
            item = event[data.draw(st.sampled_from(nested))][0]
            item[data.draw(st.sampled_from([*sorted(item), "extra"]))] = data.draw(_JSON)
    _assert_same_verdict(document)


# --- 2, 3. one canonicalization for the digest and the signature ------------------------

_NAMES = st.sampled_from(
    ["@context", "id", "issuer", "proo", "proof", "proofs", "proof\x00", "prooe", "type",
     "validFrom", "é", "\ue000", "\U0001f600", ""]
)
_DOCUMENTS = st.dictionaries(_NAMES, _JSON, max_size=6)


@given(document=_DOCUMENTS)
def test_secured_canonical_parts_are_the_jcs_of_both_documents(document: dict[str, Any]):
    from batterytrace.credentials.canonical import canonicalize
    from batterytrace.credentials.secured_bytes import secured_canonical_parts

    unsecured = {k: v for k, v in document.items() if k != "proof"}
    assert secured_canonical_parts(document) == (canonicalize(unsecured), canonicalize(document))


def test_precheck_digest_and_bytes_are_the_documents_jcs():
    import hashlib

    from batterytrace.credentials.canonical import canonicalize
    from batterytrace.ledger.engine import check_event_document as precheck_event

    for document in _corpus()[:5]:
        check = precheck_event(document)
        assert check.canonical == canonicalize(document)
        assert check.digest == hashlib.sha256(check.canonical).hexdigest()
        from batterytrace.ledger.engine import check_event_documents

        bare = check_event_documents([(document, None)], canonical=False)[0]
        assert bare.canonical == b"" and bare.digest == check.digest


def test_verify_proofs_signs_over_the_given_unsecured_bytes():
    from batterytrace.credentials.data_integrity import verify_proofs
    from batterytrace.credentials.errors import ProofVerificationError
    from batterytrace.credentials.secured_bytes import secured_canonical_parts
    from batterytrace.ledger.engine import NamedKeyResolver

    document = _corpus()[0]
    unsecured, _ = secured_canonical_parts(document)
    resolver = NamedKeyResolver()
    assert verify_proofs(document, resolver, unsecured_canonical=unsecured)
    with pytest.raises(ProofVerificationError):
        verify_proofs(document, resolver, unsecured_canonical=unsecured.replace(b"{", b"{ ", 1))


# --- 4. the registry resolver's decoded keys ----------------------------------------------


@pytest.mark.parametrize("ending", ["KeyRotation", "KeyRevocation"])
def test_cached_key_is_refused_after_it_ends(ending: str):
    from batterytrace.credentials.data_integrity import verify_proofs
    from batterytrace.ledger import custody_errors
    from batterytrace.ledger.registry import RegistryResolver, _method_of
    from custody_factory import Network, did_for, extraction, key_for

    net = Network.standard()
    miner = did_for("miner")
    old = f"{miner}#{key_for('miner').public_multibase}"
    document = signed_credential("miner", [extraction("kolwezi-mine", "ore", 1, {})])
    before = net.position
    for _ in range(2):  # the second time from the cache
        [result] = verify_proofs(document, RegistryResolver(net.registry, before))
        assert result.controller == miner
    assert _method_of.cache_info().hits >= 1
    if ending == "KeyRotation":
        net.register({"type": "KeyRotation", "participant": miner,
                      "newKey": key_for("miner-next").public_multibase},
                     signers=[ADMIN_KEY.verification_method, old])
    else:
        net.register({"type": "KeyRevocation", "participant": miner, "key": old}, signers=[old])
    with pytest.raises(custody_errors.KeyNotValidError):
        verify_proofs(document, RegistryResolver(net.registry, net.position))
    # Earlier positions still accept it (the record now carries its end).
    assert verify_proofs(document, RegistryResolver(net.registry, before))
