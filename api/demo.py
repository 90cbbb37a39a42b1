"""`batterytrace demo`: the example network, run end to end on embedded SQLite.

Reproducible: every key comes from `keys_example/` (public, insecure demo keys). Expected
failures (a tampered credential) are part of the script; the demo itself exits 0.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel

from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.keys import Ed25519Key, load_key_file

KEYS_EXAMPLE = Path(__file__).resolve().parent.parent / "keys_example"


def demo_key(name: str) -> Ed25519Key:
    """A demo network key from keys_example/ (public and insecure by design)."""
    return load_key_file(KEYS_EXAMPLE / f"{name}.json")


def _origin_credential(issuer: str) -> dict[str, Any]:
    return {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://www.w3.org/ns/credentials/examples/v2",
        ],
        "id": "urn:uuid:0b9a1c3e-5d2f-4a7b-8c6d-1e2f3a4b5c6d",
        "type": ["VerifiableCredential", "ExampleMineralOriginCredential"],
        "issuer": issuer,
        "validFrom": "2026-01-15T00:00:00Z",
        "validUntil": "2028-01-15T00:00:00Z",
        "credentialSubject": {
            "id": "https://ledger.example/lots/CO-HYD-2026-000417",
            "mineral": "cobalt",
            "mineSite": "Kolwezi North Mine (Lualaba, DR Congo)",
            "miningType": "industrial",
            "quantityKg": 40000,
        },
    }


def run_demo(home: Path, console: Console) -> None:
    """Run the demo network into `home`, printing the story as it goes."""
    from batterytrace.credentials.data_integrity import sign
    from batterytrace.credentials.did import OfflineResolver
    from batterytrace.credentials.vc import verify_credential

    home.mkdir(parents=True, exist_ok=True)
    auditor = demo_key("auditor-irma")
    console.print(Panel.fit("batterytrace demo: issue, verify, tamper", style="bold"))
    credential = sign(_origin_credential(auditor.did_key), auditor, created="2026-01-15T00:00:00Z")
    (home / "origin-credential.json").write_text(json.dumps(credential, indent=2) + "\n")
    resolver = OfflineResolver()
    result = verify_credential(credential, resolver)
    console.print(f"[green]VALID[/]   mineral origin credential issued by {result.issuer}")

    tampered = copy.deepcopy(credential)
    tampered["credentialSubject"]["quantityKg"] = 400000
    (home / "origin-credential-tampered.json").write_text(json.dumps(tampered, indent=2) + "\n")
    try:
        verify_credential(tampered, resolver)
    except BatterytraceError as error:
        console.print(f"[red]REJECTED[/] tampered copy (quantity changed): {error.diagnostics()}")
    else:  # pragma: no cover - the demo proves tampering is caught
        raise AssertionError("the tampered credential verified")
    console.print(f"files in {home}")
