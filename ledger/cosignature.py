"""C2SP tlog-cosignature (Ed25519 `cosignature/v1`) and the tlog-witness request format.

A cosignature is a note signature line `— <name> base64(key id || u64 timestamp || sig)` with
key id = SHA-256(name || 0x0A || 0x04 || public key)[:4], over the message
`cosignature/v1\\ntime <timestamp>\\n` + the checkpoint body. A witness states with it that, at
that time, the largest consistent tree it saw for the origin has that root.

An `add-checkpoint` request body is `old <size>\\n`, up to 63 base64 consistency proof lines,
an empty line, then the signed checkpoint note. Pure: no storage, no network.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from batterytrace.credentials.errors import Ed25519SignatureError, InputError, VerificationError
from batterytrace.credentials.keys import Ed25519Key, verify_ed25519

from .checkpoint import SIGNATURE_PREFIX, b64decode_strict

COSIGNATURE_ALG = 0x04
MAX_PROOF_LINES = 63
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")


class CosignatureError(VerificationError):
    """A cosignature from a trusted witness does not verify."""

    code = "COSIGNATURE_ERROR"
    title = "Cosignature does not verify"


class WitnessQuorumError(VerificationError):
    """A checkpoint lacks the cosignatures of the quorum of witnesses the verifier requires."""

    code = "WITNESS_QUORUM_NOT_MET"
    title = "Checkpoint lacks its witness quorum"


class CosignerKeyError(InputError):
    """A cosigner verifier key is malformed or not an Ed25519 cosignature/v1 key."""

    code = "COSIGNER_KEY_ERROR"
    title = "Malformed cosigner key"


class AddCheckpointFormatError(InputError):
    """An add-checkpoint request body is malformed (HTTP 400)."""

    code = "WITNESS_REQUEST_MALFORMED"
    title = "Malformed add-checkpoint request"


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public key)[:4]."""
    material = name.encode() + b"\n" + bytes([COSIGNATURE_ALG]) + public_key
    return hashlib.sha256(material).digest()[:4]


def cosigned_message(body: bytes, timestamp: int) -> bytes:
    """`cosignature/v1`, `time <timestamp>`, then the checkpoint body."""
    return b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + body


