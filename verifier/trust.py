"""The trust file (`trust.toml`): the only source of trust a verifier has.

Nothing inside an artefact under verification adds trust by itself; a bundle may carry ledger
keys and DID documents, but they count only when this file vouches for them. Format, version 1
(documented in docs/trust.md):

    version = 1

    [[ledger]]                       # a verifiable log whose checkpoints are trusted
    origin = "ledger.example/log"    # the checkpoint origin line
    verifier_key = "ledger.example/log+1a2b3c4d+AQ..."   # C2SP note verifier key
    witnesses = ["witness.example/w1+...+BA..."]   # optional: C2SP cosigner keys (0x04)
    witness_quorum = 1               # how many of them must cosign (k of n; default 0)

    [[governance_root]]              # roots of the accreditation chains
    did = "did:key:z6Mk..."
    name = "Battery Governance Board"   # optional label
    keys = ["z6Mk..."]               # publicKeyMultibase; may be omitted for did:key

    [[pinned_did_document]]          # did:web issuers outside the ledger
    did = "did:web:auditor.example"
    sha256 = "<hex SHA-256 of the RFC 8785 canonical DID document>"

The parser is strict: an unknown version, unknown key, wrong type, duplicate entry or malformed
value is a TrustFileError naming where it is.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.keys import decode_public_multibase
from batterytrace.ledger.checkpoint import (
    Checkpoint,
    NoteVerifier,
    open_checkpoint,
    parse_verifier_key,
)
from batterytrace.ledger.cosignature import Cosigner, check_quorum, parse_cosigner_key

from .errors import (
    PinnedDocumentMismatchError,
    TrustFileError,
    TrustFileVersionError,
)

TRUST_FILE_VERSION = 1
SUPPORTED_VERSIONS = frozenset({TRUST_FILE_VERSION})

_DID = re.compile(r"did:[a-z0-9]+:[A-Za-z0-9._:%\-]+")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def did_document_sha256(document: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the RFC 8785 canonical form of a DID document (what the file pins)."""
    return hashlib.sha256(canonicalize(dict(document))).hexdigest()


def _check_did(did: Any, where: str) -> str:
    if not isinstance(did, str) or not _DID.fullmatch(did):
        raise TrustFileError(f"{where}: {did!r} is not a DID", where=where)
    return did


@dataclass(frozen=True)
class TrustedLedger:
    """A log whose signed checkpoints the verifier accepts."""

    origin: str
    verifier_key: str
    # C2SP cosigner keys (`<name>+<key id>+base64(0x04 || key)`) of the witnesses this
    # verifier names for the log, and how many of them must have cosigned a checkpoint.
    witnesses: tuple[str, ...] = ()
    witness_quorum: int = 0

    def __post_init__(self) -> None:
        where = f"ledger {self.origin!r}"
        if not isinstance(self.witnesses, tuple):
            raise TrustFileError(f"{where}: witnesses must be a list of cosigner keys")
        names = set()
        for vkey in self.witnesses:
            try:
                names.add(parse_cosigner_key(vkey).name)
            except BatterytraceError as exc:
                raise TrustFileError(f"{where}: witness {vkey!r:.80}: {exc.message}",
                                     where=where) from exc
        if len(names) != len(self.witnesses):
            raise TrustFileError(f"{where}: two witnesses share a name")
        quorum = self.witness_quorum
        if isinstance(quorum, bool) or not isinstance(quorum, int) or not (
                0 <= quorum <= len(self.witnesses)):
            raise TrustFileError(f"{where}: witness_quorum must be 0..{len(self.witnesses)} "
                                 "(the number of witnesses listed)", where=where)
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise TrustFileError(f"{where}: origin must be a non-empty line")
        try:
            verifier = parse_verifier_key(self.verifier_key)
        except BatterytraceError as exc:
            raise TrustFileError(f"{where}: {exc.message}", where=where) from exc
        if verifier.name != self.origin:
            # C2SP logs name their checkpoint key after the origin; a different name would
            # let a key of one log vouch for another.
            raise TrustFileError(f"{where}: verifier key name {verifier.name!r} is not the origin")

    @property
    def note_verifier(self) -> NoteVerifier:
        return parse_verifier_key(self.verifier_key)

    @property
    def cosigners(self) -> tuple[Cosigner, ...]:
        return tuple(parse_cosigner_key(k) for k in self.witnesses)

    def check_witnessed(self, note: bytes) -> list[str]:
        """The names of this file's witnesses whose cosignature of `note` verifies; raises
        WitnessQuorumError when fewer than `witness_quorum` cosigned (fail closed)."""
        if not self.witnesses:
            return []
        return sorted(check_quorum(note, self.cosigners, self.witness_quorum))

    def open_note(self, note: bytes) -> tuple[Checkpoint, list[str]]:
        """Open a checkpoint note of this log: its signature by the log key, then the
        witness quorum. Returns the checkpoint and who cosigned."""
        cp = open_checkpoint(note, [self.note_verifier], self.origin)
        return cp, self.check_witnessed(note)


