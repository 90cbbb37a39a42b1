"""The one engine: the check of every entry kind and the replay of the log, pure.

Every path that judges entries runs this module, and nothing else re-implements it: the
append validators (`validators.py`, with the state backed by tables), `rebuild` and
`ledger verify` (`replay_log`), bundle verification (`verifier/bundle_verify.py`), the demo's
in-memory network. No storage, no processes here: callers that check in worker processes
(`pool.py`) run `check_event_documents` there and hand its results back in log order.

An event credential is checked in two halves:
- `check_event_documents` depends on the document alone: UNTP DTE schema, the project's
  fields (`parse_credential`), digest, and the single proof, by the key its verification
  method names (`<did>#<publicKeyMultibase>`, how the registry names keys), of the issuer;
- `check_event` then, at the entry's log position and in order: the registry must hold that
  very key for the issuer, valid there (`accept_signer`), and the custody rules apply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.data_integrity import verify_proofs
from batterytrace.credentials.did import VerificationMethod
from batterytrace.credentials.errors import (
    BatterytraceError,
    DidResolutionError,
    MalformedProofError,
    ProofVerificationError,
    VerificationError,
)
from batterytrace.credentials.keys import decode_public_multibase
from batterytrace.credentials.secured_bytes import secured_canonical_parts, unsecured_canonical

from .anchors import AnchorBook, check_anchor
from .custody import CustodyState, Limits, apply_credential, remember_fingerprints
from .event_schema import validate_dte_schema
from .events import DteCredential, parse_credential
from .registry import Registry, RegistryResolver, apply_registry
from .settings import DEFAULT_EVENT_TIME_AHEAD_HOURS, MAX_ITEM_KG, check_settings_document
from .spill import SpilledAnchorBook, SpilledRegistry, SpilledState, SpillFile

TOLERANCE_SETTING = "massBalanceTolerance"
MAX_KG_SETTING = "maxQuantityKg"
AHEAD_SETTING = "maxEventTimeAheadHours"
RULED_KINDS = frozenset({"genesis", "settings", "registry", "anchor", "event"})  # `Replay.apply`
ONE_PROOF = "a traceability event carries one proof, by a key of its issuer"


class EntrySignatureError(VerificationError):
    code = "BUNDLE_ENTRY_SIGNATURE"
    title = "Entry not signed by the right key"


class MissingGenesisError(VerificationError):
    code = "LOG_NO_GENESIS"
    title = "The entries do not start with entry 0"


class UnknownKindError(VerificationError):
    code = "ENTRY_KIND_WITHOUT_RULES"
    title = "Entry kind without rules"


def digest(document: Mapping[str, Any]) -> str:
    """The sha256 (hex) of a document's canonical bytes: what "the same document" means."""
    return hashlib.sha256(canonicalize(dict(document))).hexdigest()


def tolerance_of(settings: Mapping[str, Any]) -> Decimal:
    """The mass-balance tolerance (kg) the ledger settings set, 0 by default."""
    return Decimal(str(settings.get(TOLERANCE_SETTING, 0)))


def limits_of(settings: Mapping[str, Any]) -> Limits:
    """The plausibility bounds the ledger settings set (`settings.py`), else the defaults."""
    hours = Decimal(str(settings.get(AHEAD_SETTING, DEFAULT_EVENT_TIME_AHEAD_HOURS)))
    return Limits(max_kg=Decimal(str(settings.get(MAX_KG_SETTING, MAX_ITEM_KG))),
                  ahead=timedelta(seconds=float(hours * 3600)))


def configure(state: CustodyState, settings: Mapping[str, Any]) -> None:
    """Give a custody state the tolerance and bounds of the settings in force."""
    state.tolerance = tolerance_of(settings)
    state.limits = limits_of(settings)


# --- events: the position-independent half ---------------------------------------------------


@dataclass(frozen=True)
class EventCheck:
    """An event credential whose schema, fields and signature verified: its digest, the
    method and key that signed it, its canonical bytes (kept for a new ledger entry, else
    empty) and its parse (dropped where it is cheaper to parse again than to send)."""

    digest: str
    verification_method: str
    public_multibase: str
    canonical: bytes = field(default=b"", repr=False, compare=False)
    credential: DteCredential | None = field(default=None, repr=False, compare=False)


class NamedKeyResolver:
    """Resolves `<did>#<multibase>` to the key it names (the registry is consulted later)."""

    def resolve_verification_method(self, vm_id: str, relationship: str) -> VerificationMethod:
        return _named_method(vm_id)


