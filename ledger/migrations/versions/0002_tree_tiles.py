"""Subtree hashes packed in tiles (`ledger_tree_tiles`) instead of one row per node.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Tile (s, t) holds the nodes of levels 8s .. 8s+7 under the level-(8s+8) node t, level by
level (256, 128, ..., 2 hashes; 510 in all, absent ones zero). Existing ledgers are converted
in chunks of 256 tiles (4 MB): leaves from `ledger_entries.leaf`, other levels from
`ledger_tree_nodes`, which is then dropped.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HEIGHT, SHIFT, TILE_BYTES, CHUNK = 8, 48, 510 * 32, 256


def _offset(r: int, j: int) -> int:
    return ((512 - (512 >> r)) + j) * 32


def upgrade() -> None:
    op.create_table(
        "ledger_tree_tiles",
        sa.Column("key", BIGINT, primary_key=True, autoincrement=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
    )
    conn = op.get_bind()
    size = conn.execute(sa.text("SELECT size FROM ledger_sequencer WHERE id = 1")).scalar() or 0
    tiles_table = sa.table("ledger_tree_tiles", sa.column("key"), sa.column("hashes"))
    stratum = 0
    while size >> (HEIGHT * stratum) > 0:
        base = HEIGHT * stratum
        count = -(-(size >> base) // 256)  # tiles with at least one node of level `base`
        for first in range(0, count, CHUNK):
            last = min(first + CHUNK, count)
            tiles: dict[int, bytearray] = {}
            for r in range(HEIGHT):
                level, width = base + r, 256 >> r
                lo, hi = first * width, last * width
                if level == 0:
                    rows = conn.execute(sa.text(
                        "SELECT seq, leaf FROM ledger_entries WHERE seq >= :lo AND seq < :hi"
                    ), {"lo": lo, "hi": hi})
                else:
                    rows = conn.execute(sa.text(
                        "SELECT key, hash FROM ledger_tree_nodes WHERE key >= :lo AND key < :hi"
                    ), {"lo": (level << SHIFT) | lo, "hi": (level << SHIFT) | hi})
                mask = (1 << SHIFT) - 1
                for key, h in rows:
                    index = key & mask
                    t, j = index // width, index % width
                    tile = tiles.setdefault(t, bytearray(TILE_BYTES))
                    tile[_offset(r, j):_offset(r, j) + 32] = h
            if tiles:
                op.bulk_insert(tiles_table, [
                    {"key": (stratum << SHIFT) | t, "hashes": bytes(tile)}
                    for t, tile in sorted(tiles.items())
                ])
        stratum += 1
    op.drop_table("ledger_tree_nodes")


def downgrade() -> None:
    op.create_table(
        "ledger_tree_nodes",
        sa.Column("key", BIGINT, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
    )
    conn = op.get_bind()
    nodes = sa.table("ledger_tree_nodes", sa.column("key"), sa.column("hash"))
    for key, blob in conn.execute(sa.text("SELECT key, hashes FROM ledger_tree_tiles")):
        stratum, t = key >> SHIFT, key & ((1 << SHIFT) - 1)
        rows = []
        for r in range(1 if stratum == 0 else 0, HEIGHT):
            width = 256 >> r
            for j in range(width):
                h = bytes(blob[_offset(r, j):_offset(r, j) + 32])
                if h != bytes(32):
                    rows.append({"key": ((HEIGHT * stratum + r) << SHIFT) | (t * width + j),
                                 "hash": h})
        if rows:
            op.bulk_insert(nodes, rows)
    op.drop_table("ledger_tree_tiles")
