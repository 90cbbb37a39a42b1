"""C2SP checkpoints and signed notes: the spec's example, exact bytes, strict rejections."""

from __future__ import annotations

import base64

import pytest
from batterytrace.credentials.errors import InputError, VerificationError
from batterytrace.credentials.keys import Ed25519Key
from batterytrace.ledger.checkpoint import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    BadSignatureError,
    Checkpoint,
    CheckpointBodyError,
    CheckpointError,
    CheckpointOriginError,
    CheckpointRootError,
    CheckpointSizeError,
    CheckpointValueError,
    NoteMalformedError,
    NoteTooLargeError,
    NoteVerifier,
    UntrustedNoteError,
    VerifierKeyError,
    key_id,
    note_verifier_key,
    open_checkpoint,
    open_note,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
)
from hypothesis import given
from hypothesis import strategies as st

# c2sp.org/signed-note, "Verifier keys / Example".
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2"
    "ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()

ORIGIN = "example.com/batterytrace"
KEY = Ed25519Key.from_seed(bytes(range(32)))
OTHER = Ed25519Key.from_seed(bytes(32))
VERIFIER = NoteVerifier.ed25519(ORIGIN, KEY.public_key)
ROOT8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
CP = Checkpoint(ORIGIN, 8, ROOT8)
# Ed25519 is deterministic: this is the exact note for KEY (documented in docs/proofs.md).
KNOWN_VKEY = "example.com/batterytrace+043d1b5e+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
KNOWN_NOTE = (
    "example.com/batterytrace\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n"
    "— example.com/batterytrace BD0bXviKTM1OIzofx1ehJg7IgF5cjp5FGHZYszBVJI2+94JXfsLEPTOcKPJJAfbi"
    "X8fArjR11XU0X9A/rMvsUIsdFwM=\n"
).encode()


def test_spec_example_verifies():
    verifier = parse_verifier_key(SPEC_VKEY)
    assert verifier.name == "example.com/foo" and verifier.key_id.hex() == "530d903a"
    assert verifier.vkey == SPEC_VKEY
    assert open_note(SPEC_NOTE, [verifier]) == b"This is an example message.\n"
    # The example is a note, not a checkpoint.
    with pytest.raises(CheckpointBodyError):
        open_checkpoint(SPEC_NOTE, [verifier])
    tampered = SPEC_NOTE.replace(b"example message", b"example massage")
    with pytest.raises(BadSignatureError):
        open_note(tampered, [verifier])


def test_known_checkpoint_bytes():
    assert CP.body() == f"{ORIGIN}\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n".encode()
    assert note_verifier_key(ORIGIN, KEY.public_key) == KNOWN_VKEY
    assert key_id(ORIGIN, KEY.public_key).hex() == "043d1b5e"
    assert sign_checkpoint(CP, ORIGIN, KEY) == KNOWN_NOTE
    assert open_checkpoint(KNOWN_NOTE, [parse_verifier_key(KNOWN_VKEY)], ORIGIN) == CP


def test_extensions_and_empty_tree_round_trip():
    cp = Checkpoint(ORIGIN, 0, bytes(32), ("ext one", "ext:2"))
    assert cp.body().endswith(b"ext one\next:2\n")
    assert open_checkpoint(sign_checkpoint(cp, ORIGIN, KEY), [VERIFIER]) == cp


