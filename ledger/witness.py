"""A C2SP tlog-witness: checks add-checkpoint requests and cosigns, with durable state.

    <home>/witness.json     name and the logs it witnesses (origin -> log verifier key)
    <home>/keys/witness.json  its Ed25519 key (0600)
    <home>/witness.sqlite   per origin, the size and root of the latest checkpoint cosigned

`Witness.add_checkpoint` follows tlog-witness: unknown origin 404, no valid log signature 403,
old size past the checkpoint 400, old size not the size last cosigned 409 (with that size),
a bad consistency proof, a non-empty proof from 0, another root at the same size, or a size-0
checkpoint whose root is not the empty root 422. The check of the old size and the write of
the new one are one SQLite write transaction (BEGIN IMMEDIATE), so concurrent requests, in
threads or processes, cannot roll the state back or get two roots of one size cosigned.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from batterytrace.credentials.errors import BatterytraceError, InputError
from batterytrace.credentials.keys import Ed25519Key, load_key_file, write_key_file

from . import merkle
from .checkpoint import CheckpointError, NoteVerifier, open_checkpoint, parse_verifier_key
from .cosignature import AddCheckpointFormatError, Cosigner, cosign, parse_add_checkpoint

CONFIG_FILE = "witness.json"
DATABASE_FILE = "witness.sqlite"


class WitnessRefusal(BatterytraceError):
    """The witness refuses to cosign; `http_status` is the tlog-witness status code."""

    code = "WITNESS_REFUSED"
    title = "Witness refused the checkpoint"
    exit_code = 1


class UnknownLogError(WitnessRefusal):
    code, title, http_status = "WITNESS_UNKNOWN_LOG", "Log not witnessed here", 404


class LogSignatureError(WitnessRefusal):
    code, title, http_status = "WITNESS_BAD_LOG_SIGNATURE", "No valid log signature", 403


class OldSizeError(WitnessRefusal):
    code, title, http_status = "WITNESS_OLD_SIZE_PAST_CHECKPOINT", "Old size past checkpoint", 400


class SizeConflictError(WitnessRefusal):
    """The old size is not the size last cosigned; `size` is that size (answered as
    `text/x.tlog.size`)."""

    code, title, http_status = "WITNESS_SIZE_CONFLICT", "Old size is not the latest cosigned", 409


class InconsistentCheckpointError(WitnessRefusal):
    code, title, http_status = "WITNESS_INCONSISTENT", "Checkpoint not consistent", 422


class WitnessConfigError(InputError):
    code = "WITNESS_CONFIG_ERROR"
    title = "Witness configuration unusable"


@dataclass(frozen=True)
class WitnessConfig:
    """The witness's name and the logs it accepts (origin -> verifier key)."""

    name: str
    logs: Mapping[str, str]

    def to_json(self) -> dict[str, object]:
        return {"version": 1, "name": self.name, "logs": dict(self.logs)}


def init_witness(home: Path, name: str, key: Ed25519Key | None, logs: list[str]) -> Cosigner:
    """Create a witness home: config, key (generated when not given), empty state."""
    home = Path(home)
    if (home / CONFIG_FILE).exists():
        raise WitnessConfigError(f"{home} already holds a witness")
    home.mkdir(parents=True, exist_ok=True)
    (home / "keys").mkdir(mode=0o700, exist_ok=True)
    key = key or Ed25519Key.generate()
    write_key_file(key, home / "keys" / "witness.json")
    parsed = {}
    for vkey in logs:
        try:
            verifier = parse_verifier_key(vkey)
        except BatterytraceError as exc:
            raise WitnessConfigError(f"log key {vkey!r:.80}: {exc.message}") from None
        parsed[verifier.name] = vkey
    config = WitnessConfig(name, parsed)
    (home / CONFIG_FILE).write_text(json.dumps(config.to_json(), indent=2) + "\n")
    Witness(home).close()  # creates the state database
    return Cosigner(name, key.public_key)


