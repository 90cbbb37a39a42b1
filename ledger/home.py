"""The ledger's home folder: database (SQLite default), operator keys, latest checkpoint.

    <home>/ledger.sqlite        default database (api/settings.py builds its URL), 0600
    <home>/keys/log.json        log key (signs checkpoints only), Multikey, mode 0600
    <home>/keys/admin.json      admin key (signs genesis, settings, registry), Multikey, 0600
    <home>/checkpoint.txt       latest signed checkpoint note, 0644, replaced atomically

checkpoint.txt lives outside the database on purpose: a database restored from a backup is
behind it, and the ledger refuses to run on it rather than fork the log.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.keys import Ed25519Key, load_key_file, write_key_file

from .checkpoint import Checkpoint, NoteVerifier, open_checkpoint, parse_checkpoint_body
from .errors import LedgerKeyMissingError, LedgerNotFoundError

DATABASE_FILE = "ledger.sqlite"
CHECKPOINT_FILE = "checkpoint.txt"
LOCK_FILE = "checkpoint.lock"


@dataclass(frozen=True)
class Home:
    """Paths and files of one ledger home folder."""

    path: Path

    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    @property
    def log_key_path(self) -> Path:
        return self.keys_dir / "log.json"

    @property
    def admin_key_path(self) -> Path:
        return self.keys_dir / "admin.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    def create(self) -> None:
        """Create the folder and its private keys folder, both 0700 whatever the umask (a home
        folder that exists already keeps its mode)."""
        if not self.path.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            os.chmod(self.path, 0o700)
        self.keys_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.keys_dir, 0o700)

    def ensure_keys(self) -> tuple[Ed25519Key, Ed25519Key]:
        """(log key, admin key): read from keys/ or generated there (0600) when absent."""
        keys = []
        for path in (self.log_key_path, self.admin_key_path):
            if not path.exists():
                write_key_file(Ed25519Key.generate(), path)
            keys.append(load_key_file(path))
        return keys[0], keys[1]

    def log_key(self) -> Ed25519Key:
        return self._key(self.log_key_path, "log")

    def admin_key(self) -> Ed25519Key:
        return self._key(self.admin_key_path, "admin")

    def _key(self, path: Path, role: str) -> Ed25519Key:
        if not path.exists():
            raise LedgerKeyMissingError(f"the {role} key {path} is missing", path=str(path))
        return load_key_file(path)

    def read_checkpoint(self) -> bytes | None:
        """The latest signed checkpoint note, or None before the first one."""
        try:
            return self.checkpoint_path.read_bytes()
        except FileNotFoundError:
            return None

    def checkpoint_size(self) -> int:
        """The tree size checkpoint.txt names, without verifying it (0 without the file or
        for one that does not parse): enough to notice that a command signed a new one."""
        body = (self.read_checkpoint() or b"").split(b"\n\n", 1)[0] + b"\n"
        try:
            return parse_checkpoint_body(body).size
        except BatterytraceError:
            return 0

    def missing_checkpoint(self) -> LedgerNotFoundError:
        """The error for a database that holds a ledger while checkpoint.txt is gone: name the
        file and the way to recover (`init` would refuse: the ledger exists)."""
        return LedgerNotFoundError(
            f"{self.checkpoint_path} is missing, though the database holds a ledger: run "
            "`batterytrace ledger repair --from-entries` to verify the entries and write it "
            "again from the latest signed checkpoint in the database (or restore it from a "
            "backup made with the database); do not run `batterytrace init`",
            path=str(self.checkpoint_path),
        )

    @contextmanager
    def checkpoint_lock(self) -> Iterator[None]:
        """Exclusive lock (across processes) over reading and replacing checkpoint.txt."""
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def write_checkpoint(
        self, note: bytes, cp: Checkpoint, verifiers: Sequence[NoteVerifier]
    ) -> bool:
        """Replace checkpoint.txt by `note` unless it already holds a checkpoint at least as
        large (appenders in several processes may finish out of order). Atomic: the new file
        is written and synced beside the old one, then renamed over it. True if written."""
        with self.checkpoint_lock():
            current = self.read_checkpoint()
            if current is not None and open_checkpoint(current, verifiers).size >= cp.size:
                return False
            self._replace_file(note)
            return True

    def write_cosigned_checkpoint(
        self, note: bytes, cp: Checkpoint, verifiers: Sequence[NoteVerifier]
    ) -> bool:
        """Replace checkpoint.txt by `note`, the same checkpoint with witness cosignatures
        added, if the file still holds `cp` (else it moved on: nothing written, False)."""
        with self.checkpoint_lock():
            current = self.read_checkpoint()
            if current is None:
                return False
            held = open_checkpoint(current, verifiers)
            if (held.size, held.root) != (cp.size, cp.root):
                return False
            self._replace_file(note)
            return True

    def _replace_file(self, note: bytes) -> None:
        """Atomic replacement of checkpoint.txt (the caller holds the lock)."""
        tmp = self.checkpoint_path.with_name(f".{CHECKPOINT_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.fchmod(fd, 0o644)  # whatever the umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(note)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.checkpoint_path)
        dir_fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
