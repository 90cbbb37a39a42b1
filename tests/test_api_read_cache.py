"""Cached reads (api/read_cache.py): ETags, 304s, Cache-Control, and invalidation when the
log grows: a cached answer never outlives the log state (size, checkpoint) it belongs to."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
from batterytrace.ledger.log import Submission
from batterytrace.ledger.service import open_ledger
from custody_factory import extraction, signed_credential
from test_api_app import mine, wait_for_checkpoint
from test_api_support import api_client, assert_problem, make_home

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture
def api(tmp_path, database_url):
    home = make_home(tmp_path, database_url)
    with api_client(home, database_url) as client:
        client.home = home
        client.url = database_url
        yield client


def _revalidate(client: Any, path: str, etag: str) -> Any:
    return client.get(path, headers={"If-None-Match": etag})


def test_entry_is_immutable_with_etag_and_304(api):
    _, first = mine(api)
    path = f"/entries/{first['seq']}"
    response = api.get(path)
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    etag = response.headers["etag"]
    assert response.json()["hash"] == first["hash"]
    again = _revalidate(api, path, etag)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert _revalidate(api, path, f'"other", W/{etag}').status_code == 304
    assert _revalidate(api, path, '"other"').status_code == 200
    assert api.get(path).json() == response.json()  # a hit answers the same body


def test_missing_entry_is_not_cached(api):
    _, first = mine(api)
    following = first["seq"] + 1
    assert_problem(api.get(f"/entries/{following}"), 404, "ENTRY_NOT_FOUND")
    _, second = mine(api, lot="ore-2")
    assert second["seq"] == following
    assert api.get(f"/entries/{following}").json()["hash"] == second["hash"]


def test_latest_proof_follows_each_new_checkpoint(api):
    _, first = mine(api)
    wait_for_checkpoint(api, first["seq"] + 1)
    response = api.get("/proofs/inclusion", params={"seq": first["seq"]})
    assert response.headers["cache-control"] == "no-cache"
    old_size, etag = response.json()["size"], response.headers["etag"]
    assert _revalidate(api, f"/proofs/inclusion?seq={first['seq']}", etag).status_code == 304
    _, second = mine(api, lot="ore-2")
    wait_for_checkpoint(api, second["seq"] + 1)
    # The checkpoint grew: the proof against the latest checkpoint is a new one at once.
    fresh = _revalidate(api, f"/proofs/inclusion?seq={first['seq']}", etag)
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    assert fresh.json()["size"] > old_size
    # A proof at an explicit size never changes.
    fixed = api.get("/proofs/inclusion", params={"seq": first["seq"], "size": old_size})
    assert fixed.headers["cache-control"] == IMMUTABLE
    assert fixed.json() == response.json()


def test_writes_of_another_process_reach_the_cache(api):
    """A write that does not pass through this app's writer (another worker, the CLI) is
    seen once the cache re-reads the log (at most `probe_interval` later)."""
    _, first = mine(api)
    latest = wait_for_checkpoint(api, first["seq"] + 1)
    before = api.get("/proofs/inclusion", params={"seq": first["seq"]}).json()
    assert before["size"] == latest["size"]
    other = open_ledger(api.home, api.url)
    try:
        doc = signed_credential("miner", [extraction("kolwezi-mine", "ore-x", 5, {"Co": 0.3})])
        other.append([Submission("event", doc)])
        other.sign_checkpoint()
        grown = other.size
    finally:
        other.close()
    deadline = time.monotonic() + 10
    while api.get("/proofs/inclusion", params={"seq": first["seq"]}).json()["size"] < grown:
        assert time.monotonic() < deadline, "the cache never saw the other process's write"
        time.sleep(0.02)


def test_no_checkpoint_yet_is_still_a_problem(tmp_path, database_url):
    home = make_home(tmp_path, database_url)
    with api_client(home, database_url, checkpoint_interval=3600) as client:
        # make_home signed the registry's checkpoint: the latest proof exists...
        assert client.get("/proofs/inclusion", params={"seq": 0}).status_code == 200
        # ...and a sequence number beyond it is a 404 problem, as before
        assert_problem(client.get("/proofs/inclusion", params={"seq": 10**6}), 404,
                       "ENTRY_NOT_FOUND")


def test_public_passport_follows_the_log(tmp_path):
    from test_passport import api_path, build_network

    built = build_network(tmp_path, None)
    item = built["item"]
    path = api_path(item)
    assert path == "/api/passports/" + quote(item, safe="")
    with api_client(built["home"], None) as client:
        first = client.get(path)
        assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
        etag = first.headers["etag"]
        assert _revalidate(client, path, etag).status_code == 304
        _, appended = mine(client, lot="ore-passport")
        wait_for_checkpoint(client, appended["seq"] + 1)
        # The passport speaks of the log as of its latest checkpoint: a new one, a new answer.
        after = _revalidate(client, path, etag)
        assert after.status_code == 200 and after.headers["etag"] != etag
        assert after.json()["logSize"] == appended["seq"] + 1 > first.json()["logSize"]
