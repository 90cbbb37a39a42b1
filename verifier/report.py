"""The verification report: what was checked, what failed (record, reason, code), what was not
shown. JSON for machines (`to_json`), rich text for people (`render`; rich is imported there).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from batterytrace.credentials.errors import BatterytraceError


@dataclass(frozen=True)
class Failure:
    """One failed check: where (bundle line, entry seq, credential id), why, and its code."""

    record: str
    code: str
    reason: str
    line: int | None = None
    seq: int | None = None

    @classmethod
    def of(cls, record: str, error: BatterytraceError, line: int | None = None,
           seq: int | None = None) -> Failure:
        return cls(record, error.code, error.message, line, seq)


VALID, REVOKED, SUSPENDED = "VALID", "REVOKED", "SUSPENDED"


@dataclass(frozen=True)
class CredentialStanding:
    """A credential's status at the bundle's checkpoint (what a report shows first), with
    the log positions of its issuance anchor, its first use and the status change."""

    id: str
    claim: str
    status: str  # VALID, REVOKED or SUSPENDED
    since: int | None = None
    used_at: int | None = None
    anchored_at: int | None = None
    since_received: str | None = None  # the ledger's time of the status change


@dataclass
class Report:
    """The result of verifying a bundle. `ok` when no check failed."""

    origin: str = ""
    scope: str = ""
    subject: str | None = None
    checkpoint_size: int = 0
    witnesses: list[str] = field(default_factory=list)  # who cosigned (trust-file witnesses)
    checks: list[str] = field(default_factory=list)
    entries: int = 0
    signatures_verified: int = 0
    replayed: int = 0
    outside_closure: int = 0  # verified cryptographically, not (fully) replayed
    credentials_verified: int = 0
    credentials: list[CredentialStanding] = field(default_factory=list)  # status at checkpoint
    not_shown: list[str] = field(default_factory=list)  # redacted credentials
    notes: list[str] = field(default_factory=list)
    presented_by: str | None = None
    failures: list[Failure] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # entries read, by kind
    # The typed errors behind `failures`, in order (for callers that raise the first one).
    errors: list[BatterytraceError] = field(default_factory=list, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, record: str, error: BatterytraceError, line: int | None = None,
             seq: int | None = None) -> None:
        self.failures.append(Failure.of(record, error, line, seq))
        self.errors.append(error)

    def raise_first(self) -> None:
        """Raise the first failure's typed error (nothing when the report is ok)."""
        if self.errors:
            raise self.errors[0]

    def to_json(self) -> dict[str, Any]:
        errors, self.errors = self.errors, []
        try:
            data = asdict(self)
        finally:
            self.errors = errors
        del data["errors"]
        data["ok"] = self.ok
        return data

    def render(self, console: Any, verbose: bool = False) -> None:
        """Print the report with rich (a `rich.console.Console`). Text that came from the
        bundle (ids, names, reasons quoting them) is printed literally (`literal`). The
        verifier's technical notes (log positions of anchors and uses, entries not replayed)
        are printed with `verbose`; otherwise only how many there are."""
        from rich.table import Table

        status = "[bold green]VERIFIED[/]" if self.ok else "[bold red]FAILED[/]"
        subject = f" {literal(self.subject)}" if self.subject else ""
        console.print(f"{status} bundle of {literal(self.scope)}{subject} from "
                      f"{literal(self.origin)} (checkpoint size {self.checkpoint_size})",
                      highlight=False)
        summary = Table(show_header=False, box=None)
        for label, value in (
            ("entries", self.entries),
            ("signatures verified", self.signatures_verified),
            ("entries replayed with the custody rules", self.replayed),
            ("entries outside the closure (signatures only, not replayed)",
             self.outside_closure),
            ("credentials verified", self.credentials_verified),
            ("checks", ", ".join(self.checks)),
            ("cosigned by", ", ".join(self.witnesses) or "-"),
        ):
            summary.add_row(label, literal(str(value)))
        if self.presented_by:
            summary.add_row("presented by", literal(self.presented_by))
        console.print(summary)
        for standing in self.credentials:
            if standing.status != VALID:  # shown first
                console.print(f"[bold red]{standing.status}[/] {literal(standing.claim)} "
                              f"{literal(standing.id)} at log position {standing.since}",
                              highlight=False)
        for text in self.not_shown:
            console.print(f"[yellow]not shown[/] {literal(text)}", highlight=False)
        if verbose:
            for text in self.notes:
                console.print(f"[dim]note[/] {literal(text)}", highlight=False)
        elif self.notes:
            console.print(f"[dim]{len(self.notes)} technical note"
                          f"{'' if len(self.notes) == 1 else 's'} (log positions of anchors "
                          "and uses; none changes the verdict): --verbose or --json shows "
                          "them[/]", highlight=False)
        if self.failures:
            table = Table("record", "code", "reason")
            for failure in self.failures:
                table.add_row(literal(failure.record), literal(failure.code),
                              literal(failure.reason))
            console.print(table)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_EMOJI_SPLIT = re.compile(r"(?<=:)(?=\S*:)")  # after a colon that may open a rich emoji code
_BRACKET = re.compile(r"(\\*)\[")
_TAG_REST = re.compile(r"[a-z#/@][^[]*?]")  # what follows `[` in a rich tag (markup.RE_TAGS)
_EMPTY_SPAN = "[dim][/dim]"


def literal(text: str) -> str:
    """`text` for rich output as it is: markup escaped, control characters (ANSI escapes,
    bidi overrides) shown as `\\x..` / `\\u....` instead of reaching the terminal."""
    shown = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)
    # rich turns `:name:` into an emoji on a console with emoji on; an empty span after the
    # colon splits the code in two, so it prints as written.
    return _EMPTY_SPAN.join(_escaped(part) for part in _EMOJI_SPLIT.split(shown))


def _escaped(part: str) -> str:
    """`part` as rich markup that prints as written. rich reads `\\[` as `[` in plain text, and
    2k+1 backslashes before a tag as k backslashes and the tag's text (`rich.markup.escape`
    handles only the second, and only within its own text: a `\\[`, an open `[` or a trailing
    backslash would pair with the markup that follows). So each `[` is escaped by whether a tag
    could start there, and the text ends with an empty span no tag can cross."""

    def bracket(match: re.Match[str]) -> str:
        k = len(match.group(1))
        tag = _TAG_REST.match(part, match.end()) is not None
        return "\\" * (2 * k + 1 if tag else k + 1) + "["

    body = _BRACKET.sub(bracket, part)
    trailing = len(part) - len(part.rstrip("\\"))
    if "[" in part or trailing:  # backslashes before the span's tag are escapes: doubled
        body += "\\" * trailing + _EMPTY_SPAN
    return body


__all__ = ["REVOKED", "SUSPENDED", "VALID", "CredentialStanding", "Failure", "Report"]
