"""What an append batch is: the submissions, where each landed, the validator protocol, and
the run-by-run validation the Ledger does inside its write transaction (`log.Ledger.append`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlmodel import Session

from .errors import EntryFormatError

# The session a validator is given: the write transaction's. Named here for api/, which
# imports no storage library (tests/test_architecture.py).
WriteSession = Session


@dataclass(frozen=True)
class Submission:
    """A signed document to append, and the kind of entry it becomes."""

    kind: str
    document: dict[str, Any]


class AppendResult(NamedTuple):
    """Where a submission landed; `duplicate` when a validator matched an existing entry."""

    seq: int
    entry_hash: bytes
    duplicate: bool = False


class Validator(Protocol):
    """Checks the submissions of one kind inside the write transaction.

    `first_seq` is the log size before the batch (the seq its first new entry gets). Return,
    per submission in order, None (append it) or the seq of an existing identical entry
    (not appended: a duplicate). Raise a BatterytraceError to reject the whole batch. The
    validator may write its own tables through `session` (same transaction).
    """

    def validate(
        self, session: Session, first_seq: int, submissions: Sequence[Submission]
    ) -> list[int | None]: ...


class Preparing(Protocol):
    """What a validator may add (both optional, found with getattr):

    `prepare(submissions)`: announce the batch validated after the current one, so that its
    position-independent checks (signatures in a process pool) run while this one is
    checked and written.
    `canonical(document)`: the RFC 8785 bytes of a document it validated in the batch being
    appended, when it computed them anyway (the entry then reuses them), else None.
    `start(submissions)`: the batch (all of this kind) is validated next; its
    position-independent checks may start now, before the sequencer lock is taken.
    """

    def prepare(self, submissions: Sequence[Submission]) -> None: ...

    def canonical(self, document: dict[str, Any]) -> bytes | None: ...

    def start(self, submissions: Sequence[Submission]) -> None: ...


def validate_runs(
    validators: Mapping[str, Validator],
    session: Session,
    first_seq: int,
    submissions: Sequence[Submission],
) -> list[int | None]:
    """Validate a batch run by run (maximal runs of one kind, in batch order), so that each
    validator is told the exact log position its run starts at, even in a mixed batch.
    Kinds without a validator are appended as they are."""
    decisions: list[int | None] = []
    seq = first_seq
    start = 0
    while start < len(submissions):
        kind = submissions[start].kind
        end = start
        while end < len(submissions) and submissions[end].kind == kind:
            end += 1
        run = list(submissions[start:end])
        validator = validators.get(kind)
        answers = [None] * len(run) if validator is None else list(
            validator.validate(session, seq, run))
        if len(answers) != len(run):
            raise EntryFormatError(
                f"the {kind} validator answered {len(answers)} times for {len(run)}"
            )
        decisions.extend(answers)
        seq += sum(1 for a in answers if a is None)  # deduplicated entries take no position
        start = end
    return decisions
