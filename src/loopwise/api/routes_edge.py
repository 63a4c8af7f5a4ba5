"""``GET /v1/edge/bundle``: the context-only part of the workspace for ``loopwise-edge.js``
(:mod:`loopwise.decide.edge_bundle`), versioned, with an ETag so an edge worker revalidates it
cheaply (``If-None-Match`` -> 304); ``POST /v1/edge/exposures``: the exposures of the experiments
the edge decided (:mod:`loopwise.decide.edge_exposures`)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from loopwise.api.auth import require
from loopwise.api.keys import KeyKind, Scope
from loopwise.api.port import EdgePort, engine_of, read_json
from loopwise.api.problems import problem_responses
from loopwise.config import parse_workspace
from loopwise.decide.edge_bundle import build_edge_bundle
from loopwise.decide.edge_exposures import EdgeExposuresRequest


def _engine(request: Request) -> EdgePort:
    """This module's narrow view of the engine: it may use only what EdgePort declares."""
    return engine_of(request)


router = APIRouter(tags=["decide"])
_cache: dict[bytes, bytes] = {}  # workspace document -> bundle JSON (the last one only)


def bundle_json(document: dict[str, object]) -> bytes:
    key = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    if key not in _cache:
        _cache.clear()
        _cache[key] = orjson.dumps(build_edge_bundle(parse_workspace(document)))
    return _cache[key]


@router.get(
    "/v1/edge/bundle",
    summary="The context-only part of the workspace, for deciding at the edge",
    description=(
        "Scope: decide (server or admin key: keep it in the edge worker's secrets). Context "
        "segments and block slots whose rules read only the request, with their variants; "
        "`personal` lists the slots to ask /v1/decide for. `ETag` is the bundle's version."
    ),
    responses=problem_responses(401, 403),
)
def edge_bundle(
    request: Request, _: Annotated[KeyKind, Depends(require(Scope.DECIDE))]
) -> Response:
    body = bundle_json(_engine(request).workspace_document())
    version = orjson.loads(body)["version"]
    headers = {"ETag": f'"{version}"', "Cache-Control": "private, max-age=60"}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.post(
    "/v1/edge/exposures",
    summary="Store the exposures of experiments decided at the edge",
    description=(
        "Scope: decide (the edge worker's server key). `loopwise-edge.js` posts what "
        "`decideAtEdge` served one visitor; first exposures are stored as a decide would (consent, "
        "bots, the holdout, first exposure wins). The reply lists what was recorded and skipped."
    ),
    responses=problem_responses(400, 401, 403, 415),
)
async def edge_exposures(
    request: Request, _: Annotated[KeyKind, Depends(require(Scope.DECIDE))]
) -> Response:
    raw = await read_json(request)
    try:
        body = EdgeExposuresRequest.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    result = await run_in_threadpool(_engine(request).record_edge_exposures, body)
    return Response(orjson.dumps(result), media_type="application/json")
