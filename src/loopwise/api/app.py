"""The FastAPI app: routes, error mapping, body limits and metrics around one engine.

Middleware order, outermost first: metrics (sees every final status) -> catch-all 500 -> CORS
(so 429s and problems carry CORS headers too) -> rate limit -> body limit (refuses oversize
bodies before any route parses them) -> FastAPI.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopwise import __version__
from loopwise.api import (
    routes_admin,
    routes_channels,
    routes_compat,
    routes_consent,
    routes_decide,
    routes_edge,
    routes_experiments,
    routes_ingest,
    routes_items,
    routes_journeys,
    routes_models,
    routes_profiles,
    routes_scores,
    routes_system,
)
from loopwise.api.cors import CorsMiddleware
from loopwise.api.docs import install_docs
from loopwise.api.edge_settings import CorsSettings, RateLimitSettings
from loopwise.api.keys import KeyKind
from loopwise.api.metrics import Metrics, MetricsMiddleware
from loopwise.api.port import EnginePort
from loopwise.api.problems import (
    PROBLEM_JSON,
    CatchAllMiddleware,
    JSONBytesResponse,
    ProblemResponse,
    install_problem_handlers,
)
from loopwise.api.ratelimit import RateLimitMiddleware
from loopwise.errors import LimitExceeded, LoopwiseError, PayloadTooLarge, ValidationFailed
from loopwise.events.limits import MAX_REQUEST_BYTES

MAX_BODY_BYTES = 5 * 1024 * 1024  # items (the largest bodies); ingest has its own 500 KB
MAX_DECIDE_BYTES = 64 * 1024  # a decide request is a user, a context and a few slots
MAX_ADMIN_BYTES = 1024 * 1024  # a whole workspace document

PAGES_MODULE = "loopwise.web.pages"


def body_limit(path: str) -> int:
    """Every route has a bound; routes without a body (GET) get the smallest one."""
    if path in routes_ingest.INGEST_PATHS or path in routes_compat.COMPAT_PATHS:
        return MAX_REQUEST_BYTES
    if path == "/v1/decide":
        return MAX_DECIDE_BYTES
    if path in routes_channels.PATHS:  # an audience of user ids, a page of search results
        return MAX_ADMIN_BYTES
    if path.startswith("/v1/admin/"):
        return MAX_ADMIN_BYTES
    if path.startswith("/v1/items"):
        return MAX_BODY_BYTES
    return MAX_DECIDE_BYTES


def _too_large(path: str, limit: int, size: str) -> LimitExceeded:
    if limit == MAX_REQUEST_BYTES:  # ingest keeps its documented 400 (Segment's contract)
        return LimitExceeded(
            f"The request body is {size}; the limit for {path} is {limit // 1024} KB "
            f"({limit} bytes). Split the events into smaller batches.",
            field="body",
            limit=limit,
        )
    if path.startswith("/v1/items"):
        advice = "Send fewer items per request."
    else:
        advice = "Send a smaller body."
    return PayloadTooLarge(
        f"The request body is {size}; the limit for {path} is {limit // 1024} KB "
        f"({limit} bytes). {advice}",
        field="body",
        limit=limit,
    )


class BodyLimitMiddleware:
    """Reads each request body up to the route's limit before the app sees it: Content-Length
    is checked first, then the bytes actually received (chunked uploads have no length)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int] = body_limit) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.limit_for(path)
        error = _declared_length_error(scope, path, limit)
        if error is not None:
            await ProblemResponse(error.to_problem(path), status_code=error.status)(
                scope, receive, send
            )
            return
        chunks: list[bytes] = []
        size = 0
        ending: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                ending = message  # the client went away; let the app see it
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                error = _too_large(path, limit, f"more than {limit} bytes")
                await ProblemResponse(error.to_problem(path), status_code=error.status)(
                    scope, receive, send
                )
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        queue: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]
        if ending is not None:
            queue = [ending]

        async def replay() -> Message:
            return queue.pop(0) if queue else await receive()

        await self.app(scope, replay, send)


