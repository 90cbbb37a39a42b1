"""`batterytrace trust import-registry FILE --trust trust.toml [--did-document DOC ...]
[--as-roots]`: a B.C.-style issuer registry into trust file entries (verifier/trust_registry.py,
docs/trust.md). It joins the `trust` group of cli_trust."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .cli_trust import trust_app
from .console import emit, read_json_file


@trust_app.command("import-registry")
def trust_import_registry(
    file: str = typer.Argument(..., help="Issuer registry JSON ({\"issuers\": [{id, name, "
                               "scope}]})."),
    trust: Path = typer.Option(Path("trust.toml"), "--trust", help="Trust file to change."),
    did_document: list[Path] | None = typer.Option(
        None, "--did-document", help="DID document of a registry issuer (JSON); repeat."),
    as_roots: bool = typer.Option(False, "--as-roots",
                                  help="Also make each issuer a governance root."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Pin the DID documents of a registry's issuers (and with --as-roots make them
    governance roots); issuers whose document is not given are listed as skipped."""
    from batterytrace.credentials.errors import ParsingError
    from batterytrace.verifier.report import literal
    from batterytrace.verifier.trust import load_trust, write_trust
    from batterytrace.verifier.trust_registry import import_registry

    documents: list[dict[str, Any]] = []
    for path in did_document or []:
        loaded = read_json_file(str(path))
        for doc in loaded if isinstance(loaded, list) else [loaded]:
            if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
                raise ParsingError(f"{path} does not hold DID documents")
            documents.append(doc)
    result = import_registry(load_trust(trust), read_json_file(file), documents,
                             as_roots=as_roots)
    write_trust(result.config, trust)
    data = {"trust": str(trust), "imported": [i.did for i in result.imported],
            "skipped": [{"did": i.did, "reason": why} for i, why in result.skipped]}

    def human(console: Any) -> None:
        console.print(f"imported {len(result.imported)} issuer(s) into {literal(str(trust))}",
                      highlight=False)
        for issuer in result.imported:
            console.print(f"  pinned {literal(issuer.did)}", highlight=False)
        for issuer, why in result.skipped:
            console.print(f"  skipped {literal(issuer.did)}: {literal(why)}", highlight=False)

    emit(data, as_json, human)


def register(app: typer.Typer) -> None:
    """The command joins the `trust` group (registered by cli_trust)."""
