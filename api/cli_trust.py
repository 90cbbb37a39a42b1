"""`batterytrace trust|accreditation|status-list ...` and the ledger-backed `credential`
subcommands: publish, show, find, revoke, suspend, reinstate, issue, types, check.

Thin: each command calls `verifier.trust`, `verifier.credential_check` or
`ledger.credential_store` and prints through `console.emit`. Errors propagate as
BatterytraceError (api/cli.main prints the one-line reason and the exit code).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .cli_credentials import credential_app, parse_at, render_check
from .console import (
    check_out_folder,
    emit,
    literal,
    note,
    print_document,
    read_json_file,
    say,
    show,
    write_atomic,
)

if TYPE_CHECKING:
    from batterytrace.credentials.keys import Ed25519Key
    from batterytrace.ledger.credential_store import CredentialStore
    from rich.console import Console

trust_app = typer.Typer(help="The verifier's trust file (trust.toml).", no_args_is_help=True)
accreditation_app = typer.Typer(help="AccreditationCredentials: who may issue which type.",
                                no_args_is_help=True)
status_list_app = typer.Typer(help="Bitstring Status Lists kept by the ledger.",
                              no_args_is_help=True)

_JSON = typer.Option(False, "--json", help="Print JSON.")
_KEY = typer.Option(..., "--key", help="Multikey key file of the issuer.")


def register(app: typer.Typer) -> None:
    """Add the trust, accreditation and status-list groups (credential_app commands are
    registered on import of this module)."""
    app.add_typer(trust_app, name="trust")
    app.add_typer(accreditation_app, name="accreditation")
    app.add_typer(status_list_app, name="status-list")


# --- helpers ----------------------------------------------------------------------------------


@contextmanager
def _store(ctx: typer.Context) -> Iterator[CredentialStore]:
    from batterytrace.ledger.credential_store import CredentialStore
    from batterytrace.ledger.log import Ledger

    ledger = Ledger.open(ctx.obj.home, ctx.obj.database_url)
    try:
        yield CredentialStore(ledger)
    finally:
        ledger.close()


def _object(path: str, what: str) -> dict[str, Any]:
    from batterytrace.credentials.errors import ParsingError

    doc = read_json_file(path)
    if not isinstance(doc, dict):
        raise ParsingError(f"{path}: a {what} must be a JSON object")
    return doc


def _key(path: Path) -> Ed25519Key:
    from batterytrace.credentials.keys import load_key_file

    return load_key_file(path)


def _issuer_of(key: Ed25519Key, issuer: str | None) -> str:
    return issuer or key.controller or key.did_key


_say = say
_print = print_document


def _write_trust(config: Any, file: Path) -> None:
    from batterytrace.verifier.trust import dump_trust

    write_atomic(file, dump_trust(config).encode("utf-8"))


# --- trust ------------------------------------------------------------------------------------


@trust_app.command("init")
def trust_init(
    ctx: typer.Context,
    file: Path = typer.Argument(Path("trust.toml"), help="Trust file to write."),
    from_ledger: bool = typer.Option(False, "--from-ledger",
                                     help="Trust the ledger in --home (its checkpoint key)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    as_json: bool = _JSON,
) -> None:
    """Write an empty (or ledger-trusting) trust file, version 1."""
    from batterytrace.credentials.errors import InputError
    from batterytrace.verifier.trust import TrustConfig, TrustedLedger

    check_out_folder(file)
    if file.exists() and not force:
        raise InputError(f"{file} exists; pass --force to overwrite it")
    config = TrustConfig()
    if from_ledger:
        from batterytrace.ledger.log import Ledger

        ledger = Ledger.open(ctx.obj.home, ctx.obj.database_url)
        try:
            config = config.with_ledger(TrustedLedger(ledger.origin, ledger.verifier.vkey))
        finally:
            ledger.close()
    _write_trust(config, file)
    emit({"file": str(file), "ledgers": len(config.ledgers)}, as_json,
         lambda c: _say(c, f"wrote {literal(str(file))}"))


@trust_app.command("add")
def trust_add(
    file: Path = typer.Argument(..., help="Trust file to change."),
    governance_root: str | None = typer.Option(None, "--governance-root", help="Root DID."),
    key: list[str] | None = typer.Option(None, "--key", help="Root key (publicKeyMultibase)."),
    name: str | None = typer.Option(None, "--name", help="Label of the root."),
    pin: Path | None = typer.Option(None, "--pin", help="did:web DID document to pin."),
    ledger_origin: str | None = typer.Option(None, "--ledger-origin"),
    verifier_key: str | None = typer.Option(None, "--verifier-key", help="C2SP verifier key."),
    witness: list[str] | None = typer.Option(
        None, "--witness", help="C2SP cosigner key of a witness of --ledger-origin; repeat."),
    quorum: int | None = typer.Option(
        None, "--quorum", min=0, help="Witnesses that must cosign (k of n) [default: all]."),
    as_json: bool = _JSON,
) -> None:
    """Add a governance root, a pinned did:web document or a trusted ledger (with the
    witnesses that must cosign its checkpoints)."""
    from batterytrace.credentials.errors import InputError
    from batterytrace.verifier.trust import (
        GovernanceRoot,
        PinnedDidDocument,
        TrustedLedger,
        did_document_sha256,
        load_trust,
    )

    config = load_trust(file)
    added = []
    if governance_root:
        config = config.with_governance_root(
            GovernanceRoot(governance_root, tuple(key or ()), name))
        added.append(governance_root)
    if pin is not None:
        doc = _object(str(pin), "DID document")
        config = config.with_pinned_did_document(
            PinnedDidDocument(str(doc.get("id")), did_document_sha256(doc)))
        added.append(str(doc.get("id")))
    if ledger_origin or verifier_key:
        witnesses = tuple(witness or ())
        config = config.with_ledger(TrustedLedger(
            ledger_origin or "", verifier_key or "", witnesses,
            len(witnesses) if quorum is None else quorum))
        added.append(ledger_origin or "")
    if not added:
        raise InputError("nothing to add: give --governance-root, --pin or --ledger-origin")
    _write_trust(config, file)
    emit({"file": str(file), "added": added}, as_json,
         lambda c: _say(c, f"added {show(added)} to {literal(str(file))}"))


@trust_app.command("show")
def trust_show(file: Path = typer.Argument(Path("trust.toml")), as_json: bool = _JSON) -> None:
    """Print what a trust file trusts."""
    from batterytrace.verifier.trust import load_trust

    config = load_trust(file)
    data = {
        "version": config.version,
        "ledgers": [{"origin": x.origin, "verifierKey": x.verifier_key,
                     "witnesses": list(x.witnesses), "witnessQuorum": x.witness_quorum}
                    for x in config.ledgers],
        "governanceRoots": [{"did": r.did, "name": r.name, "keys": list(r.keys)}
                            for r in config.governance_roots],
        "pinnedDidDocuments": [{"did": p.did, "sha256": p.sha256}
                               for p in config.pinned_did_documents],
    }

    def human(console: Console) -> None:
        for x in config.ledgers:
            quorum = (f" (witnesses: {x.witness_quorum} of {len(x.witnesses)})"
                      if x.witnesses else "")
            _say(console, f"ledger           {literal(x.origin)}{quorum}")
        for r in config.governance_roots:
            _say(console, f"governance root  {literal(r.did)}"
                 + (f" ({literal(r.name)})" if r.name else ""))
        for p in config.pinned_did_documents:
            _say(console, f"pinned           {literal(p.did)} sha256:{literal(p.sha256)}")

    emit(data, as_json, human)


# --- accreditation ----------------------------------------------------------------------------


@accreditation_app.command("issue")
def accreditation_issue(
    subject: str = typer.Option(..., "--subject", help="DID accredited."),
    credential_type: list[str] = typer.Option(..., "--type", help="Credential type; repeat."),
    key: Path = _KEY,
    issuer: str | None = typer.Option(None, "--issuer", help="Issuer DID [default: the key's]."),
    mineral: list[str] | None = typer.Option(None, "--mineral", help="Mineral scope; repeat."),
    region: list[str] | None = typer.Option(None, "--region", help="Region scope; repeat."),
    valid_from: str = typer.Option(..., "--valid-from"),
    valid_until: str = typer.Option(..., "--valid-until"),
    may_accredit: bool = typer.Option(False, "--may-accredit", help="May accredit others."),
) -> None:
    """Sign an AccreditationCredential and print it."""
    import uuid

    from batterytrace.credentials.data_integrity import sign
    from batterytrace.ledger.anchors import signing_method
    from batterytrace.verifier.accreditation import Accreditation, accreditation_document

    signer = _key(key)
    who = _issuer_of(signer, issuer)
    doc = accreditation_document(
        id=f"urn:uuid:{uuid.uuid4()}", issuer=who, subject=subject,
        credential_types=credential_type, valid_from=valid_from, valid_until=valid_until,
        may_accredit=may_accredit, minerals=mineral, regions=region)
    Accreditation.from_credential(doc)  # ACCREDITATION_MALFORMED before signing
    _print(sign(doc, signer, verification_method=signing_method(who, signer)))


@accreditation_app.command("show")
def accreditation_show(file: str = typer.Argument(...), as_json: bool = _JSON) -> None:
    """Print what an AccreditationCredential grants (its proof is not checked here)."""
    from batterytrace.verifier.accreditation import Accreditation

    a = Accreditation.from_credential(_object(file, "credential"))
    data = {"id": a.id, "issuer": a.issuer, "subject": a.subject,
            "credentialTypes": sorted(a.credential_types),
            "minerals": sorted(a.minerals) if a.minerals else None,
            "regions": sorted(a.regions) if a.regions else None,
            "validFrom": a.valid_from.isoformat(), "validUntil": a.valid_until.isoformat(),
            "mayAccredit": a.may_accredit}
    emit(data, as_json, lambda c: [_say(c, f"{k:16} {show(v)}") for k, v in data.items()])


@accreditation_app.command("revoke")
def accreditation_revoke(ctx: typer.Context, credential_id: str = typer.Argument(...),
                         key: Path = _KEY, as_json: bool = _JSON) -> None:
    """Revoke a published accreditation (a revocation anchor signed by its issuer)."""
    _change(ctx, credential_id, "revocation", key, None, as_json)


# --- status lists -----------------------------------------------------------------------------


@status_list_app.command("create")
def status_list_create(
    ctx: typer.Context,
    issuer: str = typer.Option(..., "--issuer", help="Issuer DID."),
    purpose: str = typer.Option("revocation", "--purpose", help="revocation | suspension"),
    as_json: bool = _JSON,
) -> None:
    """Start a new 131,072-entry list for an issuer and purpose; print its URL."""
    with _store(ctx) as store:
        url = store.create_status_list(issuer, purpose)
    emit({"url": url, "issuer": issuer, "purpose": purpose}, as_json,
         lambda c: _say(c, literal(url)))


@status_list_app.command("publish")
def status_list_publish(ctx: typer.Context, url: str = typer.Argument(...), key: Path = _KEY,
                        as_json: bool = _JSON) -> None:
    """Sign the list's current bits as a BitstringStatusListCredential and publish it."""
    with _store(ctx) as store:
        signed = store.publish_status_list(url, _key(key))
    emit(signed, as_json, lambda c: _say(c, f"published {literal(url)}"))


