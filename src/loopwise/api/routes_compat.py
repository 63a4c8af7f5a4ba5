"""The paths third-party analytics clients post to, unchanged apart from their host setting.

- Segment's browser SDK (``@segment/analytics-next``) posts each message to a one-letter path
  (``/v1/t`` track, ``/v1/p`` page, ``/v1/i`` identify, ``/v1/g`` group, ``/v1/a`` alias,
  ``/v1/s`` screen), batches to ``/v1/b``, and its own delivery metrics to ``/v1/m``.
- RudderStack's browser SDK (``@rudderstack/analytics-js``) in beacon mode posts
  ``/beacon/v1/batch?writeKey=...`` as ``text/plain`` (a beacon cannot set headers).
- Both browser SDKs first read their settings from their vendor's servers; Loopwise answers
  those reads itself, so pointing the SDK's settings host at Loopwise is all it takes:
  ``GET /v1/projects/{writeKey}/settings`` (analytics-next's ``cdnURL``) names Loopwise as the
  Segment.io destination's host, ``GET /sourceConfig`` (analytics-js's ``configUrl``) is an
  enabled source with no destinations. Both answer 404 for a key that is not a write key.

Messages go through the same ingest as ``/v1/{kind}`` (validation, consent, durability, the
``{"success": true}`` reply). The key in the ``writeKey`` query parameter is treated like the
same key in an ``Authorization`` header. ``/v1/m`` carries the SDK's own counters, not events
about people: it is acknowledged, counted in ``/metrics`` and not stored.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from loopwise.api.keys import KeyKind
from loopwise.api.metrics import metrics_of
from loopwise.api.port import engine_of
from loopwise.api.problems import problem_responses
from loopwise.api.routes_ingest import SUCCESS_BODY, ingest, request_body
from loopwise.errors import NotFound
from loopwise.events.limits import check_ingest_content_type, parse_json, read_body

SEGMENT_SHORT_PATHS = {
    "/v1/t": "track",
    "/v1/p": "page",
    "/v1/i": "identify",
    "/v1/g": "group",
    "/v1/a": "alias",
    "/v1/s": "screen",
    "/v1/b": "batch",
}
SEGMENT_METRICS_PATH = "/v1/m"
RUDDERSTACK_BEACON_PATH = "/beacon/v1/batch"
COMPAT_PATHS = frozenset([*SEGMENT_SHORT_PATHS, SEGMENT_METRICS_PATH, RUDDERSTACK_BEACON_PATH])
SEGMENT_SETTINGS_PATH = re.compile(r"^/v1/projects/[^/]+/settings$")
RUDDERSTACK_CONFIG_PATHS = frozenset({"/sourceConfig", "/sourceConfig/"})

router = APIRouter(tags=["ingest"])


def with_query_key(request: Request) -> Request:
    """The request with ``?writeKey=`` moved into an ``Authorization: Basic`` header (unless it
    has one), so ingest authenticates it the one way it knows."""
    key = request.query_params.get("writeKey")
    if not key or "authorization" in request.headers:
        return request
    credentials = base64.b64encode(f"{key}:".encode()).decode("ascii")
    scope = dict(request.scope)
    scope["headers"] = [
        *request.scope["headers"],
        (b"authorization", f"Basic {credentials}".encode()),
    ]
    return Request(scope, request.receive)


def _short_endpoint(kind: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await ingest(request, kind)

    endpoint.__name__ = f"segment_short_{kind}"
    return endpoint


for _path, _kind in SEGMENT_SHORT_PATHS.items():
    router.add_api_route(
        _path,
        _short_endpoint(_kind),
        methods=["POST"],
        summary=f"Segment analytics-next's short path for {_kind}",
        description="Scope: ingest (write key, in the body or header). Same as "
        f"`POST /v1/{_kind}`.",
        responses=problem_responses(400, 401, 403, 415, 503),
        openapi_extra=request_body(_kind),
    )


@router.post(
    RUDDERSTACK_BEACON_PATH,
    summary="RudderStack's beacon batch (`?writeKey=`, text/plain)",
    description="Scope: ingest (write key in the `writeKey` query parameter). Same as "
    "`POST /v1/batch`.",
    responses=problem_responses(400, 401, 403, 415, 503),
    openapi_extra=request_body("batch"),
)
async def rudderstack_beacon(request: Request) -> Response:
    return await ingest(with_query_key(request), "batch")


@router.post(
    SEGMENT_METRICS_PATH,
    summary="Segment analytics-next's delivery metrics (acknowledged, not stored)",
    description='Scope: public. The SDK\'s own counters (`{"series": [...]}`); counted in '
    "`/metrics` as `loopwise_client_metrics_total`, nothing is stored.",
    responses=problem_responses(400, 415),
)
async def segment_metrics(request: Request) -> Response:
    check_ingest_content_type(request.headers.get("content-type"))
    body = parse_json(read_body(await request.body(), request.headers.get("content-encoding")))
    series = body.get("series") if isinstance(body, dict) else None
    metrics_of(request).client_metrics.inc(len(series) if isinstance(series, list) else 0)
    return Response(SUCCESS_BODY, media_type="application/json")


def _write_key(request: Request, key: str | None) -> str:
    if not key or engine_of(request).keys.authenticate(key) != KeyKind.WRITE:
        raise NotFound("No source with this write key.", field="writeKey")
    return key


@router.get(
    "/v1/projects/{write_key}/settings",
    summary="Segment analytics-next's settings (its `cdnURL` pointed here)",
    description="Scope: public (a write key in the path; 404 for any other). The Segment.io "
    "destination's `apiHost` is this server, so events go to the short paths here.",
    responses=problem_responses(404),
)
async def segment_settings(request: Request, write_key: str) -> Response:
    key = _write_key(request, write_key)
    api_host = f"{request.url.netloc}/v1"
    settings = {
        "integrations": {
            "Segment.io": {"apiKey": key, "apiHost": api_host, "protocol": request.url.scheme}
        },
        "plan": {"track": {"__default": {"enabled": True}}},
        "metrics": {"sampleRate": 0.1, "host": api_host},
        "remotePlugins": [],
        "enabledMiddleware": {},
    }
    return Response(orjson.dumps(settings), media_type="application/json")


@router.get(
    "/sourceConfig",
    summary="RudderStack analytics-js's source configuration (its `configUrl` pointed here)",
    description="Scope: public (the write key in `?writeKey=` or as Basic auth; 404 for any "
    "other). An enabled source with no destinations: events go to this data plane only.",
    responses=problem_responses(404),
)
async def rudderstack_source_config(request: Request) -> Response:
    query = request.query_params.get("writeKey")
    header = request.headers.get("authorization", "")
    if query is None and header.lower().startswith("basic "):
        try:
            query = base64.b64decode(header[6:]).decode().partition(":")[0]
        except ValueError:
            query = None
    key = _write_key(request, query)
    source = {
        "id": "loopwise", "name": "Loopwise", "writeKey": key, "enabled": True,
        "workspaceId": "loopwise", "config": {}, "destinations": [],
    }  # fmt: skip
    return Response(
        orjson.dumps({"isHosted": False, "source": source}), media_type="application/json"
    )


router.add_api_route(
    "/sourceConfig/", rudderstack_source_config, methods=["GET"], include_in_schema=False
)
