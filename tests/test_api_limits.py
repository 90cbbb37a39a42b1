"""Request limits: the JSON shape scanner and the streaming size limit."""

from __future__ import annotations

import asyncio
import json

import pytest
from batterytrace.api.limits import (
    JsonTooDeepError,
    JsonTooManyElementsError,
    RequestLimits,
    scan_json,
)
from hypothesis import given
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{},"\\ab'),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet='[]{}"a', max_size=3), children, max_size=4),
    max_leaves=20,
)


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@given(json_values)
def test_scanner_measures_depth_exactly_whatever_the_strings_hold(value):
    body = json.dumps(value).encode()
    scan_json(body, max_depth=depth(value), max_elements=10_000)
    if depth(value) > 0:
        with pytest.raises(JsonTooDeepError):
            scan_json(body, max_depth=depth(value) - 1, max_elements=10_000)


def test_scanner_counts_elements_and_reads_json_lines():
    scan_json(b'{"a": [1, 2, 3]}\n{"b": "[[[["}\n', max_depth=2, max_elements=10)
    with pytest.raises(JsonTooManyElementsError):
        scan_json(b"[" + b",".join([b"1"] * 100) + b"]", max_depth=5, max_elements=50)


def _run(max_bytes: int, headers, chunks):
    """Drive the middleware with a streamed body; returns (status, chunks read, app called)."""
    read = []
    called = []
    sent = []

    async def app(scope, receive, send):
        called.append(await receive())

    async def receive():
        chunk = chunks[len(read)]
        read.append(chunk)
        return {"type": "http.request", "body": chunk, "more_body": len(read) < len(chunks)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/events", "headers": headers}
    asyncio.run(RequestLimits(app, max_body_bytes=max_bytes)(scope, receive, send))
    status = sent[0]["status"] if sent else None
    return status, len(read), bool(called)


def test_oversize_bodies_are_refused_before_being_read_whole():
    limits = 1000
    chunks = [b"x" * 400] * 10
    # Declared too large: refused without reading anything.
    assert _run(limits, [(b"content-length", b"4000")], chunks) == (413, 0, False)
    # Streamed without a length: refused at the third chunk, the rest never read.
    assert _run(limits, [], chunks) == (413, 3, False)
    # Within the limit: the app gets the whole body.
    assert _run(limits, [(b"content-type", b"application/json")], [b"[1,", b"2]"]) == (
        None, 2, True)


# --- error codes over HTTP (issue 18) -------------------------------------------------------


@pytest.fixture(scope="module")
def http_api(tmp_path_factory):
    from test_api_support import api_client, make_home

    home = make_home(tmp_path_factory.mktemp("limits"), None)
    with api_client(home, None) as client:
        yield client


@pytest.mark.parametrize(
    "body",
    [b'{"type": "\xff\xfe"}', b'{"n": ' + b"1" + b"0" * 5000 + b"}"],
    ids=["invalid-utf8", "integer-10^5000"],
)
def test_unparsable_json_bodies_are_parsing_errors(http_api, body):
    from test_api_support import assert_problem

    response = http_api.post("/events", content=body,
                             headers={"content-type": "application/json"})
    assert_problem(response, 400, "PARSING_ERROR")


def test_unknown_status_list_and_participant_are_404(http_api):
    from test_api_support import assert_problem

    assert_problem(http_api.get("/status-lists/did:web:nobody.example/revocation/1"), 404,
                   "STATUS_LIST_NOT_FOUND")
    assert_problem(http_api.get("/participants/nobody"), 404, "UNKNOWN_PARTICIPANT")
    assert_problem(http_api.get("/participants/nobody/did.json"), 404, "UNKNOWN_PARTICIPANT")


def test_a_key_change_for_an_unknown_participant_is_404(tmp_path):
    """POST /participants/{name}/keys names its resource in the path: an unknown participant
    is a missing resource (404), as on a read, and nothing is appended."""
    from custody_factory import key_for
    from test_api_support import admin_request, api_client, assert_problem, make_home

    home = make_home(tmp_path, None)
    with api_client(home, None) as client:
        size = client.get("/log").json()["size"]
        did = "did:web:ledger.example:participants:nobody"
        rotation = admin_request({"type": "KeyRotation", "participant": did,
                                  "newKey": key_for("nobody").public_multibase})
        assert_problem(client.post("/participants/nobody/keys", json=rotation), 404,
                       "UNKNOWN_PARTICIPANT")
        assert client.get("/log").json()["size"] == size


def test_oversize_url_is_a_problem(http_api):
    from test_api_support import assert_problem

    problem = assert_problem(http_api.get("/lots/x?q=" + "a" * 9000), 414, "URL_TOO_LONG")
    assert problem["details"]["max_bytes"] == 8192
    assert_problem(http_api.get("/lots/" + "a" * 9000), 414, "URL_TOO_LONG")
    assert http_api.get("/lots/x?q=" + "a" * 100).status_code == 404  # under the limit
