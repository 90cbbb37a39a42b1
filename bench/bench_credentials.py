"""Credentials: canonicalization, eddsa-jcs-2022 sign and verify of the fixed 1.5 KB credential.

Every rate is one core, one process, measured with `bench.limits.rate` beside the raw limit of
the same run. The credential (bench/fixtures.py) is issued by the did:key of the W3C
vc-di-eddsa test vector, whose (public, insecure) secret key is below, so the full verification
binds the proof to the issuer like any real did:key credential.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import rfc8785
from batterytrace.credentials import data_integrity
from batterytrace.credentials.canonical import canonicalize
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
# Best of several short runs: on a shared 2-core machine, noise only ever slows a run down.
REPEATS = 5
RUN_SECONDS = 0.4


def _key() -> Ed25519Key:
    return Ed25519Key.from_seed(decode_secret_multibase(VECTOR_SECRET))


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


def best_rate(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """The best of `repeats` rates of RUN_SECONDS each."""
    return max(rate(fn, RUN_SECONDS) for _ in range(repeats))


def best_limit(limit: Callable[[], float], repeats: int = 3) -> float:
    """A raw limit of bench/limits.py, its cached figure and fresh runs: the best of them."""
    fresh = getattr(limit, "__wrapped__", limit)  # bypass functools.cache
    return max(limit(), *(fresh() for _ in range(repeats - 1)))


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


_NACL_KEY = SigningKey(b"\x01" * 32)
_NACL_SIGNED = _NACL_KEY.sign(b"\x02" * 64)


def _nacl_verify_once() -> object:
    """libsodium (PyNaCl) Ed25519 verify of a 64-byte message: the primitive data_integrity
    actually calls, beside the pyca/cryptography limit."""
    return _NACL_KEY.verify_key.verify(_NACL_SIGNED)


def run() -> list[dict[str, object]]:
    document = credential_1_5kb()
    key = _key()
    signed = signed_credential()
    resolver = OfflineResolver()
    canonical_bytes = len(canonicalize(document))
    signed_bytes = len(canonicalize(signed))

    def sign_once() -> object:
        return sign(document, key, created=CREATED)

    def verify_full() -> object:
        return verify_credential(signed, resolver, at=AT)

    def verify_proof_only() -> object:
        return verify_credential(signed, resolver, at=AT, proof_only=True)

    def verify_no_schema() -> object:
        return verify_credential(signed, resolver, at=AT, schema=False)

    verify_full()  # fail loudly before measuring if the fixture does not verify
    raw_verify = best_limit(ed25519_verify_per_s)
    raw_sign = best_limit(ed25519_sign_per_s)
    raw_rfc8785 = best_limit(rfc8785_per_s)
    nacl_verify = best_rate(_nacl_verify_once)
    full = best_rate(verify_full)
    with _rfc8785_canonicalizer():
        full_rfc8785 = best_rate(verify_full)

    size = {"document_bytes": canonical_bytes, "signed_bytes": signed_bytes}
    return [
        row(
            "canonicalize_1_5kb_per_s",
            best_rate(lambda: canonicalize(document)),
            "docs/s",
            "rfc8785_per_s",
            raw_rfc8785,
            **size,
            note="ratio = speed-up over rfc8785.dumps",
        ),
        row(
            "credential_sign_per_s",
            best_rate(sign_once),
            "credentials/s",
            "ed25519_sign_per_s",
            raw_sign,
            peak_memory_mb=peak_memory_mb(sign_once),
            **size,
        ),
        row(
            "credential_verify_per_s",
            full,
            "credentials/s",
            "ed25519_verify_per_s",
            raw_verify,
            peak_memory_mb=peak_memory_mb(verify_full),
            **size,
            note="verify_credential: structure, JSON Schema, proof, issuer, validity",
        ),
        row(
            "credential_verify_no_schema_per_s",
            best_rate(verify_no_schema),
            "credentials/s",
            "ed25519_verify_per_s",
            raw_verify,
            **size,
            note="verify_credential(schema=False): all but the jsonschema pass",
        ),
        row(
            "credential_verify_proof_only_per_s",
            best_rate(verify_proof_only),
            "credentials/s",
            "ed25519_verify_per_s",
            raw_verify,
            peak_memory_mb=peak_memory_mb(verify_proof_only),
            **size,
            note="verify_credential(proof_only=True)",
        ),
        row(
            "credential_verify_rfc8785_per_s",
            full_rfc8785,
            "credentials/s",
            "ed25519_verify_per_s",
            raw_verify,
            **size,
            note="verify_credential with rfc8785.dumps as canonicalizer (the path before)",
        ),
        row(
            "ed25519_verify_nacl_per_s",
            nacl_verify,
            "verifies/s",
            "ed25519_verify_per_s",
            raw_verify,
            note="libsodium (PyNaCl): the primitive data_integrity calls",
        ),
        row(
            "credential_verify_vs_nacl",
            full,
            "credentials/s",
            "ed25519_verify_nacl_per_s",
            nacl_verify,
            note="credential_verify_per_s against the primitive it actually calls",
        ),
    ]
