"""CORS for the browser routes, from the live workspace's ``cors.allowed_origins``.

Only the routes a page calls with the public write key answer cross-origin requests: ingest (with
Segment's and RudderStack's browser paths, :mod:`loopwise.api.routes_compat`), ``POST /v1/decide``
(public decide scope) and ``GET /v1/decisions/{id}/why``. A preflight (OPTIONS with
Access-Control-Request-Method) from an allowed origin gets 204 with the allowed methods and the
requested headers that analytics clients send (:func:`allowed_request_headers`); from any other
origin, or to any other route, it gets a 403 problem without CORS headers (so the browser blocks
the call). Actual
requests from an allowed origin get ``Access-Control-Allow-Origin``; others get no CORS headers.
Credentials (cookies) are never allowed: the key travels in the body or Authorization header.
Starlette's CORSMiddleware takes a fixed list at start; the workspace can change at run time.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopwise.api.edge_settings import CorsSettings
from loopwise.api.problems import ProblemResponse
from loopwise.api.routes_compat import (
    COMPAT_PATHS,
    RUDDERSTACK_CONFIG_PATHS,
    SEGMENT_SETTINGS_PATH,
)
from loopwise.api.routes_ingest import INGEST_PATHS
from loopwise.errors import OriginNotAllowed

_WHY = re.compile(r"^/v1/decisions/[^/]+/why$")
ALLOW_HEADERS = "Authorization, Content-Type"
# Headers third-party browser clients add: Segment analytics-next's X-Retry-Count on retries,
# RudderStack's AnonymousId and SentAt on every request and Rsa-Retry-* on retries.
CLIENT_HEADERS = frozenset({"authorization", "content-type", "x-retry-count", "anonymousid",
                            "sentat"})  # fmt: skip
CLIENT_HEADER_PREFIXES = ("rsa-retry-",)
EXPOSE_HEADERS = "Retry-After, X-Loopwise-Cache, X-Loopwise-Cache-Key, X-Loopwise-Cache-Max-Age"


def browser_methods(path: str) -> str | None:
    """The methods a page may call ``path`` with cross-origin, or None for non-browser routes."""
    if path in INGEST_PATHS or path in COMPAT_PATHS or path == "/v1/decide":
        return "POST, OPTIONS"
    if _WHY.match(path) or path in RUDDERSTACK_CONFIG_PATHS or SEGMENT_SETTINGS_PATH.match(path):
        return "GET, OPTIONS"
    return None


def allowed_request_headers(requested: str | None) -> str:
    """``Access-Control-Allow-Headers``: ours, plus each requested header a known client sends
    (other requested headers are left out, so the browser refuses the call)."""
    names = [ALLOW_HEADERS]
    for name in (requested or "").split(","):
        name = name.strip().lower()
        if (
            name
            and name not in ("authorization", "content-type")
            and (name in CLIENT_HEADERS or name.startswith(CLIENT_HEADER_PREFIXES))
        ):
            names.append(name)
    return ", ".join(names)


def origin_allowed(origin: str, settings: CorsSettings) -> bool:
    allowed = settings.allowed_origins
    return "*" in allowed or origin.rstrip("/").lower() in allowed


class CorsMiddleware:
    def __init__(self, app: ASGIApp, settings: Callable[[], CorsSettings]) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        methods = browser_methods(path)
        settings = self.settings()
        allowed = methods is not None and origin_allowed(origin, settings)
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if preflight:
            if not allowed:
                error = OriginNotAllowed(
                    "This origin may not call this route from a browser. Add it to "
                    "cors.allowed_origins in the workspace (browser routes: ingest, "
                    "/v1/decide and /v1/decisions/{id}/why).",
                    field="Origin",
                )
                await ProblemResponse(error.to_problem(path), status_code=403)(scope, receive, send)
                return
            await Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": methods or "",
                    "Access-Control-Allow-Headers": allowed_request_headers(
                        headers.get("access-control-request-headers")
                    ),
                    "Access-Control-Max-Age": str(settings.max_age_seconds),
                    "Vary": "Origin",
                },
            )(scope, receive, send)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers["Access-Control-Allow-Origin"] = origin
                response_headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
                response_headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)