def test_unknown_signatures_are_ignored_but_one_trusted_is_needed():
    cosigned = sign_note(CP.body(), "witness.example", OTHER)
    both = KNOWN_NOTE + cosigned.split(b"\n\n", 1)[1]
    assert open_checkpoint(both, [VERIFIER], ORIGIN) == CP
    witness = NoteVerifier.ed25519("witness.example", OTHER.public_key)
    assert open_checkpoint(both, [witness], ORIGIN) == CP
    assert open_checkpoint(both, [witness, VERIFIER], ORIGIN) == CP
    with pytest.raises(UntrustedNoteError):
        open_checkpoint(cosigned, [VERIFIER])
    with pytest.raises(UntrustedNoteError):
        open_checkpoint(KNOWN_NOTE, [])
    # Same name, other key (so another key id): ignored, hence untrusted.
    with pytest.raises(UntrustedNoteError):
        open_checkpoint(KNOWN_NOTE, [NoteVerifier.ed25519(ORIGIN, OTHER.public_key)])
    # Same name and key id, other public key: the signature MUST be checked, and fails.
    impostor = NoteVerifier(ORIGIN, VERIFIER.key_id, OTHER.public_key)
    with pytest.raises(BadSignatureError):
        open_checkpoint(KNOWN_NOTE, [impostor])


def test_bad_trusted_signature_rejects_the_note_even_beside_a_good_one():
    witness = NoteVerifier.ed25519("witness.example", OTHER.public_key)
    # The witness's name and key id, but a signature by another key.
    forged = witness.key_id + KEY.sign(CP.body())
    line = f"— witness.example {base64.b64encode(forged).decode()}\n".encode()
    assert open_checkpoint(KNOWN_NOTE + line, [VERIFIER]) == CP  # unknown to this verifier
    with pytest.raises(BadSignatureError):
        open_checkpoint(KNOWN_NOTE + line, [VERIFIER, witness])


def _signed_text(text: str) -> bytes:
    return sign_note(text.encode(), ORIGIN, KEY)


ROOT_B64 = base64.b64encode(ROOT8).decode()
SIG_LINE = KNOWN_NOTE.split(b"\n\n")[1]