def _declared_length_error(scope: Scope, path: str, limit: int) -> LoopwiseError | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            if not text.isdigit():
                return ValidationFailed(
                    "Content-Length must be a whole number of bytes.", field="Content-Length"
                )
            if int(text) > limit:
                return _too_large(path, limit, f"{int(text)} bytes")
    return None


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """OpenAPI with problem+json error bodies, API-key security, and 400 (not FastAPI's 422)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {})
        _add_models(components.setdefault("schemas", {}), routes_decide.OPENAPI_MODELS)
        _add_models(components["schemas"], routes_channels.OPENAPI_MODELS)
        components["securitySchemes"] = {
            "basic": {"type": "http", "scheme": "basic", "description": "Key as username."},
            "bearer": {"type": "http", "scheme": "bearer", "description": "The API key."},
        }
        schema["security"] = [{"basic": []}, {"bearer": []}]
        schemas = components.get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if path.startswith("/v1/"):  # the rate limit and body limit of every route
                    responses.setdefault(
                        "429", {"description": "Rate limited; retry after `Retry-After` s."}
                    )
                    if path not in routes_ingest.INGEST_PATHS | routes_compat.COMPAT_PATHS:
                        responses.setdefault("413", {"description": "The body is too large."})
                _problem_content(responses)
        app.openapi_schema = schema
        return schema

    return build


def _add_models(schemas: dict[str, Any], models: Sequence[type[BaseModel]]) -> None:
    """Component schemas for request models that routes validate themselves."""
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas.setdefault(model.__name__, schema)


def _problem_content(responses: dict[str, Any]) -> None:
    if "422" in responses:
        del responses["422"]
        responses.setdefault(
            "400", {"description": "Invalid input; `field` names the offending field."}
        )
    for status, response in responses.items():
        if not status.startswith(("4", "5")):
            continue
        content = response.setdefault("content", {})
        content.pop("application/json", None)
        content[PROBLEM_JSON] = {"schema": {"$ref": "#/components/schemas/Problem"}}


def create_app(engine: EnginePort) -> FastAPI:
    """The HTTP API (plus the sample store and snippet when ``loopwise.web`` is installed)."""
    app = FastAPI(
        title="Loopwise",
        version=__version__,
        description=(
            "Self-hosted real-time content personalization: ingest events (Segment spec), read "
            "profiles, decide what each page slot shows. Errors are RFC 9457 problem+json."
        ),
        default_response_class=JSONBytesResponse,
        docs_url=None,  # served by install_docs from vendored assets, not FastAPI's CDN page
        redoc_url=None,
    )
    install_docs(app)
    metrics = Metrics()
    app.state.engine = engine
    app.state.metrics = metrics
    install_problem_handlers(app)
    for module in (
        routes_ingest,
        routes_compat,
        routes_decide,
        routes_channels,
        routes_edge,
        routes_profiles,
        routes_consent,
        routes_items,
        routes_admin,
        routes_models,
        routes_scores,
        routes_system,
        routes_experiments,
        routes_journeys,
    ):
        app.include_router(module.router)
    if importlib.util.find_spec(PAGES_MODULE) is not None:
        pages = importlib.import_module(PAGES_MODULE)
        app.include_router(pages.build_router(engine))
    if hasattr(engine, "services"):  # the real engine (route tests use a fake without one)
        from loopwise.console.app import mount_console

        mount_console(app, engine, metrics)  # type: ignore[arg-type]
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimitMiddleware)

    # the live engine of the app (tests swap it) and its live workspace settings
    def rate_limits() -> RateLimitSettings:
        return app.state.engine.settings_rate_limits

    def kind_of(key: str) -> KeyKind | None:
        return app.state.engine.keys.authenticate(key)

    def cors() -> CorsSettings:
        return app.state.engine.settings_cors

    # with --redis-url the buckets live in Redis, so the limit holds across workers
    scale = getattr(getattr(engine, "services", None), "scale", None)
    buckets = getattr(scale, "rate_buckets", None)
    app.add_middleware(RateLimitMiddleware, settings=rate_limits, kind_of=kind_of, buckets=buckets)
    app.add_middleware(CorsMiddleware, settings=cors)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
