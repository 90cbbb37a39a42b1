"""`batterytrace serve`: TCP_NODELAY on the listening socket, and concurrent appends from
several clients through 2 workers on PostgreSQL (no gap, no duplicate)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from batterytrace.api.cli_serve import bind_socket
from custody_factory import extraction, signed_credential
from test_api_support import make_home

ROOT = Path(__file__).resolve().parent.parent


def test_listening_socket_has_tcp_nodelay():
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        client = socket.create_connection(sock.getsockname())
        accepted, _ = sock.accept()
        # Linux hands the listener's TCP_NODELAY to every accepted connection.
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        accepted.close()
        client.close()
    finally:
        sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(base: str, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/log", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve did not answer")


@pytest.mark.postgres
def test_two_workers_on_postgresql_append_concurrently(tmp_path, postgres_url):
    home = make_home(tmp_path, postgres_url)
    port = _free_port()
    env = {**os.environ, "BATTERYTRACE_HOME": str(home),
           "BATTERYTRACE_DATABASE_URL": postgres_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "batterytrace.api.cli", "serve", "--port", str(port),
         "--workers", "2", "--checkpoint-interval", "0.2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        start = httpx.get(f"{base}/log").json()["size"]
        docs = [[signed_credential("miner", [extraction("kolwezi-mine", f"c{c}-{i}", 1,
                                                        {"Co": 0.1})]) for i in range(4)]
                for c in range(6)]

        def client(batch_docs):
            with httpx.Client(base_url=base, timeout=60) as http:
                seqs = []
                for doc in batch_docs[:2]:  # single appends
                    response = http.post("/events", json=doc)
                    assert response.status_code == 201, response.text
                    seqs.append(response.json()["seq"])
                response = http.post("/events", json=batch_docs[2:])  # one batch
                assert response.status_code == 201, response.text
                return seqs + [r["seq"] for r in response.json()]

        with ThreadPoolExecutor(6) as pool:
            seqs = [s for result in pool.map(client, docs) for s in result]
        assert sorted(seqs) == list(range(start, start + 24))  # no gap, no duplicate
        assert httpx.get(f"{base}/log").json()["size"] == start + 24
        # Both workers share the log: the same entry answers from either.
        for seq in (start, start + 23):
            entry = httpx.get(f"{base}/entries/{seq}").json()
            assert entry["seq"] == seq
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_serve_prints_its_url_and_the_featured_passport(tmp_path):
    """`serve` prints the URL it listens on and the passport URL of the item the home's
    bundle is about (the demo's); both answer."""
    import json
    from urllib.parse import quote

    from batterytrace.ledger.log import Submission
    from batterytrace.ledger.service import open_ledger
    from custody_factory import item_id, lifecycle

    home = make_home(tmp_path, None)
    ledger = open_ledger(home, None)
    try:
        ledger.append([Submission("event", signed_credential(issuer, [event]))
                       for _, issuer, event in lifecycle()])
    finally:
        ledger.close()
    item = item_id("pack-p1")
    (home / "bundle.jsonl").write_text(json.dumps(
        {"type": "batterytrace-bundle", "scope": {"kind": "item", "id": item}}) + "\n")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "batterytrace.api.cli", "--home", str(home), "serve",
         "--port", str(port)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "BATTERYTRACE_DATABASE_URL": ""})
    try:
        base = f"http://127.0.0.1:{port}"
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        assert first.startswith(f"listening on {base} ")
        assert second.strip() == f"passport of the featured item: {base}/passports/" + quote(
            item, safe="")
        _wait_ready(base, process)
        page = httpx.get(second.strip().rsplit(" ", 1)[-1], timeout=60)
        assert page.status_code == 200 and item in page.text
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
