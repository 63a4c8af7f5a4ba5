"""The workspace over HTTP (admin key): the same schema as ``loopwise.yaml``, applied at once.

An invalid change is a 400 naming the field, and nothing of it is applied. ``POST
/v1/admin/cluster`` fits K-Means on the profiles and publishes the clusters as segments
``cluster_<n>`` the same way: stored, and applied to the next decision. Engine calls that write
storage run in the thread pool so the event loop keeps serving ingest and decide meanwhile.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from loopwise.api.auth import require
from loopwise.api.keys import Scope
from loopwise.api.port import WorkspacePort, engine_of, read_json
from loopwise.api.problems import problem_responses
from loopwise.errors import ValidationFailed
from loopwise.segments.clusters import DEFAULT_K_RANGE, MAX_K


def _engine(request: Request) -> WorkspacePort:
    """This module's narrow view of the engine: it may use only what WorkspacePort declares."""
    return engine_of(request)


router = APIRouter(
    tags=["admin"],
    dependencies=[Depends(require(Scope.ADMIN))],
    responses=problem_responses(401, 403),  # every admin route checks the key
)

Key = Annotated[
    str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_\-]+$", description="Entry key.")
]

_OBJECT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
_WRITE_ERRORS = problem_responses(400, 401, 403, 415)
_DELETE_ERRORS = problem_responses(401, 403, 404)


async def read_object(request: Request) -> dict[str, Any]:
    document = await read_json(request)
    if not isinstance(document, dict):
        raise ValidationFailed("Send a JSON object.", field="body")
    return document


@router.get("/v1/admin/workspace", summary="The current workspace document")
def get_workspace(request: Request) -> dict[str, Any]:
    return _engine(request).workspace_document()


@router.put(
    "/v1/admin/workspace",
    summary="Replace the whole workspace",
    description="Validated like loopwise.yaml; applied and persisted only when all of it is valid.",
    responses=_WRITE_ERRORS,
    openapi_extra=_OBJECT_BODY,
)
async def put_workspace(request: Request) -> dict[str, Any]:
    document = await read_object(request)
    return await run_in_threadpool(_engine(request).replace_workspace, document)


@router.put(
    "/v1/admin/slots/{key}",
    summary="Create or replace one slot",
    responses=_WRITE_ERRORS,
    openapi_extra=_OBJECT_BODY,
)
async def put_slot(key: Key, request: Request) -> dict[str, Any]:
    document = await read_object(request)
    return await run_in_threadpool(_engine(request).put_slot, key, document)


@router.delete(
    "/v1/admin/slots/{key}",
    status_code=204,
    response_class=Response,
    summary="Delete one slot",
    responses=_DELETE_ERRORS,
)
async def delete_slot(key: Key, request: Request) -> Response:
    await run_in_threadpool(_engine(request).delete_slot, key)
    return Response(status_code=204)


@router.put(
    "/v1/admin/segments/{key}",
    summary="Create or replace one segment",
    responses=_WRITE_ERRORS,
    openapi_extra=_OBJECT_BODY,
)
async def put_segment(key: Key, request: Request) -> dict[str, Any]:
    document = await read_object(request)
    return await run_in_threadpool(_engine(request).put_segment, key, document)


@router.delete(
    "/v1/admin/segments/{key}",
    status_code=204,
    response_class=Response,
    summary="Delete one segment",
    responses=_DELETE_ERRORS,
)
async def delete_segment(key: Key, request: Request) -> Response:
    await run_in_threadpool(_engine(request).delete_segment, key)
    return Response(status_code=204)


@router.post(
    "/v1/admin/replay",
    summary="Rebuild every profile from the event log",
    description="Reports how many stored profiles differed from the rebuilt ones.",
    responses=problem_responses(401, 403),
)
async def replay(request: Request) -> dict[str, Any]:
    return await run_in_threadpool(_engine(request).replay)


class ClusterRequest(BaseModel):
    """Body of ``POST /v1/admin/cluster`` (every field optional; an empty body is fine)."""

    model_config = ConfigDict(extra="forbid")

    k_min: int = Field(DEFAULT_K_RANGE[0], ge=2, le=MAX_K, description="Fewest clusters to try.")
    k_max: int = Field(DEFAULT_K_RANGE[1], ge=2, le=MAX_K, description="Most clusters to try.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed (K-Means starts, samples).")


@router.post(
    "/v1/admin/cluster",
    summary="Fit K-Means on the profiles and publish the clusters as segments",
    description=(
        "Picks k in [k_min, k_max] by silhouette, names each cluster by its distinctive "
        "features and publishes it as segment cluster_<n>; the next decision uses them. 409 when "
        "there are too few (or too alike) profiles."
    ),
    responses=problem_responses(400, 401, 403, 409, 415),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": ClusterRequest.model_json_schema()}},
        }
    },
)
async def cluster(request: Request) -> dict[str, Any]:
    raw = await request.body()
    document = await read_object(request) if raw.strip() else {}
    try:
        body = ClusterRequest.model_validate(document, strict=True)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors, body=document) from None
    return await run_in_threadpool(_engine(request).cluster, body.k_min, body.k_max, body.seed)


@router.get(
    "/v1/admin/clusters",
    summary="The published clusters",
    description="k, silhouettes, and per cluster its key, name, size and distinctive features; "
    "`published: false` before the first clustering.",
)
def get_clusters(request: Request) -> dict[str, Any]:
    return _engine(request).clusters()
