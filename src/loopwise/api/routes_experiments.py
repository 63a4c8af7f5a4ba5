"""``GET /v1/experiments`` and ``GET /v1/experiments/{key}/results``: experiment results computed
from the engine's own exposure and event logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request

from loopwise.api.auth import require
from loopwise.api.keys import KeyKind, Scope
from loopwise.api.port import ExperimentsPort, engine_of
from loopwise.api.problems import problem_responses


def _engine(request: Request) -> ExperimentsPort:
    """This module's narrow view of the engine: it may use only what ExperimentsPort declares."""
    return engine_of(request)


router = APIRouter(tags=["experiments"])


@router.get(
    "/v1/experiments",
    summary="Experiments of the workspace with their status",
    description="Scope: read_profiles (server or admin key). Includes the global holdout "
    "(key `holdout`) when it is on.",
    responses=problem_responses(401, 403),
)
def list_experiments(
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.READ_PROFILES))],
) -> dict[str, Any]:
    return {"experiments": _engine(request).list_experiments()}


@router.get(
    "/v1/experiments/{key}/results",
    summary="Per-arm and per-segment results with a verdict",
    description=(
        "Scope: read_profiles (server or admin key). Users, conversions, rate, lift with 95% CI, "
        "p-value, chance to win, expected loss, always-valid interval, CUPED, SRM check and a "
        "plain-language verdict. `segment` keeps the users who were in that segment when first "
        "exposed. `holdout` compares the global holdout with everyone else."
    ),
    responses=problem_responses(401, 403, 404),
)
def experiment_results(
    key: str,
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.READ_PROFILES))],
    segment: Annotated[
        str | None, Query(max_length=100, description="Segment key to filter users by.")
    ] = None,
) -> dict[str, Any]:
    return _engine(request).experiment_results(key, segment)


@router.get(
    "/v1/experiments/{key}/results/over-time",
    summary="How the lift built up, per day of first exposure",
    description=(
        "Scope: read_profiles (server or admin key). For each day people were first exposed (the "
        "last 60), each arm's lift over the control per metric with its 95% interval, over "
        "everyone first exposed on or before that day, with their totals to date."
    ),
    responses=problem_responses(401, 403, 404),
)
def experiment_results_over_time(
    key: str,
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.READ_PROFILES))],
) -> dict[str, Any]:
    return _engine(request).experiment_results_over_time(key)
