"""Trained models over HTTP (admin key): train, list versions, roll back.

``POST /v1/admin/train`` contract: with ``wait=true`` (default) the request returns when the new
version is stored and served (200, its metadata); with ``wait=false`` it checks there is enough
data, starts training in a background thread and returns 202 at once — follow it with
``GET /v1/admin/models`` (``training.running``, then ``current``). A training already running is
409; too few interactions is also 409 (``not-enough-data``, ``min_interactions`` in the
problem). Decisions keep being served from the previous version while a training runs; the new
one is swapped in atomically.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from loopwise.api.auth import require
from loopwise.api.keys import Scope
from loopwise.api.port import ModelsPort, engine_of, read_json
from loopwise.api.problems import problem_responses
from loopwise.errors import ValidationFailed


def _engine(request: Request) -> ModelsPort:
    """This module's narrow view of the engine: it may use only what ModelsPort declares."""
    return engine_of(request)


router = APIRouter(
    tags=["models"],
    dependencies=[Depends(require(Scope.ADMIN))],
    responses=problem_responses(401, 403),
)


@router.post(
    "/v1/admin/train",
    summary="Train the workspace's models on the event log and serve the new version",
    description=__doc__,
    responses={
        202: {"description": "Training started in the background (wait=false)."},
        **problem_responses(404, 409),
    },
)
async def train(
    request: Request,
    wait: Annotated[bool, Query(description="Return when the new version is served.")] = True,
) -> Any:
    engine = _engine(request)
    if wait:
        return await run_in_threadpool(engine.train_models, True)
    started = await run_in_threadpool(engine.train_models, False)
    return JSONResponse(started, status_code=202)


@router.get("/v1/admin/models", summary="Stored model versions, the served one, training status")
def list_models(request: Request) -> dict[str, Any]:
    return _engine(request).model_versions()


@router.post(
    "/v1/admin/models/rollback",
    summary="Serve the previous model version (or the one named in the body)",
    description='Body (optional): {"version": "v2-20261123T101500Z"}. 409 when there is '
    "nothing older to roll back to or a training is running; 404 for an unknown version.",
    responses=problem_responses(400, 404, 409, 415),
)
async def rollback(request: Request) -> dict[str, Any]:
    version = None
    if await request.body():
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ValidationFailed(
                'Send a JSON object such as {"version": "v2-..."}.', field="body"
            )
        version = body.get("version")
        if version is not None and (not isinstance(version, str) or not version):
            raise ValidationFailed(
                "version must be a non-empty string (a name from GET /v1/admin/models); leave it "
                "out to roll back to the previous version.",
                field="version",
            )
        unknown = set(body) - {"version"}
        if unknown:
            raise ValidationFailed(
                f"Unknown field(s) {', '.join(sorted(unknown))}.", field=sorted(unknown)[0]
            )
    return await run_in_threadpool(_engine(request).rollback_models, version)
