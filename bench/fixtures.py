"""Fixed-size documents for the benchmarks (sizes never change between runs)."""

from __future__ import annotations

from typing import Any


def credential_1_5kb() -> dict[str, Any]:
    """An unsigned VC 2.0 credential of about 1.5 KB (canonical form, before the proof)."""
    return {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://www.w3.org/ns/credentials/examples/v2",
        ],
        "id": "urn:uuid:3f7c1a52-6a4e-4c1b-9d8e-2f4b5a6c7d8e",
        "type": ["VerifiableCredential", "ExampleMineralOriginCredential"],
        "issuer": "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
        "validFrom": "2026-01-15T08:30:00Z",
        "validUntil": "2027-01-15T08:30:00Z",
        "name": "Mineral origin of cobalt hydroxide lot",
        "description": "Origin statement for a lot of crude cobalt hydroxide from an industrial "
        "mine in Lualaba province, issued by an accredited certification body.",
        "credentialSubject": {
            "id": "https://ledger.example/lots/CO-HYD-2026-000417",
            "mineral": "cobalt",
            "product": "crude cobalt hydroxide",
            "mineSite": {
                "id": "https://ledger.example/facilities/kolwezi-north",
                "name": "Kolwezi North Mine",
                "operator": "Lualaba Copper Cobalt SA",
                "country": "CD",
                "latitude": -10.7167,
                "longitude": 25.4667,
            },
            "extractionPeriod": {"start": "2025-11-01", "end": "2025-12-31"},
            "miningType": "industrial",
            "conflictAffectedHighRiskArea": False,
            "quantity": {"value": 40000, "unit": "KGM"},
            "composition": {"Co": 0.32, "Cu": 0.04, "Mn": 0.01, "H2O": 0.18},
            "assay": {
                "laboratory": "Katanga Assay Services",
                "reportId": "KAS-2026-00913",
                "digestSRI": "sha256-"
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            },
            "notes": [
                "Sampled at the loading bay under witness of the buyer's representative.",
                "Chain-of-custody model declared by the shipper: segregated.",
            ],
        },
        "credentialSchema": {
            "id": "https://ledger.example/schemas/mineral-origin/1.0.json",
            "type": "JsonSchema",
        },
    }
