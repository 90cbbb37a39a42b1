"""The demo's label resolution: the resolver URL its pack's QR code encodes, and the RFC 9264
linkset the resolver answers for it (api/routers/resolver.py, docs/interop.md)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console


def print_resolver(home: Path, subject: str, console: Console) -> None:
    """Print the label identifier of `subject` and its linkset (links on the public URL)."""
    from batterytrace.ledger import resolver_links as rl
    from batterytrace.ledger.queries import read_state
    from batterytrace.ledger.service import open_ledger

    from .routers.resolver import find_subject, links_of

    ledger = open_ledger(home)
    try:
        with read_state(ledger) as view:
            found = find_subject(ledger, view, uri=subject)
        anchor = rl.label_identifier(ledger.public_url, found.kind, found.id, found.details)
        linkset = rl.linkset(anchor, links_of(ledger.public_url, found))
    finally:
        ledger.close()
    console.print(f"\nResolver URL on its label (QR): {anchor}", highlight=False,
                  soft_wrap=True, markup=False)
    console.print(f"Linkset ({anchor}?linkType=linkset, application/linkset+json):",
                  highlight=False, soft_wrap=True, markup=False)
    for rel, targets in linkset["linkset"][0].items():
        if rel == "anchor":
            continue
        for target in targets:
            console.print(f"  {rel}  {json.dumps(target, ensure_ascii=False)}",
                          highlight=False, soft_wrap=True, markup=False)
