"""`batterytrace bundle export|verify|present`: evidence bundles and the offline verifier.

`verify` imports only the verifier (no storage, no network): an auditor runs it air-gapped.
Exit codes: 0 all verified, 1 something failed, 2 the bundle or trust file is unusable.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import typer

from .console import (
    check_out_folder,
    count_lines,
    counted,
    emit,
    literal,
    progress,
    say,
    write_atomic,
)
from .settings import Settings

bundle_app = typer.Typer(help="Evidence bundles: export, verify offline, present.",
                         no_args_is_help=True)


def export(
    ctx: typer.Context,
    item: str | None = typer.Option(None, "--item", help="Item URI."),
    lot: str | None = typer.Option(None, "--lot", help="Lot URI."),
    all_entries: bool = typer.Option(False, "--all", help="Every entry, no per-entry proofs."),
    consistency_from: int | None = typer.Option(
        None, "--consistency-from", help="Add a consistency proof from this tree size."),
    out: Path | None = typer.Option(None, "--out", help="Bundle file [default: stdout]."),
    redact: list[str] = typer.Option([], "--redact", help="Leave out credentials of TYPE."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (needs "
                                 "--out: without it stdout carries the bundle)."),
) -> None:
    """Export the evidence bundle of an item, a lot or the whole log (JSON Lines)."""
    from batterytrace.credentials.errors import InputError
    from batterytrace.ledger.bundle_export import export_bundle
    from batterytrace.ledger.credential_store import CredentialStore
    from batterytrace.ledger.log import Ledger

    if as_json and out is None:
        raise InputError("--json needs --out FILE: without it stdout carries the bundle")
    if out is not None:
        check_out_folder(out)
    settings: Settings = ctx.obj
    if settings.mirror:
        from .mirror_read import MirrorLog, open_mirror

        # Entries and proofs from the mirror's tiles, checked against the trusted checkpoint;
        # credentials are not in the tiles.
        view = open_mirror(settings.mirror, settings.trust, settings.mirror_cache)
        _export_to(MirrorLog(view), out,
                   dict(item=item, lot=lot, all_entries=all_entries,
                        consistency_from=consistency_from, redact=redact))
        return
    ledger = Ledger.open(settings.home, settings.database_url)
    try:
        store = CredentialStore(ledger)
        # --out: written to a temporary file beside it and renamed only once the export (and
        # its self-check) succeeded, so a failed export leaves no file behind.
        tmp = None
        handle: IO[bytes] = sys.stdout.buffer
        if out:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
            tmp, handle = Path(tmp_name), os.fdopen(fd, "wb")
        try:
            try:
                with progress("exporting", None, not as_json) as update:
                    summary = export_bundle(
                        ledger, _Counting(handle, update), item=item, lot=lot,
                        all_entries=all_entries, consistency_from=consistency_from,
                        redact=redact, find_credentials=store.find,
                        lists_for=store.lists_for,
                    )
            finally:
                if tmp:
                    handle.close()
            if tmp and out:
                os.chmod(tmp, 0o666 & ~_umask())
                os.replace(tmp, out)
                tmp = None
        finally:
            if tmp:
                tmp.unlink(missing_ok=True)
    finally:
        ledger.close()
    if out:
        data = {"file": str(out), "entries": summary.entries,
                "credentials": summary.credentials, "redacted": summary.redacted}
        emit(data, as_json, lambda console: say(
            console, f"wrote {literal(str(out))}: {summary.entries} entries, "
                     f"{summary.credentials} credentials ({summary.redacted} redacted)"))


class _Counting:
    """A binary output that reports the lines written to a `progress` update."""

    def __init__(self, out: IO[bytes], update: Any) -> None:
        self.out, self.update, self.lines = out, update, 0

    def write(self, data: bytes) -> int:
        self.lines += data.count(b"\n")
        self.update(self.lines)
        return self.out.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.out, name)


def _export_to(ledger: Any, out: Path | None, options: dict[str, Any]) -> None:
    """export_bundle into --out (a temporary file renamed on success) or stdout."""
    from batterytrace.ledger.bundle_export import export_bundle

    if out is None:
        summary = export_bundle(ledger, sys.stdout.buffer, **options)
        return
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            summary = export_bundle(ledger, handle, **options)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    typer.echo(f"wrote {out}: {summary.entries} entries, {summary.credentials} credentials"
               f" ({summary.redacted} redacted)", err=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def verify(
    file: Path = typer.Argument(..., help="The bundle (JSON Lines)."),
    trust: Path = typer.Option(..., "--trust", help="Trust file (required: fails closed)."),
    since: Path | None = typer.Option(
        None, "--since", help="Your earlier signed checkpoint of the same log."),
    challenge: str | None = typer.Option(
        None, "--challenge", help="The challenge the presentation must be bound to."),
    policy: str | None = typer.Option(
        None, "--policy", help="Policy file or shipped policy name (e.g. eu-2023-1542)."),
    policy_date: str | None = typer.Option(
        None, "--policy-date", help="Judge the rules at YYYY-MM-DD [default: placing on the "
        "market]."),
    as_of_use: bool = typer.Option(
        False, "--as-of-use", help="Judge each credential only at the entry relying on it "
        "(a revocation or suspension after that use is a note, not a failure)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Also print the verifier's technical notes."),
) -> None:
    """Verify a bundle offline: checkpoint, proofs, signatures, custody, credentials.

    A credential revoked or suspended at the bundle's checkpoint fails it (exit 1), unless
    --as-of-use asks for the verdict at its use."""
    from batterytrace.credentials.errors import ParsingError
    from batterytrace.verifier.bundle import iter_file_lines
    from batterytrace.verifier.bundle_verify import verify_bundle
    from batterytrace.verifier.trust import load_trust

    config = load_trust(trust)
    try:
        since_note = since.read_bytes() if since else None
        with progress("verifying the bundle", count_lines(file), not as_json) as update:
            report = verify_bundle(counted(iter_file_lines(str(file)), update), config,
                                   since=since_note, challenge=challenge, as_of_use=as_of_use)
    except OSError as exc:
        raise ParsingError(f"cannot read {exc.filename}: {exc.strerror}") from exc

    result = None
    if policy is not None:
        from batterytrace.verifier.policy import evaluate_policy, load_policy
        from batterytrace.verifier.provenance import trace_provenance

        rules = load_policy(policy)
        when = _policy_date(policy_date)
        if report.ok:
            # With governance roots, every credential of the bundle has an accreditation path
            # (bundle_credentials): a rule may then rely on its issuer being accredited.
            result = evaluate_policy(rules, trace_provenance(file),
                                     policy_date=when,
                                     issuers_accredited=bool(config.governance_roots))

    def human(console: Any) -> None:
        report.render(console, verbose=verbose)
        if result is not None:
            result.render(console)
            for outcome in result.not_evaluated:
                say(console, f"[yellow]warning[/] {literal(outcome.rule_id)} not evaluated: "
                             f"{literal(outcome.reason)}")

    data = report.to_json()
    if result is not None:
        data["policy"] = result.to_json()
    emit(data, as_json, human)
    if not report.ok or (result is not None and result.failed):
        raise typer.Exit(1)


def _policy_date(text: str | None) -> Any:
    from datetime import date

    from batterytrace.credentials.errors import ParsingError

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ParsingError(f"--policy-date {text!r} is not YYYY-MM-DD") from None


def provenance(
    file: Path = typer.Argument(..., help="The bundle (JSON Lines)."),
    trust: Path = typer.Option(..., "--trust", help="Trust file (required: fails closed)."),
    subject: str | None = typer.Option(
        None, "--subject", help="Item or lot URI [default: the bundle's subject]."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Trace a verified bundle's battery to its sources: mines, shares, route, lifecycle."""
    from batterytrace.credentials.errors import ParsingError
    from batterytrace.verifier.bundle import iter_file_lines
    from batterytrace.verifier.bundle_verify import verify_bundle
    from batterytrace.verifier.provenance import render_provenance, trace_provenance
    from batterytrace.verifier.trust import load_trust

    config = load_trust(trust)
    try:
        with progress("verifying the bundle", count_lines(file), not as_json) as update:
            report = verify_bundle(counted(iter_file_lines(str(file)), update), config)
        if not report.ok:
            emit(report.to_json(), as_json, report.render)
            raise typer.Exit(1)
        result = trace_provenance(file, subject)  # read twice: memory follows the subject
    except OSError as exc:
        raise ParsingError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    emit(result.to_json(), as_json, lambda console: render_provenance(result, console))


