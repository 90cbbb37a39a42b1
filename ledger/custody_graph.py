"""The custody graph: which lots and items were made from, or assembled into, which.

`reachable` is the one closure walk; `CustodyGraph` collects the links of every event read
(the exporter and provenance read them from events; the replay keeps the same links in its
`source` table and the items' children).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from .bundle_format import event_subjects
from .events import TraceEvent

Node = TypeVar("Node", bound=Hashable)


@dataclass
class CustodyGraph:
    """Links between lots and items, read from every event of the log (one pass)."""

    sources: dict[str, set[str]] = field(default_factory=dict)  # product -> inputs
    products: dict[str, set[str]] = field(default_factory=dict)  # input -> products
    components: dict[str, set[str]] = field(default_factory=dict)  # parent -> children ever
    containers: dict[str, set[str]] = field(default_factory=dict)  # child -> parents ever
    known: set[str] = field(default_factory=set)

    def add(self, event: TraceEvent) -> None:
        self.known.update(event_subjects(event))
        links = {"sources": self.sources, "products": self.products,
                 "components": self.components, "containers": self.containers}
        for link, node, other in event_links(event):
            links[link].setdefault(node, set()).add(other)

    def closure(self, subject: str) -> set[str]:
        """Upstream sources and components; downstream, the products of the subject and of
        its components and of every item any of those was assembled into, transitively (what
        happens to a pack happens to its cells: recycling a module recycles the subject's
        material, so the recovered lots and what is made of them are downstream too); and every
        item any of these was assembled into (the replay needs the containers' custody)."""
        return closure(subject, self.sources, self.products, self.components, self.containers)


def event_links(event: TraceEvent) -> Iterator[tuple[str, str, str]]:
    """The links an event makes, as (link, node, next node): `sources` product -> input,
    `products` input -> product, `components` parent -> child, `containers` child -> parent
    (the one rule; `CustodyGraph` keeps them in sets, provenance's first pass in arrays)."""
    inputs = [q.lot for q in event.input_quantities] + list(event.input_items)
    outputs = [q.lot for q in event.output_quantities] + list(event.output_items)
    for product in outputs:
        for source in inputs:
            yield "sources", product, source
    for source in inputs:
        for product in outputs:
            yield "products", source, product
    if event.parent is not None and event.kind in ("AggregationEvent", "AssociationEvent"):
        for child in event.children:
            yield "components", event.parent, child
        for child in event.children:
            yield "containers", child, event.parent


def closure(subject: Node, sources: Mapping[Node, Iterable[Node]],
            products: Mapping[Node, Iterable[Node]], components: Mapping[Node, Iterable[Node]],
            containers: Mapping[Node, Iterable[Node]]) -> set[Node]:
    """`CustodyGraph.closure` over any links (node -> next nodes)."""
    upstream = reachable([subject], sources, components)
    parts = reachable([subject], components)
    downstream = reachable(parts, products, containers)
    return reachable(upstream | downstream, containers)


def reachable(start: Iterable[Node], *links: Mapping[Node, Iterable[Node]]) -> set[Node]:
    """Every node reachable from `start` (included) along any of the `links` (node -> next
    nodes): the one closure walk (exports, bundle closures, provenance, the passport)."""
    seen: set[Node] = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for link in links:
            stack.extend(link.get(node, ()))
    return seen
