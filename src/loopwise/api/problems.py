"""Every error leaves the API as RFC 9457 ``application/problem+json``, mapped here and only here.

Bad input is a 4xx naming the field; an unexpected exception is a 500 that reveals nothing of the
internals (the log gets the exception type only: messages and tracebacks may carry request data).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopwise.errors import (
    PROBLEM_BASE,
    LoopwiseError,
    NotFound,
    StorageUnavailable,
    Unauthorized,
    ValidationFailed,
)

STORAGE_RETRY_AFTER = "1"  # seconds, on every 503 storage-unavailable problem

log = logging.getLogger("loopwise.api")

PROBLEM_JSON = "application/problem+json"
WWW_AUTHENTICATE = 'Basic realm="loopwise", Bearer realm="loopwise"'
MAX_LISTED_ERRORS = 20
_LOCATIONS = ("body", "query", "path", "header", "cookie")


class JSONBytesResponse(JSONResponse):
    """JSON via orjson (FastAPI's ORJSONResponse is deprecated)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class ProblemResponse(JSONBytesResponse):
    """A problem+json reply. Besides RFC 9457's members it carries ``code`` (the type's last
    segment, e.g. ``validation-failed``) and ``message`` (the detail): extension members that
    older Segment and RudderStack Python clients read from every error body
    (``analytics-python`` 1.4 raises ``KeyError: 'code'`` without them)."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        if isinstance(content, dict) and "type" in content:
            content = with_client_members(content)
        return super().render(content)


def with_client_members(problem: Mapping[str, Any]) -> dict[str, Any]:
    """``problem`` plus ``code`` and ``message`` (kept when already there)."""
    out = dict(problem)
    out.setdefault("code", str(problem.get("type", "")).rstrip("/").rpartition("/")[2] or "error")
    out.setdefault("message", str(problem.get("detail", problem.get("title", ""))))
    return out


class Problem(BaseModel):
    """An RFC 9457 problem document (the body of every error reply)."""

    type: str = Field(description="Stable URI naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do about it.")
    instance: str | None = Field(None, description="The request path.")
    field: str | None = Field(None, description="Offending field path, e.g. batch[3].userId.")


class MethodNotAllowed(LoopwiseError):
    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class InternalError(LoopwiseError):
    status = 500
    slug = "internal-error"
    title = "Internal server error"


_DESCRIPTIONS = {
    400: "Invalid input; `field` names the offending field.",
    401: "Missing or unknown API key.",
    403: "The API key lacks the scope this route needs.",
    404: "Not found.",
    409: "Conflict.",
    412: "The workspace changed since the If-Match revision; the problem lists what changed.",
    415: "Unsupported Content-Type or Content-Encoding.",
    503: "Storage unavailable; retry later.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries declaring problem+json bodies for the given statuses."""
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(status, "Error."),
            "content": {PROBLEM_JSON: {}},
        }
        for status in statuses
    }


def problem_response(error: LoopwiseError, instance: str) -> ProblemResponse:
    headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if isinstance(error, Unauthorized) else None
    if isinstance(error, StorageUnavailable):  # the database is back within seconds, or failed
        headers = {"Retry-After": STORAGE_RETRY_AFTER}
    return ProblemResponse(error.to_problem(instance), status_code=error.status, headers=headers)


def field_path(loc: Sequence[str | int]) -> str | None:
    """``("body", "slots", 0, "n")`` -> ``"slots[0].n"``; ``"body"`` for the body as a whole."""
    parts = list(loc)
    whole = "body" if parts[:1] == ["body"] else None
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or whole


def _explain(error: Mapping[str, Any]) -> tuple[str | None, str]:
    """(field, sentence) for one pydantic error; input values are never echoed back."""
    kind = error.get("type", "")
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "malformed JSON")
        return "body", f"The body is not valid JSON ({reason}). Send a JSON document."
    where = field_path(error.get("loc", ()))
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ").rstrip(".")
    if kind == "missing":
        text = f"{where} is required." if where else "A JSON body is required."
    elif kind == "extra_forbidden":
        text = f"{where} is not a known field; remove it."
    else:
        text = f"{where}: {message}." if where else f"{message}."
    return where, text


def validation_problem(exc: RequestValidationError) -> ValidationFailed:
    explained = [_explain(error) for error in exc.errors()]
    if not explained:
        return ValidationFailed("The request is invalid; see /openapi.json for its shape.")
    field, text = explained[0]
    more = f" ({len(explained) - 1} more listed in errors.)" if len(explained) > 1 else ""
    return ValidationFailed(
        f"{text} The expected shape is in /openapi.json.{more}",
        field=field,
        errors=[{"field": f, "detail": d} for f, d in explained[:MAX_LISTED_ERRORS]],
    )


def http_problem(exc: StarletteHTTPException, request: Request) -> dict[str, Any]:
    """The problem body for Starlette's own errors (unknown route, wrong method, ...)."""
    path = request.url.path
    if exc.status_code == 404:
        detail = f"Nothing at {request.method} {path}. The API is listed at /docs."
        return NotFound(detail).to_problem(path)
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed on {path}. Use: {allowed or 'see /docs'}."
        return MethodNotAllowed(detail).to_problem(path)
    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "HTTP error"
    return {
        "type": PROBLEM_BASE + "http-" + str(exc.status_code),
        "title": title,
        "status": exc.status_code,
        "detail": str(exc.detail),
        "instance": path,
    }


async def _loopwise_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoopwiseError)
    if exc.status >= 500:
        log.warning("request failed: %s", type(exc).__name__)
    return problem_response(exc, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_response(validation_problem(exc), request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    response = ProblemResponse(http_problem(exc, request), status_code=exc.status_code)
    for name, value in (exc.headers or {}).items():
        response.headers.setdefault(name, value)
    return response


async def _client_gone(_request: Request, _exc: Exception) -> Response:
    """The client disconnected while the body was read: nobody receives an answer, and it is not
    a server error to log (metrics count it as status 499)."""
    return Response(status_code=499)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(LoopwiseError, _loopwise_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


class CatchAllMiddleware:
    """Turns any unhandled exception into a bare 500 problem (pure ASGI, so no re-raise reaches
    the server's logger with a traceback that could quote request data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unhandled %s while serving a request", type(exc).__name__)
            if started:
                raise
            error = InternalError(
                "Something went wrong on the server. Retry later; if it persists, "
                "report it with the time of the request."
            )
            response = ProblemResponse(error.to_problem(scope.get("path")), status_code=500)
            await response(scope, receive, send)