def present(
    file: Path = typer.Argument(..., help="The bundle to present."),
    key: Path = typer.Option(..., "--key", help="The holder's key file."),
    challenge: str = typer.Option(..., "--challenge", help="The verifier's challenge."),
    domain: str | None = typer.Option(None, "--domain", help="The verifier's domain."),
    holder: str | None = typer.Option(
        None, "--holder", help="Holder DID [default: the key's did:key]."),
    out: Path | None = typer.Option(None, "--out", help="Output [default: FILE in place]."),
) -> None:
    """Bind a bundle to a verifier's challenge: append a holder-signed presentation."""
    from batterytrace.credentials.keys import load_key_file
    from batterytrace.verifier.bundle import iter_file_lines
    from batterytrace.verifier.bundle_verify import present_bundle

    if out is not None:
        check_out_folder(out)
    lines = list(iter_file_lines(str(file)))
    data = present_bundle(lines, load_key_file(key), challenge=challenge, domain=domain,
                          holder=holder)
    write_atomic(out or file, data)


def register(app: typer.Typer) -> None:
    """Add the `bundle` command group."""
    bundle_app.command("export")(export)
    bundle_app.command("verify")(verify)
    bundle_app.command("present")(present)
    bundle_app.command("provenance")(provenance)
    app.add_typer(bundle_app, name="bundle")
