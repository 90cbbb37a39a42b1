"""`batterytrace demo`: the example network, mine to recycler, on embedded SQLite.

Reproducible: every key comes from `keys_example/` (public, insecure demo keys), every event and
credential from `api/demo_network.py`. Expected failures (tampered copies) are part of the
script: the demo itself exits 0.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from batterytrace.credentials.errors import BatterytraceError, InputError
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from . import demo_network as net

KEYS_EXAMPLE = Path(__file__).resolve().parent.parent / "keys_example"
ORIGIN = "demo.batterytrace.dev/ledger"


def _place_operator_keys(home: Path) -> None:
    """The demo ledger runs with the example admin and log keys, so it is reproducible."""
    keys = home / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    for name in ("admin", "log"):
        target = keys / f"{name}.json"
        if not target.exists():
            source = KEYS_EXAMPLE / f"{name}.json"
            if source.exists():
                shutil.copyfile(source, target)
            else:  # an installed package without the repository's keys_example/
                from batterytrace.credentials.keys import write_key_file

                write_key_file(net.key_for(name), target)
            target.chmod(0o600)


def _build_ledger(home: Path, console: Console) -> Any:
    from batterytrace.ledger.log import Ledger, Submission
    from batterytrace.ledger.service import attach_validators

    _place_operator_keys(home)
    if (home / "checkpoint.txt").exists():
        raise InputError(f"{home} already holds a ledger: give an empty --demo-home")
    Ledger.init(home, None, origin=ORIGIN, public_url=net.PUBLIC_URL).close()
    ledger = attach_validators(Ledger.open(home))
    registry = net.standard_registry_docs()
    ledger.append([Submission("registry", doc) for doc in registry])
    console.print(f"registered {len(net.STANDARD_PARTICIPANTS)} participants and their "
                  f"facilities ({len(registry)} admin-signed entries)")

    table = Table("seq", "stage", "signed by", title="custody events, mine to recycler")
    for stage, issuer, event in net.lifecycle():
        document = net.signed_credential(issuer, [event])
        (result,) = ledger.append([Submission("event", document)])
        table.add_row(str(result.seq), stage, net.STANDARD_PARTICIPANTS[issuer][0])
    console.print(table)
    return ledger


def _verify_ledger(home: Path, console: Console) -> None:
    from batterytrace.ledger.log import verify_ledger

    summary, _ = verify_ledger(home)
    console.print(
        f"[green]VERIFIED[/] ledger: {summary.size} entries, every link and leaf, root "
        f"{summary.root.hex()[:16]}... matches the signed checkpoint"
    )


def _credentials(home: Path, console: Console) -> None:
    from batterytrace.credentials.credential_types import build_credential
    from batterytrace.credentials.data_integrity import sign
    from batterytrace.credentials.did import OfflineResolver
    from batterytrace.credentials.vc import verify_credential

    auditor = net.key_for("auditor-irma")
    subject = _irma_subject()
    unsigned = build_credential(
        "IRMAAuditCredential", subject, issuer=auditor.did_key,
        issuer_name="Andes Assurance Auditores SpA", valid_from="2026-01-10T00:00:00Z",
        valid_until="2029-01-10T00:00:00Z",
    )
    credential = sign(unsigned, auditor, created="2026-01-10T00:00:00Z")
    (home / "irma-audit-credential.json").write_text(json.dumps(credential, indent=2) + "\n")
    resolver = OfflineResolver()
    result = verify_credential(credential, resolver, at=_at("2026-06-01T00:00:00Z"))
    console.print(
        f"[green]VALID[/]    IRMA audit credential for {subject['id']} "
        f"({subject.get('achievementLevel', 'IRMA 75')}) by {result.issuer[:32]}..."
    )
    tampered = copy.deepcopy(credential)
    _raise_level(tampered["credentialSubject"])
    (home / "irma-audit-credential-tampered.json").write_text(json.dumps(tampered, indent=2))
    try:
        verify_credential(tampered, resolver, at=_at("2026-06-01T00:00:00Z"))
    except BatterytraceError as error:
        console.print(f"[red]REJECTED[/] tampered copy (level raised): {error.diagnostics()}")
    else:  # pragma: no cover - the demo exists to show this
        raise AssertionError("the tampered credential verified")


def _irma_subject() -> dict[str, Any]:
    """The IRMA audit subject of the documentation's example, pointed at the demo mine."""
    import re

    text = (KEYS_EXAMPLE.parent / "docs" / "credentials.md").read_text(encoding="utf-8")
    match = re.search(r"^## IRMAAuditCredential\n.*?```json\n(.*?)\n```", text, re.S | re.M)
    if match is None:
        raise InputError("docs/credentials.md has no IRMAAuditCredential example")
    subject = json.loads(match.group(1))["credentialSubject"]
    subject["id"] = net.facility_id("kolwezi-mine")
    return subject


