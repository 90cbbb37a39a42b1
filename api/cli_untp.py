"""`batterytrace bundle untp-passport BUNDLE --trust T [--policy P] --key K [--issuer DID]
[--name NAME] [--out FILE]`: the UNTP Digital Product Passport credential of the bundle's item,
built from what the offline verifier established (verifier/untp_dpp.py), validated against the
pinned UNTP DPP schema and signed (eddsa-jcs-2022). Joins the `bundle` group of cli_bundle."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from batterytrace.credentials.errors import InputError, VerificationError

from .cli_bundle import bundle_app


class UntpPassportError(VerificationError):
    """The UNTP passport cannot be issued: the bundle does not verify, or the document does
    not validate against the pinned UNTP DPP schema."""

    code = "UNTP_PASSPORT_INVALID"
    title = "UNTP passport not issued"


def _battery(lines: list[bytes], subject: str) -> tuple[float, str]:
    """The item's mass (kg) and name from its declaration in the bundle."""
    from batterytrace.ledger.events import KG_PER_UNIT

    for line in lines:
        record = json.loads(line)
        entry = record.get("entry") if record.get("type") == "entry" else None
        for event in (entry or {}).get("document", {}).get("credentialSubject") or []:
            for declaration in event.get("itemDeclarations") or []:
                if declaration.get("id") == subject:
                    mass = declaration.get("mass") or {}
                    factor = KG_PER_UNIT.get(mass.get("uom"), 1)
                    return float(mass.get("value", 0)) * float(factor), subject
    raise InputError(f"the bundle declares no item {subject}")


@bundle_app.command("untp-passport")
def bundle_untp_passport(
    bundle: Path = typer.Argument(..., help="Evidence bundle of an item (JSON Lines)."),
    trust: Path = typer.Option(..., "--trust", help="Trust file."),
    policy: str | None = typer.Option(None, "--policy", help="Policy file or name."),
    key: Path = typer.Option(..., "--key", help="Issuer's Multikey file."),
    issuer: str | None = typer.Option(None, "--issuer", help="Issuer DID (else the key's)."),
    name: str = typer.Option("", "--name", help="Issuer name."),
    base_url: str | None = typer.Option(None, "--base-url",
                                        help="Ledger URL the links point to (default: the "
                                             "bundle's publicUrl, else its origin)."),
    out: Path | None = typer.Option(None, "--out", help="Write here (default: stdout)."),
) -> None:
    """Issue the UNTP DigitalProductPassport credential of the bundle's item."""
    from batterytrace.credentials.data_integrity import sign
    from batterytrace.credentials.keys import load_key_file
    from batterytrace.verifier.bundle_verify import verify_bundle
    from batterytrace.verifier.policy import evaluate_policy, load_policy
    from batterytrace.verifier.provenance import trace_provenance
    from batterytrace.verifier.trust import load_trust
    from batterytrace.verifier.untp_dpp import (
        BundleView,
        rule_types_of,
        untp_passport_credential,
        untp_schema_errors,
    )

    lines = bundle.read_bytes().splitlines(keepends=True)
    header = json.loads(lines[0]) if lines else {}
    subject = (header.get("scope") or {}).get("id")
    if not isinstance(subject, str):
        raise InputError("the bundle is not the bundle of an item")
    report = verify_bundle(lines, load_trust(trust))
    if not report.ok:
        raise UntpPassportError("the bundle does not verify: no passport is issued from it")
    provenance = trace_provenance(lines, subject).to_json()
    result, rule_types = None, {}
    if policy is not None:
        loaded = load_policy(policy)
        result, rule_types = evaluate_policy(loaded, provenance), rule_types_of(loaded.rules)
    mass, product = _battery(lines, subject)
    model = provenance.get("model") or {}
    signing_key = load_key_file(key)
    did = issuer or signing_key.controller or ""
    url = base_url or f"https://{str(header.get('origin', '')).split('/')[0]}"
    notes: list[str] = []
    credential = untp_passport_credential(
        subject=subject, name=str(model.get("name") or product), battery_kg=mass,
        issuer=did, issuer_name=name or did, credential_id=f"urn:uuid:{uuid.uuid4()}",
        valid_from=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), base_url=url,
        provenance=provenance, view=BundleView.read(lines), verified=True, policy=result,
        rule_types=rule_types, notes=notes)
    errors = untp_schema_errors(credential)
    if errors:
        raise UntpPassportError(f"not valid against the UNTP DPP schema: {errors[0]}")
    signed: dict[str, Any] = sign(credential, signing_key,
                                  verification_method=f"{did}#{signing_key.public_multibase}")
    text = json.dumps(signed, indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")


def register(app: typer.Typer) -> None:
    """The command joins the `bundle` group (registered by cli_bundle)."""
