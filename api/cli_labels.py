"""Labels: the QR code of an item's or a lot's resolvable identifier.

    batterytrace item label ITEM --out label.png|label.svg
    batterytrace lot label LOT --out label.png|label.svg

The code encodes `api.resolver.label_url`: a GS1 Digital Link URI when the subject has a GTIN
and a serial (or lot number), else the ledger's own resolver path (docs/interop.md).
"""

from __future__ import annotations

from pathlib import Path

import typer
from batterytrace.credentials.errors import InputError

from .cli_custody import _ledger, item_app, lot_app
from .console import emit

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")
OUT_OPT = typer.Option(..., "--out", help="Where to write the label: a .png or .svg file.")
SUFFIXES = (".png", ".svg")


class LabelFormatError(InputError):
    """The label file's suffix names no format segno writes here."""

    code = "LABEL_FORMAT"
    title = "Unsupported label format"


def write_label(identifier: str, out: Path) -> None:
    """Write the QR code (error correction M, scale 8) of `identifier` to `out`."""
    import segno

    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise LabelFormatError(f"--out must end in {' or '.join(SUFFIXES)}, not {out.name!r}")
    segno.make_qr(identifier, error="m").save(str(out), scale=8, border=4, kind=suffix[1:])


def _label(ctx: typer.Context, subject: str, out: Path, as_json: bool) -> None:
    from .routers.resolver import label_url

    ledger = _ledger(ctx)
    try:
        identifier = label_url(ledger, subject)
    finally:
        ledger.close()
    write_label(identifier, out)
    from batterytrace.verifier.report import literal

    emit({"subject": subject, "identifier": identifier, "out": str(out)}, as_json,
         lambda c: c.print(f"wrote {literal(str(out))}: {literal(identifier)}",
                           highlight=False))


@item_app.command("label")
def item_label(ctx: typer.Context, item_id: str, out: Path = OUT_OPT,
               as_json: bool = JSON_OPT) -> None:
    """Write the QR label of an item (its resolvable identifier)."""
    _label(ctx, item_id, out, as_json)


@lot_app.command("label")
def lot_label(ctx: typer.Context, lot_id: str, out: Path = OUT_OPT,
              as_json: bool = JSON_OPT) -> None:
    """Write the QR label of a lot (its resolvable identifier)."""
    _label(ctx, lot_id, out, as_json)


def register(app: typer.Typer) -> None:
    """The label commands join the `item` and `lot` groups (registered by cli_custody)."""
