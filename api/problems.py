"""RFC 9457 problem details for every failure the HTTP API reports.

A `BatterytraceError` becomes its own problem (`type` from its stable code, `status` from its
class); FastAPI's request validation errors, unknown routes, wrong methods and any unexpected
exception become problems with stable codes too. No stack trace ever reaches a client: an
unexpected exception is logged on the server and answered with INTERNAL_ERROR.

`ProblemGuard` (the outermost middleware) gives every request an id: the client's
`X-Request-Id` when it is a short token, else a new one; it is sent back in the
`X-Request-Id` header of every response and in the `requestId` member of every problem. It
catches any exception nothing else answered, logs it ONCE with the request id and answers the
500 problem itself (the server never sees it, so it is not logged twice). A 503 always
carries `Retry-After`. A database that is busy or unreachable is a 503, never a 500:
SQLAlchemy's pool timeout (`STORAGE_BUSY`) and driver errors such as SQLite's "database is
locked" (`STORAGE_UNAVAILABLE`).

Problems carry participant text (item ids, names, reasons) exactly, and safely: the body is
ASCII JSON in which every control character, bidi override and other non-ASCII character is a
`\\uXXXX` escape and `<`, `>`, `&` are escaped too (`\\u003c`...), with
`X-Content-Type-Options: nosniff`, so no terminal, log viewer or browser that shows the raw
body interprets it (`problem_bytes`).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from batterytrace.credentials.errors import BatterytraceError, InputError, ParsingError
from batterytrace.ledger.storage import transient_storage_error
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_KEY = "batterytrace.request_id"  # where the id sits in the ASGI scope
NOSNIFF = ("X-Content-Type-Options", "nosniff")
RETRY_AFTER_SECONDS = 1  # the Retry-After of a 503 that does not name its own
log = logging.getLogger("batterytrace.api")

_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# On a read (GET/HEAD), an unknown subject is a missing resource: 404 with the CLI's code.
NOT_FOUND_ON_READ = frozenset(
    {"UNKNOWN_LOT", "UNKNOWN_ITEM", "UNKNOWN_PARTICIPANT", "UNKNOWN_FACILITY",
     "STATUS_LIST_NOT_FOUND"}
)
# Starlette's detail when the body could not be decoded (invalid UTF-8, an integer beyond
# Python's digit limit, ...): a malformed body, like JSON that does not parse.
_BODY_PARSE_DETAIL = "There was an error parsing the body"


class RequestValidationProblem(InputError):
    """A parameter or body has the wrong type or shape (FastAPI's validation failed)."""

    code = "REQUEST_VALIDATION_ERROR"
    title = "Request does not match the API"


class NotFoundProblem(InputError):
    code = "NOT_FOUND"
    title = "No such resource"
    http_status = 404


class MethodNotAllowedProblem(InputError):
    code = "METHOD_NOT_ALLOWED"
    title = "Method not allowed on this resource"
    http_status = 405


class HttpProblem(InputError):
    """Any other HTTP-level refusal raised by the framework."""

    code = "HTTP_ERROR"
    title = "HTTP error"


class InternalProblem(BatterytraceError):
    """An unexpected server fault (details are in the server log, never in the response)."""

    code = "INTERNAL_ERROR"
    title = "Internal server error"
    exit_code = 1
    http_status = 500


def request_id(scope: Scope) -> str:
    """The id of the request of `scope`, given on first use (the client's `X-Request-Id`
    when it is a short token of letters, digits and `._:-`, else a new random one)."""
    rid = scope.get(REQUEST_ID_KEY)
    if rid is None:
        given = ""
        for key, value in scope.get("headers", ()):
            if key.lower() == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = given if _CLIENT_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope[REQUEST_ID_KEY] = rid
    return str(rid)


def problem_body(error: BatterytraceError, scope: Scope | None,
                 status: int | None = None) -> dict[str, Any]:
    """The RFC 9457 body of `error` (with `instance` and `requestId` when in a request)."""
    body = error.to_problem(scope.get("path") if scope is not None else None)
    if status is not None:
        body["status"] = status
    if scope is not None:
        body["requestId"] = request_id(scope)
    return body


def problem_bytes(body: dict[str, Any]) -> bytes:
    """The wire form of a problem body: ASCII JSON with control characters, bidi overrides
    and `<`, `>`, `&` as `\\u` escapes (parsed back, the text is exactly what it was)."""
    text = json.dumps(body, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace(
        "&", "\\u0026").encode("ascii")


class ProblemResponse(JSONResponse):
    """A problem-details response, encoded by `problem_bytes`."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return problem_bytes(content)


def retry_after(error: BatterytraceError | None) -> str:
    """Seconds a client should wait before retrying after a 503 of `error`."""
    seconds = (error.details.get("retry_after") if error is not None else None)
    return str(seconds if isinstance(seconds, int) and seconds > 0 else RETRY_AFTER_SECONDS)


def problem_response(error: BatterytraceError, request: Request | None = None,
                     status: int | None = None,
                     headers: dict[str, str] | None = None) -> ProblemResponse:
    """The problem-details response of `error` (status from its class unless given); a 503
    says when to retry (`Retry-After`)."""
    body = problem_body(error, request.scope if request is not None else None, status)
    headers = {NOSNIFF[0]: NOSNIFF[1], **(headers or {})}
    if body["status"] == 503:
        headers = {"Retry-After": retry_after(error), **headers}
    return ProblemResponse(body, status_code=body["status"], headers=headers)


def _batterytrace(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, BatterytraceError)
    status = None
    if request.method in ("GET", "HEAD") and error.code in NOT_FOUND_ON_READ:
        status = 404
    return problem_response(error, request, status)


def _validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = list(error.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(ParsingError("the request body is not valid JSON"), request)
    fields = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
              for e in errors[:20]]
    first = fields[0] if fields else {"loc": [], "msg": "invalid request"}
    message = f"{'.'.join(first['loc'])}: {first['msg']}"
    return problem_response(RequestValidationProblem(message, errors=fields), request)


def _http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 404:
        problem: BatterytraceError = NotFoundProblem(f"no resource at {request.url.path}")
    elif error.status_code == 405:
        problem = MethodNotAllowedProblem(f"{request.method} is not allowed on "
                                          f"{request.url.path}")
    elif error.status_code == 400 and error.detail == _BODY_PARSE_DETAIL:
        problem = ParsingError("the request body is not valid JSON (UTF-8, numbers in range)")
    else:
        problem = HttpProblem(str(error.detail))
    return problem_response(problem, request, error.status_code, headers or None)


def _answer_unexpected(scope: Scope, error: Exception) -> tuple[BatterytraceError, bytes]:
    """Log `error` once (a database that is busy or unreachable as a one-line warning, any
    other fault with its traceback) and give the problem to answer: a 503 storage problem
    or INTERNAL_ERROR (500). Returns (problem, JSON body)."""
    rid = request_id(scope)
    problem: BatterytraceError | None = transient_storage_error(error)
    if problem is not None:
        log.warning("%s on %s %s [request %s]: %s", problem.code, scope.get("method"),
                    scope.get("path"), rid, problem.message)
    else:
        log.error("unexpected error on %s %s [request %s]", scope.get("method"),
                  scope.get("path"), rid, exc_info=error)
        problem = InternalProblem("the server failed to answer this request")
    return problem, problem_bytes(problem_body(problem, scope))


def _problem_headers(problem: BatterytraceError, rid: str) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", PROBLEM_JSON.encode()),
               (NOSNIFF[0].lower().encode(), NOSNIFF[1].encode()),
               (REQUEST_ID_HEADER.lower().encode(), rid.encode("latin-1"))]
    if problem.http_status == 503:
        headers.append((b"retry-after", retry_after(problem).encode()))
    return headers


def _unexpected(request: Request, error: Exception) -> Response:
    # Reached only without ProblemGuard (which answers first): the same answer, logged once.
    problem, body = _answer_unexpected(request.scope, error)
    return Response(body, status_code=problem.http_status, headers={
        k.decode(): v.decode() for k, v in _problem_headers(problem, request_id(request.scope))})


class ProblemGuard:
    """ASGI middleware, outermost: the request id (header on every response), and the one
    place an unexpected exception is logged and answered (a 500 problem with the id)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        header = (REQUEST_ID_HEADER.lower().encode(), rid.encode("latin-1"))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            problem, body = _answer_unexpected(scope, error)
            if started:  # the status is already sent: the connection just ends
                return
            headers = _problem_headers(problem, rid)
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": problem.http_status,
                        "headers": headers})
            await send({"type": "http.response.body", "body": body})


def install(app: FastAPI) -> None:
    """Register the problem-details exception handlers on `app` (add `ProblemGuard` as the
    outermost middleware too: `create_app` does)."""
    app.add_exception_handler(BatterytraceError, _batterytrace)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


def problem_schema() -> dict[str, Any]:
    """OpenAPI response entry of a problem-details answer."""
    return {"description": "Problem details (RFC 9457)",
            "content": {PROBLEM_JSON: {"schema": {"type": "object"}}}}
