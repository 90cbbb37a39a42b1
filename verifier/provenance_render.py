"""The rich rendering of a provenance document (tables for a terminal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def render_facts(data: Mapping[str, Any], console: Any) -> None:
    # rich is a display library: imported here so that verifying never needs it
    from rich.table import Table

    console.print(f"[bold]Provenance of[/] {data['subject']}", highlight=False)
    model = data.get("model") or {}
    if model:
        console.print("model: " + ", ".join(f"{k} {v}" for k, v in model.items()),
                      highlight=False)
    table = Table("element", "kg", "site", "country", "share", "IRMA", "artisanal", "custody")
    for symbol, element in data["elements"].items():
        for i, source in enumerate(element["sources"]):
            table.add_row(symbol if i == 0 else "", f"{element['mass_kg']:.4g}" if i == 0 else "",
                          ("recycled at " if source["recycled"] else "") + source["site_name"],
                          source["country"], f"{source['share']:.1%}",
                          source["irma_level"] or "-", "yes" if source["artisanal"] else "",
                          ", ".join(source["custody_models"]))
    console.print(table)
    console.print("countries: " + ", ".join(f"{c} {s:.1%}" for c, s in data["countries"].items())
                  + f"; artisanal {data['artisanal_share']:.1%}", highlight=False)
    if data["route"]:
        route = Table("seq", "time", "from", "to", "mode", "purpose")
        for leg in data["route"]:
            route.add_row(str(leg["seq"]), leg["time"], leg["from_country"] or "?",
                          leg["to_country"] or "?", leg["mode"] or "",
                          (leg["purpose"] or "") + (" (waste)" if leg["waste"] else ""))
        console.print(route)
    console.print("lifecycle: " + ", ".join(
        f"{k} {'entry ' + str(v) if v is not False else 'no'}"
        for k, v in data["lifecycle"].items()), highlight=False)
    cf = data["carbon_footprint"]
    if cf:
        console.print(f"carbon footprint: {cf['value']} {cf['unit']} (class {cf['class']}, "
                      f"{cf['model']} at {cf['plant_name'] or cf['plant']})", highlight=False)
    rc = data["recycled_content"]
    console.print(f"recycled content: claimed {rc['claimed']}, computed {rc['computed']}",
                  highlight=False)
    if data["state_of_health"]:
        soh = data["state_of_health"]
        console.print(f"state of health: {soh['value']} % at {soh['time']}", highlight=False)
    if data["placed_on_market"]:
        console.print(f"placed on the market: {data['placed_on_market']} (ledger receipt; "
                      f"its signer wrote {data.get('placed_on_market_event_time')})",
                      highlight=False)
    else:
        console.print("placed on the market: not recorded", highlight=False)
