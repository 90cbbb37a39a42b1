"""Tables of the ledger service: seen admin-request nonces and credential visibility.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Homes where an API version before this revision created the tables on startup keep them
(they have the same columns): the revision only creates what is missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "api_admin_nonces" not in existing:
        op.create_table(
            "api_admin_nonces",
            sa.Column("nonce", sa.String(128), primary_key=True),
            sa.Column("expires", sa.String(64), nullable=False),
            sa.Column("seq", BIGINT, nullable=False),
        )
    if "api_credential_visibility" not in existing:
        op.create_table(
            "api_credential_visibility",
            sa.Column("credential_id", sa.String(2048), primary_key=True),
            sa.Column("public", sa.Boolean(), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("api_credential_visibility")
    op.drop_table("api_admin_nonces")
