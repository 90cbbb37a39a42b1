"""EPCIS 2.0 commands (they join the `event` group of cli_custody).

    batterytrace event import events.jsonld --key K [--issuer DID]
    batterytrace event export --lot URI | --item URI | --all --format epcis [--out FILE]

See docs/events.md ("EPCIS 2.0") for the mapping and docs/interop.md for the ecosystem view.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from batterytrace.credentials.errors import InputError

from .cli_custody import _ledger, event_app
from .console import emit, err_console, read_json_file

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


class ExportFormatError(InputError):
    code = "EXPORT_FORMAT"
    title = "Unsupported export format"


@event_app.command("import")
def event_import(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="EPCIS 2.0 JSON-LD document (EPCISDocument or "
                               "EPCISQueryDocument); '-' for stdin."),
    key: Path = typer.Option(..., "--key", help="The participant's Multikey file (signs)."),
    issuer: str | None = typer.Option(None, "--issuer",
                                      help="Issuer DID (else the key's controller)."),
    name: str = typer.Option("", "--name", help="Issuer name."),
    as_json: bool = JSON_OPT,
) -> None:
    """Map an EPCIS document's events to signed UNTP DTE events and append them in one batch
    (an unmappable event refuses the whole document, each listed with its index)."""
    from batterytrace.credentials.keys import load_key_file
    from batterytrace.ledger.epcis import EpcisImportError
    from batterytrace.ledger.epcis_io import import_epcis
    from batterytrace.verifier.report import literal

    document = read_json_file(file)
    signing_key = load_key_file(key)
    did = issuer or signing_key.controller or ""
    ledger = _ledger(ctx)
    try:
        result = import_epcis(ledger, document, signing_key, did, issuer_name=name)
    except EpcisImportError as error:
        for event_error in error.errors:
            err_console.print(f"event {event_error.index}: {literal(event_error.reason)}",
                              highlight=False, soft_wrap=True)
        raise
    finally:
        ledger.close()
    data = {"events": len(result.events), "entries": [r.seq for r in result.results],
            "duplicate": all(r.duplicate for r in result.results),
            "notes": [{"index": m.index, "notes": list(m.notes)}
                      for m in result.events if m.notes]}

    def human(console: object) -> None:
        from rich.console import Console

        assert isinstance(console, Console)
        console.print(f"imported {len(result.events)} events in {len(result.results)} "
                      f"entries (positions {data['entries'][0]}..{data['entries'][-1]})")
        for row in data["notes"]:
            for note in row["notes"]:
                console.print(f"  event {row['index']}: {literal(note)}", highlight=False)

    emit(data, as_json, human)


@event_app.command("export")
def event_export(
    ctx: typer.Context,
    lot: str | None = typer.Option(None, "--lot", help="Lot URI."),
    item: str | None = typer.Option(None, "--item", help="Item URI."),
    all_entries: bool = typer.Option(False, "--all", help="Every event of the log."),
    format_: str = typer.Option("epcis", "--format", help="epcis (EPCIS 2.0 JSON-LD)."),
    out: Path | None = typer.Option(None, "--out", help="Write here (default: stdout)."),
) -> None:
    """The events of a lot, an item or the log as an EPCIS 2.0 document, each with its log
    position and inclusion proof (`batterytrace:ledger`)."""
    from batterytrace.ledger.epcis_io import export_epcis

    if format_ != "epcis":
        raise ExportFormatError(f"--format must be epcis, not {format_!r}")
    ledger = _ledger(ctx)
    try:
        document = export_epcis(ledger, lot=lot, item=item, all_entries=all_entries)
    finally:
        ledger.close()
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")


def register(app: typer.Typer) -> None:
    """The EPCIS commands join the `event` group (registered by cli_custody)."""
