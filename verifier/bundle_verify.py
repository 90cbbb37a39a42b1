"""Offline verification of an evidence bundle (pure: no storage, no network).

Trust comes only from the trust file: the checkpoint must be signed by a ledger key it lists
(fails closed). Then, streaming, the entries are replayed (`bundle_replay`: inclusion proofs or
the whole chain, then the engine's checks and rules), then the credentials are judged at the
position of the entry relying on them (`bundle_credentials`), then the presentation, if any.

Failures go into the Report (record, reason, code); malformed bundles raise BundleFormatError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from batterytrace.credentials.data_integrity import sign, verify_proofs
from batterytrace.credentials.did import did_key_from_public_key
from batterytrace.credentials.errors import (
    BatterytraceError,
    VerificationError,
)
from batterytrace.credentials.vc import VC_V2_CONTEXT, VERIFIABLE_PRESENTATION
from batterytrace.ledger import merkle
from batterytrace.ledger.anchors import IssuerResolver
from batterytrace.ledger.bundle_format import (
    BUNDLE_VERSION,
    ENTRY,
    PRESENTATION,
)
from batterytrace.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
)
from batterytrace.ledger.engine import Replay
from batterytrace.ledger.log_verify import Tap
from batterytrace.ledger.pool import bulk_work
from batterytrace.ledger.registry import Registry
from batterytrace.ledger.spill import SPILL_ROWS

from .bundle import (
    BundleFormatError,
    BundleReader,
    Header,
    Record,
    Trailer,
    read_bundle,
)
from .bundle_credentials import CredentialCheck, check_credentials, default_credential_check
from .bundle_replay import BundleReplay
from .errors import (
    BundleConsistencyError,
    BundleUntrustedLedgerError,
    PresentationError,
)
from .report import Report
from .trust import TrustConfig, TrustedLedger

BUNDLE_DIGEST = "bundleDigest"


def verify_bundle(
    lines: Iterable[bytes],
    trust: TrustConfig,
    *,
    since: bytes | None = None,
    challenge: str | None = None,
    credential_check: CredentialCheck | None = None,
    processes: int = 1,
    as_of_use: bool = False,
    spill_rows: int | None = SPILL_ROWS,
) -> Report:
    """Verify a bundle (its raw lines) against the trust configuration. Returns the report;
    raises BundleFormatError (exit 2) when the bundle cannot be read. `processes` (this one
    included) read, parse and check the entry lines of an `all` bundle (`bundle_windows`);
    the chain and the replay run here, in log order. `spill_rows`: the replayed rows kept
    in memory before the others go to a temporary SQLite file (None: all in memory)."""
    reader = BundleReader()
    line_iter = iter(lines)
    first = next(line_iter, None)
    if first is None:
        reader.finish()  # raises: the bundle is empty
    header = reader.feed(first)  # type: ignore[arg-type]
    assert isinstance(header, Header)
    report = Report(origin=header.origin, scope=header.scope, subject=header.subject)
    checkpoint = _open_checkpoint(header, trust, since, report)
    if checkpoint is None:
        return report
    report.checkpoint_size = checkpoint.size
    ledger = trust.ledger(header.origin)
    assert ledger is not None  # _open_checkpoint required it
    replay = BundleReplay(header, checkpoint, report, ledger.verifier_key, processes,
                          spill_rows)
    try:
        _verify_records(reader, line_iter, header, replay, trust, challenge, credential_check,
                        as_of_use)
    finally:
        replay.close()
    return report


def _verify_records(
    reader: BundleReader, line_iter: Iterator[bytes], header: Header, replay: BundleReplay,
    trust: TrustConfig, challenge: str | None, credential_check: CredentialCheck | None,
    as_of_use: bool,
) -> None:
    """The records after the header: the entries replayed, then the tail judged."""
    report = replay.report
    ledger = trust.ledger(header.origin)
    assert ledger is not None  # _open_checkpoint required it
    tail: list[Record] = []
    trailer: Trailer | None = None
    presentation: Record | None = None
    # The replay's state only grows, and the collector's full passes over it (each time it
    # grew by a quarter) find no garbage there: ~12 % of the time at 10^5 entries. Its
    # automatic passes are paused (main thread only) and `_Replay.apply` collects the young
    # generations every REPLAY_WINDOW entries instead.
    with bulk_work():
        if header.scope == "all":
            stash, line_iter = replay.verify_lines(reader, line_iter, ledger.note_verifier)
            entries = _EntryStream(_records(reader, line_iter, stash), True)
        else:
            entries = _EntryStream(_records(reader, line_iter), False)
            for record in entries:
                replay.closure_entry(record)
    for item in entries.rest():
        if isinstance(item, Trailer):
            trailer = item
        elif item.type == PRESENTATION:
            presentation = item
        else:
            tail.append(item)
    replay.finish()
    check_credentials(tail, replay, trust, credential_check or default_credential_check,
                      as_of_use=as_of_use)
    assert trailer is not None  # read_bundle raises when the end record is missing
    _check_presentation(presentation, trailer, challenge, replay, report)


def _records(
    reader: BundleReader, lines: Iterator[bytes], first: Record | Trailer | None = None
) -> Iterator[Record | Trailer]:
    """`first` (a record already read), then the records of the remaining lines."""
    if first is not None:
        yield first
    for raw in lines:
        yield reader.feed(raw)  # type: ignore[misc]  # the header was the first line
    reader.finish()


def verify_entries(
    entries: Iterable[bytes],
    ledger: TrustedLedger,
    checkpoints: Iterable[bytes],
    *,
    progress: Callable[[int], None] | None = None,
    processes: int = 1,
    spill_rows: int | None = SPILL_ROWS,
    on_replayed: Callable[[Replay], None] | None = None,
    tap: Tap | None = None,
) -> Report:
    """Verify a whole log from its entries' canonical bytes (entry 0 first) with the code of
    an `all` bundle: hash chain and the root of every signed checkpoint note (`checkpoints`,
    increasing sizes, signed by `ledger`'s key), every signature with the key valid at its
    position, the registry, settings, anchors and custody rules replayed.

    `batterytrace ledger verify` feeds it the database, a mirror its tiles. The position-
    independent checks of each entry run on `processes` processes (this one included;
    `bundle_windows`). Returns the report (failures with their typed errors in
    `report.errors`); never raises for a bad entry. `tap`: see `BundleReplay.verify_bodies`.
    `on_replayed` is given the engine's replay of the whole log when every entry was read
    and passed (before its spilled state is deleted): `ledger verify` compares the derived
    tables with it instead of replaying the log a second time."""
    origin = ledger.origin
    report = Report(origin=origin, scope="all")
    header = Header(BUNDLE_VERSION, origin, "all", None, b"")
    replay = BundleReplay(header, None, report, ledger.verifier_key, processes, spill_rows)
    try:
        read = replay.verify_bodies(entries, checkpoints, ledger.note_verifier, progress, tap)
        replay.finish()
        if on_replayed is not None and read and report.ok:
            on_replayed(replay.engine)
    finally:
        replay.close()
    return report


# --- checkpoint ---------------------------------------------------------------------------


def _open_checkpoint(
    header: Header, trust: TrustConfig, since: bytes | None, report: Report
) -> Checkpoint | None:
    ledger = trust.ledger(header.origin)
    if ledger is None:
        report.fail("header", BundleUntrustedLedgerError(
            f"no [[ledger]] with origin {header.origin!r} in the trust file"), line=1)
        return None
    verifier = ledger.note_verifier
    try:
        checkpoint = open_checkpoint(header.checkpoint, [verifier], header.origin)
    except CheckpointError as error:
        report.fail("header.checkpoint", error, line=1)
        return None
    report.checks.append("checkpoint signature")
    if ledger.witness_quorum:  # fail closed: without the quorum, nothing else is judged
        try:
            cosigned = ledger.check_witnessed(header.checkpoint)
        except VerificationError as error:
            report.fail("header.checkpoint", error, line=1)
            return None
        report.witnesses = sorted(cosigned)
        report.checks.append(f"witness cosignatures {len(cosigned)} of "
                             f"{len(ledger.witnesses)} (quorum {ledger.witness_quorum}): "
                             + ", ".join(sorted(cosigned)))
    if since is not None:
        try:
            old = open_checkpoint(since, [verifier], header.origin)
            _check_consistency(old, checkpoint, header)
            report.checks.append(f"consistency from size {old.size}")
        except VerificationError as error:
            report.fail("header.consistency", error, line=1)
    return checkpoint


def _check_consistency(old: Checkpoint, new: Checkpoint, header: Header) -> None:
    if old.size > new.size:
        raise BundleConsistencyError(f"the bundle's checkpoint ({new.size}) is older than the "
                                     f"auditor's ({old.size})")
    if old.size == new.size:
        if old.root != new.root:
            raise BundleConsistencyError(f"two different roots for size {old.size}")
        return
    if header.consistency_from != old.size:
        raise BundleConsistencyError(f"the bundle holds no consistency proof from size "
                                     f"{old.size} (export with --consistency-from {old.size})")
    try:
        merkle.verify_consistency(old.size, new.size, old.root, new.root,
                                  list(header.consistency_proof))
    except merkle.ProofError as error:
        raise BundleConsistencyError(f"history rewritten: {error.message}") from error


# --- entries ------------------------------------------------------------------------------


class _EntryStream:
    """The entry records of the bundle, then (through `rest`) whatever follows them."""

    def __init__(self, records: Iterator[Header | Record | Trailer], with_proofs: bool) -> None:
        self.records = records
        self.all = with_proofs
        self.stash: Record | Trailer | None = None
        self.done = False

    def __iter__(self) -> Iterator[Record]:
        if self.done:
            return
        for item in self.records:
            if isinstance(item, Record) and item.type == ENTRY:
                if ("proof" in item.data) == self.all:
                    raise BundleFormatError(item.line, "an entry of an `all` bundle has no "
                                            "proof; every other entry has one")
                yield item
            else:
                self.stash = item  # type: ignore[assignment]
                break
        self.done = True

    def rest(self) -> Iterator[Record | Trailer]:
        for _ in self:  # entries not consumed (verification stopped early)
            pass
        if self.stash is not None:
            yield self.stash
        yield from self.records  # type: ignore[misc]


# --- presentation -------------------------------------------------------------------------


def bundle_digest_hex(digest_bytes: bytes) -> str:
    return "sha256:" + digest_bytes.hex()


def _check_presentation(
    record: Record | None, trailer: Trailer, challenge: str | None, replay: BundleReplay,
    report: Report,
) -> None:
    if record is None:
        if challenge is not None:
            report.fail("presentation", PresentationError(
                "a challenge was given but the bundle is not presented (bundle present)"))
        return
    vp = record.data["presentation"]
    where = "presentation"
    try:
        if not isinstance(vp, dict) or vp.get(BUNDLE_DIGEST) != bundle_digest_hex(
                trailer.digest):
            raise PresentationError("the presentation does not bind this bundle's digest")
        if challenge is None:
            report.notes.append("presentation challenge not checked (no --challenge)")
        registry = replay.registry or Registry("did:key:z6Mk", "http://invalid")
        results = verify_proofs(vp, IssuerResolver(registry, replay.last_seq + 1),
                                expected_purpose="authentication", challenge=challenge)
        holder = vp.get("holder")
        if not any(r.controller == holder for r in results):
            raise PresentationError(f"the presentation is not signed by its holder {holder}")
        report.presented_by = str(holder)
        report.checks.append("presentation")
    except BatterytraceError as error:
        report.fail(where, error, record.line)


def present_bundle(
    lines: list[bytes], key: Any, *, challenge: str, domain: str | None = None,
    holder: str | None = None,
) -> bytes:
    """The bundle with a holder-signed presentation appended: a VP (proof purpose
    authentication, the verifier's challenge) whose `bundleDigest` is the SHA-256 of every
    line up to and including `end`. Raises BundleFormatError for a bundle already presented."""
    trailer = None
    for item in read_bundle(lines):
        if isinstance(item, Trailer):
            trailer = item
        elif isinstance(item, Record) and item.type == PRESENTATION:
            raise BundleFormatError(item.line, "the bundle is already presented")
    assert trailer is not None
    vp = {
        "@context": [VC_V2_CONTEXT],
        "type": [VERIFIABLE_PRESENTATION],
        "holder": holder or key.controller or did_key_from_public_key(key.public_key),
        BUNDLE_DIGEST: bundle_digest_hex(trailer.digest),
    }
    signed = sign(vp, key, proof_purpose="authentication", challenge=challenge, domain=domain)
    record = json.dumps({"type": PRESENTATION, "presentation": signed}, separators=(",", ":"))
    return b"".join(lines) + record.encode() + b"\n"
