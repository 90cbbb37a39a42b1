"""The ledger as the command line and the HTTP service use it: every entry kind's validator
attached (registry and events: custody rules; anchors: credential issuance and status), and
the service's own rows (`tables.ADMIN_NONCES`, `tables.CREDENTIAL_VISIBILITY`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select
from sqlmodel import Session

from .anchor_store import anchor_validators
from .log import Ledger
from .tables import ADMIN_NONCES, CREDENTIAL_VISIBILITY
from .validators import validators_for


def attach_validators(ledger: Ledger) -> Ledger:
    """Attach the custody and anchor validators to an opened ledger and return it."""
    ledger.validators.update(validators_for(ledger))
    ledger.validators.update(anchor_validators(ledger))
    return ledger


def open_ledger(home: Path, database_url: str | None = None) -> Ledger:
    """Open the ledger in `home` with every validator attached."""
    return attach_validators(Ledger.open(home, database_url))


# --- administrative request nonces (inside the write transaction of the request) -------------


def used_nonce(session: Session, nonces: Sequence[str]) -> str | None:
    """One of `nonces` already recorded, or None."""
    t = ADMIN_NONCES
    row = session.connection().execute(
        select(t.c.nonce).where(t.c.nonce.in_(list(nonces))).limit(1)).first()
    return None if row is None else str(row[0])


def record_nonces(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record accepted requests: {"nonce", "expires", "seq"} each."""
    if rows:
        session.connection().execute(insert(ADMIN_NONCES), list(rows))


# --- credential visibility ---------------------------------------------------------------------


def set_public(ledger: Ledger, credential_id: str, public: bool) -> None:
    """Whether the service serves the stored credential's content to anyone."""
    t = CREDENTIAL_VISIBILITY
    with ledger.storage.engine.begin() as conn:
        conn.execute(delete(t).where(t.c.credential_id == credential_id))
        conn.execute(insert(t), [{"credential_id": credential_id, "public": public}])


def is_public(ledger: Ledger, credential_id: str) -> bool:
    t = CREDENTIAL_VISIBILITY
    with ledger.storage.engine.connect() as conn:
        return bool(conn.execute(select(t.c.public).where(t.c.credential_id == credential_id))
                    .scalar())