@status_list_app.command("show")
def status_list_show(
    ctx: typer.Context,
    url: str | None = typer.Argument(None, help="List URL [default: list every list]."),
    as_json: bool = _JSON,
) -> None:
    """Print a published list credential, or a table of the lists kept here."""
    with _store(ctx) as store:
        if url is not None:
            _print(store.status_list_credential(url))
            return
        lists = store.status_lists()

    def human(console: Console) -> None:
        for x in lists:
            flag = " (stale: republish)" if x["stale"] else ""
            _say(console, f"{literal(x['url'])}  allocated {x['allocated']}  set {x['set']}"
                          f"{flag}")

    emit(lists, as_json, human)


# --- credential (ledger-backed) ---------------------------------------------------------------


@credential_app.command("publish")
def credential_publish(ctx: typer.Context, file: str = typer.Argument(...), key: Path = _KEY,
                       as_json: bool = _JSON) -> None:
    """Store a signed credential off the log and append its issuance anchor (signed by --key,
    the issuer's)."""
    from batterytrace.ledger.anchors import build_anchor, sign_anchor

    credential = _object(file, "credential")
    with _store(ctx) as store:
        result = store.publish(credential, sign_anchor(build_anchor(credential), _key(key)))
    data = {"id": credential.get("id"), "seq": result.seq, "duplicate": result.duplicate}
    emit(data, as_json, lambda c: _say(c, f"published {show(data['id'])} at log position "
                                          f"{result.seq}"))


