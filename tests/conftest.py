"""Shared fixtures: paths to the shared standards, hypothesis profiles."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
STANDARDS = SHARED / "standards"
W3C = STANDARDS / "w3c"
DOMAIN_SAMPLES = SHARED / "domain" / "samples"

# CI runs on 2 cores within ~20 minutes: fewer examples there, more locally on demand.
settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared is missing beside the checkout (looked in {SHARED})")
    return SHARED


# --- databases: the storage, log, custody and API suites run on SQLite and PostgreSQL --------

POSTGRES_URL = os.environ.get("BATTERYTRACE_TEST_POSTGRES_URL")
POSTGRES_SKIP = (
    "PostgreSQL: set BATTERYTRACE_TEST_POSTGRES_URL (make test starts a server when CI=true)"
)


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A throwaway database on the test server; yields its SQLAlchemy URL, drops it after."""
    import psycopg
    from sqlalchemy.engine import make_url

    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP)
    server = make_url(POSTGRES_URL)
    name = f"bt_{uuid.uuid4().hex[:16]}"
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (the home's embedded SQLite) or the URL of a fresh PostgreSQL database.

    Tests taking it run once per engine; without a server the PostgreSQL run skips."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database only (skips without a server)."""
    with fresh_postgres_database() as url:
        yield url
