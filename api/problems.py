"""RFC 9457 problem details for every failure the HTTP API reports.

A `BatterytraceError` becomes its own problem (`type` from its stable code, `status` from its
class); FastAPI's request validation errors, unknown routes, wrong methods and any unexpected
exception become problems with stable codes too. No stack trace ever reaches a client: an
unexpected exception is logged on the server and answered with INTERNAL_ERROR.
"""

from __future__ import annotations

import logging
from typing import Any

from batterytrace.credentials.errors import BatterytraceError, InputError, ParsingError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("batterytrace.api")

# On a read (GET/HEAD), an unknown subject is a missing resource: 404 with the CLI's code.
NOT_FOUND_ON_READ = frozenset(
    {"UNKNOWN_LOT", "UNKNOWN_ITEM", "UNKNOWN_PARTICIPANT", "UNKNOWN_FACILITY"}
)


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


def problem_response(error: BatterytraceError, request: Request | None = None,
                     status: int | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    """The problem-details response of `error` (status from its class unless given)."""
    instance = request.url.path if request is not None else None
    body = error.to_problem(instance)
    if status is not None:
        body["status"] = status
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON,
                        headers=headers)


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
    else:
        problem = HttpProblem(str(error.detail))
    return problem_response(problem, request, error.status_code, headers or None)


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path,
                  exc_info=error)
    return problem_response(InternalProblem("the server failed to answer this request"),
                            request)


def install(app: FastAPI) -> None:
    """Register the problem-details exception handlers on `app`."""
    app.add_exception_handler(BatterytraceError, _batterytrace)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


def problem_schema() -> dict[str, Any]:
    """OpenAPI response entry of a problem-details answer."""
    return {"description": "Problem details (RFC 9457)",
            "content": {PROBLEM_JSON: {"schema": {"type": "object"}}}}
