"""The one Ed25519 verification path (`credentials.keys.verify_ed25519`) and its strictness.

The twelve vectors of "Taming the many EdDSAs" (novifinancial/ed25519-speccheck, cases.json;
tests/data/ed25519_speccheck_SOURCE.txt) each get the verdict the docstring of verify_ed25519
and docs/credentials.md document, with the reason the refusal gives:

| # | what the vector is                              | verdict  | why                            |
|---|-------------------------------------------------|----------|--------------------------------|
| 0 | small-order A and R, S = 0                      | refused  | SMALL_ORDER_KEY (A checked 1st)|
| 1 | small-order A, mixed-order R                    | refused  | SMALL_ORDER_KEY                |
| 2 | mixed-order A, small-order R                    | refused  | SMALL_ORDER_R                  |
| 3 | mixed A and R, valid cofactored and cofactorless| ACCEPTED | a valid RFC 8032 signature; we |
|   |                                                 |          | do not demand a prime-order A  |
| 4 | mixed A and R, valid cofactored only            | refused  | MISMATCH: cofactorless equation|
| 5 | mixed A, order-L R, "pre-reduced" cofactored    | refused  | MISMATCH: cofactorless equation|
| 6 | S > L (S + L of a valid S)                      | refused  | NON_CANONICAL_S (malleability) |
| 7 | S >> L (high bits set)                          | refused  | NON_CANONICAL_S                |
| 8 | non-canonical small-order R, reduced for hash   | refused  | SMALL_ORDER_R (of the 14)      |
| 9 | non-canonical small-order R, not reduced        | refused  | SMALL_ORDER_R                  |
|10 | non-canonical small-order A, reduced for hash   | refused  | SMALL_ORDER_KEY (of the 14)    |
|11 | non-canonical small-order A, not reduced        | refused  | SMALL_ORDER_KEY                |

These are libsodium's and ed25519-dalek `verify_strict`'s verdicts. The refusals other than
MISMATCH come from our checks in Python, before libsodium: a test replaces libsodium with a
verifier that accepts everything and the same vectors are still refused.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from batterytrace.credentials import keys
from batterytrace.credentials.data_integrity import sign, verify_proof_bytes, verify_proofs
from batterytrace.credentials.did import OfflineResolver, b58decode, b58encode
from batterytrace.credentials.errors import Ed25519SignatureError, ProofVerificationError
from batterytrace.credentials.keys import (
    ED25519_L,
    REASON_MALFORMED,
    REASON_MISMATCH,
    REASON_NON_CANONICAL_KEY,
    REASON_NON_CANONICAL_R,
    REASON_NON_CANONICAL_S,
    REASON_SMALL_ORDER_KEY,
    REASON_SMALL_ORDER_R,
    SMALL_ORDER_ENCODINGS,
    Ed25519Key,
    verify_ed25519,
    verify_raw,
)
from batterytrace.ledger.checkpoint import (
    BadSignatureError,
    Checkpoint,
    NoteVerifier,
    open_checkpoint,
    open_note,
    sign_checkpoint,
)

CASES = json.loads(
    (Path(__file__).parent / "data" / "ed25519_speccheck_cases.json").read_text("utf-8")
)
# None: accepted; otherwise the reason of the refusal (see the table above).
EXPECTED: dict[int, str | None] = {
    0: REASON_SMALL_ORDER_KEY,
    1: REASON_SMALL_ORDER_KEY,
    2: REASON_SMALL_ORDER_R,
    3: None,
    4: REASON_MISMATCH,
    5: REASON_MISMATCH,
    6: REASON_NON_CANONICAL_S,
    7: REASON_NON_CANONICAL_S,
    8: REASON_SMALL_ORDER_R,
    9: REASON_SMALL_ORDER_R,
    10: REASON_SMALL_ORDER_KEY,
    11: REASON_SMALL_ORDER_KEY,
}
P = 2**255 - 19
KEY = Ed25519Key.from_seed(bytes(range(32)))


def _case(number: int) -> tuple[bytes, bytes, bytes]:
    case = CASES[number]
    return (
        bytes.fromhex(case["pub_key"]),
        bytes.fromhex(case["signature"]),
        bytes.fromhex(case["message"]),
    )


def _reason(public_key: bytes, signature: bytes, message: bytes) -> str | None:
    try:
        verify_ed25519(public_key, signature, message)
    except Ed25519SignatureError as exc:
        return exc.reason
    return None


def _s_plus_l(signature: bytes) -> bytes:
    """The same signature with S replaced by S + L: the classic malleated twin."""
    s = int.from_bytes(signature[32:], "little")
    return signature[:32] + (s + ED25519_L).to_bytes(32, "little")


def test_the_vector_file_is_the_twelve_cases() -> None:
    assert len(CASES) == 12 == len(EXPECTED)
    assert [c["message"][-4:] for c in CASES[:3]] == ["22b6", "2e79", "b9ab"]


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_speccheck_vector_verdict(number: int) -> None:
    public_key, signature, message = _case(number)
    assert _reason(public_key, signature, message) == EXPECTED[number]
    assert verify_raw(public_key, signature, message) is (EXPECTED[number] is None)


@pytest.mark.parametrize("number", sorted(n for n, r in EXPECTED.items() if r != REASON_MISMATCH))
def test_the_strict_checks_do_not_rely_on_libsodium(
    number: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an equation check that accepts everything, the Python checks alone still refuse."""
    monkeypatch.setattr(keys, "crypto_sign_open", lambda signed, public_key: b"")
    assert _reason(*_case(number)) == EXPECTED[number]


