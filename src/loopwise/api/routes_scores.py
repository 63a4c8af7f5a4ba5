"""Predictive scores over HTTP (admin key): train, list versions, evaluate.

``POST /v1/admin/scores/train`` trains every score of the workspace's ``scores:`` section on the
event log (point-in-time examples through the fold, LightGBM, calibration on a later time slice),
stores the version with its report and calibration plots under ``<data-dir>/scores/`` and serves
it; the reply is the version's metadata with the report (AUC, PR-AUC, Brier score, calibration,
overall and per segment). 409 while a training runs or when no score has enough history.
``POST /v1/admin/scores/evaluate`` measures a stored version (body ``{"version": ...}``, default
the current one) on the log as it is now. See docs/scores.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, cast

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from loopwise.api.auth import require
from loopwise.api.keys import Scope
from loopwise.api.port import read_json
from loopwise.api.problems import problem_responses
from loopwise.errors import ValidationFailed


class ScoresPort(Protocol):
    def train_scores(self) -> dict[str, Any]: ...

    def evaluate_scores(
        self, version: str | None = None, output: Path | None = None
    ) -> dict[str, Any]: ...

    def score_versions(self) -> dict[str, Any]: ...


def _engine(request: Request) -> ScoresPort:
    """This module's narrow view of the engine: it may use only what ScoresPort declares."""
    return cast(ScoresPort, request.app.state.engine)


router = APIRouter(
    tags=["scores"],
    dependencies=[Depends(require(Scope.ADMIN))],
    responses=problem_responses(401, 403),
)


@router.post(
    "/v1/admin/scores/train",
    summary="Train the workspace's predictive scores on the event log and serve them",
    description=__doc__,
    responses=problem_responses(404, 409),
)
async def train(request: Request) -> dict[str, Any]:
    return await run_in_threadpool(_engine(request).train_scores)


@router.get("/v1/admin/scores", summary="Stored score model versions and the served one")
def versions(request: Request) -> dict[str, Any]:
    return _engine(request).score_versions()


@router.post(
    "/v1/admin/scores/evaluate",
    summary="Measure a score model version on the event log as it is now",
    description='Body (optional): {"version": "v2-20261123T101500Z"}. 404 for an unknown '
    "version or before the first training.",
    responses=problem_responses(400, 404, 415),
)
async def evaluate(request: Request) -> dict[str, Any]:
    version = None
    if await request.body():
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("version", ""), str):
            raise ValidationFailed(
                'Send a JSON object such as {"version": "v2-..."} (or no body).', field="version"
            )
        version = body.get("version") or None
    engine = _engine(request)
    return await run_in_threadpool(engine.evaluate_scores, version)
