"""Database failures as typed errors: what a client sees instead of a driver traceback.

`translate_db_errors` wraps every storage call: a lost connection, a server restart or a
refused login becomes `StorageUnavailableError` (retry later, nothing half-written: the
transaction was rolled back by the server); a schema the code cannot use becomes
`StorageSchemaError`. Anything else (a constraint violated by a bug) propagates unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from batterytrace.credentials.errors import InputError


class StorageUnavailableError(InputError):
    """The database cannot be reached or dropped the connection; the operation did not
    commit (an append that raised this is not in the log) and may be retried."""

    code = "STORAGE_UNAVAILABLE"
    title = "Database unavailable"
    http_status = 503


class StorageSchemaError(InputError):
    """The database schema is newer than this program or cannot be migrated."""

    code = "STORAGE_SCHEMA_ERROR"
    title = "Unusable database schema"
    http_status = 500


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


@contextmanager
def translate_db_errors(url: str) -> Iterator[None]:
    """Turn connection-level driver errors raised inside the block into
    StorageUnavailableError (the URL is named without its password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailableError(
            f"database {_safe(make_url, url)} unavailable: {_reason(exc)}",
        ) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StorageUnavailableError(
                f"database {_safe(make_url, url)} dropped the connection: {_reason(exc)}",
            ) from exc
        raise


def _safe(make_url: object, url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)  # type: ignore[operator]
    except Exception:  # an unparsable URL is shown as the scheme only
        return url.split(":", 1)[0]
