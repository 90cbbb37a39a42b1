"""Shared helpers of the API tests (no tests here): a ledger home with the standard network,
admin-signed requests, and the database state that failed requests must leave unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.service import attach_validators
from batterytrace.ledger.storage import SqlStorage
from custody_factory import ADMIN_KEY, PUBLIC_URL, sign_admin, standard_registry_docs
from fastapi.testclient import TestClient

ORIGIN = "ledger.example/test"


def make_home(tmp_path: Path, database_url: str | None) -> Path:
    """A ledger home (admin key of custody_factory) holding the standard registry."""
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    ledger = attach_validators(Ledger.init(home, database_url, ORIGIN, PUBLIC_URL))
    try:
        ledger.append([Submission("registry", d) for d in standard_registry_docs()])
    finally:
        ledger.close()
    return home


@contextmanager
def api_client(home: Path, database_url: str | None, **options: Any) -> Iterator[TestClient]:
    """A TestClient over `create_app` (startup and shutdown run)."""
    from batterytrace.api.app import create_app

    options.setdefault("checkpoint_interval", 0.05)
    app = create_app(home, database_url, **options)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def expires_in(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def admin_request(document: dict[str, Any], *, nonce: str | None = None,
                  expires: str | None = None) -> dict[str, Any]:
    """`document` with a fresh nonce and a 5-minute expiry, signed by the admin key."""
    body = {**document, "nonce": nonce or uuid.uuid4().hex,
            "expires": expires or expires_in(300)}
    return sign_admin(body)


def db_state(home: Path, database_url: str | None) -> tuple[int, bytes, int]:
    """(log size, head hash, admin nonces used): what a failed request must not change."""
    from batterytrace.ledger.log import sqlite_url
    from batterytrace.ledger.tables import ADMIN_NONCES
    from sqlalchemy import func, select

    storage = SqlStorage(database_url or sqlite_url(home))
    try:
        head = storage.head()
        assert head is not None
        with storage.engine.connect() as conn:
            nonces = conn.execute(select(func.count()).select_from(ADMIN_NONCES))
            used = nonces.scalar_one()
        return head.size, head.head, used
    finally:
        storage.close()


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem of `status` and `code`, without a stack trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code, problem
    assert problem["type"] == f"https://batterytrace.dev/problems/{code}"
    assert problem["status"] == status
    assert "Traceback" not in response.text
    return problem