@lru_cache(maxsize=4096)
def _named_method(vm_id: str) -> VerificationMethod:
    # Frozen, so one object per method serves every event it signed (a bundle has few).
    did, _, fragment = vm_id.partition("#")
    if not did.startswith("did:") or not fragment.startswith("z"):
        raise DidResolutionError(f"{vm_id:.120} does not name a registered key")
    return VerificationMethod(vm_id, did, "Multikey", decode_public_multibase(fragment))


_NAMED = NamedKeyResolver()


def check_event_documents(
    documents: Sequence[tuple[Any, bytes | None]], *, canonical: bool = True,
    keep_credential: bool = True,
) -> list[EventCheck | BatterytraceError]:
    """Check each (document, its canonical bytes if known) event credential, errors as values
    in their places: schema, then fields, then the one proof by a key of its issuer.

    Each step runs over all the documents before the next (a step run on one document among
    the others finds its code evicted by them, and costs up to twice as much).
    `canonical=False` leaves the bytes out of the results (nothing to build an entry from)."""
    out: list[EventCheck | BatterytraceError | None] = [None] * len(documents)
    valid: list[tuple[int, dict[str, Any], bytes | None]] = []
    for index, (document, secured) in enumerate(documents):
        try:
            validate_dte_schema(document)
            if not isinstance(document, dict):
                raise MalformedProofError("a secured document must be a JSON object")
            valid.append((index, document, secured))
        except BatterytraceError as error:
            out[index] = error
    parsed: list[tuple[int, dict[str, Any], DteCredential, bytes | None]] = []
    for index, document, secured in valid:
        try:
            parsed.append((index, document, parse_credential(document, check_schema=False),
                           secured))
        except BatterytraceError as error:
            out[index] = error
    for index, document, credential, secured in parsed:
        try:
            unsecured = unsecured_canonical(document, secured) if secured is not None else None
            if unsecured is None or secured is None:
                unsecured, secured = secured_canonical_parts(document)
            results = verify_proofs(document, _NAMED, unsecured_canonical=unsecured)
            if len(results) != 1 or results[0].controller != credential.issuer:
                raise ProofVerificationError(ONE_PROOF)
            method = results[0].verification_method
            if keep_credential:
                remember_fingerprints(credential)
            out[index] = EventCheck(
                hashlib.sha256(secured).hexdigest(), method, method.partition("#")[2],
                secured if canonical else b"", credential if keep_credential else None)
        except BatterytraceError as error:
            out[index] = error
    return out  # type: ignore[return-value]  # every place is filled above


def check_event_document(document: Any, secured: bytes | None = None) -> EventCheck:
    """`check_event_documents` of one document; raises its error."""
    result = check_event_documents([(document, secured)])[0]
    if isinstance(result, BatterytraceError):
        raise result
    return result


# --- events: in log order ---------------------------------------------------------------------


def accept_signer(registry: Registry, check: EventCheck, issuer: str, position: int) -> None:
    """The key that signed (`check`) must be the registry's key of `issuer` valid at
    `position`; raises KeyNotValidError or ProofVerificationError."""
    record = registry.key_at(check.verification_method, position)
    if record.controller != issuer or record.public_multibase != check.public_multibase:
        raise ProofVerificationError(ONE_PROOF)


def verified_event(
    registry: Registry, document: Any, position: int,
    check: EventCheck | BatterytraceError | None = None, secured: bytes | None = None,
    credential: DteCredential | None = None,
) -> tuple[DteCredential, str]:
    """The credential of an event entry at `position` and its digest, once its signature is
    its issuer's (a registered participant) key valid there. `check`: its
    `check_event_documents` result when made beforehand (a worker); `secured`: the
    document's canonical bytes when known; `credential`: its parse, when the caller holds it
    (used only with a `check` that passed)."""
    if check is None:
        check = check_event_document(document, secured)
    elif isinstance(check, BatterytraceError):
        raise check
    credential = (check.credential or credential
                  or parse_credential(document, check_schema=False))
    accept_signer(registry, check, credential.issuer, position)
    registry.participant(credential.issuer)
    return credential, check.digest


def check_event(
    registry: Registry, state: CustodyState, document: Any, position: int,
    check: EventCheck | BatterytraceError | None = None, secured: bytes | None = None,
    credential: DteCredential | None = None,
) -> int | None:
    """Check an event entry at `position` and apply its custody rules (the arguments as for
    `verified_event`). Returns None when applied, or the position of the same credential
    already in the log (a repeat is answered by the entry it repeats)."""
    if isinstance(check, EventCheck):
        known = check.credential or credential
        used = state.get("credential", known.id) if known is not None else None
        if used is not None and used.digest == check.digest:
            return int(used.seq)
    credential, sha = verified_event(registry, document, position, check, secured, credential)
    return apply_credential(state, credential, credential.issuer, position, sha)


