"""Leaner entry rows: no `leaf` column, and a partial index for settings entries only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Since 0002 the leaf hashes live in the tree tiles; the `leaf` column was written and never
read. The only lookup by kind is the settings in force at a position, so the index on every
row's kind (which every event append had to update) becomes a partial index on the settings
entries' positions. Both cut the cost of each appended row (docs/performance.md).
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CHUNK = 10_000
SETTINGS_ONLY = sa.text("kind = 'settings'")


def upgrade() -> None:
    op.drop_index("ix_ledger_entries_kind", table_name="ledger_entries")
    # On SQLite, batch mode copies the table without the column (ALTER TABLE DROP COLUMN
    # would rewrite it too); on PostgreSQL it is a plain ALTER TABLE.
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("leaf")
    op.create_index("ix_ledger_entries_settings", "ledger_entries", ["seq"],
                    sqlite_where=SETTINGS_ONLY, postgresql_where=SETTINGS_ONLY)


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_settings", table_name="ledger_entries")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.add_column(sa.Column("leaf", sa.LargeBinary(), nullable=True))
    # Refill the leaf hashes (RFC 6962: SHA-256 of 0x00 || entry bytes) in chunks.
    conn = op.get_bind()
    entries = sa.table("ledger_entries", sa.column("seq"), sa.column("body"), sa.column("leaf"))
    after = -1
    while True:
        rows = conn.execute(
            sa.select(entries.c.seq, entries.c.body).where(entries.c.seq > after)
            .order_by(entries.c.seq).limit(CHUNK)
        ).all()
        if not rows:
            break
        conn.execute(
            entries.update().where(entries.c.seq == sa.bindparam("s"))
            .values(leaf=sa.bindparam("h")),
            [{"s": seq, "h": hashlib.sha256(b"\x00" + bytes(body)).digest()}
             for seq, body in rows],
        )
        after = rows[-1][0]
    with op.batch_alter_table("ledger_entries") as batch:
        batch.alter_column("leaf", existing_type=sa.LargeBinary(), nullable=False)
    op.create_index("ix_ledger_entries_kind", "ledger_entries", ["kind"])
