"""`batterytrace init` and the `ledger` commands: info, show, checkpoint, prove, consistency,
verify. Thin: each calls `batterytrace.ledger.log` and prints through `console.emit`."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import typer
from batterytrace.credentials.errors import InputError
from rich.console import Console

from .console import emit, err_console, literal, say
from .console import show as shown
from .settings import Settings

ledger_app = typer.Typer(help="The verifiable log: entries, checkpoints, proofs.",
                         no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON.")


def _open(ctx: typer.Context) -> Any:
    from batterytrace.ledger.service import open_ledger

    settings: Settings = ctx.obj
    return open_ledger(settings.home, settings.database_url)


def _print_info(info: dict[str, Any]) -> Any:
    def human(console: Console) -> None:
        for key in ("origin", "size", "root", "verifierKey", "publicUrl", "adminKey",
                    "checkpointSize"):
            say(console, f"[bold]{key}[/] {shown(info[key])}")

    return human


def init(
    ctx: typer.Context,
    origin: str | None = typer.Option(
        None, "--origin", help="Checkpoint origin [default: the public URL without scheme]."
    ),
    public_url: str = typer.Option(
        "http://127.0.0.1:8000", "--public-url", help="Base URL of the ledger service."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a ledger: operator keys, database, genesis entry, first checkpoint."""
    from batterytrace.ledger.log import Ledger

    settings: Settings = ctx.obj
    name = origin or public_url.split("://", 1)[-1].rstrip("/")
    ledger = Ledger.init(settings.home, settings.database_url, name, public_url)
    try:
        info = {k: v for k, v in ledger.info().items() if k != "treeCache"}
    finally:
        ledger.close()
    emit(info, as_json, _print_info(info))


