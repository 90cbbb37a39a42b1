"""A bounded schemathesis run over /openapi.json: no operation answers a server error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from test_api_support import api_client, make_home

schemathesis = pytest.importorskip("schemathesis")


@schemathesis.serializer("application/jsonl")
def _jsonl(ctx, value) -> bytes:
    """Bundles are JSON Lines: a generated string is sent as its UTF-8 bytes."""
    return value.encode("utf-8") if isinstance(value, str) else str(value).encode("utf-8")


def test_no_server_error_on_any_operation(tmp_path):
    from batterytrace.verifier.trust import TrustConfig, write_trust

    home = make_home(tmp_path, None)
    write_trust(TrustConfig(), home / "trust.toml")  # else /verify answers 503 by design
    with api_client(home, None) as client:
        schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
        failures = []
        for operation in schema.get_all_operations():
            _exercise(operation.ok(), failures)
        assert not failures, failures


def _exercise(op, failures: list[str]) -> None:
    """A few generated cases of one operation; server errors are collected."""

    @settings(max_examples=5, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def run(case):
        try:
            response = case.call()
        except Exception as exc:  # the in-process app raised: a server error
            failures.append(f"{op.label}: {type(exc).__name__}: {exc}")
            return
        if response.status_code >= 500:
            failures.append(f"{op.label}: {response.status_code} {response.text[:200]}")

    run()
