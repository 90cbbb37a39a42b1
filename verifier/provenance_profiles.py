"""The replay state of a provenance pass and its mass-balance profiles.

A *profile* gives, per element, the share of a lot's or item's mass attributed to each source
(with the transformations each source went through). `Tracer` is the state one pass of
`trace_provenance` builds; `provenance_facts` reads it to build the provenance document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batterytrace.ledger.custody_graph import CustodyGraph
from batterytrace.ledger.events import TraceEvent

Share = float
# A transformation a source went through: (custody model, facility country, operator DID).
Step = tuple[str, str, str]
# element -> source key -> [share, steps]
Profile = dict[str, dict[str, tuple[Share, frozenset[Step]]]]


@dataclass
class Source:
    key: str
    site: str
    seq: int
    received: str
    recycled: bool = False
    lot: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class TracedItem:
    mass: float
    composition: dict[str, float]
    profile: Profile
    children: list[str] = field(default_factory=list)
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Tracer:
    """The replay state of one pass."""

    public_url: str = ""
    facilities: dict[str, dict[str, Any]] = field(default_factory=dict)
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    lots: dict[str, tuple[dict[str, float], Profile, Mapping[str, Any], float]] = field(
        default_factory=dict)
    items: dict[str, TracedItem] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    graph: CustodyGraph = field(default_factory=CustodyGraph)
    received: dict[int, str] = field(default_factory=dict)
    revoked: dict[str, int] = field(default_factory=dict)  # credential id -> position
    suspended: dict[str, int] = field(default_factory=dict)  # in force at the checkpoint
    events: list[tuple[int, TraceEvent, Mapping[str, Any]]] = field(default_factory=list)
    credentials: list[Mapping[str, Any]] = field(default_factory=list)
    frozen: dict[str, float] | None = None
    frozen_profile: Profile | None = None


# --- profiles -------------------------------------------------------------------------------


def add_mass(pool: dict[str, dict[str, list[Any]]], element: str, kg: float,
             profile: Profile) -> None:
    shares = profile.get(element)
    if not shares or kg <= 0:
        return
    into = pool.setdefault(element, {})
    for key, (share, steps) in shares.items():
        slot = into.get(key)
        if slot is None:
            into[key] = [kg * share, steps]
        else:
            slot[0] += kg * share
            slot[1] = slot[1] | steps


def normalised(pool: Mapping[str, Mapping[str, list[Any]]], step: Step | None) -> Profile:
    out: Profile = {}
    for element, shares in pool.items():
        total = sum(v[0] for v in shares.values())
        if total <= 0:
            continue
        extra = frozenset((step,)) if step else frozenset()
        out[element] = {k: (v[0] / total, v[1] | extra) for k, v in shares.items()}
    return out


def item_pool(tracer: Tracer, item_id: str) -> dict[str, dict[str, list[Any]]]:
    """Element masses of an item and everything assembled into it, by source."""
    pool: dict[str, dict[str, list[Any]]] = {}
    stack = [item_id]
    while stack:
        item = tracer.items.get(stack.pop())
        if item is None:
            continue
        for element, fraction in item.composition.items():
            add_mass(pool, element, item.mass * fraction, item.profile)
        stack.extend(item.children)
    return pool


def merge_pools(pool: dict[str, dict[str, list[Any]]], other: Mapping[str, Mapping[str, list[Any]]]
           ) -> None:
    for element, shares in other.items():
        into = pool.setdefault(element, {})
        for key, (kg, steps) in shares.items():
            slot = into.get(key)
            if slot is None:
                into[key] = [kg, steps]
            else:
                slot[0] += kg
                slot[1] = slot[1] | steps


def subject_pool(tracer: Tracer, subject: str) -> dict[str, dict[str, list[Any]]]:
    if subject in tracer.items:
        return item_pool(tracer, subject)
    lot = tracer.lots.get(subject)
    pool: dict[str, dict[str, list[Any]]] = {}
    if lot is not None:  # a lot: as created
        for element, fraction in lot[0].items():
            add_mass(pool, element, lot[3] * fraction, lot[1])
    return pool
