"""A bounded schemathesis run over /openapi.json: no operation answers a server error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from test_api_support import api_client, make_home

schemathesis = pytest.importorskip("schemathesis")


def test_no_server_error_on_any_operation(tmp_path):
    home = make_home(tmp_path, None)
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
        response = case.call()
        if response.status_code >= 500:
            failures.append(f"{op.label}: {response.status_code} {response.text[:200]}")

    run()
