"""No 500 under load (issue 17): the real server (uvicorn, uvloop, httptools) on 127.0.0.1,
200 concurrent requests (signed POST /events, some duplicated or tampered, and GET
/lots/{id}/history) on SQLite, and on PostgreSQL when BATTERYTRACE_TEST_POSTGRES_URL is set.
Every answer is a success, a 4xx problem or a 503 problem with Retry-After, never a 500; the
log then holds exactly the accepted events, each once. Also: a full write queue answers 503
at once, and an unexpected exception is a 500 problem with a request id, logged once.

The server runs in a thread of the test process on a socket bound beforehand, so clients
connect at once (the kernel queues them until uvicorn accepts): no readiness polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from batterytrace.api.cli_serve import bind_socket
from batterytrace.ledger.log import sqlite_url
from batterytrace.ledger.storage import SqlStorage
from custody_factory import extraction, lot_id, signed_credential
from test_api_support import admin_request, api_client, assert_problem, make_home

POSTS = 140  # 128 distinct valid events, 6 of them posted twice, 6 tampered
DUPLICATES = 6
TAMPERED = 6
GETS = 60  # GET /lots/{id}/history of a lot appended before the load
PROBLEM = "application/problem+json"


@contextlib.contextmanager
def served(home: Path, url: str | None, **options: Any) -> Iterator[str]:
    """`create_app` under uvicorn in a thread, on a free loopback port; yields its base URL."""
    import uvicorn
    from batterytrace.api.app import create_app

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_app(home, url, checkpoint_interval=0.2, **options)
    config = uvicorn.Config(app, loop="uvloop", http="httptools", lifespan="on",
                            access_log=False, log_config=None, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


def _documents() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(valid, tampered) signed extraction credentials, each of its own new lot."""
    valid = [signed_credential("miner", [extraction("kolwezi-mine", f"load-{i}", 10,
                                                    {"Co": 0.1})])
             for i in range(POSTS - DUPLICATES - TAMPERED)]
    tampered = []
    for i in range(TAMPERED):
        doc = copy.deepcopy(signed_credential(
            "miner", [extraction("kolwezi-mine", f"forged-{i}", 10, {"Co": 0.1})]))
        doc["validFrom"] = "2020-01-01T00:00:00Z"  # after signing: the proof no longer holds
        tampered.append(doc)
    return valid, tampered


