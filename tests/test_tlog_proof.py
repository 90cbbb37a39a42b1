"""C2SP tlog-proof files: exact bytes, strict parsing, verification against checkpoint + tree."""

from __future__ import annotations

import base64

import pytest
from batterytrace.credentials.errors import VerificationError
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.ledger.checkpoint import (
    BadSignatureError,
    Checkpoint,
    CheckpointOriginError,
    NoteVerifier,
    UntrustedNoteError,
    sign_checkpoint,
)
from batterytrace.ledger.merkle import (
    ProofLengthError,
    RootMismatchError,
    TreeSizeError,
    inclusion_proof,
    leaf_hash,
    root_hash,
)
from batterytrace.ledger.tlog_proof import (
    MAX_PROOF_SIZE,
    TlogProof,
    TlogProofError,
    TlogProofTooLargeError,
    TlogProofValueError,
    format_proof,
    parse_proof,
    verify_tlog_proof,
)
from hypothesis import given
from hypothesis import strategies as st

ORIGIN = "example.com/batterytrace"
KEY = Ed25519Key.from_seed(bytes(range(32)))
VERIFIER = NoteVerifier.ed25519(ORIGIN, KEY.public_key)
CT_DATA = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
LEAVES = [leaf_hash(d) for d in CT_DATA]
NOTE = sign_checkpoint(Checkpoint(ORIGIN, 8, root_hash(LEAVES)), ORIGIN, KEY)
PROOF5 = inclusion_proof(LEAVES, 5)
# The RFC 6962 vector PATH(5, D[8]) against the checkpoint of docs/proofs.md.
KNOWN_FILE = (
    b"c2sp.org/tlog-proof@v1\n"
    b"index 5\n"
    b"vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=\n"
    b"yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=\n"
    b"037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=\n"
    b"\n" + NOTE
)


def test_known_file():
    assert format_proof(5, PROOF5, NOTE) == KNOWN_FILE
    assert parse_proof(KNOWN_FILE) == TlogProof(5, tuple(PROOF5), NOTE, None)
    assert verify_tlog_proof(KNOWN_FILE, LEAVES[5], [VERIFIER], ORIGIN).size == 8


def test_extra_and_empty_proof():
    data = format_proof(5, PROOF5, NOTE, extra=b"age-v1.2.1")
    assert data.split(b"\n")[1] == b"extra " + base64.b64encode(b"age-v1.2.1")
    assert parse_proof(data).extra == b"age-v1.2.1"
    assert verify_tlog_proof(data, LEAVES[5], [VERIFIER], ORIGIN).root == root_hash(LEAVES)
    one = sign_checkpoint(Checkpoint(ORIGIN, 1, LEAVES[0]), ORIGIN, KEY)
    data = format_proof(0, [], one)
    assert data.startswith(b"c2sp.org/tlog-proof@v1\nindex 0\n\n" + ORIGIN.encode())
    assert verify_tlog_proof(data, LEAVES[0], [VERIFIER], ORIGIN).size == 1


@given(st.integers(1, 300), st.data())
def test_round_trip_any_tree(n, data):
    leaves = [leaf_hash(b"%d" % i) for i in range(n)]
    index = data.draw(st.integers(0, n - 1))
    extra = data.draw(st.none() | st.binary(min_size=1, max_size=40))
    note = sign_checkpoint(Checkpoint(ORIGIN, n, root_hash(leaves)), ORIGIN, KEY)
    file = format_proof(index, inclusion_proof(leaves, index), note, extra)
    assert parse_proof(file).extra == extra
    assert verify_tlog_proof(file, leaves[index], [VERIFIER], ORIGIN).size == n
    for other in {0, index - 1, index + 1, n - 1} - {index, -1, n}:
        with pytest.raises(VerificationError):
            verify_tlog_proof(file, leaves[other], [VERIFIER], ORIGIN)


