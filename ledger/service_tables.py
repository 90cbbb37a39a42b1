"""Tables of the ledger service (the HTTP API): seen admin-request nonces, credential visibility.

Declared here, beside the other tables, so that the Alembic revisions create and upgrade them
like every other table (revision 0003); the API modules only read and write them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Integer, MetaData, String, Table

METADATA = MetaData()
_BIGINT = BigInteger().with_variant(Integer(), "sqlite")

# One row per administrative request accepted: a second request with the same nonce is a replay.
ADMIN_NONCES = Table(
    "api_admin_nonces", METADATA,
    Column("nonce", String(128), primary_key=True),
    Column("expires", String(64), nullable=False),
    Column("seq", _BIGINT, nullable=False),
)

# Whether the API serves a stored credential's content to anyone (the publisher's choice).
CREDENTIAL_VISIBILITY = Table(
    "api_credential_visibility", METADATA,
    Column("credential_id", String(2048), primary_key=True),
    Column("public", Boolean, nullable=False, default=False),
)