# --- the other kinds --------------------------------------------------------------------------


def check_registry(registry: Registry, document: dict[str, Any], position: int) -> int | None:
    """Verify a registry document's proofs at `position` and apply it. Returns None when
    applied, or the position of the same document already in the log."""
    sha = digest(document)
    used = registry.get("document", sha)
    if used is not None:
        return int(used.seq)
    results = verify_proofs(document, RegistryResolver(registry, position, admin=True))
    return apply_registry(registry, document, position, [r.verification_method for r in results],
                          sha)


def check_settings(registry: Registry, document: dict[str, Any], position: int) -> None:
    """A settings document: known settings in range (`settings.py`), signed by the admin
    key."""
    check_settings_document(document)
    if not verify_proofs(document, RegistryResolver(registry, position, admin=True)):
        raise EntrySignatureError("settings are signed by the admin key")


# --- the replay -----------------------------------------------------------------------------


class Replay:
    """The registry, settings, custody state and anchors of a log, entry by entry, in order.

    `apply` judges and applies one entry and raises the first rule's error; the caller
    decides what a failure means (a rebuild stops, a bundle reports and goes on). Entry 0
    (genesis) creates the registry and the state."""

    def __init__(self, spill_rows: int | None = None) -> None:
        """`spill_rows`: None keeps every row in memory; a number keeps at most about that
        many rows in memory per table set, the others in a temporary SQLite file
        (`spill.py`; `close` deletes it)."""
        self.registry: Registry | None = None
        self.state: CustodyState | None = None
        self.spill = SpillFile() if spill_rows is not None else None
        self.spill_rows = spill_rows or 0
        self.anchors = (AnchorBook() if self.spill is None
                        else SpilledAnchorBook(self.spill, self.spill_rows))
        self.settings: dict[str, Any] = {}

    def start(self, admin_did: str, public_url: str) -> None:
        """Begin at the genesis entry (its admin key and public URL)."""
        if self.spill is None:
            self.registry = Registry(admin_did, public_url)
            self.state = CustodyState(self.registry)
        else:
            self.registry = SpilledRegistry(admin_did, public_url, self.spill, self.spill_rows)
            self.state = SpilledState(self.registry, self.spill, self.spill_rows)

    def started(self) -> tuple[Registry, CustodyState]:
        """The registry and state; MissingGenesisError before entry 0 was applied."""
        if self.registry is None or self.state is None:
            raise MissingGenesisError("the log does not start with entry 0")
        return self.registry, self.state

    def apply(self, seq: int, kind: str, document: dict[str, Any],
              check: EventCheck | BatterytraceError | None = None,
              secured: bytes | None = None, received: str | None = None) -> int | None:
        """Judge and apply one entry (`check`, `secured`: see `verified_event`; `received`:
        the entry's receipt time, which bounds its events' eventTime). Returns None, or for a
        repeat of an earlier registry document or event credential the position of the entry
        it repeats (a ledger answers a repeat with that entry)."""
        if kind == "genesis":
            self.start(document["adminKey"], document["publicUrl"])
            return None
        registry, state = self.started()
        if kind == "settings":
            check_settings(registry, document, seq)
            self.settings.update(document.get("settings", {}))
            configure(state, self.settings)
            return None
        if kind == "registry":
            return check_registry(registry, document, seq)
        if kind == "anchor":
            return check_anchor(registry, self.anchors, document, seq)[1]
        if kind == "event":
            state.received = received
            return check_event(registry, state, document, seq, check, secured)
        raise UnknownKindError(f"entry kind {kind} has no rules")

    def forget_undo(self) -> None:
        """Drop the undo journals: they serve transactions inside one entry, and a replay
        never writes `changed()` back, so between entries they would only grow."""
        for tables in (self.registry, self.state, self.anchors):
            if tables is not None:
                tables.journal.clear()
                tables.settle()

    def close(self) -> None:
        """Delete the temporary file of the spilled rows, if any (the state is gone)."""
        if self.spill is not None:
            self.spill.close()


def replay_log(
    entries: Iterable[tuple[int, str, dict[str, Any], EventCheck | BatterytraceError | None,
                            str | None]],
    replay: Replay | None = None,
) -> Replay:
    """Apply (seq, kind, document, event check or None, receipt time or None) entries in log
    order. Raises the first rule's error, with the seq in its details."""
    replay = replay or Replay()
    for seq, kind, document, check, received in entries:
        try:
            replay.apply(seq, kind, document, check, received=received)
        except BatterytraceError as exc:
            exc.details.setdefault("seq", seq)
            raise
        replay.forget_undo()
    return replay
