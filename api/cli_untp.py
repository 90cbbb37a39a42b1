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

from .cli_bundle import bundle_app


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
                                             "bundle's publicUrl, else its origin's host)."),
    out: Path | None = typer.Option(None, "--out", help="Write here (default: stdout)."),
) -> None:
    """Issue the UNTP DigitalProductPassport credential of the bundle's item: the UNTP blocks
    a BatteryPassportCredential carries (built by the same code), without the Battery Pass
    attributes, signed by whoever verified the bundle."""
    from batterytrace.credentials.data_integrity import sign
    from batterytrace.credentials.keys import load_key_file
    from batterytrace.verifier.policy import load_policy
    from batterytrace.verifier.trust import load_trust
    from batterytrace.verifier.untp_dpp import untp_passport_from_bundle

    lines = bundle.read_bytes().splitlines(keepends=True)
    signing_key = load_key_file(key)
    did = issuer or signing_key.controller or ""
    credential = untp_passport_from_bundle(
        lines, load_trust(trust), issuer=did, issuer_name=name or did,
        credential_id=f"urn:uuid:{uuid.uuid4()}",
        valid_from=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        policy=load_policy(policy) if policy is not None else None, base_url=base_url)
    signed: dict[str, Any] = sign(credential, signing_key,
                                  verification_method=f"{did}#{signing_key.public_multibase}")
    text = json.dumps(signed, indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")


def register(app: typer.Typer) -> None:
    """The command joins the `bundle` group (registered by cli_bundle)."""