@credential_app.command("show")
def credential_show(ctx: typer.Context, credential_id: str = typer.Argument(...)) -> None:
    """Print a stored credential."""
    with _store(ctx) as store:
        _print(store.get(credential_id))


@credential_app.command("find")
def credential_find(ctx: typer.Context,
                    subject: str = typer.Option(..., "--subject", help="credentialSubject.id"),
                    as_json: bool = _JSON) -> None:
    """List the stored credentials about a subject URI."""
    with _store(ctx) as store:
        found = store.find(subject)

    def human(console: Console) -> None:
        for c in found:
            _say(console, f"{show(c.get('id'))}  {show(c.get('type'))}")
        if not found:
            _say(console, "none")

    emit(found, as_json, human)


def _change(ctx: typer.Context, credential_id: str, action: str, key: Path,
            reason: str | None, as_json: bool) -> None:
    with _store(ctx) as store:
        data = store.change_status(credential_id, action, _key(key), reason=reason)
    emit(data, as_json, lambda c: _say(c, f"{action} of {literal(credential_id)} anchored "
                                          f"at log position {data['seq']}"))


_REASON = typer.Option(None, "--reason", help="Reason recorded in the anchor.")


@credential_app.command("revoke")
def credential_revoke(ctx: typer.Context, credential_id: str = typer.Argument(...),
                      key: Path = _KEY, reason: str | None = _REASON,
                      as_json: bool = _JSON) -> None:
    """Revoke a credential for good (anchor, status bit, list republished)."""
    _change(ctx, credential_id, "revocation", key, reason, as_json)


