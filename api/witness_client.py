"""The ledger's side of C2SP tlog-witness: send the latest checkpoint to the witnesses named
in the ledger's `witnesses` setting, verify and keep their cosignatures in checkpoint.txt.

Each witness's last cosigned size is remembered in `<home>/witness-state.json`; a 409 answer
tells the size the witness holds, and the request is sent again once from there (with the
consistency proof from that size). A witness that holds a larger size than the ledger, or
answers anything else, is reported and left out; the note keeps the cosignatures it got.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.ledger.checkpoint import Checkpoint
from batterytrace.ledger.cosignature import (
    add_signature_lines,
    format_add_checkpoint,
    parse_cosigner_key,
    split_note,
    verify_cosignatures,
)
from batterytrace.ledger.log import Ledger

STATE_FILE = "witness-state.json"


@dataclass
class CosignOutcome:
    """The note after collecting, who cosigned (name -> timestamp) and who did not (why)."""

    size: int
    note: bytes
    checkpoint: Checkpoint
    cosigned: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "note": self.note.decode(), "cosigned": self.cosigned,
                "failed": self.failed}


def witnesses_of(ledger: Ledger) -> list[dict[str, str]]:
    """The `witnesses` setting in force at the ledger's head."""
    return list(ledger.settings_at(max(ledger.size - 1, 0)).get("witnesses", []))


def collect_cosignatures(ledger: Ledger, timeout: float = 10.0) -> CosignOutcome:
    """Ask every witness in the settings to cosign the latest checkpoint, keep the cosigned
    note (the checkpoint row and checkpoint.txt); return who cosigned."""
    outcome = gather_cosignatures(ledger, timeout)
    if outcome.cosigned:
        ledger.keep_cosigned_note(outcome.checkpoint, outcome.note)
    return outcome


def gather_cosignatures(ledger: Ledger, timeout: float = 10.0) -> CosignOutcome:
    """The network half of `collect_cosignatures` (no database write: the service runs it
    off its writer, then keeps the note on the writer)."""
    cp, note = ledger.published_checkpoint()
    signed = note  # sent as stored: a witness ignores the cosignatures of others
    state_path = Path(ledger.home.path) / STATE_FILE
    state: dict[str, int] = json.loads(state_path.read_text()) if state_path.exists() else {}
    outcome = CosignOutcome(cp.size, note, cp)
    lines: list[str] = []
    with httpx.Client(timeout=timeout) as client:
        for witness in witnesses_of(ledger):
            name = witness["name"]
            try:
                cosigner = parse_cosigner_key(witness["key"])
                held = verify_cosignatures(note, [cosigner])
                if name in held:  # cosigned already at this size: not asked again
                    outcome.cosigned[name] = held[name]
                    state[name] = cp.size
                    continue
                line = _ask(client, ledger, witness["url"], signed, cp.size,
                            state.get(name, 0))
                found = verify_cosignatures(add_signature_lines(signed, [line]), [cosigner])
                if name not in found:
                    raise _Failed("answered no cosignature of its key")
            except (_Failed, BatterytraceError, httpx.HTTPError) as exc:
                outcome.failed[name] = str(exc)
                continue
            lines.append(line)
            outcome.cosigned[name] = found[name]
            state[name] = cp.size
    if lines:
        # Cosignatures of witnesses asked earlier at the same size are kept.
        outcome.note = add_signature_lines(note, lines)
    state_path.write_text(json.dumps(state, indent=2) + "\n")
    return outcome


def cosign_after_writes(home: Path, database_url: str | None, size_before: int
                        ) -> CosignOutcome | None:
    """After a command that may have appended (the command line calls this as it ends):
    when checkpoint.txt names a larger size than before and the ledger's settings name
    witnesses, send them the new checkpoint, as the service does after every write. None
    when there was nothing to send."""
    from batterytrace.ledger.home import Home
    from batterytrace.ledger.log import Ledger as _Ledger

    if Home(Path(home)).checkpoint_size() <= size_before:
        return None
    ledger = _Ledger.open(Path(home), database_url)
    try:
        return collect_cosignatures(ledger) if witnesses_of(ledger) else None
    finally:
        ledger.close()


class _Failed(Exception):
    pass


def _ask(client: httpx.Client, ledger: Ledger, url: str, note: bytes, size: int,
         old: int) -> str:
    for _ in range(2):
        if old > size:
            raise _Failed(f"the witness holds size {old}, past the log's {size}: a rollback?")
        proof = ledger.consistency_proof(old, size) if 0 < old < size else []
        response = client.post(url.rstrip("/") + "/add-checkpoint",
                               content=format_add_checkpoint(old, proof, note))
        if response.status_code == 409:
            old = int(response.text.strip())
            continue
        if response.status_code != 200:
            raise _Failed(f"HTTP {response.status_code}: {response.text[:200]}")
        lines = [ln for ln in response.text.split("\n") if ln]
        if len(lines) != 1:
            raise _Failed("expected one cosignature line")
        return lines[0]
    raise _Failed("the witness's size keeps changing")


def cosignatures_in(note: bytes, keys: list[str]) -> dict[str, int]:
    """{witness name: timestamp} of the valid cosignatures of `note` by the given keys."""
    split_note(note)
    return verify_cosignatures(note, [parse_cosigner_key(k) for k in keys])
