"""Schema creation and upgrades through the Alembic revisions of this package, on any engine.

`upgrade(engine)` brings a database to the newest revision; no alembic.ini is needed (the
Config is built here). A database created before Alembic was used (tables made by
`create_all`, no `alembic_version`) is stamped at 0001, the revision that describes exactly
those tables, and then upgraded. `target_metadata()` holds every table `ledger/tables.py`
declares: what autogenerate compares the migrated schema with. Alembic itself (about 0.14 s to
import) is imported when a function here needs it, not with the module.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection, Engine

from ..tables import ALL_TABLES
from .observers import _observers

HERE = Path(__file__).resolve().parent
INITIAL = "0001"
VERSION_TABLE = "alembic_version"


def target_metadata() -> MetaData:
    """One MetaData holding every table of `ledger/tables.py` (copies: nothing else that
    may be declared on SQLModel's shared metadata)."""
    meta = MetaData()
    for table in ALL_TABLES:
        table.to_metadata(meta)
    return meta


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic Config pointing at this package, built in code."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _step_reporter(conn: Connection) -> Callable[..., None]:
    """Alembic's `on_version_apply` hook, telling the observers of each revision applied."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    current = current_revision(conn)
    total = sum(1 for _ in script.iterate_revisions(head_revision(), current))
    done = [0]

    def on_version_apply(*, step: Any, **_: Any) -> None:
        if not step.is_upgrade or step.is_stamp:
            return
        done[0] += 1
        revision = step.up_revision
        title = (revision.doc or "").strip().splitlines()[0] if revision is not None else ""
        for observer in list(_observers):
            observer(str(step.up_revision_id), done[0], total, title)

    return on_version_apply


def upgrade(engine: Engine) -> str | None:
    """Migrate the database behind `engine` to the newest revision. Idempotent. Returns the
    revision it found (None: none, a new or pre-Alembic database), so that a caller can tell
    an upgrade happened. The observers (`observe_migrations`) hear of each revision applied."""
    from alembic import command

    with engine.connect() as conn:  # the common case, cheaply: already at the newest
        if VERSION_TABLE in inspect(conn).get_table_names():
            current = current_revision(conn)
            if current == head_revision():
                return current
    with engine.begin() as conn:
        names = set(inspect(conn).get_table_names())
        before = current_revision(conn) if VERSION_TABLE in names else None
        config = alembic_config(conn)
        if VERSION_TABLE not in names and "ledger_sequencer" in names:
            command.stamp(config, INITIAL)  # created by create_all before Alembic was used
        if _observers:
            config.attributes["on_version_apply"] = _step_reporter(conn)
        command.upgrade(config, "head")
        return before
