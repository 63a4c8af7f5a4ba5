"""``/healthz`` for load balancers and ``/metrics`` for Prometheus; neither needs a key."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from loopwise.api.metrics import metrics_of
from loopwise.api.port import engine_of
from loopwise.api.problems import problem_responses
from loopwise.errors import StorageUnavailable

router = APIRouter(tags=["system"])


@router.get(
    "/healthz",
    summary="Liveness and storage health",
    responses=problem_responses(503),
    openapi_extra={"security": []},
)
def healthz(request: Request) -> dict[str, str]:
    if not engine_of(request).healthy():
        raise StorageUnavailable(
            "The storage backend is not answering; check the database and the server log."
        )
    return {"status": "ok"}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Exposition format."}},
    openapi_extra={"security": []},
)
async def metrics(request: Request) -> Response:
    body, content_type = metrics_of(request).render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