@ledger_app.command("info")
def info(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Origin, size, latest root and the C2SP verifier key of the log."""
    ledger = _open(ctx)
    try:
        data = ledger.info()
    finally:
        ledger.close()
    emit(data, as_json, _print_info(data))


@ledger_app.command("show")
def show(ctx: typer.Context, seq: int, as_json: bool = JSON_OPTION) -> None:
    """Print entry SEQ (its JSON, hash and leaf hash)."""
    ledger = _open(ctx)
    try:
        entry = ledger.entry(seq)
    finally:
        ledger.close()
    data = {"entry": entry.to_json(), "hash": entry.hash.hex(), "leafHash": entry.leaf_hash.hex()}
    emit(data, as_json)


@ledger_app.command("checkpoint")
def checkpoint(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Sign a checkpoint of the current size (unless signed already), have the witnesses of
    the `witnesses` setting cosign it (kept in checkpoint.txt), and print the note and who
    cosigned."""
    from .witness_client import collect_cosignatures, witnesses_of

    ledger = _open(ctx)
    try:
        cp, note = ledger.sign_checkpoint()
        outcome = collect_cosignatures(ledger) if witnesses_of(ledger) else None
    finally:
        ledger.close()
    if outcome is not None:
        note = outcome.note
    data = {"origin": cp.origin, "size": cp.size, "root": cp.root.hex(), "note": note.decode(),
            "cosigned": outcome.cosigned if outcome else {},
            "witnessFailures": outcome.failed if outcome else {}}

    def human(console: Console) -> None:
        typer.echo(note.decode(), nl=False)
        if outcome is not None:
            for name, ts in sorted(outcome.cosigned.items()):
                console.print(f"cosigned by {name} at {ts}", markup=False, highlight=False)
            for name, why in sorted(outcome.failed.items()):
                err_console.print(f"not cosigned by {name}: {why}", markup=False,
                                  highlight=False)

    emit(data, as_json, human)


@ledger_app.command("prove")
def prove(
    ctx: typer.Context,
    seq: int,
    size: int | None = typer.Option(
        None, "--size", help="Tree size of a checkpoint signed earlier [default: latest]."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the C2SP tlog-proof of entry SEQ against a signed checkpoint."""
    from batterytrace.ledger.tlog_proof import parse_proof

    settings: Settings = ctx.obj
    if settings.mirror:
        from .mirror_read import mirror_prove, open_mirror

        if size is not None:
            raise InputError("--size is not available with --mirror (its checkpoint is used)")
        view = open_mirror(settings.mirror, settings.trust, settings.mirror_cache)
        proof, leaf = mirror_prove(view, seq)
    else:
        ledger = _open(ctx)
        try:
            proof = ledger.tlog_proof(seq, size)
            leaf = ledger.entry(seq).leaf_hash
        finally:
            ledger.close()
    parsed = parse_proof(proof)
    data = {"index": parsed.index, "leafHash": leaf.hex(),
            "hashes": [base64.b64encode(h).decode() for h in parsed.hashes],
            "proof": proof.decode()}
    emit(data, as_json, lambda console: typer.echo(proof.decode(), nl=False))


@ledger_app.command("consistency")
def consistency(ctx: typer.Context, old: int, new: int, as_json: bool = JSON_OPTION) -> None:
    """Print the consistency proof between tree sizes OLD and NEW (base64 hashes)."""
    settings: Settings = ctx.obj
    if settings.mirror:
        from .mirror_read import mirror_consistency, open_mirror

        proof, old_root, new_root = mirror_consistency(
            open_mirror(settings.mirror, settings.trust, settings.mirror_cache), old, new)
        data = {"oldSize": old, "newSize": new, "oldRoot": old_root.hex(),
                "newRoot": new_root.hex(),
                "proof": [base64.b64encode(h).decode() for h in proof]}
    else:
        ledger = _open(ctx)
        try:
            proof = ledger.consistency_proof(old, new)
            data = {"oldSize": old, "newSize": new, "oldRoot": ledger.root(old).hex(),
                    "newRoot": ledger.root(new).hex(),
                    "proof": [base64.b64encode(h).decode() for h in proof]}
        finally:
            ledger.close()

    def human(console: Console) -> None:
        for line in data["proof"]:
            typer.echo(line)

    emit(data, as_json, human)


@ledger_app.command("settings")
def settings_command(
    ctx: typer.Context,
    values: list[str] = typer.Argument(
        None, help="NAME=VALUE to set (admin-signed; docs/formats.md lists the settings); "
        "none: print the settings in force."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the ledger settings in force, or set some (an admin-signed settings entry).

    Unknown settings and values out of range are refused (exit 2), nothing appended."""
    from batterytrace.ledger.settings import SettingsError

    changes: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SettingsError(f"expected NAME=VALUE, got {item!r:.80}")
        changes[name] = _setting_value(value)
    ledger = _open(ctx)
    try:
        if changes:
            ledger.update_settings(changes)
        data = ledger.settings_at(ledger.size)
    finally:
        ledger.close()
    emit(data, as_json)


def _setting_value(value: str) -> Any:
    """A JSON list or object given on the command line (e.g. `witnesses=[...]`), else the
    text as given."""
    import json

    from batterytrace.ledger.settings import SettingsError

    if value.lstrip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"setting value is not valid JSON: {exc}") from None
    return value


@ledger_app.command("verify")
def verify(
    ctx: typer.Context,
    as_json: bool = JSON_OPTION,
    processes: int = typer.Option(
        1, "--processes", min=1,
        help="Processes checking event schemas and signatures in the replay (this one too)."),
    replay: bool = typer.Option(
        True, "--replay/--no-replay", help="Also replay signatures and custody rules."
    ),
) -> None:
    """Check every link, every leaf and every signed checkpoint, then replay every signature
    and custody rule with the offline bundle verifier; exit 1 on any fault, naming the first
    bad entry."""
    from batterytrace.ledger.derived_check import open_view
    from batterytrace.ledger.home import Home
    from batterytrace.ledger.queries import stored_log_size

    from .console import progress

    settings: Settings = ctx.obj
    if settings.mirror:
        _verify_mirror(settings, as_json, processes)
        return
    size = stored_log_size(settings.database_url)
    home = Home(settings.home)
    if size is not None and home.read_checkpoint() is None:
        raise home.missing_checkpoint()
    view = open_view(settings.home, settings.database_url)
    try:
        with progress("verifying", size, not as_json) as update:
            found = _verify_in_one_pass(view, processes if replay else None,
                                        lambda n: update(n))
        summary, report = found.raise_first(
            view, lambda mismatches: _fail_on_mismatch(mismatches, as_json))
    finally:
        view.close()
    data: dict[str, Any] = {
        "ok": True, "size": summary.size, "root": summary.root.hex(),
        "checkpointSize": summary.checkpoint.size,
        "checkpointsChecked": summary.checkpoints_checked, "sequencerSize": found.claimed,
    }
    if report is not None:
        data["replay"] = {
            "entries": report.entries, "events": report.kinds.get("event", 0),
            "registryEntries": report.kinds.get("registry", 0),
            "anchors": report.kinds.get("anchor", 0),
            "signaturesVerified": report.signatures_verified,
            "replayed": report.replayed, "checks": report.checks, "notes": report.notes,
            "processes": processes,
        }
    emit(data, as_json, lambda console: say(console,
        f"[green]ok[/] {summary.size} entries, {summary.checkpoints_checked} signed "
        f"checkpoints, root {summary.root.hex()} at size {summary.checkpoint.size}"
        + (", signatures and custody rules replayed" if replay else "")
        + ", derived tables match the entries"))


@dataclass
class _OnePass:
    """What `_verify_in_one_pass` found, each check's outcome kept apart, so that the faults
    are raised in the order of the checks (`raise_first`), whatever entry each stopped at."""

    on_file: Any  # LogChain: the entries against checkpoint.txt alone
    builder: Any  # TreeBuilder: the tree the tree tables are compared with
    stored: Any  # LogChain of `stored_log_chain` (every stored checkpoint), None on a fault
    claimed: int  # entries the sequencer row claims
    file_fault: Exception | None = None
    stored_fault: Exception | None = None
    report: Any = None  # the replay's Report (None: --no-replay)
    state: list[Any] = field(default_factory=list)  # check_state against the replay

    def raise_first(self, view: Any, fail_on_mismatch: Any) -> tuple[Any, Any]:
        """The first fault, in the order of the checks: the entries against checkpoint.txt
        (the source of truth), the tree tables against the entries (a damaged tile or
        checkpoint row is named here, not as a fork further on), the stored checkpoints
        and sequencer (`verify_ledger`'s checks), the replay's first bad entry, then
        custody_state and credential_anchor against the replay. Returns the stored chain's
        summary and the replay's report."""
        from batterytrace.ledger.derived_check import check_tree
        from batterytrace.ledger.log import check_stored_head

        if self.file_fault is not None:
            raise self.file_fault
        self.on_file.end()
        fail_on_mismatch(check_tree(view, self.builder.finish()))
        if self.stored_fault is not None:
            raise self.stored_fault
        summary = self.stored.end()
        check_stored_head(view.storage, summary, self.claimed)
        if self.report is not None:
            self.report.raise_first()  # the first fault's typed error: exit 1, its seq named
            fail_on_mismatch(self.state)
        return summary, self.report


def _verify_in_one_pass(view: Any, processes: int | None, update: Any) -> _OnePass:
    """One read of the stored entries, each parsed once, fed to every check that reads them:
    the chain against checkpoint.txt alone, the tree (`TreeBuilder`), the chain against
    every stored checkpoint (`stored_log_chain`), and with `processes` the replay of every
    signature and custody rule (`verify_entries`, whose replay custody_state and
    credential_anchor are compared with: `check_state`). Nothing is raised here: see
    `_OnePass.raise_first`."""
    from batterytrace.credentials.errors import BatterytraceError
    from batterytrace.ledger.checkpoint import open_checkpoint
    from batterytrace.ledger.derived_check import (
        TreeBuilder,
        check_state,
        stored_checkpoint_sizes,
    )
    from batterytrace.ledger.log import stored_log_chain
    from batterytrace.ledger.log_verify import LogChain, linked_entry
    from batterytrace.verifier.bundle_verify import verify_entries
    from batterytrace.verifier.trust import TrustedLedger

    note = view.home.read_checkpoint()
    if note is None:
        raise view.home.missing_checkpoint()
    open_checkpoint(note, [view.verifier], view.origin)
    stored: Any = None
    stored_fault: Exception | None = None
    claimed = 0
    try:
        stored, claimed = stored_log_chain(view.home, view.storage)
    except BatterytraceError as exc:
        stored_fault = exc
    found = _OnePass(LogChain([note], [view.verifier], view.origin),
                     TreeBuilder(stored_checkpoint_sizes(view)), stored, claimed,
                     stored_fault=stored_fault)

    def tap(linked: Any) -> bool:
        """Each entry's link, in order, to the chains and the tree; False stops the read."""
        if isinstance(linked, BatterytraceError):  # a malformed entry
            found.file_fault = linked  # raised first: nothing after it is read
            return False
        seq, _, entry_hash, leaf, _ = linked
        try:
            found.on_file.link(*linked)
        except BatterytraceError as exc:
            found.file_fault = exc
            return False
        found.builder.add_hashes(seq, entry_hash, leaf)
        if found.stored is not None:
            try:
                found.stored.link(*linked)
            except BatterytraceError as exc:
                found.stored, found.stored_fault = None, exc
        if seq % 1024 == 0:
            update(seq)
        return True

    bodies = (body for _, body in view.storage.iter_bodies())
    if processes is None:
        for position, body in enumerate(bodies):
            try:
                linked: Any = linked_entry(position, body)
            except BatterytraceError as exc:
                linked = exc
            if not tap(linked):
                break
    else:
        latest = view.storage.latest_checkpoint()
        found.report = verify_entries(
            bodies, TrustedLedger(view.origin, view.verifier.vkey),
            [latest[2] if latest is not None else note], processes=processes, tap=tap,
            on_replayed=lambda replayed: found.state.extend(
                check_state(view, replayed, processes=processes)))
    update(found.builder.tree.size)
    return found


def _verify_mirror(settings: Settings, as_json: bool, processes: int) -> None:
    """`ledger verify` against a mirror: its checkpoint (log key, witness quorum), every
    tile and entry against it, then the replay of every signature and custody rule."""
    from .mirror_read import mirror_verify, open_mirror

    assert settings.mirror is not None
    view = open_mirror(settings.mirror, settings.trust, settings.mirror_cache)
    report = mirror_verify(view, processes)
    report.raise_first()
    data = {"ok": True, "mirror": settings.mirror, "size": view.checkpoint.size,
            "root": view.checkpoint.root.hex(), "cosignedBy": view.cosigned,
            "signaturesVerified": report.signatures_verified, "replayed": report.replayed,
            "tilesFetched": view.reader.fetched}
    emit(data, as_json, lambda console: console.print(
        f"[green]ok[/] mirror at size {view.checkpoint.size}: every entry matches the "
        f"checkpoint, signatures and custody rules replayed; cosigned by "
        f"{literal(', '.join(view.cosigned) or 'no witness required')}",
        highlight=False, soft_wrap=True))


def _fail_on_mismatch(mismatches: list[Any], as_json: bool) -> None:
    """Exit 1 (LEDGER_DERIVED_MISMATCH) naming the first differing table and row; with
    --json, the whole list is printed first."""
    from batterytrace.ledger.errors import LedgerDerivedMismatchError

    if not mismatches:
        return
    listed = [m.to_json() for m in mismatches]
    if as_json:
        emit({"ok": False, "derived": listed}, True)
    first = mismatches[0]
    raise LedgerDerivedMismatchError(
        f"{first}; run `batterytrace ledger repair --from-entries`",
        table=first.table, row=first.key, mismatches=listed)


@ledger_app.command("repair")
def repair(
    ctx: typer.Context,
    from_entries: bool = typer.Option(
        False, "--from-entries",
        help="Rebuild the derived tables from the entries (the only way supported)."),
    as_json: bool = JSON_OPTION,
    processes: int = typer.Option(1, "--processes", min=1,
                                  help="Processes checking signatures in the replay."),
) -> None:
    """Verify the entries (chain, signatures, custody rules, as `ledger verify` does), then
    rebuild every derived table from them in one transaction: tree tiles, checkpoint rows,
    the sequencer row, checkpoint.txt when lost, custody_state and credential_anchor. Refused
    (exit 1, nothing changed) when the entries themselves are bad."""
    from batterytrace.ledger.derived_check import open_view

    if not from_entries:
        raise InputError("say where to repair from: --from-entries")
    settings: Settings = ctx.obj
    view = open_view(settings.home, settings.database_url)
    try:
        # The newest schema first: a later migration run by the next command (0006 unseals
        # event rows) must not undo what this repair rebuilds.
        view.storage.create_schema()
        done = repair_from_entries(view, processes=processes)
    finally:
        view.close()
    counts, wrote_file, size = done.counts, done.checkpoint_file_written, done.checkpoint_size
    data = {"ok": not done.remaining, "rebuilt": counts, "checkpointFileWritten": wrote_file,
            "checkpointSize": size, "remaining": [m.to_json() for m in done.remaining]}
    _fail_on_mismatch(done.remaining, as_json)
    emit(data, as_json, lambda console: console.print(
        "[green]repaired[/] " + ", ".join(f"{t} {n} rows" for t, n in counts.items())
        + (f"; {settings.home}/checkpoint.txt written (size {size})" if wrote_file else ""),
        highlight=False, soft_wrap=True))


@dataclass(frozen=True)
class Repaired:
    """What `repair_from_entries` did: rows written per table, whether checkpoint.txt was
    written back, its size, and the differences left after the rebuild (empty: repaired)."""

    counts: dict[str, int]
    checkpoint_file_written: bool
    checkpoint_size: int
    remaining: list[Any]


def repair_from_entries(view: Any, *, processes: int = 1, **replay_options: Any) -> Repaired:
    """`ledger repair --from-entries` on an open `LogView`, in bounded memory: one pass over
    the entries checks the chain against the trusted note and builds the Merkle tree; one
    replay (`verify_entries`: signatures and custody rules, its state spilled to a temporary
    file when large; `replay_options` go to it, e.g. `spill_rows`) is handed, when every
    entry passed, to the rebuild (one transaction, rows streamed from the replay) and then
    to the check of what was written (the same replay and tree: no further pass). Raises
    the first bad entry's typed error with nothing changed."""
    from batterytrace.ledger.checkpoint import open_checkpoint
    from batterytrace.ledger.derived_check import (
        TreeBuilder,
        check_derived,
        checkpoint_candidates,
        rebuild_derived,
        trusted_note,
    )
    from batterytrace.ledger.log_verify import verify_log
    from batterytrace.verifier.bundle_verify import verify_entries
    from batterytrace.verifier.trust import TrustedLedger

    note = trusted_note(view)
    if note is None:
        raise view.home.missing_checkpoint()
    cp = open_checkpoint(note, [view.verifier], view.origin)
    builder = TreeBuilder(checkpoint_candidates(view))

    def bodies() -> Any:
        for seq, body in view.storage.iter_bodies():
            builder.add(seq, body)
            yield body

    tree = builder.tree
    done: list[Repaired] = []

    def rebuild(replay: Any) -> None:
        """Every entry passed: rewrite from this replay, then check against it."""
        counts = rebuild_derived(view, tree=tree, replay=replay)
        wrote_file = view.home.read_checkpoint() is None
        if wrote_file:
            view.home.write_checkpoint(note, cp, [view.verifier])
        done.append(Repaired(counts, wrote_file, cp.size,
                             check_derived(view, tree=tree, replay=replay)))

    try:
        verify_log(bodies(), [note], [view.verifier], view.origin)  # chain, genesis, leaves
        builder.finish()
        report = verify_entries((body for _, body in view.storage.iter_bodies()),
                                TrustedLedger(view.origin, view.verifier.vkey), [note],
                                processes=processes, on_replayed=rebuild, **replay_options)
    finally:
        tree.close()  # its temporary file of complete tiles
    report.raise_first()  # signatures and custody rules: bad entries, nothing changed
    assert done, "verify_entries hands a passing replay to on_replayed"
    return done[0]


def register(app: typer.Typer) -> None:
    """Add `init` and the `ledger` group to the root app."""
    app.command("init")(init)
    app.add_typer(ledger_app, name="ledger")
