"""Sealed derived rows: `custody_state.seal`, `ledger_checkpoints.previous` and `.seal`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

The append path trusts the custody rows and the newest checkpoint row; each now carries an
HMAC made with a key derived from the log key (`ledger/seal.py`), and each checkpoint row names
its predecessor. Rows written before this revision have no seal: the ledger refuses them
(`LEDGER_DERIVED_MISMATCH`) until `batterytrace ledger repair --from-entries` has rebuilt and
sealed them from the entries (docs/operations.md, "Upgrading").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("custody_state") as batch:
        batch.add_column(sa.Column("seal", sa.String(64), nullable=True))
    with op.batch_alter_table("ledger_checkpoints") as batch:
        batch.add_column(sa.Column("previous", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("seal", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_checkpoints") as batch:
        batch.drop_column("seal")
        batch.drop_column("previous")
    with op.batch_alter_table("custody_state") as batch:
        batch.drop_column("seal")