@credential_app.command("suspend")
def credential_suspend(ctx: typer.Context, credential_id: str = typer.Argument(...),
                       key: Path = _KEY, reason: str | None = _REASON,
                       as_json: bool = _JSON) -> None:
    """Suspend a credential (reversible)."""
    _change(ctx, credential_id, "suspension", key, reason, as_json)


@credential_app.command("reinstate")
def credential_reinstate(ctx: typer.Context, credential_id: str = typer.Argument(...),
                         key: Path = _KEY, reason: str | None = _REASON,
                         as_json: bool = _JSON) -> None:
    """Lift a suspension."""
    _change(ctx, credential_id, "reinstatement", key, reason, as_json)


_PASSPORT = "BatteryPassportCredential"  # issued with its UNTP blocks (api/passport_untp.py)


@credential_app.command("issue")
def credential_issue(
    ctx: typer.Context,
    type_name: str = typer.Option(..., "--type", help="Credential type (see `types`)."),
    subject: str = typer.Option(..., "--subject", help="credentialSubject JSON file ('-' for "
                                "stdin; `credential template --type T` prints an example)."),
    key: Path = _KEY,
    issuer: str | None = typer.Option(None, "--issuer", help="Issuer DID [default: the key's]."),
    issuer_name: str | None = typer.Option(None, "--issuer-name"),
    valid_from: str | None = typer.Option(None, "--valid-from", help="Date-time or YYYY-MM-DD."),
    valid_until: str | None = typer.Option(None, "--valid-until",
                                           help="Date-time or YYYY-MM-DD."),
    allow_expired: bool = typer.Option(
        False, "--allow-expired", help="Issue even though --valid-until has passed."),
    publish_status: bool = typer.Option(
        True, "--publish-status/--no-publish-status",
        help="Republish the status lists the credential's entries are in, signed by --key, "
        "so that a verifier finds a current list right away."),
    trust: Path | None = typer.Option(
        None, "--trust", help="BatteryPassportCredential (required): your trust file; the "
        "battery's bundle is verified against it and the passport's UNTP blocks are built "
        "from it."),
    bundle: Path | None = typer.Option(
        None, "--bundle", help="BatteryPassportCredential: the battery's evidence bundle "
        "[default: exported from this ledger at its latest signed checkpoint]."),
    policy: str | None = typer.Option(
        None, "--policy", help="BatteryPassportCredential: policy file or name whose verdicts "
        "become conformityClaim [default: eu-2023-1542]."),
    policy_date: str | None = typer.Option(
        None, "--policy-date", help="BatteryPassportCredential: judge the policy at this date "
        "(YYYY-MM-DD) [default: the ledger's placing on the market]."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="BatteryPassportCredential: ledger URL the UNTP links point "
        "to [default: the bundle's publicUrl]."),
    as_json: bool = _JSON,
) -> None:
    """Validate the subject, allocate status entries, sign, store and anchor; print the signed
    credential (with --json: the credential, its log position and the lists published).
    A BatteryPassportCredential gets its UNTP blocks (conformityClaim, traceabilityInformation,
    materialsProvenance, emissionsScorecard) from the battery's verified bundle."""
    from datetime import UTC, date, datetime

    from batterytrace.credentials.credential_types import (
        CredentialSubjectError,
        build_credential,
        credential_type,
    )
    from batterytrace.credentials.errors import InputError

    credential_type(type_name)  # UNKNOWN_CREDENTIAL_TYPE before anything else
    start, end = _when("--valid-from", valid_from), _when("--valid-until", valid_until)
    if end is not None and end <= datetime.now(UTC) and not allow_expired:
        raise InputError(f"--valid-until {valid_until} has passed: the credential would be "
                         "expired when issued (pass --allow-expired to issue it anyway)")
    if start is not None and end is not None and end < start:
        raise InputError(f"--valid-until {valid_until} is before --valid-from {valid_from}")
    for option, path in (("--trust", trust), ("--bundle", bundle)):
        if path is not None and not path.is_file():
            raise InputError(f"{option} {path}: no such file")
    passport = type_name == _PASSPORT
    if passport and trust is None:
        raise InputError(f"a {_PASSPORT} carries UNTP blocks built from the battery's "
                         "verified evidence bundle: give --trust (your trust file)")
    if not passport and any(v is not None for v in (trust, bundle, policy, policy_date,
                                                     base_url)):
        raise InputError("--trust, --bundle, --policy, --policy-date and --base-url apply to "
                         f"{_PASSPORT} only")
    try:
        when = date.fromisoformat(policy_date) if policy_date else None
    except ValueError:
        raise InputError(f"--policy-date {policy_date} is not a date (YYYY-MM-DD)") from None
    signer = _key(key)
    try:
        doc = build_credential(type_name, _object(subject, "credentialSubject"),
                               issuer=_issuer_of(signer, issuer), issuer_name=issuer_name,
                               valid_from=start, valid_until=end)
    except CredentialSubjectError as exc:
        raise every_field(exc, type_name) from None
    notes: list[str] = []
    with _store(ctx) as store:
        if passport and trust is not None:
            from batterytrace.verifier.trust import load_trust

            from .passport_untp import passport_with_untp_blocks

            doc = passport_with_untp_blocks(doc, load_trust(trust), ledger=store.ledger,
                                            bundle=bundle, policy=policy, policy_date=when,
                                            base_url=base_url, notes=notes)
        [(signed, result)] = store.issue_many([doc], signer, publish_status=publish_status)
    lists = sorted({e["statusListCredential"] for e in _entries(signed)})
    data = {"id": signed.get("id"), "seq": result.seq, "credential": signed,
            "statusListsPublished": lists if publish_status else []}
    if as_json:
        emit(data, True)
        return
    _print(signed)
    for line in notes:
        note(literal(line))
    note(f"issued {literal(str(signed.get('id')))}, anchored at log position {result.seq}"
         + ("; status lists republished" if publish_status and lists else ""))


