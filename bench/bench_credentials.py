"""Credentials: canonicalization, eddsa-jcs-2022 sign and verify of the fixed 1.5 KB credential.

Every rate is one core, one process, beside the raw limits of bench/limits.py measured in the
same run. The figures and the limits are measured in interleaved rounds and each keeps its
best round: on a shared 2-core machine noise only ever slows a run down, and interleaving
gives a figure and its limit the same chances of a quiet moment.

The credential (bench/fixtures.py) is issued by the did:key of the W3C vc-di-eddsa test vector,
whose (public, insecure) secret key is below, so the full verification binds the proof to the
issuer like any real did:key credential.
"""

from __future__ import annotations

import json
import re
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785
from batterytrace.credentials import data_integrity
from batterytrace.credentials.canonical import canonicalize
from batterytrace.credentials.credential_types import validate_credential_document
from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.did import OfflineResolver
from batterytrace.credentials.keys import Ed25519Key, decode_secret_multibase
from batterytrace.credentials.vc import verify_credential
from nacl.signing import SigningKey

from bench.fixtures import credential_1_5kb
from bench.limits import ed25519_sign_per_s, ed25519_verify_per_s, rate, rfc8785_per_s
from bench.run import row

# w3c/vc-di-eddsa/keyPair.json: the published test-vector key (did:key:z6MkrJVna...).
VECTOR_SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
CREATED = "2026-01-15T08:30:00Z"
AT = datetime(2026, 6, 1, tzinfo=UTC)  # inside the fixture's validFrom..validUntil
ROUNDS = 5
RUN_SECONDS = 0.4  # per figure and round (the raw limits take their own 1 s)

_NACL_KEY = SigningKey(b"\x01" * 32)
_NACL_SIGNED = _NACL_KEY.sign(b"\x02" * 64)


def _key() -> Ed25519Key:
    return Ed25519Key.from_seed(decode_secret_multibase(VECTOR_SECRET))


