"""Segment's HTTP Tracking API: ``/v1/track``, ``identify``, ``page``, ``screen``, ``group``,
``alias`` and ``batch``, so existing analytics clients send here unchanged.

A 200 means the events are on disk: the handler awaits the storage writer's commit without
blocking the event loop. The reply is exactly ``{"success": true}``; RudderStack's client treats
anything else as a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from loopwise.api.auth import authorize, key_from_headers
from loopwise.api.keys import KeyKind, Scope
from loopwise.api.metrics import metrics_of
from loopwise.api.port import IngestPort, IngestResult, engine_of
from loopwise.api.problems import problem_responses
from loopwise.api.user_tokens import restrict_to_browser, strip_user_tokens
from loopwise.events.limits import (
    MAX_BATCH_EVENTS,
    MAX_REQUEST_BYTES,
    check_ingest_content_type,
    parse_json,
    read_body,
)
from loopwise.events.normalize import parse_request, write_key_from_body
from loopwise.events.schema import Event


def _engine(request: Request) -> IngestPort:
    """This module's narrow view of the engine: it may use only what IngestPort declares."""
    return engine_of(request)


INGEST_KINDS = ("track", "identify", "page", "screen", "group", "alias", "batch")
INGEST_PATHS = frozenset(f"/v1/{kind}" for kind in INGEST_KINDS)
SUCCESS_BODY = b'{"success": true}'

router = APIRouter(tags=["ingest"])


class IngestAck(BaseModel):
    """The only success reply: the events are stored."""

    success: bool = True


_SUMMARIES = {
    "track": "Record an action a user performed",
    "identify": "Tie a user id to the device and record traits",
    "page": "Record a page view",
    "screen": "Record a mobile screen view",
    "group": "Associate a user with a group",
    "alias": "Link a previous id to a user id",
    "batch": f"Send up to {MAX_BATCH_EVENTS} messages of any type in one request",
}

_DESCRIPTION = (
    "Segment tracking-spec message (camelCase). Authenticate with the write (or server/admin) key "
    "as HTTP Basic username with an empty password, as a Bearer token, or as `writeKey` in the "
    f"body. Limits: 32 KB per event, {MAX_REQUEST_BYTES // 1024} KB per request (gzip allowed "
    "with `Content-Encoding: gzip`). A bad message rejects the whole request; nothing is stored."
)


def add_country_from_header(events: list[Event], country: str | None) -> None:
    """Fill ``context.location.country`` from the configured CDN/proxy header (e.g. CF-IPCountry)
    where an event has none. Only for the browser write key: a server-side client's request
    carries the server's country, not the visitor's."""
    code = (country or "").strip().upper()
    if not (len(code) == 2 and code.isalpha()):
        return
    for event in events:
        location = event.context.get("location")
        if not isinstance(location, dict):
            location = {}
        if not location.get("country"):
            event.context["location"] = {**location, "country": code}


async def ingest(request: Request, kind: str) -> Response:
    """Authenticate, validate all events, store them durably, then answer success."""
    engine = _engine(request)
    check_ingest_content_type(request.headers.get("content-type"))
    header_key = key_from_headers(request.headers)
    if header_key is not None:  # refuse before reading the body when we can
        key_kind = authorize(engine.keys, header_key, Scope.INGEST)
    body = parse_json(read_body(await request.body(), request.headers.get("content-encoding")))
    if header_key is None:
        key_kind = authorize(engine.keys, write_key_from_body(body), Scope.INGEST)
    received_at = engine.clock()
    # the browser's own address locates its events; a server-side client's is the server's
    client = request.client.host if request.client and key_kind == KeyKind.WRITE else None
    parse = partial(
        parse_request, body, kind=kind, received_at=received_at,
        truncate_ip=engine.settings_truncate_ip, locate=engine.geolocation, client_ip=client,
    )  # fmt: skip
    if kind == "batch":  # up to 2,500 events: validate off the event loop
        events = await run_in_threadpool(parse)
    else:
        events = parse()
    if key_kind == KeyKind.WRITE:
        restrict_to_browser(events, engine.keys.identity_secret, batch=kind == "batch")
        if engine.settings_country_header:
            add_country_from_header(events, request.headers.get(engine.settings_country_header))
    strip_user_tokens(events)
    if events:
        result: IngestResult = await asyncio.wrap_future(engine.submit_ingest(events))
        metrics_of(request).record_ingest(result.accepted, result.duplicates, result.anonymised)
    return Response(SUCCESS_BODY, media_type="application/json")


def _endpoint(kind: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await ingest(request, kind)

    endpoint.__name__ = f"ingest_{kind}"
    return endpoint


def request_body(kind: str) -> dict[str, Any]:
    example: dict[str, Any]
    if kind == "batch":
        example = {
            "batch": [
                {"type": "page", "anonymousId": "a-123", "name": "Home"},
                {"type": "track", "anonymousId": "a-123", "event": "Product Viewed",
                 "properties": {"product_id": "sku-1"}},
            ]
        }  # fmt: skip
    else:
        example = {"anonymousId": "a-123", "userId": "u-42"}
        if kind == "track":
            example["event"] = "Product Viewed"
    schema = {"type": "object", "additionalProperties": True, "example": example}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "text/plain": {"schema": schema}},
        }
    }


for _kind in INGEST_KINDS:
    router.add_api_route(
        f"/v1/{_kind}",
        _endpoint(_kind),
        methods=["POST"],
        response_model=IngestAck,
        summary=_SUMMARIES[_kind],
        description=_DESCRIPTION,
        responses=problem_responses(400, 401, 403, 415, 503),
        openapi_extra=request_body(_kind),
    )
