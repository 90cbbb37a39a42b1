"""`batterytrace key|credential|presentation ...`: keys, Data Integrity proofs, VCs and VPs.

The Typer groups are module-level (`key_app`, `credential_app`, `presentation_app`) so that
other modules can add subcommands to them (`from .cli_credentials import credential_app`,
then `@credential_app.command("publish")`); `register` mounts them on the root app once.
Heavy modules are imported inside the commands. Errors propagate as BatterytraceError:
api/cli.main prints the one-line reason and exits 1 (verification failed) or 2 (bad input).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .console import emit, read_json_file

if TYPE_CHECKING:
    from batterytrace.credentials.did import OfflineResolver
    from rich.console import Console

key_app = typer.Typer(help="Ed25519 keys as W3C Multikey files.", no_args_is_help=True)
credential_app = typer.Typer(
    help="Sign and verify W3C Verifiable Credentials (Data Integrity eddsa-jcs-2022).",
    no_args_is_help=True,
)
presentation_app = typer.Typer(
    help="Create and verify W3C Verifiable Presentations.", no_args_is_help=True
)

_JSON = typer.Option(False, "--json", help="Print the result as JSON.")
_DID_DOCUMENTS = typer.Option(
    None,
    "--did-document",
    help="A DID document (or a JSON list of them) to resolve did:web offline; repeatable.",
)
_AT = typer.Option(None, "--at", help="Judge validity at this date-time \\[default: now].")


def register(app: typer.Typer) -> None:
    """Add the key, credential and presentation groups to the root app."""
    app.add_typer(key_app, name="key")
    app.add_typer(credential_app, name="credential")
    app.add_typer(presentation_app, name="presentation")


# --- shared helpers ---------------------------------------------------------------------------


def parse_at(value: str | None) -> datetime | None:
    """`--at` as an aware datetime (XML Schema dateTime or a date; no offset means UTC)."""
    if value is None:
        return None
    from batterytrace.credentials.data_integrity import parse_date_time
    from batterytrace.credentials.errors import InputError

    if len(value) == 10:  # a bare date (YYYY-MM-DD) means its first instant, UTC
        value += "T00:00:00Z"
    try:
        return parse_date_time(value)
    except ValueError as exc:
        raise InputError(f"--at: {exc}") from None


def offline_resolver(did_documents: list[Path] | None) -> OfflineResolver:
    """An OfflineResolver holding the DID documents given with `--did-document`."""
    from batterytrace.credentials.did import OfflineResolver
    from batterytrace.credentials.errors import ParsingError

    resolver = OfflineResolver()
    for path in did_documents or []:
        loaded = read_json_file(str(path))
        for doc in loaded if isinstance(loaded, list) else [loaded]:
            if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
                raise ParsingError(f"{path} does not hold DID documents")
            resolver.add_document(doc)
    return resolver


def _read_object(path: str, what: str) -> dict[str, Any]:
    from batterytrace.credentials.errors import ParsingError

    doc = read_json_file(path)
    if not isinstance(doc, dict):
        raise ParsingError(f"{path}: a {what} must be a JSON object")
    return doc


def _print_document(doc: dict[str, Any]) -> None:
    typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def _say(console: Console, text: str) -> None:
    # No emoji codes: rich would print the ":key:" of "did:key:" as a key symbol.
    console.print(text, emoji=False, highlight=False, soft_wrap=True)


def _emit_failure(error: Exception, as_json: bool) -> None:
    """With --json, a failure is also a JSON object on stdout (the reason still goes to
    stderr through api/cli.main)."""
    from batterytrace.credentials.errors import BatterytraceError

    if as_json and isinstance(error, BatterytraceError):
        emit({"ok": False, "error": error.to_problem()}, True)


# --- key --------------------------------------------------------------------------------------


@key_app.command("new")
def key_new(
    out: Path = typer.Option(..., "--out", help="Where to write the Multikey JSON (mode 0600)."),
    controller: str | None = typer.Option(
        None, "--controller", help="Controller DID \\[default: the key's did:key]."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    as_json: bool = _JSON,
) -> None:
    """Generate an Ed25519 key and write it as a W3C Multikey file."""
    from batterytrace.credentials.errors import InputError
    from batterytrace.credentials.keys import Ed25519Key, write_key_file

    if out.exists() and not force:
        raise InputError(f"{out} exists; pass --force to overwrite it")
    key = Ed25519Key.generate()
    if controller:
        key = Ed25519Key.from_seed(key.seed or b"", controller=controller)
    write_key_file(key, out)
    public = key.to_multikey(include_secret=False)
    data = {"file": str(out), **public, "didKey": key.did_key}

    def human(console: Console) -> None:
        _say(console, f"wrote {out} (mode 0600)")
        _say(console, f"did:key  {key.did_key}")
        _say(console, f"method   {public['id']}")

    emit(data, as_json, human)


# --- credential -------------------------------------------------------------------------------


@credential_app.command("sign")
def credential_sign(
    file: str = typer.Argument(..., help="JSON document to sign ('-' for stdin)."),
    key: Path = typer.Option(..., "--key", help="Multikey key file of the signer."),
    created: str | None = typer.Option(None, "--created", help="Proof time \\[default: now]."),
    verification_method: str | None = typer.Option(
        None, "--verification-method", help="Verification method id \\[default: from the key]."
    ),
    proof_purpose: str = typer.Option("assertionMethod", "--proof-purpose"),
) -> None:
    """Add an eddsa-jcs-2022 Data Integrity proof to any JSON document and print it."""
    from batterytrace.credentials.data_integrity import sign
    from batterytrace.credentials.jsonld_checks import check_jsonld
    from batterytrace.credentials.keys import load_key_file

    document = _read_object(file, "document")
    check_jsonld(document)  # never sign what JSON-LD-aware verifiers refuse (issue 21)
    signed = sign(
        document,
        load_key_file(key),
        created=created,
        verification_method=verification_method,
        proof_purpose=proof_purpose,
    )
    _print_document(signed)


@credential_app.command("verify")
def credential_verify(
    file: str = typer.Argument(..., help="Credential to verify ('-' for stdin)."),
    at: str | None = _AT,
    proof_only: bool = typer.Option(
        False, "--proof-only", help="Check only the Data Integrity proofs (as for W3C vectors)."
    ),
    did_document: list[Path] | None = _DID_DOCUMENTS,
    trust: Path | None = typer.Option(None, "--trust", help="Trust file (issuer trust path)."),
    status: list[str] | None = typer.Option(
        None, "--status", help="Status list credential file; repeat."
    ),
    accreditation: list[str] | None = typer.Option(
        None, "--accreditation", help="Accreditation credential file; repeat."
    ),
    require_trust: bool = typer.Option(
        False, "--require-trust", help="An issuer without a trust path fails (exit 1)."
    ),
    require_status: bool = typer.Option(
        False, "--require-status", help="A status list that is not available fails (exit 1)."
    ),
    as_json: bool = _JSON,
) -> None:
    """Verify a credential: structure, schema, proofs, issuer binding and validity; with
    --trust / --status, also its status and the issuer's trust path (reported NOT_EVALUATED
    without a trust file)."""
    from batterytrace.credentials.vc import verify_credential
    from batterytrace.verifier.credential_check import check_credential
    from batterytrace.verifier.trust import load_trust

    try:
        doc = read_json_file(file)
        resolver = offline_resolver(did_document)
        if proof_only:
            result: Any = verify_credential(doc, resolver, at=parse_at(at), proof_only=True)
        else:
            # Status and trust are decided by the verifier's credential check (one code path).
            lists = {}
            for path in status or []:
                listed = _read_object(path, "status list credential")
                lists[str(listed.get("id"))] = listed
            result = check_credential(
                doc, resolver, trust=load_trust(trust) if trust else None,
                accreditations=[_read_object(p, "accreditation") for p in accreditation or []],
                status_lists=lists, at=parse_at(at), require_trust=require_trust,
                require_status=require_status,
            )
    except Exception as error:
        _emit_failure(error, as_json)
        raise

    def human(console: Console) -> None:
        _say(console, "[bold green]valid[/] credential" + (f" {result.id}" if result.id else ""))
        issuer_status = getattr(result, "issuer_status", None)
        _say(console, f"issuer    {result.issuer}" + (f" ({issuer_status})" if issuer_status
                                                       else ""))
        _say(console, f"subject   {', '.join(getattr(result, 'subject_ids', ())) or '-'}")
        _say(console, f"checks    {', '.join(result.checks)}")
        for warning in result.warnings:
            _say(console, f"[yellow]warning[/] {warning}")

    emit(result.to_dict(), as_json, human)


# --- presentation -----------------------------------------------------------------------------


@presentation_app.command("create")
def presentation_create(
    files: list[str] = typer.Argument(..., help="Credentials to present."),
    key: Path = typer.Option(..., "--key", help="Multikey key file of the holder."),
    challenge: str = typer.Option(..., "--challenge", help="The verifier's challenge."),
    domain: str | None = typer.Option(None, "--domain", help="The verifier's domain."),
    holder: str | None = typer.Option(
        None, "--holder", help="Holder DID \\[default: the key's controller]."
    ),
) -> None:
    """Wrap credentials in a presentation signed for authentication and print it."""
    from batterytrace.credentials.keys import load_key_file
    from batterytrace.credentials.presentation import create_presentation

    credentials = [_read_object(f, "credential") for f in files]
    vp = create_presentation(
        credentials, load_key_file(key), challenge=challenge, domain=domain, holder=holder
    )
    _print_document(vp)


@presentation_app.command("verify")
def presentation_verify(
    file: str = typer.Argument(..., help="Presentation to verify ('-' for stdin)."),
    challenge: str = typer.Option(..., "--challenge", help="The challenge you gave the holder."),
    domain: str | None = typer.Option(None, "--domain", help="Your domain."),
    at: str | None = _AT,
    did_document: list[Path] | None = _DID_DOCUMENTS,
    as_json: bool = _JSON,
) -> None:
    """Verify a presentation: the holder's proof, challenge, domain and every credential."""
    from batterytrace.credentials.presentation import verify_presentation

    try:
        result = verify_presentation(
            read_json_file(file),
            offline_resolver(did_document),
            challenge=challenge,
            domain=domain,
            at=parse_at(at),
        )
    except Exception as error:
        _emit_failure(error, as_json)
        raise

    def human(console: Console) -> None:
        _say(console, f"[bold green]valid[/] presentation by {result.holder or '(no holder)'}")
        for credential in result.credentials:
            _say(console, f"  credential {credential.id or '-'} from {credential.issuer}")
        for warning in result.warnings:
            _say(console, f"[yellow]warning[/] {warning}")

    emit(result.to_dict(), as_json, human)
