"""Who hears of schema upgrades: `observe_migrations` registers a callback that
`schema.upgrade` calls as each Alembic revision is applied. Kept apart from `schema.py` (no
SQLAlchemy import) so that the command line can register its display at start-up for free."""

from __future__ import annotations

from collections.abc import Callable

# (revision applied, its number among this upgrade's steps, how many steps, its title).
MigrationStep = Callable[[str, int, int, str], None]
_observers: list[MigrationStep] = []


def observe_migrations(observer: MigrationStep) -> Callable[[], None]:
    """Call `observer` as each revision of an upgrade is applied (the command line shows
    it on a terminal); returns the function that stops it. Library code prints nothing."""
    _observers.append(observer)
    return lambda: _observers.remove(observer)


__all__ = ["MigrationStep", "observe_migrations"]
