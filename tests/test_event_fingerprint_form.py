"""`custody._canonical` (the form an event fingerprint hashes) was rewritten for speed (issue
23: it was ~40 % of the in-order replay). The fingerprints are stored in custody_state, so
the form must not change by a byte: it is compared here with the previous implementation,
kept below as the reference, on every event of the test lifecycle and on generated values."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, make_dataclass, replace
from decimal import Decimal
from typing import Any

from batterytrace.ledger import engine
from batterytrace.ledger.custody import (
    _canonical,
    decimal_text,
    event_fingerprint,
    remember_fingerprints,
)
from batterytrace.ledger.events import parse_event
from batterytrace.ledger.pool import dumps_each, loads
from custody_factory import BUILDERS, did_for, lifecycle
from hypothesis import given
from hypothesis import strategies as st

_REFERENCE_FIELDS: dict[type, tuple[str, ...]] = {}


def reference(value: Any) -> Any:
    """`custody._canonical` as it was before the rewrite (main 3f07809)."""
    kind = type(value)
    if kind is str or value is None or kind is bool or kind is int:
        return value
    if kind is Decimal or kind is float:
        return "#" + decimal_text(Decimal(str(value)) if kind is float else value)
    if kind is tuple or kind is list:
        return tuple(reference(v) for v in value)
    names = _REFERENCE_FIELDS.get(kind)
    if names is None and hasattr(value, "__dataclass_fields__"):
        names = _REFERENCE_FIELDS[kind] = tuple(value.__dataclass_fields__)
    if names is not None:
        return tuple(reference(getattr(value, name)) for name in names)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), reference(v)) for k, v in value.items()))
    return repr(value)


def test_every_lifecycle_event_has_the_form_it_had():
    events = [parse_event(event) for _, _, event in lifecycle()]
    assert len(events) > 10
    for event in events:
        assert _canonical(event) == reference(event)
        assert repr(_canonical(event)) == repr(reference(event))
    # The fingerprint is what is stored: pinned for one event, as it was computed before.
    first = events[0]
    content = reference(first)
    text = repr((did_for("miner"), content[:1] + content[2:]))
    assert event_fingerprint(first, did_for("miner")) == hashlib.sha256(
        text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Empty:
    pass


@dataclass(frozen=True)
class One:
    a: Any


Two = make_dataclass("Two", [("x", Any), ("y", Any)], frozen=True)

atoms = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                  st.decimals(allow_nan=False, places=3), st.floats(allow_nan=False),
                  st.sampled_from([Decimal("1E+2"), Decimal("-0"), Decimal("6.0")]))
values = st.recursive(atoms, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
    st.dictionaries(st.text(max_size=3), inner, max_size=3),
    st.builds(One, inner), st.builds(Two, inner, inner), st.just(Empty()),
    st.just(frozenset({1}))), max_leaves=12)


@given(values)
def test_generated_values_have_the_form_they_had(value):
    assert repr(_canonical(value)) == repr(reference(value))


def test_a_fingerprint_computed_in_the_check_is_the_one_the_replay_would_compute():
    """`check_event_documents` (a worker, in a replay) keeps each event's fingerprint on the
    event; `event_fingerprint` returns it only for the same actor, and an event made anew
    (a projection) carries none."""
    _, issuer, event = lifecycle()[0]
    document = BUILDERS.signed_credential(issuer, [event])
    [check] = engine.check_event_documents([(document, None)])
    assert isinstance(check, engine.EventCheck) and check.credential is not None
    [kept] = check.credential.events
    fresh = parse_event(event)
    assert kept == fresh and "_fingerprint" not in vars(fresh)
    actor = did_for(issuer)
    assert vars(kept)["_fingerprint"] == (actor, event_fingerprint(fresh, actor))
    travelled = loads(next(dumps_each([kept])))  # as a worker sends it back
    assert vars(travelled)["_fingerprint"] == vars(kept)["_fingerprint"]
    # Another actor: computed, not the kept one.
    assert event_fingerprint(kept, "did:example:other") == event_fingerprint(
        fresh, "did:example:other") != event_fingerprint(fresh, actor)
    moved = replace(kept, event_time="2020-01-01T00:00:00Z")
    assert "_fingerprint" not in vars(moved)
    assert event_fingerprint(moved, actor) != event_fingerprint(kept, actor)
    # Not kept when the credential is not sent back.
    [bare] = engine.check_event_documents([(document, None)], keep_credential=False)
    assert isinstance(bare, engine.EventCheck) and bare.credential is None
    remember_fingerprints(check.credential)  # idempotent
    assert vars(kept)["_fingerprint"] == (actor, event_fingerprint(fresh, actor))
