"""Channels beyond the page (docs/channels.md): ``POST /v1/decide/batch`` (a slot decided for a
whole audience, the content of an email campaign, streamed as JSON Lines) and ``POST /v1/rerank``
(search results in personal order)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from loopwise.api.auth import require
from loopwise.api.keys import KeyKind, Scope
from loopwise.api.port import ChannelsPort, check_json_headers, engine_of
from loopwise.api.problems import problem_responses
from loopwise.api.routes_decide import engine_headers
from loopwise.channels.batch import MAX_USERS, Campaign, DecideBatchRequest
from loopwise.channels.rerank import RerankRequest, RerankResponse
from loopwise.errors import LoopwiseError, ValidationFailed

BATCH_PATH = "/v1/decide/batch"
RERANK_PATH = "/v1/rerank"
PATHS = frozenset({BATCH_PATH, RERANK_PATH})
NDJSON = "application/x-ndjson"


def _engine(request: Request) -> ChannelsPort:
    """This module's narrow view of the engine: it may use only what ChannelsPort declares."""
    return engine_of(request)


router = APIRouter(tags=["channels"])

OPENAPI_MODELS: tuple[type[BaseModel], ...] = (DecideBatchRequest, RerankRequest)


def _body(model: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        }
    }


Model = TypeVar("Model", bound=BaseModel)


def parse_body(model: type[Model], raw: bytes) -> Model:
    """Strict JSON validated against ``model``; problems are reported like request validation
    errors, with the field (``users[3].user_id``) and a pointer to the schema."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error"}
        raise RequestValidationError([{**error, "ctx": {"error": str(exc)}}]) from None
    if not isinstance(document, dict):
        error = {"type": "model_type", "loc": ("body",), "msg": "Send a JSON object"}
        raise RequestValidationError([error], body=document)
    try:
        return model.model_validate(document, strict=True)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors, body=document) from None


@router.post(
    BATCH_PATH,
    summary="Decide one slot for a whole audience (an email campaign), streamed as JSON Lines",
    description=(
        "Scope: decide (server or admin key). Give `slot` and either `segment` (everyone known "
        "in it now) or `users` (user ids). Only people who consented to the workspace's "
        "`channels.batch.consent` category (marketing) and are under the slot's frequency cap "
        "are decided; the others get a `skipped` row with the reason. One JSON object per line "
        "and person, in audience order, each decision logged (send its `decision_id` back with "
        'opens and clicks), then a last line `{"summary": ...}`. A failure part-way ends the '
        'stream with `{"error": problem}` instead.'
    ),
    responses={
        200: {"content": {NDJSON: {}}, "description": "One row per person, then the summary."},
        **problem_responses(400, 401, 403, 415),
    },
    openapi_extra=_body("DecideBatchRequest"),
)
async def decide_batch(
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.DECIDE))],
) -> Response:
    check_json_headers(request.headers)
    body = parse_body(DecideBatchRequest, await request.body())
    if body.users is not None and len(body.users) > MAX_USERS:
        raise ValidationFailed(
            f"{len(body.users)} users is more than {MAX_USERS} per request; send a segment, "
            "several requests, or use `loopwise decide-batch --users FILE`.",
            field="users",
            limit=MAX_USERS,
        )
    campaign = await run_in_threadpool(_engine(request).decide_batch, body)
    return StreamingResponse(
        _lines(campaign, request.url.path),
        media_type=NDJSON,
        headers={"Cache-Control": "private, no-store"},
    )


def _lines(campaign: Campaign, path: str) -> Iterator[bytes]:
    """Rows a chunk at a time (Starlette runs this iterator in its thread pool)."""
    try:
        batch: list[bytes] = []
        for row in campaign.rows():
            batch.append(orjson.dumps(row) + b"\n")
            if len(batch) >= 100:
                yield b"".join(batch)
                batch = []
        batch.append(orjson.dumps({"summary": campaign.summary.to_dict()}) + b"\n")
        yield b"".join(batch)
    except LoopwiseError as exc:
        yield orjson.dumps({"error": exc.to_problem(path)}) + b"\n"


@router.post(
    RERANK_PATH,
    response_model=RerankResponse,
    summary="Search results in personal order",
    description=(
        "Scope: decide (server or admin key). Send the search engine's candidates (item ids "
        "with their scores) in its order; the reply has them in the person's order, blending "
        "the search score with the person's affinity and the trained model's score "
        "(`channels.rerank.weights`). Ids the catalog does not know keep their place. Without "
        "consent to personalization, or in the holdout, the order comes back unchanged. Send "
        "`decision_id` back with clicks on the results."
    ),
    responses=problem_responses(400, 401, 403, 415),
    openapi_extra=_body("RerankRequest"),
)
async def rerank(
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.DECIDE))],
) -> Response:
    check_json_headers(request.headers)
    body = parse_body(RerankRequest, await request.body())
    engine = _engine(request)
    headers = engine_headers(request.headers, engine.settings_country_header)
    result = await run_in_threadpool(engine.rerank, body, headers)
    return Response(
        orjson.dumps(result),
        media_type="application/json",
        headers={"Cache-Control": "private, no-store"},
    )
