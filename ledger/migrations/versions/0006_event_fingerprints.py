"""Event rows of `custody_state` carry the event's fingerprint, no longer its credential's
digest; the resolver's GS1 key index (`gs1_key` rows).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Each `event` row of the custody state now holds the event's fingerprint
(`custody.event_fingerprint`: its issuer and content), which an EPCIS error declaration must
match, and the custody state gains `gs1_key` rows (a lot's or item's GS1 Digital Link key ->
the subject). Neither can be computed without replaying the log: this revision removes the
seals of the event rows written before it, so a rule that reads one (a declaration naming that
event) answers `LEDGER_DERIVED_TAMPERED` until `batterytrace ledger repair --from-entries` has
rebuilt them (and the index) from the entries, once (docs/operations.md, "Upgrading").
No column changes.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE custody_state SET seal = NULL WHERE tbl = 'event'")


def downgrade() -> None:
    """Nothing to undo in the schema: `ledger repair --from-entries` rebuilds the rows."""