def test_the_small_order_list() -> None:
    """14 encodings: 8 canonical (the 8 small-order points) and 6 non-canonical ones."""
    assert len(SMALL_ORDER_ENCODINGS) == 14
    ys = {int.from_bytes(e, "little") & ((1 << 255) - 1) for e in SMALL_ORDER_ENCODINGS}
    assert sum(y >= P for y in ys) == 2  # p and p + 1, i.e. y = 0 and y = 1 unreduced
    # The vectors' small-order A and R are in the list, with either sign bit.
    assert bytes.fromhex(CASES[0]["pub_key"]) in SMALL_ORDER_ENCODINGS
    assert bytes.fromhex(CASES[2]["signature"])[:32] in SMALL_ORDER_ENCODINGS
    assert bytes.fromhex(CASES[10]["pub_key"]) in SMALL_ORDER_ENCODINGS
    assert bytes.fromhex(CASES[8]["signature"])[:32] in SMALL_ORDER_ENCODINGS


D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _decode_point(encoding: bytes) -> tuple[int, int] | None:
    """RFC 8032 section 5.1.3 decoding, y reduced mod p (None: x = 0 with the sign bit set)."""
    value = int.from_bytes(encoding, "little")
    y, sign = (value & ((1 << 255) - 1)) % P, value >> 255
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == -u % P:
        x = x * SQRT_M1 % P
    assert v * x * x % P == u % P, "not a curve point"
    if x == 0 and sign:
        return None
    return (P - x if x & 1 != sign else x), y


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return x3, y3


def test_the_small_order_list_is_the_whole_8_torsion() -> None:
    """Checked with independent arithmetic: the list decodes to 8 distinct points, each with
    [8]P = identity, so it is the whole torsion subgroup (complete), in every encoding."""
    points = set()
    for encoding in SMALL_ORDER_ENCODINGS:
        point = _decode_point(encoding)
        if point is None:
            continue  # x = 0 with the sign bit: a non-canonical encoding of (0, 1) or (0, -1)
        times_8 = point
        for _ in range(3):
            times_8 = _add(times_8, times_8)
        assert times_8 == (0, 1)
        points.add(point)
    assert len(points) == 8


