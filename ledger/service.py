"""The ledger as the command line and the HTTP service use it: every entry kind's validator
attached (registry and events: custody rules; anchors: credential issuance and status)."""

from __future__ import annotations

from pathlib import Path

from .log import Ledger


def attach_validators(ledger: Ledger) -> Ledger:
    """Attach the custody and anchor validators to an opened ledger and return it."""
    from .anchors import anchor_validators
    from .validators import validators_for

    ledger.validators.update(validators_for(ledger))
    ledger.validators.update(anchor_validators(ledger))
    return ledger


def open_ledger(home: Path, database_url: str | None = None) -> Ledger:
    """Open the ledger in `home` with every validator attached."""
    return attach_validators(Ledger.open(home, database_url))
