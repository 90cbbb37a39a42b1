"""Trust and status: credential verification with a status check and a 3-link trust path,
status-list update and publish for a 131,072-entry list, and bulk issuance (status entries +
ledger anchors, batched) on SQLite; each beside the raw Ed25519 rate it is bounded by."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from batterytrace.credentials.data_integrity import sign
from batterytrace.credentials.keys import Ed25519Key, write_key_file
from batterytrace.credentials.status_list import (
    StatusList,
    build_status_list_credential,
    status_entry,
)
from batterytrace.ledger.credential_store import CredentialStore
from batterytrace.ledger.log import Ledger
from batterytrace.verifier.accreditation import ACCREDITATION_CONTEXTS
from batterytrace.verifier.credential_check import check_credential
from batterytrace.verifier.trust import GovernanceRoot, TrustConfig

from bench.limits import ed25519_sign_per_s, ed25519_verify_per_s, rate
from bench.run import row

KEYS = [Ed25519Key.from_seed(bytes([0x60 + i]) * 32) for i in range(4)]  # root, a, b, issuer
LIST_URL = "https://ledger.example/status-lists/bench/revocation/0"
AT = datetime(2026, 3, 1, tzinfo=UTC)
ISSUANCES = 10_000
BATCH = 1_000


def _accreditation(issuer: Ed25519Key, subject: Ed25519Key, n: int) -> dict:
    return sign({
        "@context": list(ACCREDITATION_CONTEXTS),
        "id": f"urn:uuid:acc00000-0000-4000-8000-{n:012d}",
        "type": ["VerifiableCredential", "AccreditationCredential"],
        "issuer": issuer.did_key, "validFrom": "2025-01-01T00:00:00Z",
        "validUntil": "2030-01-01T00:00:00Z",
        "credentialSubject": {"id": subject.did_key, "type": "Accreditation",
                              "credentialTypes": ["ExampleCredential"], "mayAccredit": True},
    }, issuer)


def _credential(n: int) -> dict:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://www.w3.org/ns/credentials/examples/v2"],  # maps the type
        "id": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        "type": ["VerifiableCredential", "ExampleCredential"],
        "issuer": KEYS[3].did_key,
        "validFrom": "2025-01-01T00:00:00Z",
        "credentialSubject": {"id": f"https://id.example.com/lots/{n}", "massKg": 1000 + n},
    }


def _verification_rows() -> list[dict[str, object]]:
    issuer = KEYS[3]
    doc = _credential(1)
    doc["credentialStatus"] = status_entry("revocation", 94567, LIST_URL)
    signed = sign(doc, issuer)
    bits = StatusList()
    bits.set(12)
    lists = {LIST_URL: sign(build_status_list_credential(
        list_url=LIST_URL, issuer=issuer.did_key, purpose="revocation", status_list=bits),
        issuer)}
    chain = [_accreditation(KEYS[i], KEYS[i + 1], i) for i in range(3)]
    trust = TrustConfig(governance_roots=(GovernanceRoot(KEYS[0].did_key),))
    result = check_credential(signed, trust=trust, accreditations=chain, status_lists=lists,
                              at=AT, require_trust=True, require_status=True)
    assert len(result.trust_path) == 3
    per_s = rate(lambda: check_credential(signed, trust=trust, accreditations=chain,
                                          status_lists=lists, at=AT, require_trust=True,
                                          require_status=True))
    raw = ed25519_verify_per_s()
    # One check verifies 5 signatures: credential, status list, 3 accreditations.
    return [row("credential_check_status_trust3_per_s", per_s, "credentials/s",
                "ed25519_verify_per_s / 5", raw / 5, signatures_per_check=5,
                note="status list + 3-link accreditation path: 5 signatures per check")]


def _status_list_rows() -> list[dict[str, object]]:
    issuer = KEYS[3]
    bits = StatusList()
    counter = [0]

    def update() -> None:
        counter[0] = (counter[0] + 7919) % 131_072
        bits.set(counter[0])

    def publish() -> None:
        sign(build_status_list_credential(list_url=LIST_URL, issuer=issuer.did_key,
                                          purpose="revocation", status_list=bits), issuer)

    return [
        # A bit flip and a signature have nothing in common: the limit is context, no ratio.
        {**row("status_list_bit_update_per_s", rate(update), "updates/s",
               "ed25519_sign_per_s", ed25519_sign_per_s(), list_bits=131_072), "ratio": None},
        row("status_list_publish_per_s", rate(publish), "lists/s", "ed25519_sign_per_s",
            ed25519_sign_per_s(), list_bits=131_072, note="gzip + base64url encode + sign"),
    ]


def _issuance_rows() -> list[dict[str, object]]:
    """10,000 issuances in batches of 1,000 (`issue_many` with two status entries each, one
    log batch of anchors, the touched status lists published once per batch). The raw sign
    and verify rates are measured between the batches, so the figure and its bound see the
    same load; the bound is 2 signatures per credential (its proof and its anchor's: the
    ledger does not re-verify what the store just signed)."""
    issuer = KEYS[3]
    sign_rates: list[float] = []
    verify_rates: list[float] = []
    batch_seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-trust-") as tmp:
        home = Path(tmp) / "home"
        (home / "keys").mkdir(parents=True)
        write_key_file(KEYS[0], home / "keys" / "admin.json")
        ledger = Ledger.init(home, None, "bench.batterytrace/trust", "https://ledger.example")
        try:
            store = CredentialStore(ledger)
            credentials = [_credential(n) for n in range(ISSUANCES)]
            for first in range(0, ISSUANCES, BATCH):
                sign_rates.append(_fresh(ed25519_sign_per_s)())
                verify_rates.append(_fresh(ed25519_verify_per_s)())
                start = time.perf_counter()
                store.issue_many(credentials[first:first + BATCH], issuer, publish_status=True)
                batch_seconds.append(time.perf_counter() - start)
            assert ledger.size == ISSUANCES + 1
            lists = store.status_lists(issuer.did_key)
            assert all(x["published"] and not x["stale"] for x in lists)
        finally:
            ledger.close()
    per_s = ISSUANCES / sum(batch_seconds)
    raw_sign = max(sign_rates)  # noise only ever slows a run: each keeps its best
    return [row("credential_issue_bulk_per_s", per_s, "credentials/s",
                "ed25519_sign_per_s / 2", raw_sign / 2, target=2000, batch=BATCH,
                credentials=ISSUANCES, best_batch_per_s=round(BATCH / min(batch_seconds), 1),
                ed25519_sign_per_s=round(raw_sign, 1),
                ed25519_verify_per_s=round(max(verify_rates), 1),
                note="SQLite; 2 status entries + ledger anchor each, lists published once "
                     "per batch; per credential 2 Ed25519 signs, 0 verifies")]


def _fresh(limit: Callable[[], float]) -> Callable[[], float]:
    """A raw limit of bench/limits.py measured anew (past its functools.cache)."""
    return getattr(limit, "__wrapped__", limit)


def run() -> list[dict[str, object]]:
    return [*_verification_rows(), *_status_list_rows(), *_issuance_rows()]


if __name__ == "__main__":
    for r in run():
        print(r)
