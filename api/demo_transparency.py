"""The demo's transparency chapter: two witnesses (a regulator's and an NGO's, served on
loopback while the demo runs) cosign the ledger's checkpoint, the log is published as C2SP
tiles in `<home>/mirror`, the trust file asks for 2 of 2 cosignatures, and a split view (the
log key signing a second root for the same size) is caught by a witness, by the bundle
verifier and by `ledger compare`. Keys are derived from fixed names: public, insecure, demo.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from batterytrace.credentials.errors import VerificationError
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.ledger.checkpoint import Checkpoint, sign_checkpoint
from batterytrace.ledger.cosignature import format_add_checkpoint
from batterytrace.ledger.log import Ledger
from batterytrace.ledger.publish import publish_ledger
from batterytrace.ledger.witness import Witness, WitnessRefusal, init_witness
from batterytrace.verifier.gossip import SplitViewError, compare_checkpoints
from batterytrace.verifier.report import literal
from batterytrace.verifier.trust import TrustConfig
from rich.console import Console

from .cli_serve import bind_socket
from .witness_client import collect_cosignatures

WITNESSES = {"regulator": "witness.regulator.example", "ngo": "witness.ngo.example"}
SPLIT_VIEW_FILE = "split-view-checkpoint.txt"


def _witness_key(role: str) -> Ed25519Key:
    return Ed25519Key.from_seed(hashlib.sha256(f"batterytrace demo witness {role}".encode())
                                .digest())


@contextlib.contextmanager
def _served(home: Path) -> Iterator[str]:
    import uvicorn

    from .witness_app import create_witness_app

    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_witness_app(home), lifespan="on",
                                           access_log=False, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def witness_and_publish(home: Path, console: Console,
                        clock: Callable[[], str] | None = None) -> tuple[str, ...]:
    """Create the two witnesses, name them in the ledger's settings (an entry received at
    `clock`, the demo's story clock), have them cosign the latest checkpoint over HTTP,
    publish the tiles; returns their cosigner keys."""
    ledger = Ledger.open(home, clock=clock) if clock is not None else Ledger.open(home)
    try:
        keys = tuple(init_witness(home / "witnesses" / role, name, _witness_key(role),
                                  [ledger.verifier.vkey]).vkey
                     for role, name in WITNESSES.items())
        with contextlib.ExitStack() as stack:
            urls = [stack.enter_context(_served(home / "witnesses" / role))
                    for role in WITNESSES]
            ledger.update_settings({"witnesses": [
                {"name": name, "url": url, "key": key}
                for name, url, key in zip(WITNESSES.values(), urls, keys, strict=True)]})
            ledger.sign_checkpoint()
            outcome = collect_cosignatures(ledger)
        if len(outcome.cosigned) != len(WITNESSES):  # pragma: no cover - shown, not expected
            raise AssertionError(f"the demo witnesses did not cosign: {outcome.failed}")
        console.print(f"witnesses {literal(', '.join(sorted(outcome.cosigned)))} cosigned the "
                      f"checkpoint of size {outcome.size} (C2SP tlog-witness, served on "
                      "loopback); checkpoint.txt carries their cosignatures")
        result = publish_ledger(ledger, home / "mirror")
        console.print(f"published the log as C2SP tiles in mirror/: {result.tiles_written} "
                      f"tiles, {result.bundles_written} entry bundles (any static web server "
                      "can serve it)")
    finally:
        ledger.close()
    return keys


def split_view(home: Path, trust: TrustConfig, console: Console) -> None:
    """The operator's key signs a second root for the published size (a view for one buyer):
    the witnesses refuse to cosign it, a verifier requiring 2 of 2 rejects it, and `ledger
    compare` against the witnessed checkpoint shows the split view."""
    ledger = Ledger.open(home)
    try:
        note = (home / "mirror" / "checkpoint").read_bytes()
        trusted = trust.ledger(ledger.origin)
        assert trusted is not None
        cp = trusted.open_note(note)[0]
        forged = sign_checkpoint(Checkpoint(cp.origin, cp.size, hashlib.sha256(
            b"another history").digest()), cp.origin, ledger.home.log_key())
    finally:
        ledger.close()
    (home / SPLIT_VIEW_FILE).write_bytes(forged)
    console.print(f"\n[bold]A split view:[/] the log key signs a second root for size {cp.size} "
                  f"({SPLIT_VIEW_FILE})")
    witness = Witness(home / "witnesses" / "regulator")
    try:
        witness.add_checkpoint(format_add_checkpoint(cp.size, [], forged))
        raise AssertionError("a witness cosigned a split view")  # pragma: no cover
    except WitnessRefusal as refusal:
        console.print(f"[red]REFUSED[/] by {literal(witness.config.name)} (HTTP "
                      f"{refusal.http_status}): {literal(refusal.message)}")
    finally:
        witness.close()
    try:
        trusted.open_note(forged)
        raise AssertionError("an uncosigned checkpoint met the quorum")  # pragma: no cover
    except VerificationError as error:
        console.print(f"[red]REJECTED[/] by the verifier (trust file: 2 of 2 witnesses): "
                      f"{literal(str(error))}")
    try:
        compare_checkpoints(note, forged, trusted)
        raise AssertionError("ledger compare missed the split view")  # pragma: no cover
    except SplitViewError as error:
        console.print(f"[red]SPLIT VIEW[/] shown by ledger compare: {literal(error.message)}")
    console.print(json.dumps({"witnessed": cp.root.hex(), "forged": "see " + SPLIT_VIEW_FILE}),
                  highlight=False, markup=False)