def _raise_level(subject: Any) -> None:
    text = json.dumps(subject).replace("IRMA 75", "IRMA 100").replace("IRMA 50", "IRMA 100")
    subject.clear()
    subject.update(json.loads(text))
    subject["demoTampered"] = True


def _at(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _bundle(home: Path, console: Console) -> None:
    """Export the battery pack's evidence bundle, verify it offline, then a tampered copy."""
    from batterytrace.ledger.bundle_export import export_bundle
    from batterytrace.ledger.log import Ledger
    from batterytrace.verifier.bundle import iter_file_lines
    from batterytrace.verifier.bundle_verify import verify_bundle
    from batterytrace.verifier.trust import TrustConfig, TrustedLedger, load_trust, write_trust

    ledger = Ledger.open(home)
    try:
        info = ledger.info()
        bundle = home / "bundle.jsonl"
        with bundle.open("wb") as out:
            summary = export_bundle(ledger, out, item=net.item_id("pack-p1"))
    finally:
        ledger.close()
    # The verifier's own configuration: the only source of trust (never the bundle itself).
    write_trust(TrustConfig(ledgers=(TrustedLedger(info["origin"], info["verifierKey"]),)),
                home / "trust.toml")
    trust = load_trust(home / "trust.toml")
    console.print(f"exported {bundle.name}: {summary.entries} entries of pack-p1's history, "
                  "each with its inclusion proof against the signed checkpoint")
    report = verify_bundle(iter_file_lines(str(bundle)), trust)
    report.render(console)

    lines = bundle.read_text(encoding="utf-8").splitlines()
    tampered_lines = [_tamper_quantity(line) for line in lines]
    tampered = home / "bundle-tampered.jsonl"
    tampered.write_text("\n".join(tampered_lines) + "\n", encoding="utf-8")
    bad = verify_bundle(iter_file_lines(str(tampered)), trust)
    first = bad.failures[0] if bad.failures else None
    if bad.ok or first is None:  # pragma: no cover - the demo exists to show this
        raise AssertionError("the tampered bundle verified")
    console.print(f"[red]REJECTED[/] {tampered.name} (40 t of cobalt hydroxide became 400 t): "
                  f"{first.code} at {first.record}: {first.reason}")


def _tamper_quantity(line: str) -> str:
    """Multiply the first extraction quantity of the industrial mine by ten."""
    needle = '"quantity":40,'
    return line.replace(needle, '"quantity":400,', 1) if "co-hydroxide-2026-001" in line else line


def run_demo(home: Path, console: Console) -> None:
    """Run the demo network into `home`, printing the story as it goes."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    console.print(Panel.fit("batterytrace demo: mine to recycler, verified offline",
                            style="bold"))
    ledger = _build_ledger(home, console)
    ledger.close()
    _verify_ledger(home, console)
    _credentials(home, console)
    _bundle(home, console)
    console.print(f"\nthe demo home is {home}: ledger, keys, trust.toml, bundle.jsonl. Try:\n"
                  f"  batterytrace --home {home} ledger info\n"
                  f"  batterytrace bundle verify {home / 'bundle.jsonl'}"
                  f" --trust {home / 'trust.toml'}\n"
                  f"  batterytrace --home {home} item trace {net.item_id('pack-p1')}")
