"""The custody graph: which lots and items were made from, or assembled into, which.

`reachable` is the one closure walk; `CustodyGraph` collects the links of every event read
(the exporter and provenance read them from events; the replay keeps the same links in its
`source` table and the items' children).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .bundle_format import event_subjects
from .events import TraceEvent


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
        inputs = [q.lot for q in event.input_quantities] + list(event.input_items)
        outputs = [q.lot for q in event.output_quantities] + list(event.output_items)
        for product in outputs:
            self.sources.setdefault(product, set()).update(inputs)
        for source in inputs:
            self.products.setdefault(source, set()).update(outputs)
        if event.parent is not None and event.kind in ("AggregationEvent", "AssociationEvent"):
            self.components.setdefault(event.parent, set()).update(event.children)
            for child in event.children:
                self.containers.setdefault(child, set()).add(event.parent)

    def closure(self, subject: str) -> set[str]:
        """Upstream sources and components; downstream, the products of the subject and of
        its components and of every item any of those was assembled into, transitively (what
        happens to a pack happens to its cells: recycling a module recycles the subject's
        material, so the recovered lots and what is made of them are downstream too); and every
        item any of these was assembled into (the replay needs the containers' custody)."""
        upstream = reachable([subject], self.sources, self.components)
        parts = reachable([subject], self.components)
        downstream = reachable(parts, self.products, self.containers)
        return reachable(upstream | downstream, self.containers)


def reachable(start: Iterable[str], *links: Mapping[str, Iterable[str]]) -> set[str]:
    """Every node reachable from `start` (included) along any of the `links` (node -> next
    nodes): the one closure walk (exports, bundle closures, provenance, the passport)."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for link in links:
            stack.extend(link.get(node, ()))
    return seen
