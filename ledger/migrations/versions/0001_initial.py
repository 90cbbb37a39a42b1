"""Initial schema: every table the project had when migrations were introduced.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

The log (entries, per-node subtree hashes, checkpoints, sequencer row), the custody state,
the credential anchors and the credential store. Written out literally: a revision must not
change when the models do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite only makes "INTEGER PRIMARY KEY" the rowid (the fast clustered key), not BIGINT.
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _key_value(name: str) -> None:
    op.create_table(
        name,
        sa.Column("tbl", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("seq", BIGINT, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_ledger_entries_kind", "ledger_entries", ["kind"])
    op.create_table(
        "ledger_tree_nodes",
        sa.Column("key", BIGINT, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", BIGINT, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "ledger_sequencer",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.LargeBinary(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
    )
    _key_value("custody_state")
    _key_value("credential_anchor")
    op.create_table(
        "credential_record",
        sa.Column("id", sa.String(1024), primary_key=True),
        sa.Column("issuer", sa.String(1024), nullable=False),
        sa.Column("types", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("anchored_at", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_index("ix_credential_record_issuer", "credential_record", ["issuer"])
    op.create_table(
        "credential_subject",
        sa.Column("subject_id", sa.String(1024), primary_key=True),
        sa.Column("credential_id", sa.String(1024), primary_key=True),
    )
    op.create_table(
        "status_list",
        sa.Column("url", sa.String(1024), primary_key=True),
        sa.Column("issuer", sa.String(1024), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("bits", sa.LargeBinary(), nullable=False),
        sa.Column("allocated", sa.LargeBinary(), nullable=False),
        sa.Column("allocated_count", sa.Integer(), nullable=False),
        sa.Column("published", sa.Text(), nullable=True),
        sa.Column("stale", sa.Integer(), nullable=False),
    )
    op.create_index("ix_status_list_issuer", "status_list", ["issuer"])


def downgrade() -> None:
    for index, table in (("ix_status_list_issuer", "status_list"),
                         ("ix_credential_record_issuer", "credential_record"),
                         ("ix_ledger_entries_kind", "ledger_entries")):
        op.drop_index(index, table_name=table)
    for table in ("status_list", "credential_subject", "credential_record", "credential_anchor",
                  "custody_state", "ledger_sequencer", "ledger_checkpoints", "ledger_tree_nodes",
                  "ledger_entries"):
        op.drop_table(table)
