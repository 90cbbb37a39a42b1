"""What `batterytrace serve` sets up around the app for reads under load: the collector
settled after startup (`settle_after_startup`, ledger/pool.py), the opt-in `Server-Timing` header
(api/server_timing.py), and the read cache's refresh ahead (api/read_cache.py): a generation
past half its age is still answered at once and re-read in the background, one past
`probe_interval` never is."""

from __future__ import annotations

import gc
import re
import time
import weakref
from typing import Any

import pytest
from batterytrace.api.app import SERVER_TIMING_ENV, create_app_from_env
from batterytrace.api.settings import DATABASE_URL_ENV, HOME_ENV
from batterytrace.ledger.log import Submission
from batterytrace.ledger.pool import settle_after_startup
from batterytrace.ledger.service import open_ledger
from custody_factory import extraction, signed_credential
from fastapi.testclient import TestClient
from test_api_support import api_client, make_home

TIMING = re.compile(r"app;dur=\d+\.\d{3}, gc;dur=\d+\.\d{3}")


class _Node:
    other: Any = None


def test_settled_collector_still_collects_new_cycles():
    try:
        assert settle_after_startup() >= 1  # what exists now is frozen
        cycle_a, cycle_b = _Node(), _Node()
        cycle_a.other, cycle_b.other = cycle_b, cycle_a
        gone = weakref.ref(cycle_a)
        del cycle_a, cycle_b
        gc.collect()
        assert gone() is None  # a cycle made after settling is still freed
    finally:
        gc.unfreeze()


def test_server_timing_only_when_asked(tmp_path, database_url):
    home = make_home(tmp_path, database_url)
    with api_client(home, database_url) as plain:
        assert "server-timing" not in plain.get("/health").headers
    with api_client(home, database_url, server_timing=True) as timed:
        for path in ("/health", "/log", "/entries/0", "/entries/999999"):
            assert TIMING.fullmatch(timed.get(path).headers["server-timing"]), path


def test_serve_app_settles_the_collector_and_times_when_told(tmp_path, database_url,
                                                             monkeypatch):
    """The app `serve` builds for its workers (`create_app_from_env`)."""
    home = make_home(tmp_path, database_url)
    monkeypatch.setenv(HOME_ENV, str(home))
    monkeypatch.setenv(DATABASE_URL_ENV, database_url or "")
    monkeypatch.setenv(SERVER_TIMING_ENV, "1")
    gc.unfreeze()
    try:
        with TestClient(create_app_from_env()) as client:
            assert gc.get_freeze_count() > 0  # frozen at the end of startup
            assert TIMING.fullmatch(client.get("/health").headers["server-timing"])
    finally:
        gc.unfreeze()


def _append_elsewhere(client: Any) -> int:
    """Append and sign a checkpoint through another process's ledger (not the app's
    writer); the new log size."""
    other = open_ledger(client.home, client.url)
    try:
        doc = signed_credential("miner", [extraction("kolwezi-mine", "ore-x", 5, {"Co": 0.3})])
        other.append([Submission("event", doc)])
        other.sign_checkpoint()
        return other.size
    finally:
        other.close()


@pytest.fixture
def api(tmp_path, database_url):
    """The app with its checkpoint task asleep: nothing but the test moves the log (the home
    holds the registry and its signed checkpoint)."""
    home = make_home(tmp_path, database_url)
    with api_client(home, database_url, checkpoint_interval=3600) as client:
        client.home, client.url = home, database_url
        client.app.state.read_cache.probe_interval = 3600.0  # re-read only when aged below
        yield client


def _age_known(cache: Any, seconds: float) -> None:
    generation, writes, _ = cache._known
    cache._known = (generation, writes, time.monotonic() - seconds)


def _latest_proof_size(client: Any) -> int:
    response = client.get("/proofs/inclusion", params={"seq": 0})
    assert response.status_code == 200, response.text
    return int(response.json()["size"])


def test_refresh_ahead_answers_at_once_then_sees_other_writes(api):
    cache = api.app.state.read_cache
    before = _latest_proof_size(api)
    grown = _append_elsewhere(api)
    assert grown > before
    # Younger than half the interval: answered from what is known, no re-read started.
    assert _latest_proof_size(api) == before
    assert cache._refresh is None
    # Past half the interval: still answered from what is known (it is younger than the
    # interval), and the re-read runs in the background...
    _age_known(cache, 2000.0)
    assert _latest_proof_size(api) == before
    deadline = time.monotonic() + 10
    while cache.known_generation() is None or cache.known_generation()[0] < grown:
        assert time.monotonic() < deadline, "the background re-read never finished"
        time.sleep(0.01)
    # ...so the next request has the other process's write.
    assert _latest_proof_size(api) == grown


def test_a_generation_past_the_interval_is_never_used(api):
    before = _latest_proof_size(api)
    grown = _append_elsewhere(api)
    assert grown > before
    _age_known(api.app.state.read_cache, 3600.0)  # as old as the interval: re-read first
    assert _latest_proof_size(api) == grown