NOTE_REJECTIONS = [
    ("not utf-8", KNOWN_NOTE.replace(b"8\n", b"\xff\n", 1), NoteMalformedError),
    ("carriage returns", KNOWN_NOTE.replace(b"\n", b"\r\n"), NoteMalformedError),
    ("tab", KNOWN_NOTE.replace(b"batterytrace\n", b"batterytrace\t\n", 1), NoteMalformedError),
    ("nul", KNOWN_NOTE.replace(b"8\n", b"8\0\n", 1), NoteMalformedError),
    ("no final newline", KNOWN_NOTE[:-1], NoteMalformedError),
    ("no blank line", KNOWN_NOTE.replace(b"\n\n", b"\n"), NoteMalformedError),
    ("no signatures", CP.body() + b"\n", NoteMalformedError),
    ("trailing blank line", KNOWN_NOTE + b"\n", NoteMalformedError),
    ("hyphen for em dash", KNOWN_NOTE.replace("—".encode(), b"-"), NoteMalformedError),
    ("en dash for em dash", KNOWN_NOTE.replace("—".encode(), "–".encode()), NoteMalformedError),
    ("no space after dash", KNOWN_NOTE.replace("— ".encode(), "—".encode()), NoteMalformedError),
    ("no signature", KNOWN_NOTE.replace(SIG_LINE, f"— {ORIGIN}\n".encode()), NoteMalformedError),
    ("bad base64", KNOWN_NOTE.replace(b"BD0b", b"BD0*"), NoteMalformedError),
    ("unpadded base64", KNOWN_NOTE.replace(b"M=\n", b"M\n"), NoteMalformedError),
    (
        "space in key name",
        KNOWN_NOTE.replace(b".com/batterytrace BD", b".com/ x BD"),
        NoteMalformedError,
    ),
    (
        "plus in key name",
        KNOWN_NOTE.replace(b".com/batterytrace BD", b".com/+ BD"),
        NoteMalformedError,
    ),
    (
        "signature too short",
        _signed_text("a\n").split(b"\n\n")[0]
        + f"\n\n— k {base64.b64encode(b'1234').decode()}\n".encode(),
        NoteMalformedError,
    ),
    ("duplicate signature", KNOWN_NOTE + SIG_LINE, NoteMalformedError),
    ("too large", b"x" * (MAX_NOTE_SIZE + 1), NoteTooLargeError),
    ("too many signatures", CP.body() + b"\n" + SIG_LINE * (MAX_SIGNATURES + 1), NoteTooLargeError),
    ("body changed", KNOWN_NOTE.replace(b"\n8\n", b"\n9\n"), BadSignatureError),
    ("root changed", KNOWN_NOTE.replace(b"XcnaeacG", b"XcnaeacH"), BadSignatureError),
    ("signature changed", KNOWN_NOTE.replace(b"sUIsdFwM=", b"sUIsdFwA="), BadSignatureError),
    (
        "key name changed",
        KNOWN_NOTE.replace(b"com/batterytrace BD", b"com/batterytrac BD"),
        UntrustedNoteError,
    ),
    ("key id changed", KNOWN_NOTE.replace(b"BD0bXviK", b"BD0cXviK"), UntrustedNoteError),
    ("size 01", _signed_text(f"{ORIGIN}\n08\n{ROOT_B64}\n"), CheckpointSizeError),
    ("size +8", _signed_text(f"{ORIGIN}\n+8\n{ROOT_B64}\n"), CheckpointSizeError),
    ("size -1", _signed_text(f"{ORIGIN}\n-1\n{ROOT_B64}\n"), CheckpointSizeError),
    ("size 8.0", _signed_text(f"{ORIGIN}\n8.0\n{ROOT_B64}\n"), CheckpointSizeError),
    ("size with space", _signed_text(f"{ORIGIN}\n 8\n{ROOT_B64}\n"), CheckpointSizeError),
    ("size in arabic digits", _signed_text(f"{ORIGIN}\n٨\n{ROOT_B64}\n"), CheckpointSizeError),
    ("size 2**64", _signed_text(f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n"), CheckpointSizeError),
    ("size 0x8", _signed_text(f"{ORIGIN}\n0x8\n{ROOT_B64}\n"), CheckpointSizeError),
    ("root not base64", _signed_text(f"{ORIGIN}\n8\n{ROOT_B64[:-2]}*=\n"), CheckpointRootError),
    ("root unpadded", _signed_text(f"{ORIGIN}\n8\n{ROOT_B64[:-1]}\n"), CheckpointRootError),
    (
        "root 31 bytes",
        _signed_text(f"{ORIGIN}\n8\n{base64.b64encode(ROOT8[:31]).decode()}\n"),
        CheckpointRootError,
    ),
    (
        "root 33 bytes",
        _signed_text(f"{ORIGIN}\n8\n{base64.b64encode(ROOT8 + b'x').decode()}\n"),
        CheckpointRootError,
    ),
    ("root padding bits", _signed_text(f"{ORIGIN}\n8\n{ROOT_B64[:-2]}h=\n"), CheckpointRootError),
    (
        "root base64url",
        _signed_text(f"{ORIGIN}\n8\n{ROOT_B64.replace('+', '-')}\n"),
        CheckpointRootError,
    ),
    ("two lines", _signed_text(f"{ORIGIN}\n8\n"), CheckpointBodyError),
    ("empty origin", _signed_text(f"\n8\n{ROOT_B64}\n"), CheckpointBodyError),
    ("empty extension", _signed_text(f"{ORIGIN}\n8\n{ROOT_B64}\n\next\n"), CheckpointBodyError),
]


@pytest.mark.parametrize(
    ("note", "error"), [c[1:] for c in NOTE_REJECTIONS], ids=[c[0] for c in NOTE_REJECTIONS]
)
def test_rejections(note, error):
    with pytest.raises(error) as info:
        open_checkpoint(note, [VERIFIER])
    assert isinstance(info.value, CheckpointError) and info.value.exit_code == 1


def test_wrong_origin():
    with pytest.raises(CheckpointOriginError):
        open_checkpoint(KNOWN_NOTE, [VERIFIER], origin="example.com/other")
    # The origin is the first line, not the key name: a log may sign under another name.
    note = sign_checkpoint(Checkpoint("other.example/log", 1, ROOT8), ORIGIN, KEY)
    with pytest.raises(CheckpointOriginError):
        open_checkpoint(note, [VERIFIER], origin=ORIGIN)
    assert open_checkpoint(note, [VERIFIER], origin="other.example/log").size == 1


def test_not_bytes():
    with pytest.raises(NoteMalformedError):
        open_checkpoint(KNOWN_NOTE.decode(), [VERIFIER])  # type: ignore[arg-type]


@given(st.data())
def test_every_single_byte_change_is_rejected(data):
    position = data.draw(st.integers(0, len(KNOWN_NOTE) - 1))
    mask = data.draw(st.integers(1, 255))
    mutated = bytearray(KNOWN_NOTE)
    mutated[position] ^= mask
    with pytest.raises(CheckpointError):
        open_checkpoint(bytes(mutated), [VERIFIER], ORIGIN)


@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_garbage_raises_checkpoint_errors_only(note):
    with pytest.raises(CheckpointError):
        open_checkpoint(note, [VERIFIER])
    with pytest.raises(CheckpointError):
        open_checkpoint(note + b"\n\n" + SIG_LINE, [VERIFIER])


LINE = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30)


@given(
    LINE, st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32), st.lists(LINE, max_size=3)
)
def test_round_trip(origin, size, root, extensions):
    cp = Checkpoint(origin, size, root, tuple(extensions))
    assert open_checkpoint(sign_checkpoint(cp, ORIGIN, KEY), [VERIFIER], origin) == cp


