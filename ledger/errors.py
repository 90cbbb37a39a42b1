"""Errors of the stored log: opening, appending, reading and verifying a ledger.

Codes are stable (shared by the command line and the HTTP problem details). The proof and
checkpoint formats raise their own errors (`merkle.ProofError`, `checkpoint` CHECKPOINT_*).
"""

from __future__ import annotations

from typing import Any

from batterytrace.credentials.errors import InputError, VerificationError


class LedgerNotFoundError(InputError):
    """The home folder or database holds no ledger (run `batterytrace init`)."""

    code = "LEDGER_NOT_FOUND"
    title = "No ledger here"
    http_status = 404


class LedgerExistsError(InputError):
    """`init` on a home or database that already holds a ledger."""

    code = "LEDGER_EXISTS"
    title = "Ledger already exists"
    http_status = 409


class EntryFormatError(InputError):
    """Bytes or a submission that are not a well-formed version 1 entry."""

    code = "ENTRY_FORMAT_ERROR"
    title = "Malformed ledger entry"


class UnknownEntryKindError(InputError):
    """A submission names a kind the ledger does not know."""

    code = "UNKNOWN_ENTRY_KIND"
    title = "Unknown entry kind"


class EntryNotFoundError(InputError):
    """A sequence number past the end of the log (or negative)."""

    code = "ENTRY_NOT_FOUND"
    title = "No such entry"
    http_status = 404


class CheckpointNotSignedError(InputError):
    """A proof was asked against a tree size for which no checkpoint was signed."""

    code = "LEDGER_CHECKPOINT_NOT_SIGNED"
    title = "No checkpoint of that size"
    http_status = 404


class LedgerKeyMissingError(InputError):
    """An operation needs an operator key (log or admin) that the home folder does not hold."""

    code = "LEDGER_KEY_MISSING"
    title = "Operator key missing"


class LedgerForkError(VerificationError):
    """The database is behind, or not consistent with, a checkpoint the log already signed.

    Raised when opening a restored backup and before signing: a log must never sign two
    inconsistent checkpoints.
    """

    code = "LEDGER_FORK"
    title = "Database behind or inconsistent with a signed checkpoint"
    http_status = 409


class LogVerificationError(VerificationError):
    """`verify_log` found a fault; `seq` is the first bad sequence number."""

    code = "LOG_VERIFICATION_ERROR"
    title = "Log verification failed"

    def __init__(self, seq: int, reason: str, **details: Any) -> None:
        super().__init__(f"entry {seq}: {reason}", seq=seq, **details)
        self.seq = seq
        self.reason = reason


class LogEntryError(LogVerificationError):
    """An entry is not a canonical, well-formed version 1 entry, or has the wrong seq."""

    code = "LOG_ENTRY_INVALID"
    title = "Invalid log entry"


class LogChainError(LogVerificationError):
    """An entry's `prev` is not the hash of the entry before it."""

    code = "LOG_CHAIN_BROKEN"
    title = "Hash chain broken"


class LogRootMismatchError(LogVerificationError):
    """The entries do not hash to the root of a signed checkpoint (or end before its size)."""

    code = "LOG_ROOT_MISMATCH"
    title = "Entries do not match a signed checkpoint"


class LogGenesisError(LogVerificationError):
    """Entry 0 is not a genesis entry for this origin and log key."""

    code = "LOG_GENESIS_INVALID"
    title = "Invalid genesis entry"


class LedgerDerivedMismatchError(VerificationError):
    """A derived table (tree tiles, checkpoint rows, custody state, anchors, ...) differs from
    its recomputation from the entries; `ledger repair --from-entries` rebuilds it."""

    code = "LEDGER_DERIVED_MISMATCH"
    title = "Derived table does not match the entries"
    http_status = 409
