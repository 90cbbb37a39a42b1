"""Seals on the derived rows that writes trust: an HMAC only the home's log key can make.

The derived tables are a cache of the entries, and whoever administers the database can edit
them. Two of them are trusted by writes without a replay: the append path reads holdings,
used ids and registry rows from `custody_state`, and signs each new checkpoint after proving
it consistent with the newest `ledger_checkpoints` row. Their rows therefore carry a seal:
HMAC-SHA256, truncated to 128 bits, under a key derived (HKDF-SHA256) from the log key's
secret, over the row's table, key and value. A row edited in the database no longer matches
its seal, and the append refuses it, naming the row, before using it; `ledger verify` checks
every seal too.

A seal cannot show that a row was deleted. The checkpoint rows therefore also name their
predecessor (`previous`, sealed with them), so that a deleted older checkpoint breaks the
chain; a deleted custody row is found by `ledger verify`'s comparison with the replay.
Someone who holds the log key can forge seals, as they can sign checkpoints: the key is the
ledger operator's, and the witnesses of `docs/transparency.md` are the answer to that.
"""

from __future__ import annotations

import hashlib
import hmac

from batterytrace.credentials.keys import Ed25519Key
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import LedgerDerivedMismatchError

_INFO = b"batterytrace derived-row seal v1"
_SEP = b"\x1f"
SEAL_LENGTH = 32  # hex characters: 128 bits
SEALED_REVISION = "0005"  # the schema revision that added the seals


class SealMismatchError(LedgerDerivedMismatchError):
    """A sealed derived row was changed, or written without a seal, outside the ledger's own
    code; the ledger refuses to use it until `ledger repair --from-entries` rebuilds it."""

    code = "LEDGER_DERIVED_TAMPERED"
    title = "Derived row changed outside the ledger"
    http_status = 503  # the server's store is damaged, not the request


class RowSeal:
    """Seals rows of derived tables under a key derived from the log key's secret."""

    def __init__(self, secret: bytes) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO
                         ).derive(secret)

    @classmethod
    def of_log_key(cls, log_key: Ed25519Key) -> RowSeal:
        """The seal of a ledger: its log key must hold its secret."""
        if log_key.seed is None:
            raise ValueError("sealing needs the log key's secret")
        return cls(log_key.seed)

    def seal(self, table: str, key: str, value: str | bytes) -> str:
        """The seal of one row (hex): over its table, key and value."""
        data = value.encode("utf-8") if isinstance(value, str) else value
        message = b"".join((table.encode("utf-8"), _SEP, key.encode("utf-8"), _SEP, data))
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:SEAL_LENGTH]

    def check(self, where: str, table: str, key: str, value: str | bytes,
              seal: str | None) -> None:
        """Raise SealMismatchError unless `seal` is this row's seal. `where` names the SQL
        table (for the message)."""
        if seal is None or not hmac.compare_digest(seal, self.seal(table, key, value)):
            state = ("has no seal (written before schema 0005, an event row before 0006, "
                     "or changed outside the ledger)"
                     if seal is None else
                     "does not match its seal: it was changed outside the ledger")
            raise SealMismatchError(
                f"{where} row ({table}, {key!r}) {state}; run `batterytrace ledger verify`, "
                "then `batterytrace ledger repair --from-entries`"
            )


def checkpoint_message(size: int, root: bytes, note: bytes, previous: int | None) -> bytes:
    """The bytes sealed for a `ledger_checkpoints` row: size, root, note and predecessor."""
    return b"".join((str(size).encode(), _SEP, root, _SEP, note, _SEP,
                     str(-1 if previous is None else previous).encode()))


__all__ = ["SEALED_REVISION", "SEAL_LENGTH", "RowSeal", "SealMismatchError", "checkpoint_message"]