def _entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    status = doc.get("credentialStatus") or []
    return [e for e in (status if isinstance(status, list) else [status]) if isinstance(e, dict)]


def _when(option: str, value: str | None) -> Any:
    from batterytrace.credentials.errors import InputError

    try:
        return parse_at(value)
    except InputError as exc:
        raise InputError(exc.message.replace("--at", option, 1)) from None


def every_field(exc: Any, type_name: str) -> Any:
    """A CredentialSubjectError naming every missing or invalid field at once."""
    from batterytrace.credentials.credential_types import CredentialSubjectError

    errors = exc.details.get("errors") or []
    if len(errors) <= 1:
        return exc
    listed = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return CredentialSubjectError(
        f"{type_name}: {len(errors)} fields to fix: {listed} (`batterytrace credential "
        f"template --type {type_name}` prints a filled-in example)", errors=errors)


@credential_app.command("template")
def credential_template(
    type_name: str = typer.Option(..., "--type", help="Credential type (see `types`)."),
) -> None:
    """Print a filled-in example credentialSubject of TYPE, every required field present:
    edit it, then `credential issue --type TYPE --subject FILE` (a BatteryPassportCredential
    with `--trust T`: its UNTP blocks come from the battery's verified bundle)."""
    from batterytrace.credentials.credential_types import credential_type

    from .credential_templates import subject_template

    credential_type(type_name)
    _print(subject_template(type_name))


