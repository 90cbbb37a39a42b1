"""Every table of the ledger and its stores, declared once (SQLModel, on `SQLModel.metadata`).

The Alembic revisions (`ledger/migrations`) create and upgrade exactly these tables, and
`migrations.schema.target_metadata` compares the migrated schema with them. The modules that
read and write a table import it from here:

- the log (`storage.py`): `ledger_entries` (seq, kind, hash, canonical body),
  `ledger_tree_tiles` (hashes of the complete subtrees, packed in tiles), `ledger_checkpoints`
  (signed checkpoint notes), `ledger_sequencer` (one row: size, head entry hash, root);
- the custody and registry state (`custody_store.py`): `custody_state (tbl, key, value)`;
- credential anchors (`anchor_store.py`): `credential_anchor (tbl, key, value)`;
- the credential store (`credential_store.py`): `credential_record`, `credential_subject`,
  `status_list`;
- the HTTP service (`service.py`): `api_admin_nonces`, `api_credential_visibility`.

The key-value tables are SQLAlchemy Core `Table`s on the same metadata: their columns
(`String(n)`, `Text`) are not what SQLModel fields would give, and the migrated schema must
stay what the revisions made.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    text,
)
from sqlmodel import Field, SQLModel

METADATA = SQLModel.metadata

# SQLite only makes "INTEGER PRIMARY KEY" the rowid (the fast clustered key), not BIGINT.
BIGINT = BigInteger().with_variant(Integer(), "sqlite")


# --- the log --------------------------------------------------------------------------------


class EntryRow(SQLModel, table=True):
    __tablename__ = "ledger_entries"

    seq: int = Field(primary_key=True, sa_type=BIGINT, sa_column_kwargs={"autoincrement": False})
    kind: str
    hash: bytes = Field(sa_type=LargeBinary)
    body: bytes = Field(sa_type=LargeBinary)

    # The one lookup by kind is the settings in force at a position (`iter_settings`): a
    # partial index, so that appending an event touches no index but the primary key.
    __table_args__ = (
        Index("ix_ledger_entries_settings", "seq", sqlite_where=text("kind = 'settings'"),
              postgresql_where=text("kind = 'settings'")),
    )


class TreeTileRow(SQLModel, table=True):
    __tablename__ = "ledger_tree_tiles"

    key: int = Field(primary_key=True, sa_type=BIGINT, sa_column_kwargs={"autoincrement": False})
    hashes: bytes = Field(sa_type=LargeBinary)


class CheckpointRow(SQLModel, table=True):
    __tablename__ = "ledger_checkpoints"

    size: int = Field(primary_key=True, sa_type=BIGINT, sa_column_kwargs={"autoincrement": False})
    root: bytes = Field(sa_type=LargeBinary)
    note: bytes = Field(sa_type=LargeBinary)
    # The size of the checkpoint row before this one (None: the first), and the row's seal
    # (`seal.py`): a deleted older row breaks the chain, an edited row its seal.
    previous: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    seal: str | None = Field(default=None, sa_type=String(64), nullable=True)


class SequencerRow(SQLModel, table=True):
    __tablename__ = "ledger_sequencer"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    size: int = Field(sa_type=BigInteger)
    head: bytes = Field(sa_type=LargeBinary)
    root: bytes = Field(sa_type=LargeBinary)


ENTRIES: Table = EntryRow.__table__  # type: ignore[attr-defined]
TILES: Table = TreeTileRow.__table__  # type: ignore[attr-defined]
CHECKPOINTS: Table = CheckpointRow.__table__  # type: ignore[attr-defined]
SEQUENCER: Table = SequencerRow.__table__  # type: ignore[attr-defined]
LEDGER_TABLES = [ENTRIES, TILES, CHECKPOINTS, SEQUENCER]


# --- custody and registry state, credential anchors (key-value rows, JSON values) -----------


def _key_value(name: str, *extra: Column) -> Table:
    return Table(
        name, METADATA,
        Column("tbl", String(16), primary_key=True),
        Column("key", String(1024), primary_key=True),
        Column("value", Text, nullable=False),
        *extra,
    )


# Registry and custody state: `tbl` the logical table, `key` its key, `value` canonical JSON,
# `seal` the row's seal (`seal.py`): the append path trusts these rows.
CUSTODY_STATE = _key_value("custody_state", Column("seal", String(64), nullable=True))
# Anchor records by credential id and anchor documents by digest.
CREDENTIAL_ANCHOR = _key_value("credential_anchor")


# --- the credential store ---------------------------------------------------------------------

CREDENTIAL_RECORD = Table(
    "credential_record", METADATA,
    Column("id", String(1024), primary_key=True),
    Column("issuer", String(1024), nullable=False, index=True),
    Column("types", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("anchored_at", Integer, nullable=False),
    Column("body", Text, nullable=False),
)
CREDENTIAL_SUBJECT = Table(
    "credential_subject", METADATA,
    Column("subject_id", String(1024), primary_key=True),
    Column("credential_id", String(1024), primary_key=True),
)
STATUS_LIST = Table(
    "status_list", METADATA,
    Column("url", String(1024), primary_key=True),
    Column("issuer", String(1024), nullable=False, index=True),
    Column("purpose", String(16), nullable=False),
    Column("number", Integer, nullable=False),
    Column("length", Integer, nullable=False),
    Column("bits", LargeBinary, nullable=False),
    Column("allocated", LargeBinary, nullable=False),
    Column("allocated_count", Integer, nullable=False),
    Column("published", Text, nullable=True),
    Column("stale", Integer, nullable=False),
)
CREDENTIAL_TABLES = [CREDENTIAL_RECORD, CREDENTIAL_SUBJECT, STATUS_LIST]


# --- the HTTP service -------------------------------------------------------------------------

# One row per administrative request accepted: a second request with the same nonce is a replay.
ADMIN_NONCES = Table(
    "api_admin_nonces", METADATA,
    Column("nonce", String(128), primary_key=True),
    Column("expires", String(64), nullable=False),
    Column("seq", BIGINT, nullable=False),
)
# Whether the API serves a stored credential's content to anyone (the publisher's choice).
CREDENTIAL_VISIBILITY = Table(
    "api_credential_visibility", METADATA,
    Column("credential_id", String(2048), primary_key=True),
    Column("public", Boolean, nullable=False, default=False),
)
SERVICE_TABLES = [ADMIN_NONCES, CREDENTIAL_VISIBILITY]

ALL_TABLES: list[Table] = [*LEDGER_TABLES, CUSTODY_STATE, CREDENTIAL_ANCHOR, *CREDENTIAL_TABLES,
                           *SERVICE_TABLES]