@dataclass(frozen=True)
class GovernanceRoot:
    """A DID trusted to start accreditation chains, with the keys it signs with."""

    did: str
    keys: tuple[str, ...] = ()
    name: str | None = None

    def __post_init__(self) -> None:
        where = f"governance root {self.did!r}"
        _check_did(self.did, where)
        if not isinstance(self.keys, tuple) or not all(isinstance(k, str) for k in self.keys):
            raise TrustFileError(f"{where}: keys must be a list of strings")
        if self.did.startswith("did:key:"):
            own = self.did.removeprefix("did:key:")
            if any(k != own for k in self.keys):
                raise TrustFileError(f"{where}: a did:key root can only list its own key")
            if not self.keys:
                object.__setattr__(self, "keys", (own,))
        if not self.keys:
            raise TrustFileError(f"{where}: at least one key is required")
        if len(set(self.keys)) != len(self.keys):
            raise TrustFileError(f"{where}: duplicate key")
        for key in self.keys:
            try:
                decode_public_multibase(key)
            except BatterytraceError as exc:
                raise TrustFileError(f"{where}: {exc.message}", where=where) from exc
        if self.name is not None and not isinstance(self.name, str):
            raise TrustFileError(f"{where}: name must be a string")

    @property
    def public_keys(self) -> tuple[bytes, ...]:
        """The raw 32-byte Ed25519 keys."""
        return tuple(decode_public_multibase(k) for k in self.keys)


@dataclass(frozen=True)
class PinnedDidDocument:
    """A did:web DID document accepted offline only if its canonical SHA-256 matches."""

    did: str
    sha256: str

    def __post_init__(self) -> None:
        where = f"pinned DID document {self.did!r}"
        _check_did(self.did, where)
        if not self.did.startswith("did:web:"):
            raise TrustFileError(f"{where}: only did:web documents are pinned")
        if not isinstance(self.sha256, str) or not _SHA256_HEX.fullmatch(self.sha256):
            raise TrustFileError(f"{where}: sha256 must be 64 lowercase hex digits")


@dataclass(frozen=True)
class TrustConfig:
    """What a verifier trusts: ledgers, governance roots and pinned did:web documents."""

    ledgers: tuple[TrustedLedger, ...] = ()
    governance_roots: tuple[GovernanceRoot, ...] = ()
    pinned_did_documents: tuple[PinnedDidDocument, ...] = ()
    version: int = field(default=TRUST_FILE_VERSION)

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or self.version not in SUPPORTED_VERSIONS:
            raise TrustFileVersionError(f"unsupported trust file version {self.version!r}")
        for label, items, key in (
            ("ledger origin", self.ledgers, "origin"),
            ("governance root", self.governance_roots, "did"),
            ("pinned DID document", self.pinned_did_documents, "did"),
        ):
            seen: set[str] = set()
            for item in items:
                value = getattr(item, key)
                if value in seen:
                    raise TrustFileError(f"duplicate {label} {value!r}")
                seen.add(value)

    def ledger(self, origin: str) -> TrustedLedger | None:
        return next((x for x in self.ledgers if x.origin == origin), None)

    def governance_root(self, did: str) -> GovernanceRoot | None:
        return next((x for x in self.governance_roots if x.did == did), None)

    def pinned(self, did: str) -> PinnedDidDocument | None:
        return next((x for x in self.pinned_did_documents if x.did == did), None)

    def check_pinned(self, did: str, document: Mapping[str, Any]) -> None:
        """Accept a DID document for `did` only if the file pins exactly this document."""
        pin = self.pinned(did)
        if pin is None:
            raise PinnedDocumentMismatchError(f"no DID document is pinned for {did}", did=did)
        if document.get("id") != did:
            raise PinnedDocumentMismatchError(f"DID document id is not {did}", did=did)
        digest = did_document_sha256(document)
        if digest != pin.sha256:
            raise PinnedDocumentMismatchError(
                f"DID document for {did} does not match its pinned SHA-256",
                did=did, expected=pin.sha256, found=digest,
            )

    def with_ledger(self, ledger: TrustedLedger) -> TrustConfig:
        """A copy with `ledger` added (or replacing the one with the same origin)."""
        rest = tuple(x for x in self.ledgers if x.origin != ledger.origin)
        return replace(self, ledgers=(*rest, ledger))

    def with_governance_root(self, root: GovernanceRoot) -> TrustConfig:
        rest = tuple(x for x in self.governance_roots if x.did != root.did)
        return replace(self, governance_roots=(*rest, root))

    def with_pinned_did_document(self, pin: PinnedDidDocument) -> TrustConfig:
        rest = tuple(x for x in self.pinned_did_documents if x.did != pin.did)
        return replace(self, pinned_did_documents=(*rest, pin))


