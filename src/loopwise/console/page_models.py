"""``/ui/models``: the stored model versions with their offline metrics, the one being served,
training now (admins) with its progress, and rolling back."""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loopwise.console.people import SignedIn
from loopwise.console.web import (
    ADMIN,
    VIEWER,
    ConsoleRoute,
    console_of,
    error_response,
    form_of,
    redirect,
    render,
)
from loopwise.errors import LoopwiseError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


class TrainingProgress:
    """The steps a background training reported (``models.training.Progress``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.step, self.done, self.total, self.started = "", 0, 0, 0.0

    def __call__(self, step: str, done: int, total: int) -> None:
        with self._lock:
            self.step, self.done, self.total = step, done, total

    def begin(self) -> None:
        with self._lock:
            self.step, self.done, self.total, self.started = "starting", 0, 0, time.monotonic()

    def read(self) -> dict[str, Any]:
        with self._lock:
            return {
                "step": self.step,
                "done": self.done,
                "total": self.total,
                "seconds": time.monotonic() - self.started if self.started else 0.0,
            }


PROGRESS = TrainingProgress()


def _metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The holdout metrics (``{"models": {model: {metric: value}}, "split": ...}``) as
    ``(model, metric, value)`` rows; also an older flat ``{model: {metric: value}}``."""
    nested = metrics.get("models")
    per_model: dict[str, Any] = nested if isinstance(nested, dict) else metrics
    rows: list[tuple[str, str, Any]] = []
    for name, value in per_model.items():
        if name in ("split", "segments", "skipped"):
            continue
        if isinstance(value, dict):
            for metric, number in value.items():
                if not isinstance(number, dict):
                    rows.append((name, metric, number))
        else:
            rows.append(("", name, value))
    return rows


def _segment_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per segment: its held-out people and each model's metrics over them (one row per
    segment and model)."""
    rows: list[dict[str, Any]] = []
    for segment, found in sorted((metrics.get("segments") or {}).items()):
        for model, values in found.items():
            if isinstance(values, dict):
                rows.append(
                    {"segment": segment, "users": found.get("users"), "model": model, **values}
                )
    return rows


@router.get("/ui/models")
def models(request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    listing = console_of(request).engine.model_versions()
    for version in listing.get("versions", []):
        version["metric_rows"] = _metric_rows(version.get("metrics") or {})
        version["segment_rows"] = _segment_rows(version.get("metrics") or {})
        version["skipped"] = (version.get("metrics") or {}).get("skipped")
    return render(request, "models.html", listing=listing, progress=PROGRESS.read())


@router.get("/ui/models/status")
def status(request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    listing = console_of(request).engine.model_versions()
    return render(
        request, "partials/training.html", training=listing["training"], progress=PROGRESS.read()
    )


@router.post("/ui/models/train")
async def train(request: Request, person: Annotated[SignedIn, Depends(ADMIN)]) -> Response:
    engine = console_of(request).engine
    PROGRESS.begin()
    try:
        engine.train_models(wait=False, progress=PROGRESS)
    except LoopwiseError as exc:
        return error_response(request, exc)
    return redirect(request, "/ui/models")


@router.post("/ui/models/rollback")
async def rollback(request: Request, person: Annotated[SignedIn, Depends(ADMIN)]) -> Response:
    form = await form_of(request)
    try:
        console_of(request).engine.rollback_models(form.get("version") or None)
    except LoopwiseError as exc:
        return error_response(request, exc)
    return redirect(request, "/ui/models")
