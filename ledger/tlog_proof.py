"""C2SP tlog-proof files: an offline-verifiable proof that a leaf is in a signed checkpoint.

c2sp.org/tlog-proof@v1
extra <base64>            (optional, unauthenticated)
index <decimal, no leading zeros>
<base64 hash>             (zero or more: the RFC 6962 inclusion proof, leaf sibling first)
                          (empty line)
<signed checkpoint note, verbatim>
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from batterytrace.credentials.errors import InputError, VerificationError

from .checkpoint import (
    MAX_NOTE_SIZE,
    Checkpoint,
    NoteVerifier,
    b64decode_strict,
    open_checkpoint,
)
from .merkle import HASH_SIZE, MAX_TREE_SIZE, verify_inclusion

HEADER = b"c2sp.org/tlog-proof@v1"
FILE_EXTENSION = ".tlog-proof"
# A uint64 tree has at most 64 proof hashes.
MAX_PROOF_HASHES = 64
MAX_EXTRA_SIZE = 16 * 1024
MAX_PROOF_SIZE = MAX_NOTE_SIZE + 4 * MAX_EXTRA_SIZE

_INDEX_RE = re.compile(rb"index (0|[1-9][0-9]*)")


class TlogProofError(VerificationError):
    """A tlog-proof file is malformed (its checkpoint and inclusion proof raise their own
    CHECKPOINT_* and MERKLE_* errors)."""

    code = "TLOG_PROOF_MALFORMED"
    title = "Malformed tlog-proof"


class TlogProofTooLargeError(TlogProofError):
    code = "TLOG_PROOF_TOO_LARGE"
    title = "tlog-proof too large"


class TlogProofValueError(InputError):
    """A proof to format has an invalid index, hash or checkpoint (exit 2)."""

    code = "TLOG_PROOF_INVALID_VALUE"
    title = "Invalid tlog-proof value"


@dataclass(frozen=True)
class TlogProof:
    """A parsed (not yet verified) tlog-proof."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None


def format_proof(
    index: int,
    proof: Sequence[bytes],
    signed_checkpoint: bytes,
    extra: bytes | None = None,
) -> bytes:
    """The tlog-proof file for leaf `index`, its inclusion proof and the signed checkpoint
    note it was computed against; `extra` (opaque, unauthenticated) is written when given."""
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < MAX_TREE_SIZE:
        raise TlogProofValueError(f"index {index!r} is not a uint64")
    if not isinstance(proof, (list, tuple)) or len(proof) > MAX_PROOF_HASHES:
        raise TlogProofValueError("proof must be a list of at most 64 hashes")
    if not all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in proof):
        raise TlogProofValueError(f"proof hashes must be {HASH_SIZE} bytes each")
    if not isinstance(signed_checkpoint, bytes) or not signed_checkpoint.endswith(b"\n"):
        raise TlogProofValueError("signed checkpoint must be note bytes ending in a newline")
    if extra is not None and (not isinstance(extra, bytes) or not 0 < len(extra) <= MAX_EXTRA_SIZE):
        raise TlogProofValueError(f"extra must be 1 to {MAX_EXTRA_SIZE} bytes")
    lines = [HEADER]
    if extra is not None:
        lines.append(b"extra " + base64.b64encode(extra))
    lines.append(b"index %d" % index)
    lines.extend(base64.b64encode(h) for h in proof)
    return b"\n".join(lines) + b"\n\n" + signed_checkpoint


def parse_proof(data: bytes) -> TlogProof:
    """Parse a tlog-proof strictly (canonical index, strict base64, 32-byte hashes); the
    checkpoint is returned verbatim and checked by `verify_tlog_proof`."""
    if not isinstance(data, bytes):
        raise TlogProofError("a tlog-proof must be bytes")
    if len(data) > MAX_PROOF_SIZE:
        raise TlogProofTooLargeError(f"tlog-proof is over {MAX_PROOF_SIZE} bytes")
    lines = _Lines(data)
    if lines.next() != HEADER:
        raise TlogProofError("first line must be c2sp.org/tlog-proof@v1")
    line = lines.next()
    extra = None
    if line.startswith(b"extra "):
        extra = _b64(line[len(b"extra ") :])
        if extra is None or not extra:
            raise TlogProofError("extra line is not non-empty strict base64")
        line = lines.next()
    match = _INDEX_RE.fullmatch(line)
    if match is None or int(match[1]) > MAX_TREE_SIZE:
        raise TlogProofError("expected 'index N' with a canonical uint64 decimal")
    hashes: list[bytes] = []
    while (line := lines.next()) != b"":
        if len(hashes) == MAX_PROOF_HASHES:
            raise TlogProofError(f"inclusion proof has over {MAX_PROOF_HASHES} hashes")
        h = _b64(line)
        if h is None or len(h) != HASH_SIZE:
            raise TlogProofError(f"proof line {len(hashes) + 1} is not a base64 SHA-256 hash")
        hashes.append(h)
    checkpoint = lines.rest()
    if not checkpoint:
        raise TlogProofError("the signed checkpoint is missing")
    return TlogProof(int(match[1]), tuple(hashes), checkpoint, extra)


def verify_tlog_proof(
    data: bytes, leaf_hash: bytes, verifiers: Sequence[NoteVerifier], origin: str
) -> Checkpoint:
    """Verify a tlog-proof for `leaf_hash` (computed by the caller from the logged data): the
    checkpoint is signed by a trusted key for `origin` and the proof binds the leaf to its
    root. Returns the checkpoint; raises TLOG_PROOF_*, CHECKPOINT_* or MERKLE_* errors."""
    proof = parse_proof(data)
    cp = open_checkpoint(proof.checkpoint, verifiers, origin)
    verify_inclusion(leaf_hash, proof.index, cp.size, list(proof.hashes), cp.root)
    return cp


class _Lines:
    """Newline-terminated lines of a byte string; a line without its newline is an error."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def next(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise TlogProofError("tlog-proof ends before its checkpoint")
        line, self.pos = self.data[self.pos : end], end + 1
        return line

    def rest(self) -> bytes:
        return self.data[self.pos :]


def _b64(line: bytes) -> bytes | None:
    try:
        return b64decode_strict(line.decode("ascii"))
    except UnicodeDecodeError:
        return None


__all__ = [
    "FILE_EXTENSION",
    "HEADER",
    "TlogProof",
    "TlogProofError",
    "TlogProofTooLargeError",
    "TlogProofValueError",
    "format_proof",
    "parse_proof",
    "verify_tlog_proof",
]