class Witness:
    """One witness opened on its home folder. Safe to share between threads."""

    def __init__(self, home: Path, clock: Callable[[], float] = time.time) -> None:
        self.home = Path(home)
        try:
            raw = json.loads((self.home / CONFIG_FILE).read_text())
            self.config = WitnessConfig(raw["name"], dict(raw["logs"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WitnessConfigError(f"no witness in {home} ({exc})") from None
        self.key = load_key_file(self.home / "keys" / "witness.json")
        self.cosigner = Cosigner(self.config.name, self.key.public_key)
        self.verifiers = {o: parse_verifier_key(v) for o, v in self.config.logs.items()}
        self.clock = clock
        self._lock = threading.Lock()
        path = self.home / DATABASE_FILE
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
        os.chmod(path, 0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS log_state (origin TEXT PRIMARY KEY, "
                         "size INTEGER NOT NULL, root BLOB NOT NULL)")

    def close(self) -> None:
        self._db.close()

    def state(self, origin: str) -> tuple[int, bytes] | None:
        """(size, root) of the latest checkpoint cosigned for `origin`."""
        with self._lock:
            row = self._db.execute("SELECT size, root FROM log_state WHERE origin = ?",
                                   (origin,)).fetchone()
        return (row[0], bytes(row[1])) if row else None

    def add_checkpoint(self, request: bytes) -> bytes:
        """Check an add-checkpoint request body and return the cosignature line(s), or raise
        the WitnessRefusal whose `http_status` the HTTP face answers."""
        try:
            old_size, proof, note = parse_add_checkpoint(request)
        except AddCheckpointFormatError as exc:
            raise OldSizeError(exc.message) from None
        origin = note.split(b"\n", 1)[0].decode("utf-8", "replace")
        verifier: NoteVerifier | None = self.verifiers.get(origin)
        if verifier is None:
            raise UnknownLogError(f"origin {origin!r:.80} is not witnessed here")
        try:
            cp = open_checkpoint(note, [verifier], origin)
        except CheckpointError as exc:
            raise LogSignatureError(exc.message) from None
        if old_size > cp.size:
            raise OldSizeError(f"old size {old_size} is past the checkpoint size {cp.size}")
        if cp.size == 0 and cp.root != merkle.EMPTY_ROOT:
            raise InconsistentCheckpointError("a checkpoint of size 0 must have the empty root")
        with self._lock:  # one connection: serialize its transactions across threads
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT size, root FROM log_state WHERE origin = ?",
                                       (origin,)).fetchone()
                size, root = (row[0], bytes(row[1])) if row else (0, merkle.EMPTY_ROOT)
                if old_size != size:
                    raise SizeConflictError(f"the latest checkpoint cosigned is of size {size}",
                                            size=size)
                _check_consistent(old_size, proof, root, cp.size, cp.root)
                self._db.execute("INSERT INTO log_state (origin, size, root) VALUES (?, ?, ?) "
                                 "ON CONFLICT(origin) DO UPDATE SET size = excluded.size, "
                                 "root = excluded.root", (origin, cp.size, cp.root))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return cosign(cp.body(), self.config.name, self.key, int(self.clock())).encode()


def _check_consistent(old: int, proof: list[bytes], old_root: bytes, new: int,
                      new_root: bytes) -> None:
    if old == 0:
        if proof:
            raise InconsistentCheckpointError("a proof from size 0 must be empty")
        return
    if old == new:
        if proof or old_root != new_root:
            raise InconsistentCheckpointError(
                f"another root for size {new} than the one cosigned: a fork")
        return
    try:
        merkle.verify_consistency(old, new, old_root, new_root, proof)
    except merkle.ProofError as exc:
        raise InconsistentCheckpointError(
            f"not consistent with the checkpoint of size {old} cosigned ({exc.message})"
        ) from None


__all__ = [
    "InconsistentCheckpointError",
    "LogSignatureError",
    "OldSizeError",
    "SizeConflictError",
    "UnknownLogError",
    "Witness",
    "WitnessConfig",
    "WitnessConfigError",
    "WitnessRefusal",
    "init_witness",
]