@given(st.data())
def test_every_single_byte_change_is_rejected(data):
    position = data.draw(st.integers(0, len(KNOWN_FILE) - 1))
    mutated = bytearray(KNOWN_FILE)
    mutated[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(VerificationError):
        verify_tlog_proof(bytes(mutated), LEAVES[5], [VERIFIER], ORIGIN)


def _lines(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines) + b"\n" + NOTE


H = [base64.b64encode(h) for h in PROOF5]

PARSE_REJECTIONS = [
    ("not bytes", KNOWN_FILE.decode()),
    ("empty", b""),
    ("wrong header", KNOWN_FILE.replace(b"@v1", b"@v2", 1)),
    ("header with space", KNOWN_FILE.replace(b"@v1", b"@v1 ", 1)),
    ("no header", KNOWN_FILE.split(b"\n", 1)[1]),
    ("CRLF", KNOWN_FILE.replace(b"\n", b"\r\n")),
    ("extra empty", _lines(b"c2sp.org/tlog-proof@v1", b"extra ", b"index 5", *H)),
    ("extra bad base64", _lines(b"c2sp.org/tlog-proof@v1", b"extra ab*d", b"index 5", *H)),
    ("extra after index", _lines(b"c2sp.org/tlog-proof@v1", b"index 5", b"extra YQ==", *H)),
    ("no index", _lines(b"c2sp.org/tlog-proof@v1", *H)),
    ("index 05", KNOWN_FILE.replace(b"index 5", b"index 05")),
    ("index -5", KNOWN_FILE.replace(b"index 5", b"index -5")),
    ("index +5", KNOWN_FILE.replace(b"index 5", b"index +5")),
    ("index two spaces", KNOWN_FILE.replace(b"index 5", b"index  5")),
    ("Index", KNOWN_FILE.replace(b"index 5", b"Index 5")),
    ("index 2**64", KNOWN_FILE.replace(b"index 5", b"index %d" % 2**64)),
    ("hash not base64", KNOWN_FILE.replace(H[0], H[0][:-2] + b"*=")),
    ("hash unpadded", KNOWN_FILE.replace(H[0], H[0][:-1])),
    ("hash 33 bytes", KNOWN_FILE.replace(H[0], base64.b64encode(PROOF5[0] + b"x"))),
    ("hash trailing space", KNOWN_FILE.replace(H[0], H[0] + b" ")),
    ("hash in hex", KNOWN_FILE.replace(H[0], PROOF5[0].hex().encode())),
    ("no blank line", KNOWN_FILE.replace(H[2] + b"\n\n", H[2] + b"\n")),
    ("no checkpoint", KNOWN_FILE[: KNOWN_FILE.index(H[2]) + len(H[2]) + 2]),
    ("ends in the header", b"c2sp.org/tlog-proof@v1\nindex 5"),
    ("65 hashes", _lines(b"c2sp.org/tlog-proof@v1", b"index 5", *[H[0]] * 65)),
]


@pytest.mark.parametrize(
    "data", [c[1] for c in PARSE_REJECTIONS], ids=[c[0] for c in PARSE_REJECTIONS]
)
def test_parse_rejections(data):
    with pytest.raises(TlogProofError) as info:
        parse_proof(data)
    assert info.value.exit_code == 1
    with pytest.raises(TlogProofError):
        verify_tlog_proof(data, LEAVES[5], [VERIFIER], ORIGIN)


def test_too_large():
    with pytest.raises(TlogProofTooLargeError):
        parse_proof(KNOWN_FILE + b"x" * MAX_PROOF_SIZE)


OTHER = Ed25519Key.from_seed(bytes(32))
NOTE3 = sign_checkpoint(Checkpoint(ORIGIN, 3, root_hash(LEAVES[:3])), ORIGIN, KEY)

VERIFY_REJECTIONS = [
    ("wrong leaf", (KNOWN_FILE, LEAVES[4], [VERIFIER], ORIGIN), RootMismatchError),
    ("wrong origin", (KNOWN_FILE, LEAVES[5], [VERIFIER], "other.example"), CheckpointOriginError),
    (
        "untrusted key",
        (KNOWN_FILE, LEAVES[5], [NoteVerifier.ed25519(ORIGIN, OTHER.public_key)], ORIGIN),
        UntrustedNoteError,
    ),
    ("no keys", (KNOWN_FILE, LEAVES[5], [], ORIGIN), UntrustedNoteError),
    (
        "checkpoint of another size",
        (format_proof(5, PROOF5, NOTE3), LEAVES[5], [VERIFIER], ORIGIN),
        TreeSizeError,
    ),
    (
        "hash appended",
        (format_proof(5, [*PROOF5, PROOF5[0]], NOTE), LEAVES[5], [VERIFIER], ORIGIN),
        ProofLengthError,
    ),
    (
        "hash dropped",
        (format_proof(5, PROOF5[:2], NOTE), LEAVES[5], [VERIFIER], ORIGIN),
        ProofLengthError,
    ),
    (
        "index moved",
        (format_proof(4, PROOF5, NOTE), LEAVES[5], [VERIFIER], ORIGIN),
        RootMismatchError,
    ),
    (
        "checkpoint size edited",
        (KNOWN_FILE.replace(b"\n8\n", b"\n9\n"), LEAVES[5], [VERIFIER], ORIGIN),
        BadSignatureError,
    ),
]


@pytest.mark.parametrize(
    ("args", "error"), [c[1:] for c in VERIFY_REJECTIONS], ids=[c[0] for c in VERIFY_REJECTIONS]
)
def test_verify_rejections(args, error):
    with pytest.raises(error) as info:
        verify_tlog_proof(*args)
    assert info.value.exit_code == 1


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((-1, PROOF5, NOTE), {}),
        ((True, PROOF5, NOTE), {}),
        (("5", PROOF5, NOTE), {}),
        ((5, b"".join(PROOF5), NOTE), {}),
        ((5, [PROOF5[0][:31]], NOTE), {}),
        ((5, [PROOF5[0]] * 65, NOTE), {}),
        ((5, PROOF5, NOTE.decode()), {}),
        ((5, PROOF5, NOTE[:-1]), {}),
        ((5, PROOF5, NOTE), {"extra": b""}),
        ((5, PROOF5, NOTE), {"extra": "text"}),
    ],
)
def test_format_rejects_bad_values(args, kwargs):
    with pytest.raises(TlogProofValueError) as info:
        format_proof(*args, **kwargs)
    assert info.value.exit_code == 2


def test_docs_show_the_known_answers():
    from conftest import ROOT

    doc = (ROOT / "docs" / "proofs.md").read_text(encoding="utf-8")
    indented = "".join(
        f"    {line}\n" if line else "\n" for line in KNOWN_FILE.decode().split("\n")
    )
    assert indented.rstrip("\n") in doc
    assert VERIFIER.vkey in doc
