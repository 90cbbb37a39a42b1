"""`batterytrace witness init` and `witness serve`: a C2SP tlog-witness (ledger/witness.py)
behind its HTTP face (api/witness_app.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from .cli_ledger import JSON_OPTION
from .console import emit

witness_app = typer.Typer(help="A C2SP tlog-witness: cosigns consistent checkpoints of logs.",
                          no_args_is_help=True)
HOME_OPTION = typer.Option(..., "--home", help="The witness's folder.")


@witness_app.command("init")
def init(
    home: Path = HOME_OPTION,
    name: str = typer.Option(..., "--name", help="Witness key name (a schema-less URL)."),
    key: Path | None = typer.Option(None, "--key", help="Ed25519 key file [default: new key]."),
    logs: list[str] = typer.Option([], "--log", help="Verifier key of a log to witness "
                                   "(<origin>+<key id>+<key>); repeat for several."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a witness: its key, the logs it accepts, its (empty) state; print its
    cosigner key (for ledger settings and verifiers' trust files)."""
    from batterytrace.credentials.keys import load_key_file
    from batterytrace.ledger.witness import init_witness

    cosigner = init_witness(home, name, load_key_file(key) if key else None, logs)
    data = {"name": cosigner.name, "cosignerKey": cosigner.vkey, "logs": len(logs)}
    emit(data, as_json, lambda console: typer.echo(cosigner.vkey))


@witness_app.command("serve")
def serve(
    home: Path = HOME_OPTION,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8500, "--port", min=0, max=65535),
) -> None:
    """Serve POST /add-checkpoint until interrupted."""
    import uvicorn

    from .witness_app import create_witness_app

    uvicorn.run(create_witness_app(home), host=host, port=port, access_log=False)


@witness_app.command("state")
def state(home: Path = HOME_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The latest size and root cosigned per log."""
    from batterytrace.ledger.witness import Witness

    witness = Witness(home)
    try:
        data = {"name": witness.config.name, "cosignerKey": witness.cosigner.vkey,
                "logs": {o: dict(zip(("size", "root"), (s[0], s[1].hex()), strict=True))
                         if (s := witness.state(o)) else None for o in witness.config.logs}}
    finally:
        witness.close()

    def human(console: Console) -> None:
        for origin, st in data["logs"].items():
            console.print(f"{origin} {st['size'] if st else '-'}", markup=False,
                          highlight=False)

    emit(data, as_json, human)


def register(app: typer.Typer) -> None:
    """Add the `witness` group to the root app."""
    app.add_typer(witness_app, name="witness")
