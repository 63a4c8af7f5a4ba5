"""``/healthz`` for load balancers and ``/metrics`` for Prometheus; neither needs a key."""

from __future__ import annotations

from typing import Any

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
def healthz(request: Request) -> dict[str, Any]:
    """200 while reads and writes work; 503 naming the failing part (an orchestrator can act:
    a full disk says so) otherwise."""
    health = engine_of(request).health()
    checks = {name: health[name] for name in ("read", "write") if name in health}
    if not health.get("ok"):
        failing = {name: state for name, state in checks.items() if state != "ok"}
        parts = "; ".join(f"{name}: {state}" for name, state in failing.items())
        raise StorageUnavailable(
            f"Storage is not healthy ({parts or 'not answering'}). Check the database and its "
            "disk (free space, permissions), then the server log.",
            field=next(iter(failing), "storage"),
            checks=checks,
        )
    return {"status": "ok", "backend": health.get("backend"), "checks": checks}


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
