"""Custody commands: participants, facilities, traceability events, lots and items.

    batterytrace participant add|rotate-key|revoke-key|list|show
    batterytrace facility add|list
    batterytrace event sign FILE --key K      (plain event(s) -> signed DTE credential)
    batterytrace event append FILE...|-       (JSON or JSON Lines; --batch N)
    batterytrace lot show|trace ID            batterytrace item show|trace ID
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .console import emit, literal, print_document, read_text, say, show

if TYPE_CHECKING:
    from batterytrace.ledger.custody import CustodyState
    from batterytrace.ledger.log import Ledger
    from batterytrace.ledger.queries import StateView
    from batterytrace.ledger.registry import Registry

participant_app = typer.Typer(help="Register participants and manage their keys.",
                              no_args_is_help=True)
facility_app = typer.Typer(help="Register facilities (mine sites, plants, depots).",
                           no_args_is_help=True)
event_app = typer.Typer(help="Sign and append UNTP traceability events.", no_args_is_help=True)
lot_app = typer.Typer(help="Lots of bulk material: holders, composition, history.",
                      no_args_is_help=True)
item_app = typer.Typer(help="Serialized items: holder, assembly, history.", no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


def _ledger(ctx: typer.Context) -> Any:
    from batterytrace.ledger.service import open_ledger

    settings = ctx.obj
    return open_ledger(settings.home, settings.database_url)


def _append_registry(ctx: typer.Context, document: dict[str, Any],
                     extra_key: Path | None = None) -> dict[str, Any]:
    from batterytrace.credentials.data_integrity import sign
    from batterytrace.credentials.keys import load_key_file
    from batterytrace.ledger.log import Submission

    ledger = _ledger(ctx)
    try:
        signed = sign(document, ledger.home.admin_key())
        if extra_key is not None:
            key = load_key_file(extra_key)
            did = document["participant"]
            signed = sign(signed, key, verification_method=f"{did}#{key.public_multibase}")
        [result] = ledger.append([Submission("registry", signed)])
        return {"seq": result.seq, "duplicate": result.duplicate, "document": signed}
    finally:
        ledger.close()


def _did(ctx: typer.Context, name_or_did: str) -> str:
    if name_or_did.startswith("did:"):
        return name_or_did
    from batterytrace.ledger.registry import participant_did

    ledger = _ledger(ctx)
    try:
        return participant_did(ledger.public_url, name_or_did)
    finally:
        ledger.close()


@participant_app.command("add")
def participant_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Short name: the DID ends with participants:<name>."),
    legal_name: str = typer.Option(..., "--legal-name"),
    role: list[str] = typer.Option(..., "--role", help="Role (repeat for several)."),
    country: str = typer.Option(..., "--country", help="ISO 3166-1 alpha-2."),
    key: list[Path] = typer.Option(..., "--key", help="Multikey file of the participant."),
    as_json: bool = JSON_OPT,
) -> None:
    """Register a participant (admin-signed registry entry)."""
    from batterytrace.credentials.keys import load_key_file

    doc = {"type": "ParticipantRegistration", "name": name, "legalName": legal_name,
           "roles": role, "country": country,
           "keys": [load_key_file(k).public_multibase for k in key]}
    result = _append_registry(ctx, doc)
    did = _did(ctx, name)
    emit({"seq": result["seq"], "duplicate": result["duplicate"], "id": did}, as_json,
         lambda c: say(c, f"registered {literal(did)} at position {result['seq']}"))


@participant_app.command("rotate-key")
def participant_rotate(
    ctx: typer.Context,
    participant: str = typer.Argument(..., help="Name or DID."),
    current_key: Path = typer.Option(..., "--current-key", help="A current key (signs too)."),
    new_key: Path = typer.Option(..., "--new-key", help="The new Multikey file."),
    as_json: bool = JSON_OPT,
) -> None:
    """Rotate a key: signed by the admin key AND the participant's current key."""
    from batterytrace.credentials.keys import load_key_file

    did = _did(ctx, participant)
    doc = {"type": "KeyRotation", "participant": did,
           "newKey": load_key_file(new_key).public_multibase}
    result = _append_registry(ctx, doc, current_key)
    emit({"seq": result["seq"], "duplicate": result["duplicate"]}, as_json,
         lambda c: say(c, f"rotated the key of {literal(did)} at position {result['seq']}"))


