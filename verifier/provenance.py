"""Provenance of a battery from a verified bundle: sources, shares, route and lifecycle.

`trace_provenance` is a second pass over a bundle that `verify_bundle` already accepted (it
checks no signature and no custody rule again). It replays the events in log order and gives
every lot and item a *profile*: per element, the share of its mass attributed to each source.

- An extraction makes a source (one per extracted lot: its mine site, country, operator).
- A transformation pools the element mass of its inputs (a consumed lot brings the shares of
  the lot; a consumed item the shares of everything assembled into it at that moment) and
  gives every output the pooled shares, element by element. Under `segregated` custody the
  inputs of the event are exactly what the output is made of, so the shares are exact; under
  `massBalance` they are an allocation by element mass (commingling). Each source remembers the
  custody models, countries and operators of the transformations it went through.
- A recycling transformation (bizStep recycling) is a boundary: its recovered-material lots
  start a *recycled* source at the recycling plant, so recycled mass is counted once, as
  recycled, and source masses of an element add up to its mass in the battery.

The battery's element masses are those of its assembly when placed on the market (or, if it
never was, just before its first disassembly, else at the end of the bundle). Details:
docs/provenance.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from batterytrace.ledger.bundle_format import CREDENTIAL, ENTRY
from batterytrace.ledger.events import BizStep, TraceEvent, parse_credential
from batterytrace.ledger.registry import participant_did

from .bundle import BundleReader, Header, Record, iter_file_lines, read_bundle
from .errors import BundleFormatError, ProvenanceSubjectError
from .provenance_closure import scan_closure
from .provenance_facts import IRMA_LEVELS, CredentialKeeper, build_facts, parse_day
from .provenance_profiles import (
    Profile,
    Source,
    Step,
    TracedItem,
    Tracer,
    add_mass,
    item_pool,
    merge_pools,
    normalised,
    subject_pool,
)
from .provenance_render import render_facts


@dataclass(frozen=True)
class Provenance:
    """What a bundle says about one battery (or lot). `to_json()` is the stable form."""

    data: Mapping[str, Any] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        import copy

        return copy.deepcopy(dict(self.data))

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


# --- the pass -------------------------------------------------------------------------------


BundleSource = Iterable[bytes] | str | os.PathLike[str]


def trace_provenance(source: BundleSource, subject: str | None = None) -> Provenance:
    """The provenance of `subject` (default: the bundle's subject) from a bundle: its file's
    path, or its raw lines.

    An `all` bundle given as a path or a re-iterable (a list of lines) is read twice: a
    first pass finds the entries the subject's facts need (`provenance_closure`), the second
    replays only those, so memory follows the subject's history, not the ledger's length.
    An item or lot bundle (already a closure), or a one-shot iterator (a generator), is read
    once, keeping every event. Both ways give the same provenance.

    Call it on a bundle `verify_bundle` accepted: this pass trusts what it reads. Raises
    BundleFormatError (exit 2) for a malformed bundle, or one whose bytes changed between
    the two passes, and ProvenanceSubjectError when the bundle never names the subject."""
    if isinstance(source, Iterator):
        return _one_pass(source, subject)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        read: Callable[[], Iterable[bytes]] = partial(iter_file_lines, path)
    else:
        read = partial(iter, source)
    if _scope(read) != "all":
        return _one_pass(read(), subject)  # the subject's closure already: nothing to skip
    return _two_passes(read, subject)


def _scope(read: Callable[[], Iterable[bytes]]) -> str | None:
    """The scope of the bundle (its header; a malformed one is the passes' error)."""
    for record in read_bundle(read()):
        return record.scope if isinstance(record, Header) else None
    return None


def _one_pass(lines: Iterable[bytes], subject: str | None) -> Provenance:
    """Every event replayed and kept (a bundle that can be read only once)."""
    tracer = Tracer()
    header: Header | None = None
    for record in read_bundle(lines):
        if isinstance(record, Header):
            header = record
            subject = subject or record.subject
        elif isinstance(record, Record) and record.type == ENTRY:
            _entry(tracer, record.data["entry"], subject)
        elif isinstance(record, Record) and record.type == CREDENTIAL:
            tracer.credentials.append(record.data["credential"])
    assert header is not None
    if subject is None:
        raise ProvenanceSubjectError("an `all` bundle has no subject: name one with --subject")
    if subject not in tracer.graph.known:
        raise ProvenanceSubjectError(f"no event of the bundle names {subject}", subject=subject)
    return Provenance(build_facts(tracer, subject))


def _two_passes(read: Callable[[], Iterable[bytes]], subject: str | None) -> Provenance:
    """The first pass names the entry lines to replay; the second replays them (the others
    only go into the running digest, `BundleReader.accept_entry`: the first pass checked
    them, and the two digests must agree) and keeps the credentials a fact can read."""
    scan = scan_closure(read(), subject)
    subject = subject or scan.header.subject
    if subject is None:
        raise ProvenanceSubjectError("an `all` bundle has no subject: name one with --subject")
    if not scan.named:
        raise ProvenanceSubjectError(f"no event of the bundle names {subject}", subject=subject)
    tracer = Tracer()
    keeper: CredentialKeeper | None = None
    reader = BundleReader()
    for raw in read():
        line = reader.number + 1
        if reader.phase == ENTRY and line <= scan.last_entry and line not in scan.replay:
            reader.accept_entry(raw)
            continue
        record = reader.feed(raw)
        if isinstance(record, Record) and record.type == ENTRY:
            _entry(tracer, record.data["entry"], subject)
        elif isinstance(record, Record) and record.type == CREDENTIAL:
            keeper = keeper or CredentialKeeper(tracer, subject)  # every entry replayed
            keeper.offer(record.data["credential"])
    reader.finish()
    if reader.trailer is None or reader.trailer.digest != scan.digest:
        raise BundleFormatError(reader.number, "the bundle changed between the two passes "
                                "of its provenance")
    if keeper is not None:
        tracer.credentials = keeper.credentials()
    return Provenance(build_facts(tracer, subject))


def _entry(tracer: Tracer, entry: Mapping[str, Any], subject: str | None) -> None:
    kind, doc, seq = entry.get("kind"), entry.get("document") or {}, entry.get("seq")
    if not isinstance(seq, int):
        return  # the verifier checked every entry before; nothing to trace without a seq
    tracer.received[seq] = entry.get("received", "")
    if kind == "genesis":
        tracer.public_url = doc.get("publicUrl", "")
    elif kind == "registry":
        _registry(tracer, doc)
    elif kind == "anchor" and isinstance(doc.get("credentialId"), str):
        action, credential_id = doc.get("action"), doc["credentialId"]
        if action == "revocation":
            tracer.revoked.setdefault(credential_id, seq)
        elif action == "suspension":
            tracer.suspended[credential_id] = seq
        elif action == "reinstatement":
            tracer.suspended.pop(credential_id, None)
    elif kind == "event":
        credential = parse_credential(doc, check_schema=False)
        raw = doc.get("credentialSubject") or []
        for event, raw_event in zip(credential.events, raw, strict=False):
            tracer.graph.add(event)
            tracer.events.append((seq, event, raw_event))
            _event(tracer, event, seq, subject, raw_event)


# The registry fields the facts read (a registration's keys and proof are not kept).
FACILITY_FIELDS = ("id", "name", "country", "operator")
PARTICIPANT_FIELDS = ("legalName", "roles")


def _registry(tracer: Tracer, doc: Mapping[str, Any]) -> None:
    if doc.get("type") == "FacilityRegistration" and isinstance(doc.get("id"), str):
        tracer.facilities.setdefault(doc["id"], {k: doc[k] for k in FACILITY_FIELDS if k in doc})
    elif doc.get("type") == "ParticipantRegistration" and isinstance(doc.get("name"), str):
        did = doc.get("id") or participant_did(tracer.public_url, doc["name"])
        tracer.participants.setdefault(did, {k: doc[k] for k in PARTICIPANT_FIELDS if k in doc})


def _fraction(composition: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in composition.items()}


def _step(tracer: Tracer, event: TraceEvent) -> Step:
    site = tracer.facilities.get(event.biz_location, {})
    return (event.custody_model or "segregated", site.get("country", ""),
            site.get("operator", ""))


def _event(tracer: Tracer, event: TraceEvent, seq: int, subject: str | None,
           raw: Mapping[str, Any]) -> None:
    if event.declares is not None:
        return  # an error declaration restates an earlier event: it makes nothing new
    if event.kind == "ObjectEvent" and event.action == "add":
        for q in event.quantities:  # extraction: each lot is a source
            declaration = next((d for d in event.lots if d.lot == q.lot), None)
            composition = _fraction(declaration.composition) if declaration else {}
            details = declaration.details if declaration else {}
            tracer.sources[q.lot] = Source(q.lot, event.biz_location, seq,
                                            tracer.received.get(seq, ""), lot=q.lot,
                                            details=details)
            first: Profile = {e: {q.lot: (1.0, frozenset())} for e in composition}
            tracer.lots[q.lot] = (composition, first, details, float(q.kg))
        return
    if event.kind == "ObjectEvent" and event.biz_step == BizStep.RETAIL_SELLING:
        if subject is not None and tracer.frozen is None and _touches(tracer, event, subject):
            _freeze(tracer, subject)
        return
    if event.kind in ("AggregationEvent", "AssociationEvent"):
        _assembly(tracer, event, subject)
        return
    if event.kind == "TransformationEvent":
        _transformation(tracer, event, seq, raw)


def _touches(tracer: Tracer, event: TraceEvent, subject: str) -> bool:
    """Whether the event names the subject or an item the subject sits in (now)."""
    named = set(event.epcs)
    node: str | None = subject
    while node is not None:
        if node in named:
            return True
        node = _parent(tracer, node)
    return False


def _parent(tracer: Tracer, item_id: str) -> str | None:
    for parent in tracer.graph.containers.get(item_id, ()):
        item = tracer.items.get(parent)
        if item is not None and item_id in item.children:
            return parent
    return None


def _freeze(tracer: Tracer, subject: str) -> None:
    """Keep the subject's element masses as they are now (placing on the market)."""
    pool = subject_pool(tracer, subject)
    tracer.frozen = {e: sum(v[0] for v in s.values()) for e, s in pool.items()}
    tracer.frozen_profile = normalised(pool, None)


def _assembly(tracer: Tracer, event: TraceEvent, subject: str | None) -> None:
    parent = tracer.items.get(event.parent or "")
    if parent is None:
        return
    if event.action == "add":
        parent.children.extend(c for c in event.children if c not in parent.children)
    elif event.action == "delete":
        removed = list(event.children) or list(parent.children)
        if subject is not None and tracer.frozen is None and _within(tracer, event.parent,
                                                                     subject):
            _freeze(tracer, subject)  # the battery as it was before its first disassembly
        parent.children = [c for c in parent.children if c not in removed]


def _within(tracer: Tracer, node: str | None, subject: str) -> bool:
    while node is not None:
        if node == subject:
            return True
        node = _parent(tracer, node)
    return False


def _transformation(tracer: Tracer, event: TraceEvent, seq: int, raw: Mapping[str, Any]
                    ) -> None:
    pool: dict[str, dict[str, list[Any]]] = {}
    for q in event.input_quantities:
        lot = tracer.lots.get(q.lot)
        if lot is None:
            continue  # outside the closure: verify_bundle made sure it is not upstream
        for element, fraction in lot[0].items():
            add_mass(pool, element, float(q.kg) * fraction, lot[1])
    for item_id in event.input_items:
        merge_pools(pool, item_pool(tracer, item_id))
    if event.biz_step == BizStep.RECYCLING:
        key = f"recycled:{event.id}"
        tracer.sources[key] = Source(key, event.biz_location, seq, tracer.received.get(seq, ""),
                                      recycled=True)
        elements = ({e for lot in event.lots for e in lot.composition}
                    | {e for item in event.items for e in item.composition})
        profile: Profile = {e: {key: (1.0, frozenset())} for e in elements}
    else:
        profile = normalised(pool, _step(tracer, event))
    for q in event.output_quantities:
        declaration = next((d for d in event.lots if d.lot == q.lot), None)
        composition = _fraction(declaration.composition) if declaration else {}
        tracer.lots[q.lot] = (composition, profile, declaration.details if declaration else {},
                              float(q.kg))
    for item_id in event.output_items:
        spec = next((d for d in event.items if d.item == item_id), None)
        if spec is None:
            continue
        tracer.items[item_id] = TracedItem(
            float(spec.mass_kg), _fraction(spec.composition), profile,
            details={**_model_details(raw), **spec.details})


def _model_details(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Model and chemistry declared on a production event (apply to every item it makes)."""
    return {k: raw[k] for k in ("model", "batteryModel", "cellModel", "chemistry",
                                "batteryCategory", "ratedEnergy") if k in raw}


def render_provenance(p: Provenance, console: Any) -> None:
    """Print a provenance with rich tables (rich is imported lazily by provenance_render)."""
    render_facts(p.to_json(), console)


__all__ = ["IRMA_LEVELS", "BundleSource", "Provenance", "ProvenanceSubjectError", "parse_day",
           "render_provenance", "trace_provenance"]