def _check_answer(response: httpx.Response) -> None:
    """A success, or a 4xx / 503 RFC 9457 problem (503 with Retry-After); never a 500."""
    status = response.status_code
    assert response.headers.get("x-request-id"), "every answer carries its request id"
    if status < 400:
        return
    assert status != 500 and (400 <= status < 500 or status == 503), response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    problem = response.json()
    assert problem["status"] == status and problem["code"] and problem["type"]
    assert problem["requestId"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    if status == 503:
        assert int(response.headers["retry-after"]) >= 1


async def _load(base: str, valid: list[dict[str, Any]], tampered: list[dict[str, Any]],
                lot: str) -> list[tuple[str, Any, httpx.Response]]:
    """Every request at once; (what, document or None, response) each."""
    limits = httpx.Limits(max_connections=POSTS + GETS, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        start = asyncio.Event()

        async def post(doc: dict[str, Any], what: str) -> tuple[str, Any, httpx.Response]:
            await start.wait()
            return what, doc, await client.post("/events", json=doc)

        async def history() -> tuple[str, Any, httpx.Response]:
            await start.wait()
            return "history", None, await client.get(f"/lots/{lot}/history")

        requests = ([post(d, "valid") for d in valid]
                    + [post(d, "valid") for d in valid[:DUPLICATES]]
                    + [post(d, "tampered") for d in tampered]
                    + [history() for _ in range(GETS)])
        tasks = [asyncio.ensure_future(r) for r in requests]
        start.set()  # released together
        return list(await asyncio.gather(*tasks))


def _logged_events(home: Path, url: str | None, first: int) -> tuple[int, list[str]]:
    """(log size, ids of the event documents at positions >= first, in log order)."""
    storage = SqlStorage(url or sqlite_url(home))
    try:
        head = storage.head()
        assert head is not None
        ids = []
        for _, body in storage.iter_bodies(first, head.size):
            entry = json.loads(body)
            assert entry["kind"] == "event", entry["kind"]
            ids.append(entry["document"]["id"])
        return head.size, ids
    finally:
        storage.close()


def test_concurrent_posts_and_reads_never_answer_500(tmp_path, database_url):
    home = make_home(tmp_path, database_url)
    valid, tampered = _documents()
    seed = signed_credential("miner", [extraction("kolwezi-mine", "load-seed", 100,
                                                  {"Co": 0.1})])
    with served(home, database_url) as base:
        with httpx.Client(base_url=base, timeout=60) as client:
            created = client.post("/events", json=seed)
            assert created.status_code == 201, created.text
        first = created.json()["seq"] + 1
        began = time.perf_counter()
        answers = asyncio.run(_load(base, valid, tampered, lot_id("load-seed")))
        elapsed = time.perf_counter() - began
    assert len(answers) == POSTS + GETS == 200
    statuses = Counter(r.status_code for _, _, r in answers)
    for _, _, response in answers:
        _check_answer(response)
    assert 500 not in statuses
    accepted: dict[str, int] = {}
    for what, doc, response in answers:
        if what == "history":
            assert response.status_code in (200, 503), response.text
            if response.status_code == 200:
                assert [e["seq"] for e in response.json()] == [first - 1]
        elif what == "tampered":
            assert response.status_code in (422, 503), response.text
        elif response.status_code in (200, 201):
            seq = response.json()["seq"]
            assert accepted.setdefault(doc["id"], seq) == seq  # a duplicate names the same
        else:
            assert response.status_code == 503, response.text
    assert accepted, statuses
    size, logged = _logged_events(home, database_url, first)
    # Exactly the accepted events, each once, where their answers said; nothing else.
    assert sorted(logged) == sorted(accepted)
    assert size == first + len(accepted)
    assert {doc_id: first + i for i, doc_id in enumerate(logged)} == accepted
    assert elapsed < 60, f"{elapsed:.1f} s for 200 requests"


def test_a_full_write_queue_answers_503_with_retry_after_and_appends_nothing(tmp_path):
    home = make_home(tmp_path, None)
    docs = [signed_credential("miner", [extraction("kolwezi-mine", f"q-{i}", 1, {"Co": 0.1})])
            for i in range(3)]
    with api_client(home, None, write_queue_size=1) as client:
        writer = client.app.state.writer
        release, held = threading.Event(), threading.Event()

        def hold() -> None:  # keeps the writer busy until released
            held.set()
            release.wait(30)

        async def block() -> None:
            await writer.run(hold, bounded=False)

        async def internal() -> None:  # a checkpoint-like job: takes no request's place
            await writer.run(lambda: None, bounded=False)

        blocked = client.portal.start_task_soon(block)
        assert held.wait(30)
        queued_internal = client.portal.start_task_soon(internal)
        size = client.get("/log").json()["size"]

        async def enqueue() -> asyncio.Task[Any]:  # fills the one slot, then returns
            task = asyncio.ensure_future(writer.append(_submissions(docs[0])))
            while writer.waiting < 1:
                await asyncio.sleep(0)
            return task

        async def outcome(task: asyncio.Task[Any]) -> Any:
            return await task

        waiting = client.portal.call(enqueue)
        refused = client.post("/events", json=docs[1])
        problem = assert_problem(refused, 503, "WRITE_QUEUE_FULL")
        assert refused.headers["retry-after"] == "1"
        assert problem["requestId"] == refused.headers["x-request-id"]
        # Every write waits in the same queue: an administrative request too.
        settings = admin_request({"type": "LedgerSettings",
                                  "settings": {"massBalanceTolerance": "0.01"}})
        assert_problem(client.post("/settings", json=settings), 503, "WRITE_QUEUE_FULL")
        release.set()
        blocked.result(30)
        queued_internal.result(30)
        assert client.portal.call(outcome, waiting)[0].seq == size
        assert client.get("/log").json()["size"] == size + 1  # the refused one is not there
        assert client.post("/events", json=docs[2]).status_code == 201


def _submissions(doc: dict[str, Any]) -> list[Any]:
    from batterytrace.ledger.log import Submission

    return [Submission("event", doc)]


def test_an_unexpected_error_is_a_500_problem_with_a_request_id_logged_once(tmp_path,
                                                                              caplog):
    home = make_home(tmp_path, None)
    with api_client(home, None) as client:
        def broken() -> None:
            raise RuntimeError("secret internal detail")

        client.app.add_api_route("/broken", broken)
        with caplog.at_level(logging.ERROR):
            response = client.get("/broken", headers={"X-Request-Id": "req-42.a"})
        problem = assert_problem(response, 500, "INTERNAL_ERROR")
        assert problem["requestId"] == response.headers["x-request-id"] == "req-42.a"
        assert "secret internal detail" not in response.text
        logged = [r for r in caplog.records if "req-42.a" in r.getMessage()]
        assert len(logged) == 1 and logged[0].exc_info is not None
        # A request id that is not a short token is replaced by the server's own.
        odd = client.get("/broken", headers={"X-Request-Id": "a b\tc"})
        assert odd.headers["x-request-id"] != "a b\tc" and len(odd.headers["x-request-id"]) == 32
        assert client.get("/log").headers["x-request-id"]


def test_an_exhausted_pool_or_a_locked_database_is_a_503_never_a_500(tmp_path):
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    home = make_home(tmp_path, None)
    with api_client(home, None) as client:
        def exhausted() -> None:
            raise PoolTimeoutError("QueuePool limit of size 5 overflow 10 reached")

        def locked() -> None:
            raise OperationalError("SELECT 1", {}, Exception("database is locked"))

        client.app.add_api_route("/exhausted", exhausted)
        client.app.add_api_route("/locked", locked)
        busy = assert_problem(client.get("/exhausted"), 503, "STORAGE_BUSY")
        assert "QueuePool" not in busy["detail"]
        response = client.get("/locked")
        assert_problem(response, 503, "STORAGE_UNAVAILABLE")
        assert response.headers["retry-after"] == "1"
