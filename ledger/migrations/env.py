"""Alembic environment: run by `schema.upgrade` (a connection in `config.attributes`) or by
the alembic command line for developers (`sqlalchemy.url` in the config, or
BATTERYTRACE_DATABASE_URL), e.g. to autogenerate the next revision against the models."""

from __future__ import annotations

import os

from alembic import context
from batterytrace.ledger.migrations.schema import target_metadata
from sqlalchemy import create_engine


def _run() -> None:
    config = context.config
    metadata = target_metadata()
    connection = config.attributes.get("connection")
    if connection is not None:
        hooks = {}
        if "on_version_apply" in config.attributes:  # schema.observe_migrations
            hooks["on_version_apply"] = config.attributes["on_version_apply"]
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite", **hooks)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ["BATTERYTRACE_DATABASE_URL"]
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata,
                          render_as_batch=conn.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


# Only when Alembic runs this file: importing it elsewhere (the error-code test walks every
# module) must not touch a database.
if hasattr(context, "config"):
    _run()