@participant_app.command("revoke-key")
def participant_revoke(
    ctx: typer.Context,
    participant: str = typer.Argument(..., help="Name or DID."),
    key_id: str = typer.Argument(..., help="Verification method id (DID#z6Mk...)."),
    reason: str = typer.Option("", "--reason"),
    recover: Path | None = typer.Option(
        None, "--recover-with", help="Admin-only recovery: end every key, add this one."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Revoke a key at the next log position (or, with --recover-with, an admin recovery)."""
    from batterytrace.credentials.keys import load_key_file

    did = _did(ctx, participant)
    if recover is not None:
        doc = {"type": "KeyRecovery", "participant": did,
               "newKey": load_key_file(recover).public_multibase, "reason": reason}
    else:
        doc = {"type": "KeyRevocation", "participant": did, "key": key_id, "reason": reason}
    result = _append_registry(ctx, doc)
    emit({"seq": result["seq"], "type": doc["type"]}, as_json,
         lambda c: say(c, f"{doc['type']} of {literal(did)} at position {result['seq']}"))


def _with_state(ctx: typer.Context, fn: Any) -> Any:
    """`fn(ledger, view, registry, state)` over the ledger's read-only state views."""
    from batterytrace.ledger.queries import read_state

    ledger = _ledger(ctx)
    try:
        with read_state(ledger) as view:
            return fn(ledger, view, view.registry, view.state)
    finally:
        ledger.close()



@participant_app.command("list")
def participant_list(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Registered participants."""
    data = _with_state(ctx, lambda _l, view, _r, _s: [p.to_json() for p in
                                                      view.rows("participant")])
    emit(data, as_json, lambda c: [say(c, f"{literal(p['id'])}  {literal(p['legalName'])}  "
                                         f"{show(p['roles'])}  {show(p['country'])}")
                                   for p in data])


@participant_app.command("show")
def participant_show(ctx: typer.Context, participant: str, as_json: bool = JSON_OPT) -> None:
    """A participant, its keys (validity in log positions) and its current DID document."""
    did = _did(ctx, participant)

    def show(ledger: Ledger, _view: StateView, registry: Registry, _state: CustodyState
             ) -> dict[str, Any]:
        p = registry.participant(did)
        keys = [{"id": k.id, "validFrom": k.valid_from, "validUntil": k.valid_until,
                 "recovery": k.recovery, "endedBy": k.ended_by} for k in registry.keys_of(did)]
        return {**p.to_json(), "keys": keys,
                "didDocument": registry.did_document(did, ledger.size)}

    emit(_with_state(ctx, show), as_json)


@facility_app.command("add")
def facility_add(
    ctx: typer.Context,
    facility_id: str = typer.Argument(..., help="Facility URI."),
    name: str = typer.Option(..., "--name"),
    operator: str = typer.Option(..., "--operator", help="Operator name or DID."),
    kind: str = typer.Option(..., "--kind", help="mine, plant or depot."),
    country: str = typer.Option(..., "--country"),
    latitude: float | None = typer.Option(None, "--lat"),
    longitude: float | None = typer.Option(None, "--lon"),
    as_json: bool = JSON_OPT,
) -> None:
    """Register a facility of a participant."""
    doc = {"type": "FacilityRegistration", "id": facility_id, "name": name,
           "operator": _did(ctx, operator), "kind": kind, "country": country}
    if latitude is not None and longitude is not None:
        doc.update(latitude=latitude, longitude=longitude)
    result = _append_registry(ctx, doc)
    emit({"seq": result["seq"], "id": facility_id}, as_json,
         lambda c: say(c, f"registered {literal(facility_id)} at position {result['seq']}"))


@facility_app.command("list")
def facility_list(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Registered facilities."""
    from dataclasses import asdict

    data = _with_state(ctx, lambda _l, view, _r, _s: [asdict(f) for f in
                                                      view.rows("facility")])
    emit(data, as_json, lambda c: [say(c, f"{literal(f['id'])}  {show(f['kind'])}  "
                                         f"{literal(f['name'])}  {literal(f['operator'])}")
                                   for f in data])


@event_app.command("sign")
def event_sign(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="Plain event file (JSON): {issuer, events} or an "
                               "event or a list of events; '-' for stdin."),
    key: Path = typer.Option(..., "--key", help="The participant's Multikey file."),
    issuer: str | None = typer.Option(
        None, "--issuer", help="Issuer DID [default: the participant the key is registered "
        "to in the ledger of --home]."
    ),
    name: str = typer.Option("", "--name", help="Issuer name [default: its legal name]."),
    credential_id: str | None = typer.Option(None, "--id"),
    as_json: bool = JSON_OPT,
) -> None:
    """Build the UNTP DTE credential around plain events and sign it (eddsa-jcs-2022); print
    it (pipe it to `event append -`). With --json: {credential, issuer, verificationMethod}."""
    import uuid

    from batterytrace.credentials.data_integrity import sign
    from batterytrace.credentials.errors import ParsingError
    from batterytrace.credentials.keys import load_key_file
    from batterytrace.ledger.events import DTE_CONTEXTS, loads_exact, parse_credential

    text = read_text(file)
    if not text.strip():
        raise ParsingError(f"{'stdin' if file == '-' else file} is empty")
    plain = loads_exact(text)
    if isinstance(plain, dict) and "events" in plain:
        events, issuer = plain["events"], issuer or plain.get("issuer")
        name = name or plain.get("issuerName", "")
    else:
        events = plain if isinstance(plain, list) else [plain]
    signing_key = load_key_file(key)
    if not issuer:
        issuer, legal_name = _key_owner(ctx, signing_key, key)
        name = name or legal_name
    did = str(issuer)
    credential = {
        "@context": list(DTE_CONTEXTS),
        "type": ["DigitalTraceabilityEvent", "VerifiableCredential"],
        "id": credential_id or f"urn:uuid:{uuid.uuid4()}",
        "issuer": {"type": ["CredentialIssuer"], "id": did, "name": name or did},
        "credentialSubject": events,
    }
    parse_credential(credential)  # schema and project checks before signing
    method = f"{did}#{signing_key.public_multibase}"
    signed = sign(credential, signing_key, verification_method=method)
    if as_json:
        emit({"credential": signed, "issuer": did, "verificationMethod": method,
              "events": len(events) if isinstance(events, list) else 1}, True)
    else:
        print_document(signed)


def _key_owner(ctx: typer.Context, signing_key: Any, path: Path) -> tuple[str, str]:
    """The participant whose registered key `signing_key` is (its DID and legal name), from
    the ledger in --home; else a typed error saying to pass --issuer, and which DID."""
    from batterytrace.credentials.errors import InputError
    from batterytrace.ledger.errors import LedgerNotFoundError

    def find(_ledger: Any, view: Any, registry: Any, _state: Any) -> tuple[str, str] | None:
        for record in view.rows("key"):
            if record.public_multibase == signing_key.public_multibase:
                if record.valid_until is not None:
                    continue
                participant = registry.participant(record.controller)
                return record.controller, participant.legal_name
        return None

    try:
        found = _with_state(ctx, find)
    except LedgerNotFoundError:
        found = None
        where = f"there is no ledger in {ctx.obj.home}"
    else:
        where = f"no participant of the ledger in {ctx.obj.home} has it as a current key"
    if found is None:
        controller = signing_key.controller or ""
        hint = (f"pass --issuer {controller}" if controller.startswith("did:web:")
                else "pass --issuer with the participant's DID (did:web:...:participants:"
                     "NAME, see `batterytrace participant list`)")
        raise InputError(f"{path}: key {signing_key.public_multibase} is not registered ({where});"
                         f" {hint}, or --home of the ledger it is registered in")
    return found


def _read_documents(files: list[str]) -> list[dict[str, Any]]:
    from batterytrace.credentials.errors import ParsingError
    from batterytrace.ledger.events import loads_exact

    docs: list[dict[str, Any]] = []
    for file in files:
        stripped = read_text(file).strip()
        if not stripped:
            raise ParsingError(f"{'stdin' if file == '-' else file} holds no credential")
        try:
            value = loads_exact(stripped)
            values = value if isinstance(value, list) else [value]
        except ParsingError:  # JSON Lines
            values = [loads_exact(line) for line in stripped.splitlines() if line.strip()]
        docs.extend(values)
    return docs


@event_app.command("append")
def event_append(
    ctx: typer.Context,
    files: list[str] = typer.Argument(..., help="Signed credentials: JSON or JSON Lines files, "
                                      "'-' for stdin."),
    batch: int = typer.Option(1000, "--batch", min=1, help="Credentials per atomic batch."),
    as_json: bool = JSON_OPT,
) -> None:
    """Append signed DTE credentials (each batch all or nothing)."""
    from batterytrace.ledger.log import Submission

    docs = _read_documents(files)
    ledger = _ledger(ctx)
    results = []
    chunks = ([Submission("event", d) for d in docs[start : start + batch]]
              for start in range(0, len(docs), batch))
    try:
        # Pipelined: the next batch's signatures are checked while this one is written.
        for appended in ledger.append_batches(chunks):
            results.extend({"seq": r.seq, "duplicate": r.duplicate} for r in appended)
    finally:
        ledger.close()
    emit(results, as_json, lambda c: say(
        c, f"appended {sum(not r['duplicate'] for r in results)} credentials "
        f"({sum(r['duplicate'] for r in results)} already present)"
        + _positions([r["seq"] for r in results])))


def _positions(seqs: list[int]) -> str:
    if not seqs:
        return ""
    if seqs[0] == seqs[-1]:
        return f" at log position {seqs[0]}"
    return f" at log positions {seqs[0]}-{seqs[-1]}"








def _render_subject(data: dict[str, Any]) -> Any:
    """Human view of `lot|item show|trace`: one line per fact, participant text literal."""
    def human(console: Any) -> None:
        say(console, f"[bold]{literal(str(data.get('id')))}[/]")
        for field, value in data.items():
            if field in ("id", "history", "holders") or value in (None, {}, [], ""):
                continue
            if isinstance(value, list) and len(value) > 3:  # one per line
                say(console, f"{field:12} {len(value)}")
                for one in value:
                    say(console, f"  {show(one)}")
                continue
            say(console, f"{field:12} {show(value)}")
        for holder in data.get("holders") or []:
            say(console, f"{'holder':12} {literal(str(holder['holder']))} "
                         f"{literal(str(holder['kg']))} kg")
        for row in data.get("history") or []:
            say(console, f"{'event':12} {literal(str(row['event']))} at log position "
                         f"{row['seq']}")

    return human


@lot_app.command("show")
def lot_show(ctx: typer.Context, lot_id: str, as_json: bool = JSON_OPT) -> None:
    """Holders, quantities, composition and history of a lot."""
    data = _with_state(ctx, lambda _l, view, _r, _s: view.lot(lot_id))
    emit(data, as_json, _render_subject(data))


@lot_app.command("trace")
def lot_trace(ctx: typer.Context, lot_id: str, as_json: bool = JSON_OPT) -> None:
    """A lot with everything upstream and downstream of it."""
    data = _with_state(ctx, lambda _l, view, _r, _s: {**view.lot(lot_id), **view.trace(lot_id)})
    emit(data, as_json, _render_subject(data))


@item_app.command("show")
def item_show(ctx: typer.Context, item_id: str, as_json: bool = JSON_OPT) -> None:
    """Holder, mass, composition, assembly and history of an item."""
    data = _with_state(ctx, lambda _l, view, _r, _s: view.item(item_id))
    emit(data, as_json, _render_subject(data))


@item_app.command("trace")
def item_trace(ctx: typer.Context, item_id: str, as_json: bool = JSON_OPT) -> None:
    """An item with everything upstream and downstream of it."""
    data = _with_state(ctx, lambda _l, view, _r, _s: {**view.item(item_id),
                                                       **view.trace(item_id)})
    emit(data, as_json, _render_subject(data))


def register(app: typer.Typer) -> None:
    """Add the custody commands to the root app."""
    app.add_typer(participant_app, name="participant")
    app.add_typer(facility_app, name="facility")
    app.add_typer(event_app, name="event")
    app.add_typer(lot_app, name="lot")
    app.add_typer(item_app, name="item")