def test_non_canonical_key_and_r_that_are_not_small_order() -> None:
    """y >= p (other than p and p + 1, which are small-order) is refused for A and for R."""
    message = b"message"
    signature = KEY.sign(message)
    for y in range(P + 2, 2**255):
        encoding = y.to_bytes(32, "little")
        assert encoding not in SMALL_ORDER_ENCODINGS
        assert _reason(encoding, signature, message) == REASON_NON_CANONICAL_KEY
        assert _reason(KEY.public_key, encoding + signature[32:], message) == (
            REASON_NON_CANONICAL_R
        )


def test_a_valid_signature_and_plain_mismatches() -> None:
    message = b"message"
    signature = KEY.sign(message)
    assert _reason(KEY.public_key, signature, message) is None
    assert KEY.verify(signature, message)
    assert _reason(KEY.public_key, signature, b"other") == REASON_MISMATCH
    assert _reason(Ed25519Key.from_seed(bytes(32)).public_key, signature, message) == (
        REASON_MISMATCH
    )
    # S of exactly L - 1 is canonical (then fails the equation); L itself is not.
    top = signature[:32]
    assert _reason(KEY.public_key, top + (ED25519_L - 1).to_bytes(32, "little"), message) == (
        REASON_MISMATCH
    )
    assert _reason(KEY.public_key, top + ED25519_L.to_bytes(32, "little"), message) == (
        REASON_NON_CANONICAL_S
    )


@pytest.mark.parametrize(
    ("public_key", "signature"),
    [(bytes(31), bytes(64)), (KEY.public_key, bytes(63)), (KEY.public_key, bytes(65))],
)
def test_malformed_lengths(public_key: bytes, signature: bytes) -> None:
    assert _reason(public_key, signature, b"m") == REASON_MALFORMED


def test_s_plus_l_is_refused_by_key_verify() -> None:
    signature = KEY.sign(b"message")
    assert KEY.verify(signature, b"message")
    assert not KEY.verify(_s_plus_l(signature), b"message")
    assert _reason(KEY.public_key, _s_plus_l(signature), b"message") == REASON_NON_CANONICAL_S


# --- through the public paths ---------------------------------------------------------------


def _malleated_proof(document: dict) -> dict:
    proof = dict(document["proof"])
    proof["proofValue"] = "z" + b58encode(_s_plus_l(b58decode(proof["proofValue"][1:])))
    return {**document, "proof": proof}


def test_data_integrity_proof_with_s_plus_l_is_refused() -> None:
    unsigned = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "issuer": KEY.did_key,
        "credentialSubject": {"id": "https://id.example.com/lots/1"},
    }
    signed = sign(unsigned, KEY, created="2026-01-01T00:00:00Z")
    verify_proofs(signed, OfflineResolver())
    malleated = _malleated_proof(signed)
    with pytest.raises(ProofVerificationError) as info:
        verify_proofs(malleated, OfflineResolver())
    assert info.value.details["reason"] == REASON_NON_CANONICAL_S
    with pytest.raises(ProofVerificationError) as info:  # the ledger's (event) path
        verify_proof_bytes(malleated, KEY.public_key)
    assert info.value.details["reason"] == REASON_NON_CANONICAL_S


def test_checkpoint_note_with_s_plus_l_is_refused() -> None:
    origin = "example.com/batterytrace"
    verifier = NoteVerifier.ed25519(origin, KEY.public_key)
    note = sign_checkpoint(Checkpoint(origin, 8, bytes(32)), origin, KEY)
    assert open_checkpoint(note, [verifier]).size == 8
    text, _, line = note.decode().rstrip("\n").rpartition("\n")
    prefix, _, encoded = line.rpartition(" ")
    raw = base64.b64decode(encoded)
    malleated_line = f"{prefix} {base64.b64encode(raw[:4] + _s_plus_l(raw[4:])).decode()}"
    malleated = (text + "\n" + malleated_line + "\n").encode()
    for opener in (open_note, open_checkpoint):
        with pytest.raises(BadSignatureError) as info:
            opener(malleated, [verifier])
        assert info.value.details["reason"] == REASON_NON_CANONICAL_S
    assert not verifier.verify(note.split(b"\n\n")[0] + b"\n", _s_plus_l(raw[4:]))