# --- verifier keys and values built in code ---------------------------------------------------

VKEY_REJECTIONS = [
    ("two parts", "example.com/foo+530d903a"),
    ("four parts", SPEC_VKEY + "+x"),
    ("empty name", "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
    ("space in name", SPEC_VKEY.replace("example.com", "example com")),
    ("upper-case hex", SPEC_VKEY.replace("530d903a", "530D903A")),
    ("short key id", SPEC_VKEY.replace("530d903a", "530d903")),
    ("wrong key id", SPEC_VKEY.replace("530d903a", "530d903b")),
    ("other name", SPEC_VKEY.replace("example.com/foo", "example.com/bar")),
    (
        "ECDSA type byte",
        "example.com/foo+530d903a+" + base64.b64encode(b"\x02" + bytes(32)).decode(),
    ),
    ("short key", "example.com/foo+530d903a+" + base64.b64encode(b"\x01" + bytes(31)).decode()),
    ("bad base64", SPEC_VKEY[:-1] + "*"),
    ("not a string", b"example.com/foo"),
]


@pytest.mark.parametrize(
    "vkey", [c[1] for c in VKEY_REJECTIONS], ids=[c[0] for c in VKEY_REJECTIONS]
)
def test_verifier_key_rejections(vkey):
    with pytest.raises(VerifierKeyError) as info:
        parse_verifier_key(vkey)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": ""},
        {"origin": "a\nb"},
        {"size": -1},
        {"size": 2**64},
        {"size": "8"},
        {"size": True},
        {"root": ROOT8[:31]},
        {"root": ROOT8.hex()},
        {"extensions": ("",)},
        {"extensions": ["x"]},
        {"extensions": ("a\nb",)},
    ],
)
def test_invalid_checkpoint_values(kwargs):
    fields = {"origin": ORIGIN, "size": 8, "root": ROOT8, **kwargs}
    with pytest.raises(CheckpointValueError):
        Checkpoint(**fields)


def test_invalid_signing_requests():
    for name in ("", "a b", "a+b", "a\u2003b", None):
        with pytest.raises(CheckpointValueError):
            sign_checkpoint(CP, name, KEY)  # type: ignore[arg-type]
    for text in (b"no newline", b"tab\t\n", b"\xff\n", "str\n"):
        with pytest.raises(CheckpointValueError):
            sign_note(text, ORIGIN, KEY)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        sign_checkpoint(CP, ORIGIN, Ed25519Key(public_key=KEY.public_key))
    assert issubclass(CheckpointError, VerificationError)
