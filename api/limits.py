"""Request limits, enforced before any handler or JSON parser sees the body.

`RequestLimits` is a pure ASGI middleware: it refuses a declared `Content-Length` above the
limit at once, otherwise reads the body chunk by chunk and stops (413) as soon as the count
passes the limit, so an oversize upload is never held whole. A JSON body (or JSON Lines) is
then scanned by `scan_json` for nesting depth and element count, which are what make a
parser slow or recursive, before `json.loads` runs; malformed JSON is left to the parser
(a 400 PARSING_ERROR problem). The handler receives the body exactly as sent.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from batterytrace.credentials.errors import BatterytraceError, InputError

from .problems import problem_body, problem_bytes

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_ELEMENTS = 1_000_000
DEFAULT_MAX_URL_BYTES = 8 * 1024  # path + query string, as sent (percent-encoded)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestTooLargeError(InputError):
    code = "REQUEST_TOO_LARGE"
    title = "Request body too large"
    http_status = 413


class UrlTooLongError(InputError):
    """The request target (path and query string) is longer than the server accepts."""

    code = "URL_TOO_LONG"
    title = "Request URL too long"
    http_status = 414


class JsonTooDeepError(InputError):
    code = "JSON_TOO_DEEP"
    title = "JSON nested too deeply"


class JsonTooManyElementsError(InputError):
    code = "JSON_TOO_MANY_ELEMENTS"
    title = "JSON has too many elements"
    http_status = 413


# A complete JSON string (escapes included); what is inside cannot be structure.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_STRUCTURE = re.compile(rb"[\[\]{},]")


def scan_json(body: bytes, max_depth: int, max_elements: int) -> None:
    """Raise JsonTooDeepError / JsonTooManyElementsError when `body` (JSON, or JSON Lines)
    nests deeper than `max_depth` or holds more than `max_elements` values.

    Strings are blanked first so brackets inside them do not count; the scan then visits
    only structural characters. Malformed input is not judged here (the parser will)."""
    depth = 0
    elements = 0
    for match in _STRUCTURE.finditer(_STRING.sub(b'""', body)):
        char = match.group()
        if char in (b"[", b"{"):
            depth += 1
            elements += 1
            if depth > max_depth:
                raise JsonTooDeepError(f"JSON nests deeper than {max_depth} levels",
                                       max_depth=max_depth)
        elif char == b",":
            elements += 1
        else:
            depth = max(depth - 1, 0)
        if elements > max_elements:
            raise JsonTooManyElementsError(f"JSON holds more than {max_elements} elements",
                                           max_elements=max_elements)


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.endswith("/json") or kind.endswith("+json") or kind in (
        "application/jsonl", "application/x-ndjson", "application/json-seq")


class RequestLimits:
    """ASGI middleware: body size limit, then the JSON depth and element scan."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 max_depth: int = DEFAULT_MAX_DEPTH,
                 max_elements: int = DEFAULT_MAX_ELEMENTS,
                 max_url_bytes: int = DEFAULT_MAX_URL_BYTES) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth
        self.max_elements = max_elements

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("raw_path") or scope.get("path", "").encode("utf-8")
            if len(path) + len(scope.get("query_string", b"")) > self.max_url_bytes:
                await _send_problem(scope, send, UrlTooLongError(
                    f"the request URL exceeds {self.max_url_bytes} bytes",
                    max_bytes=self.max_url_bytes))
                return
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", ())}
        try:
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and (
                    int(declared) > self.max_body_bytes):
                raise self._too_large()
            body = await self._read(receive)
            if body and _is_json(headers.get("content-type", "")):
                scan_json(body, self.max_depth, self.max_elements)
        except BatterytraceError as error:
            await _send_problem(scope, send, error)
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> RequestTooLargeError:
        return RequestTooLargeError(f"the request body exceeds {self.max_body_bytes} bytes",
                                    max_bytes=self.max_body_bytes)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the buffered body once, then defers to the client's."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_problem(scope: Scope, send: Send, error: BatterytraceError) -> None:
    body = problem_bytes(problem_body(error, scope))
    await send({"type": "http.response.start", "status": error.http_status,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"x-content-type-options", b"nosniff"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