# --- parsing ----------------------------------------------------------------------------

_TABLES: dict[str, tuple[str, dict[str, tuple[type, bool]]]] = {
    # TOML table name -> (TrustConfig field, {key: (type, required)})
    "ledger": ("ledgers", {"origin": (str, True), "verifier_key": (str, True),
                           "witnesses": (list, False), "witness_quorum": (int, False)}),
    "governance_root": (
        "governance_roots",
        {"did": (str, True), "keys": (list, False), "name": (str, False)},
    ),
    "pinned_did_document": ("pinned_did_documents", {"did": (str, True), "sha256": (str, True)}),
}
_BUILDERS = {
    "ledger": TrustedLedger,
    "governance_root": GovernanceRoot,
    "pinned_did_document": PinnedDidDocument,
}


def parse_trust(text: str) -> TrustConfig:
    """Parse trust.toml text strictly; raises TrustFileError or TrustFileVersionError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TrustFileError(f"trust file is not valid TOML: {exc}") from exc
    if "version" not in data:
        raise TrustFileVersionError("trust file has no version")
    version = data.pop("version")
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise TrustFileVersionError(
            f"unsupported trust file version {version!r} (known: {sorted(SUPPORTED_VERSIONS)})"
        )
    unknown = sorted(set(data) - set(_TABLES))
    if unknown:
        raise TrustFileError(f"unknown trust file key(s): {', '.join(unknown)}")
    fields: dict[str, tuple[Any, ...]] = {}
    for table, (field_name, schema) in _TABLES.items():
        rows = data.get(table, [])
        if not isinstance(rows, list):
            raise TrustFileError(f"{table} must be an array of tables ([[{table}]])")
        fields[field_name] = tuple(
            _build(table, schema, row, number) for number, row in enumerate(rows, 1)
        )
    return TrustConfig(version=version, **fields)


def _build(table: str, schema: dict[str, tuple[type, bool]], row: Any, number: int) -> Any:
    where = f"[[{table}]] #{number}"
    if not isinstance(row, dict):
        raise TrustFileError(f"{where} must be a table")
    unknown = sorted(set(row) - set(schema))
    if unknown:
        raise TrustFileError(f"{where}: unknown key(s): {', '.join(unknown)}")
    for key, (kind, required) in schema.items():
        if key not in row:
            if required:
                raise TrustFileError(f"{where}: missing {key}")
            continue
        if not isinstance(row[key], kind):
            raise TrustFileError(f"{where}: {key} must be a {kind.__name__}")
    values = dict(row)
    for key in ("keys", "witnesses"):
        if key in values:
            values[key] = tuple(values[key])
    return _BUILDERS[table](**values)


def load_trust(path: Path | str) -> TrustConfig:
    """Read and parse a trust file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustFileError(f"cannot read trust file {path}: {exc}") from exc
    return parse_trust(text)


# --- writing ----------------------------------------------------------------------------


def _toml_string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dump_trust(config: TrustConfig) -> str:
    """The trust.toml text of a configuration (parse_trust(dump_trust(c)) == c)."""
    lines = ["# batterytrace trust file: see docs/trust.md", f"version = {config.version}"]
    for ledger in config.ledgers:
        lines += ["", "[[ledger]]", f"origin = {_toml_string(ledger.origin)}",
                  f"verifier_key = {_toml_string(ledger.verifier_key)}"]
        if ledger.witnesses:
            lines += ["witnesses = [" + ", ".join(_toml_string(k) for k in ledger.witnesses)
                      + "]", f"witness_quorum = {ledger.witness_quorum}"]
    for root in config.governance_roots:
        lines += ["", "[[governance_root]]", f"did = {_toml_string(root.did)}"]
        if root.name is not None:
            lines.append(f"name = {_toml_string(root.name)}")
        lines.append("keys = [" + ", ".join(_toml_string(k) for k in root.keys) + "]")
    for pin in config.pinned_did_documents:
        lines += ["", "[[pinned_did_document]]", f"did = {_toml_string(pin.did)}",
                  f"sha256 = {_toml_string(pin.sha256)}"]
    return "\n".join(lines) + "\n"


def write_trust(config: TrustConfig, path: Path | str) -> None:
    """Write the configuration as trust.toml."""
    Path(path).write_text(dump_trust(config), encoding="utf-8")


__all__ = [
    "TRUST_FILE_VERSION",
    "GovernanceRoot",
    "PinnedDidDocument",
    "PinnedDocumentMismatchError",
    "TrustConfig",
    "TrustFileError",
    "TrustFileVersionError",
    "TrustedLedger",
    "did_document_sha256",
    "dump_trust",
    "load_trust",
    "parse_trust",
    "write_trust",
]