@credential_app.command("schema")
def credential_schema(
    type_name: str = typer.Option(..., "--type", help="Credential type (see `types`)."),
) -> None:
    """Print the JSON Schema (2020-12) of a whole credential of TYPE."""
    from batterytrace.credentials.credential_types import generate_schema

    _print(generate_schema(type_name))


@credential_app.command("types")
def credential_types_cmd(as_json: bool = _JSON) -> None:
    """List the battery-domain credential types and their schemas."""
    from batterytrace.credentials.credential_types import credential_types

    data = [{"name": t.name, "schema": t.schema_id, "subject": t.subject_kind,
             "untp": t.untp.credential_type, "description": t.description}
            for t in credential_types()]
    emit(data, as_json, lambda c: [_say(c, f"{t['name']:32} {t['description']}")
                                   for t in data])


@credential_app.command("check")
def credential_check(
    file: str = typer.Argument(..., help="Credential to check ('-' for stdin)."),
    trust: Path | None = typer.Option(None, "--trust", help="Trust file."),
    status: list[str] | None = typer.Option(None, "--status", help="Status list credential "
                                            "file; repeat."),
    accreditation: list[str] | None = typer.Option(None, "--accreditation",
                                                   help="Accreditation credential file; repeat."),
    did_document: list[str] | None = typer.Option(None, "--did-document",
                                                  help="DID document file; repeat."),
    require_trust: bool = typer.Option(False, "--require-trust"),
    require_status: bool = typer.Option(False, "--require-status"),
    at: str | None = typer.Option(None, "--at", help="Judge validity at this date-time."),
    as_json: bool = _JSON,
) -> None:
    """Verify a credential with status and trust: proofs, structure, schema, validity, status
    lists, and the issuer's accreditation path to a governance root of the trust file."""
    from batterytrace.verifier.credential_check import check_credential
    from batterytrace.verifier.trust import load_trust

    lists = {}
    for path in status or []:
        doc = _object(path, "status list credential")
        lists[str(doc.get("id"))] = doc
    result = check_credential(
        _object(file, "credential"),
        trust=load_trust(trust) if trust else None,
        accreditations=[_object(p, "accreditation") for p in accreditation or []],
        status_lists=lists,
        did_documents=[_object(p, "DID document") for p in did_document or []],
        at=parse_at(at), require_trust=require_trust, require_status=require_status,
    )

    def human(console: Console) -> None:
        render_check(result, console)

    emit(result.to_dict(), as_json, human)
