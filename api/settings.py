"""Settings of the command line and the service: option, then environment, then default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "BATTERYTRACE_HOME"
DATABASE_URL_ENV = "BATTERYTRACE_DATABASE_URL"
DEFAULT_HOME = Path(".batterytrace")


@dataclass(frozen=True)
class Settings:
    """Where the ledger lives. `database_url` defaults to SQLite inside the home."""

    home: Path
    database_url: str
    # `--mirror URL --trust FILE`: read-side commands read C2SP tiles instead of a database.
    mirror: str | None = None
    trust: Path | None = None
    mirror_cache: Path | None = None

    @classmethod
    def resolve(cls, home: Path | None = None, database_url: str | None = None) -> Settings:
        """Command-line values win over the environment, which wins over the defaults."""
        resolved_home = Path(home or os.environ.get(HOME_ENV) or DEFAULT_HOME)
        url = database_url or os.environ.get(DATABASE_URL_ENV) or sqlite_url(resolved_home)
        return cls(home=resolved_home, database_url=url)


def sqlite_url(home: Path) -> str:
    return f"sqlite:///{(Path(home) / 'ledger.sqlite').resolve()}"