@dataclass(frozen=True)
class Cosigner:
    """A witness's Ed25519 cosignature/v1 public key under its name."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        """`<name>+<hex key id>+base64(0x04 || public key)`."""
        encoded = base64.b64encode(bytes([COSIGNATURE_ALG]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"


def parse_cosigner_key(vkey: str) -> Cosigner:
    """Parse a cosigner vkey (signature type 0x04); the key id must match."""
    parts = vkey.split("+", 2) if isinstance(vkey, str) else []
    if len(parts) != 3 or not parts[0] or any(c.isspace() for c in parts[0]):
        raise CosignerKeyError("cosigner key must be <name>+<hex key id>+<base64 key>")
    raw = b64decode_strict(parts[2])
    if raw is None or len(raw) != 33 or raw[0] != COSIGNATURE_ALG:
        raise CosignerKeyError("cosigner key must be base64(0x04 || 32-byte Ed25519 key)")
    cosigner = Cosigner(parts[0], raw[1:])
    if cosigner.key_id.hex() != parts[1]:
        raise CosignerKeyError("cosigner key id does not match the name and public key")
    return cosigner


def cosign(body: bytes, name: str, key: Ed25519Key, timestamp: int) -> str:
    """The cosignature line (ending in a newline) of checkpoint `body` at `timestamp`."""
    if not 0 < timestamp < 2**63:
        raise InputError("a cosignature timestamp must be in (0, 2^63)")
    signature = key.sign(cosigned_message(body, timestamp))
    blob = cosigner_key_id(name, key.public_key) + timestamp.to_bytes(8, "big") + signature
    return f"{SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode()}\n"


def split_note(note: bytes) -> tuple[bytes, list[str]]:
    """(body, signature lines) of a signed note (the body ends at the last empty line)."""
    text = note.decode("utf-8")
    split = text.rfind("\n\n")
    if split < 0 or not text.endswith("\n"):
        raise CosignatureError("not a signed note")
    return text[:split + 1].encode(), text[split + 2:-1].split("\n")


def verify_cosignatures(note: bytes, cosigners: Sequence[Cosigner]) -> dict[str, int]:
    """{witness name: timestamp} of the trusted cosigners whose cosignature of the note's
    body verifies. Lines of unknown keys are ignored; a bad line of a trusted key raises."""
    body, lines = split_note(note)
    trusted = {(c.name, c.key_id): c for c in cosigners}
    found: dict[str, int] = {}
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            continue
        name, _, encoded = line[len(SIGNATURE_PREFIX):].partition(" ")
        blob = b64decode_strict(encoded)
        if blob is None or len(blob) < 4:
            continue
        cosigner = trusted.get((name, blob[:4]))
        if cosigner is None:
            continue
        if len(blob) != 4 + 8 + 64:
            raise CosignatureError(f"cosignature of {name} has the wrong length", witness=name)
        timestamp = int.from_bytes(blob[4:12], "big")
        try:
            verify_ed25519(cosigner.public_key, blob[12:], cosigned_message(body, timestamp))
        except Ed25519SignatureError:
            raise CosignatureError(f"cosignature of {name} does not verify",
                                   witness=name) from None
        found[name] = timestamp
    return found


def check_quorum(note: bytes, cosigners: Sequence[Cosigner], quorum: int) -> dict[str, int]:
    """The verified cosignatures, or WitnessQuorumError when fewer than `quorum` witnesses
    of `cosigners` cosigned (the error names who did)."""
    found = verify_cosignatures(note, cosigners)
    if len(found) < quorum:
        raise WitnessQuorumError(
            f"checkpoint cosigned by {len(found)} of the {quorum} witnesses required "
            f"({', '.join(sorted(found)) or 'none'})", cosigned=sorted(found), quorum=quorum)
    return found


def add_signature_lines(note: bytes, lines: Sequence[str]) -> bytes:
    """The note with signature lines appended (a line already present is not repeated)."""
    body, present = split_note(note)
    merged = list(present) + [ln for ln in lines if ln and ln not in present]
    return body + b"\n" + "".join(ln + "\n" for ln in merged).encode()


# --- tlog-witness add-checkpoint -------------------------------------------------------------


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """The request body of add-checkpoint."""
    lines = [f"old {old_size}"] + [base64.b64encode(h).decode() for h in proof]
    return "".join(line + "\n" for line in lines).encode() + b"\n" + note


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], bytes]:
    """(old size, consistency proof, signed checkpoint note) of a request body."""
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise AddCheckpointFormatError("no empty line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise AddCheckpointFormatError("request header is not ASCII") from None
    first = lines[0]
    if not first.startswith("old ") or not _SIZE_RE.fullmatch(first[4:]):
        raise AddCheckpointFormatError("the first line must be `old <size>`")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise AddCheckpointFormatError(f"more than {MAX_PROOF_LINES} proof lines")
    proof = []
    for line in lines[1:]:
        h = b64decode_strict(line)
        if h is None or len(h) != 32:
            raise AddCheckpointFormatError("a proof line is not a base64 32-byte hash")
        proof.append(h)
    return int(first[4:]), proof, note


__all__ = [
    "AddCheckpointFormatError",
    "CosignatureError",
    "Cosigner",
    "CosignerKeyError",
    "WitnessQuorumError",
    "add_signature_lines",
    "check_quorum",
    "cosign",
    "cosigned_message",
    "cosigner_key_id",
    "format_add_checkpoint",
    "parse_add_checkpoint",
    "parse_cosigner_key",
    "split_note",
    "verify_cosignatures",
]
