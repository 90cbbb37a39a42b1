"""A BatteryPassportCredential with its UNTP blocks, as the manufacturer issues it.

`credential issue --type BatteryPassportCredential --trust T` and the demo both come here: the
battery's evidence bundle (exported from the ledger at its latest signed checkpoint, or given
with `--bundle`) is verified against the issuer's own trust file, its policy judged, and
`verifier.untp_dpp.with_untp_blocks` adds `conformityClaim`, `traceabilityInformation`,
`materialsProvenance` and `emissionsScorecard` to the Battery Pass attributes. The passport
then validates against the pinned UNTP DPP schema and the project's passport schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from batterytrace.credentials.credential_types import validate_credential_document
from batterytrace.ledger.log import Ledger
from batterytrace.verifier.policy import load_policy
from batterytrace.verifier.trust import TrustConfig
from batterytrace.verifier.untp_dpp import with_untp_blocks

from .passport import export_item_bundle

PASSPORT_TYPE = "BatteryPassportCredential"
DEFAULT_POLICY = "eu-2023-1542"  # the rules whose verdicts become conformityClaim


def passport_with_untp_blocks(credential: Mapping[str, Any], trust: TrustConfig, *,
                              ledger: Ledger | None = None, bundle: Path | None = None,
                              policy: str | None = None, policy_date: date | None = None,
                              base_url: str | None = None, notes: list[str] | None = None
                              ) -> dict[str, Any]:
    """The unsigned passport `credential` with its UNTP blocks, from `bundle` or else the
    battery's bundle exported from `ledger`; valid against both schemas."""
    subject = str((credential.get("credentialSubject") or {}).get("id"))
    if bundle is not None:
        lines = bundle.read_bytes().splitlines(keepends=True)
    elif ledger is not None:
        lines = export_item_bundle(ledger, subject).splitlines(keepends=True)
    else:
        raise ValueError("a bundle or a ledger is needed")
    out = with_untp_blocks(credential, lines, trust,
                           policy=load_policy(policy or DEFAULT_POLICY),
                           policy_date=policy_date, base_url=base_url, notes=notes)
    validate_credential_document(out)
    return out


__all__ = ["DEFAULT_POLICY", "PASSPORT_TYPE", "passport_with_untp_blocks"]
