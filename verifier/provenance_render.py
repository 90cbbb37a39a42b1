"""The rich rendering of a provenance document (tables for a terminal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .report import literal


def _shares(shares: Mapping[str, Any] | None) -> str:
    """Element shares as '{symbol} {percent}' (never a Python dict)."""
    if not shares:
        return "none"
    return ", ".join(f"{literal(str(k))} {float(v):.1%}" for k, v in shares.items())


def render_facts(data: Mapping[str, Any], console: Any) -> None:
    # rich is a display library: imported here so that verifying never needs it
    from rich.table import Table

    console.print(f"[bold]Provenance of[/] {literal(str(data['subject']))}", highlight=False)
    model = data.get("model") or {}
    if model:
        console.print("model: " + ", ".join(f"{literal(str(k))} {literal(str(v))}"
                                            for k, v in model.items()), highlight=False)
    table = Table("element", "kg", "site", "country", "share", "IRMA", "artisanal", "custody")
    for symbol, element in data["elements"].items():
        for i, source in enumerate(element["sources"]):
            table.add_row(literal(symbol) if i == 0 else "",
                          f"{element['mass_kg']:.4g}" if i == 0 else "",
                          ("recycled at " if source["recycled"] else "")
                          + literal(str(source["site_name"])),
                          literal(str(source["country"])), f"{source['share']:.1%}",
                          literal(str(source["irma_level"] or "-")),
                          "yes" if source["artisanal"] else "",
                          literal(", ".join(source["custody_models"])))
    console.print(table)
    console.print("countries: " + _shares(data["countries"])
                  + f"; artisanal {data['artisanal_share']:.1%}", highlight=False)
    if data["route"]:
        route = Table("seq", "time", "from", "to", "mode", "purpose")
        for leg in data["route"]:
            route.add_row(str(leg["seq"]), literal(str(leg["time"])),
                          literal(str(leg["from_country"] or "?")),
                          literal(str(leg["to_country"] or "?")), literal(str(leg["mode"] or "")),
                          literal(str(leg["purpose"] or "")) + (" (waste)" if leg["waste"]
                                                                else ""))
        console.print(route)
    console.print("lifecycle: " + ", ".join(
        f"{k} {'entry ' + str(v) if v is not False else 'no'}"
        for k, v in data["lifecycle"].items()), highlight=False)
    cf = data["carbon_footprint"]
    if cf:
        console.print("carbon footprint: " + literal(
            f"{cf['value']} {cf['unit']} (class {cf['class']}, {cf['model']} at "
            f"{cf['plant_name'] or cf['plant']})"), highlight=False)
    rc = data["recycled_content"]
    console.print(f"recycled content: claimed {_shares(rc['claimed'])}; computed "
                  f"{_shares(rc['computed'])}", highlight=False)
    if data["state_of_health"]:
        soh = data["state_of_health"]
        console.print("state of health: " + literal(f"{soh['value']} % at {soh['time']}"),
                      highlight=False)
    if data["placed_on_market"]:
        console.print("placed on the market: " + literal(
            f"{data['placed_on_market']} (ledger receipt; its signer wrote "
            f"{data.get('placed_on_market_event_time')})"), highlight=False)
    else:
        console.print("placed on the market: not recorded", highlight=False)