def typed_credential() -> dict[str, Any]:
    """The MineralOriginCredential example of docs/credentials.md (a battery-domain type, so
    `credential verify` also checks its type's schema), issued by the vector key."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "credentials.md").read_text()
    body = re.search(r"^## MineralOriginCredential\n.*?```json\n(.*?)\n```", text, re.S | re.M)
    assert body is not None
    doc = {k: v for k, v in json.loads(body.group(1)).items() if k != "proof"}
    doc["issuer"] = {**doc["issuer"], "id": _key().did_key} if isinstance(
        doc["issuer"], dict) else _key().did_key
    return sign(doc, _key(), created=CREATED)


def signed_credential() -> dict[str, Any]:
    """The fixed credential with its eddsa-jcs-2022 proof (deterministic: fixed `created`)."""
    return sign(credential_1_5kb(), _key(), created=CREATED)


def peak_memory_mb(fn: Callable[[], object], calls: int = 50) -> float:
    """Peak Python heap (tracemalloc) above the start while calling `fn` `calls` times."""
    fn()  # warm caches first: their one-off allocations are not per-operation memory
    tracemalloc.start()
    try:
        for _ in range(calls):
            fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return round(peak / 2**20, 3)


def best_of_rounds(figures: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Measure every figure once per round, `rounds` times; keep each one's best."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, measure in figures.items():
            best[name] = max(best.get(name, 0.0), measure())
    return best


def _fresh(limit: Callable[[], float]) -> Callable[[], float]:
    """A raw limit of bench/limits.py measured anew (past its functools.cache)."""
    return getattr(limit, "__wrapped__", limit)


@contextmanager
def _rfc8785_canonicalizer() -> Iterator[None]:
    """Swap data_integrity's canonicalizer for plain rfc8785.dumps (the path before the fast
    canonicalizer), to show what the canonicalizer is worth in the full verification."""
    original = data_integrity.canonicalize
    data_integrity.canonicalize = rfc8785.dumps
    try:
        yield
    finally:
        data_integrity.canonicalize = original


def _nacl_verify_once() -> object:
    """libsodium (PyNaCl) Ed25519 verify of a 64-byte message: the primitive data_integrity
    calls, measured beside the pyca/cryptography limit."""
    return _NACL_KEY.verify_key.verify(_NACL_SIGNED)


def run() -> list[dict[str, object]]:
    document = credential_1_5kb()
    key = _key()
    signed = signed_credential()
    resolver = OfflineResolver()
    size = {
        "document_bytes": len(canonicalize(document)),
        "signed_bytes": len(canonicalize(signed)),
    }

    def sign_once() -> object:
        return sign(document, key, created=CREATED)

    def verify_full() -> object:
        return verify_credential(signed, resolver, at=AT)

    typed = typed_credential()

    def verify_typed() -> object:
        """Every check `credential verify` makes of the document itself: verify_credential
        (structure, W3C schema, proof, issuer, validity) and the type's schema and model."""
        verify_credential(typed, resolver, at=AT)
        validate_credential_document(typed)
        return typed

    def verify_no_schema() -> object:
        return verify_credential(signed, resolver, at=AT, schema=False)

    def verify_proof_only() -> object:
        return verify_credential(signed, resolver, at=AT, proof_only=True)

    def with_rfc8785(fn: Callable[[], object]) -> Callable[[], float]:
        def measure() -> float:
            with _rfc8785_canonicalizer():
                return rate(fn, RUN_SECONDS)

        return measure

    verify_typed()
    verify_full()  # fail loudly before measuring if the fixture does not verify
    best = best_of_rounds(
        {
            "ed25519_verify_per_s": _fresh(ed25519_verify_per_s),
            "ed25519_sign_per_s": _fresh(ed25519_sign_per_s),
            "rfc8785_per_s": _fresh(rfc8785_per_s),
            "nacl": lambda: rate(_nacl_verify_once, RUN_SECONDS),
            "canonicalize": lambda: rate(lambda: canonicalize(document), RUN_SECONDS),
            "sign": lambda: rate(sign_once, RUN_SECONDS),
            "verify": lambda: rate(verify_full, RUN_SECONDS),
            "verify_typed": lambda: rate(verify_typed, RUN_SECONDS),
            "no_schema": lambda: rate(verify_no_schema, RUN_SECONDS),
            "proof_only": lambda: rate(verify_proof_only, RUN_SECONDS),
            "verify_rfc8785": with_rfc8785(verify_full),
            "proof_only_rfc8785": with_rfc8785(verify_proof_only),
        },
        ROUNDS,
    )
    # The shared cached figure of each limit (other modules' rows use it) counts as a round.
    for limit in (ed25519_verify_per_s, ed25519_sign_per_s, rfc8785_per_s):
        best[limit.__name__] = max(best[limit.__name__], limit())
    raw_verify = best["ed25519_verify_per_s"]
    return [
        row("canonicalize_1_5kb_per_s", best["canonicalize"], "docs/s",
            "rfc8785_per_s", best["rfc8785_per_s"], **size,
            note="ratio = speed-up of canonicalize() over rfc8785.dumps"),
        row("credential_sign_per_s", best["sign"], "credentials/s",
            "ed25519_sign_per_s", best["ed25519_sign_per_s"],
            peak_memory_mb=peak_memory_mb(sign_once), **size),
        row("credential_verify_per_s", best["verify"], "credentials/s",
            "ed25519_verify_per_s", raw_verify, peak_memory_mb=peak_memory_mb(verify_full),
            **size, note="verify_credential: structure, JSON Schema, proof, issuer, validity"),
        row("credential_verify_typed_per_s", best["verify_typed"], "credentials/s",
            "ed25519_verify_per_s", raw_verify, peak_memory_mb=peak_memory_mb(verify_typed),
            note="verify_credential and the type's JSON Schema and model (a typed credential)"),
        row("credential_verify_no_schema_per_s", best["no_schema"], "credentials/s",
            "ed25519_verify_per_s", raw_verify, **size,
            note="verify_credential(schema=False): all but the jsonschema pass"),
        row("credential_verify_proof_only_per_s", best["proof_only"], "credentials/s",
            "ed25519_verify_per_s", raw_verify,
            peak_memory_mb=peak_memory_mb(verify_proof_only), **size,
            note="verify_credential(proof_only=True)"),
        row("credential_verify_rfc8785_per_s", best["verify_rfc8785"], "credentials/s",
            "ed25519_verify_per_s", raw_verify, **size,
            note="full verification with rfc8785.dumps as canonicalizer (before)"),
        row("credential_verify_proof_only_rfc8785_per_s", best["proof_only_rfc8785"],
            "credentials/s", "ed25519_verify_per_s", raw_verify, **size,
            note="proof-only verification with rfc8785.dumps as canonicalizer (before)"),
        row("ed25519_verify_nacl_per_s", best["nacl"], "verifies/s",
            "ed25519_verify_per_s", raw_verify,
            note="libsodium (PyNaCl) verify: the primitive data_integrity calls"),
        row("credential_verify_vs_nacl", best["verify"], "credentials/s",
            "ed25519_verify_nacl_per_s", best["nacl"],
            note="credential_verify_per_s against the primitive it actually calls"),
    ]  # fmt: skip
