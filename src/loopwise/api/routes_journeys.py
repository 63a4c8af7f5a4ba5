"""``GET /v1/journeys``, ``GET /v1/journeys/{key}`` (per-step counts), the outbox's state and
its dead-letter list, and retrying a dead delivery."""

from __future__ import annotations

from typing import Annotated, Any, Protocol, cast

from fastapi import APIRouter, Depends, Path, Query
from starlette.requests import Request

from loopwise.api.auth import require
from loopwise.api.keys import KeyKind, Scope
from loopwise.api.problems import problem_responses


class JourneysPort(Protocol):
    """This module's narrow view of the engine."""

    def list_journeys(self) -> list[dict[str, Any]]: ...

    def journey(self, key: str) -> dict[str, Any]: ...

    def outbox(self, status: str | None, limit: int) -> dict[str, Any]: ...

    def retry_delivery(self, delivery_id: int) -> dict[str, Any]: ...


def _engine(request: Request) -> JourneysPort:
    return cast(JourneysPort, request.app.state.engine)


router = APIRouter(tags=["journeys"])


@router.get(
    "/v1/journeys",
    summary="The workspace's journeys with their totals",
    description="Scope: read_profiles (server or admin key).",
    responses=problem_responses(401, 403),
)
def list_journeys(
    request: Request, _: Annotated[KeyKind, Depends(require(Scope.READ_PROFILES))]
) -> dict[str, Any]:
    return {"journeys": _engine(request).list_journeys()}


@router.get(
    "/v1/journeys/{key}",
    summary="One journey: definition and per-step counts",
    description="Scope: read_profiles (server or admin key). Per step: entered, waiting, sent, "
    "converted, exited, capped. `experiment` names the holdout experiment whose results "
    "(`/v1/experiments/{experiment}/results`) give the journey's lift per segment.",
    responses=problem_responses(401, 403, 404),
)
def show_journey(
    key: str, request: Request, _: Annotated[KeyKind, Depends(require(Scope.READ_PROFILES))]
) -> dict[str, Any]:
    return _engine(request).journey(key)


@router.get(
    "/v1/admin/outbox",
    summary="Deliveries by status, and the dead-letter list",
    description="Scope: admin. `status=dead` lists the dead letters (newest first).",
    responses=problem_responses(400, 401, 403),
)
def outbox(
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.ADMIN))],
    status: Annotated[
        str | None, Query(pattern="^(pending|delivered|dead|dropped)$", description="List these.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return _engine(request).outbox(status, limit)


@router.post(
    "/v1/admin/outbox/{delivery_id}/retry",
    summary="Queue a dead delivery again (attempts reset)",
    description="Scope: admin.",
    responses=problem_responses(401, 403, 404),
)
def retry_delivery(
    # ids are SQLite/PostgreSQL 64-bit integers: a larger one is a 400, not an overflow
    delivery_id: Annotated[int, Path(ge=1, le=2**62, description="The delivery's id.")],
    request: Request,
    _: Annotated[KeyKind, Depends(require(Scope.ADMIN))],
) -> dict[str, Any]:
    return _engine(request).retry_delivery(delivery_id)
