"""``/ui/experiments``: create an experiment (slot, arms, weights, metrics and guardrails,
targeting) with the sample-size calculator and the expected duration from current traffic;
start, stop, end; and ``/ui/experiments/{key}``: results per arm and per segment with an interval
plot, the sequential status, SRM and the multiple-comparison correction in words, and the
plain-language verdict — the engine's own results."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loopwise.clock import isoformat
from loopwise.console.page_overview import interval_chart
from loopwise.console.people import SignedIn
from loopwise.console.web import (
    EDITOR,
    VIEWER,
    ConsoleRoute,
    console_of,
    form_list,
    form_of,
    redirect,
    render,
)
from loopwise.errors import LoopwiseError, ValidationFailed
from loopwise.experiments.calculator import sample_size_report
from loopwise.experiments.settings import HOLDOUT_KEY
from loopwise.workspace.history import Author

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
MAX_ARMS = 4
STATUSES = {"start": "running", "stop": "stopped", "draft": "draft", "end": "stopped"}


def _float(value: str | None, field: str, default: float | None = None) -> float:
    if value is None or not value.strip():
        if default is not None:
            return default
        raise ValidationFailed(f"Enter a number for {field}.", field=field)
    try:
        number = float(value.strip().rstrip("%"))
    except ValueError:
        raise ValidationFailed(f"{field} must be a number (got {value!r}).", field=field) from None
    if not math.isfinite(number):
        raise ValidationFailed(f"{field} must be a finite number.", field=field)
    return number


def traffic_per_day(request: Request, slot: str) -> int | None:
    """Decisions a day on ``slot`` (the last 24 h, from the decision log)."""
    ledger = console_of(request).ledger.last
    if ledger is None:
        return None
    return ledger.fallbacks.get(slot, (0, 0))[0]


def plan(
    baseline_percent: float, mde_percent: float, arms: int, per_day: int | None
) -> dict[str, Any]:
    report = sample_size_report(baseline_percent / 100, mde_percent / 100, arms=arms)
    days = None
    if per_day:
        days = math.ceil(report["total_users"] / per_day)
    return {**report, "per_day": per_day, "days": days}


@router.get("/ui/experiments")
def experiments(request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    return _list(request)


def _list(request: Request, error: LoopwiseError | None = None, status_code: int = 200) -> Response:
    console = console_of(request)
    service = console.services.experiments
    revision, document = console.services.workspace.snapshot()
    rows = []
    for experiment in service.list(flush=False):
        try:
            verdict = service.results(experiment["key"], flush=False)["verdict"]
        except LoopwiseError as exc:
            verdict = exc.detail
        rows.append({**experiment, "verdict": verdict})
    return render(
        request,
        "experiments.html",
        status_code=status_code,
        rows=rows,
        slots=document.get("slots", []),
        segments=sorted(console.services.workspace.compiled.segment_names.items()),
        strategies=sorted(console.services.workspace.compiled.strategies.names()),
        revision=revision,
        error=error,
        plan=None,
    )


@router.post("/ui/experiments/plan")
async def plan_partial(request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    form = await form_of(request)
    try:
        arms = sum(1 for i in range(MAX_ARMS) if form.get(f"arm{i}_key", "").strip()) or 2
        result = plan(
            _float(form.get("baseline"), "baseline", 5.0),
            _float(form.get("mde"), "mde", 10.0),
            max(arms, 2),
            traffic_per_day(request, form.get("slot", "")),
        )
        return render(request, "partials/plan.html", plan=result, slot=form.get("slot", ""))
    except LoopwiseError as exc:
        return render(request, "partials/plan.html", plan=None, problem=exc.detail)


def experiment_document(form: dict[str, str], segments: list[str]) -> dict[str, Any]:
    """The workspace entry the create form describes (validated by the workspace service)."""
    arms = []
    for i in range(MAX_ARMS):
        key = form.get(f"arm{i}_key", "").strip()
        if not key:
            continue
        arm: dict[str, Any] = {"key": key}
        serves = form.get(f"arm{i}_serves", "").strip()
        if form.get("slot_kind") == "list":
            arm["strategy"] = serves
        else:
            arm["variant"] = serves
        weight = form.get(f"arm{i}_weight", "").strip()
        if weight:
            arm["weight"] = _float(weight, f"arm{i}_weight") / 100
        arms.append(arm)
    metrics: list[dict[str, Any]] = []
    primary = form.get("metric_event", "").strip()
    if primary:
        metrics.append(
            {
                "key": form.get("metric_key", "").strip() or "primary",
                "kind": form.get("metric_kind", "conversion"),
                "event": primary,
            }
        )
    for i, event in enumerate(e.strip() for e in form.get("guardrails", "").split(",")):
        if event:
            metrics.append(
                {
                    "key": f"guardrail_{i + 1}",
                    "kind": "count",
                    "event": event,
                    "guardrail": True,
                    "higher_is_better": form.get("guardrail_direction") != "lower",
                }
            )
    document: dict[str, Any] = {
        "slot": form.get("slot", ""),
        "status": "draft",
        "description": form.get("description", "").strip(),
        "arms": arms,
        "metrics": metrics,
        "coverage": _float(form.get("coverage"), "coverage", 100.0) / 100,
    }
    if segments:
        document["targeting"] = {"segments": {"$in": segments}}
    return document


@router.post("/ui/experiments/create")
async def create(request: Request, person: Annotated[SignedIn, Depends(EDITOR)]) -> Response:
    form = await form_of(request)
    key = form.get("key", "").strip()
    console = console_of(request)
    try:
        slot = console.services.workspace.workspace.slot(form.get("slot", ""))
        document = experiment_document(
            {**form, "slot_kind": slot.kind if slot is not None else "block"},
            [s for s in await form_list(request, "segments") if s],
        )
        revision = form.get("revision", "")
        console.services.workspace.apply_entry(
            "experiments",
            key,
            document,
            author=Author(
                person.email, "console", form.get("comment", "") or f"new experiment {key}"
            ),
            expected=int(revision) if revision.isdigit() else None,
        )
    except LoopwiseError as exc:
        return _list(request, exc, exc.status)
    return redirect(request, f"/ui/experiments/{key}")


@router.post("/ui/experiments/{key}/status")
async def status(
    key: str, request: Request, person: Annotated[SignedIn, Depends(EDITOR)]
) -> Response:
    form = await form_of(request)
    action = form.get("action", "")
    console = console_of(request)
    now = isoformat(console.services.clock())

    def edit(document: dict[str, Any]) -> dict[str, Any]:
        entries = []
        for entry in document.get("experiments", []):
            if entry.get("key") == key:
                entry = {**entry, "status": STATUSES[action]}
                if action == "start" and entry.get("end") and entry["end"] <= now:
                    entry.pop("end")  # restarting an ended experiment reopens it
                if action == "end":
                    entry["end"] = now
            entries.append(entry)
        return {**document, "experiments": entries}

    if action not in STATUSES:
        raise ValidationFailed("Choose start, stop or end.", field="action")
    revision = form.get("revision", "")
    try:
        console.services.workspace.apply(
            edit,
            author=Author(person.email, "console", form.get("comment", "") or f"{action} {key}"),
            expected=int(revision) if revision.isdigit() else None,
        )
    except LoopwiseError as exc:
        return _detail(request, key, form.get("segment") or None, exc, exc.status)
    return redirect(request, f"/ui/experiments/{key}")


def result_charts(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    charts = []
    for metric in results.get("metrics", []):
        labels, points, bars = [], [], []
        for row in metric["results"]:
            lift = row.get("lift")
            if row["arm"] == results["control"] or not lift:
                continue
            labels.append(row["arm"])
            points.append(round(lift["relative"] * 100, 2))
            bars.append([round(lift["ci_low"] * 100, 2), round(lift["ci_high"] * 100, 2)])
        if labels:
            title = f"{metric['key']}: relative lift vs {results['control']}, % (95% interval)"
            charts.append((metric["key"], interval_chart(labels, points, bars, title)))
    return charts


def comparisons_in_words(results: dict[str, Any]) -> str:
    tests = sum(
        1
        for metric in results.get("metrics", [])
        for row in metric["results"]
        if "p_adjusted" in row
    )
    segments = len(results.get("segments", []))
    text = (
        f"{tests} comparison{'s' if tests != 1 else ''} of arms against the control: their "
        "p-values are adjusted with the Benjamini-Hochberg procedure (controlling the false "
        "discovery rate at 5%), so a result is called significant only after that adjustment."
    )
    if segments:
        text += (
            f" The {segments} per-segment results are adjusted the same way across segments: a "
            "segment that stands out may still be chance."
        )
    return text


def _detail(
    request: Request,
    key: str,
    segment: str | None,
    error: LoopwiseError | None = None,
    status_code: int = 200,
) -> Response:
    console = console_of(request)
    service = console.services.experiments
    results = service.results(key, segment)
    config = service.experiment(key)
    revision = console.services.workspace.revision
    return render(
        request,
        "experiment.html",
        status_code=status_code,
        key=key,
        config=config,
        results=results,
        charts=result_charts(results),
        comparisons=comparisons_in_words(results),
        segment=segment,
        segments=sorted(console.services.workspace.compiled.segment_names.items()),
        revision=revision,
        error=error,
        holdout=key == HOLDOUT_KEY,
        per_day=traffic_per_day(request, config.slot),
        since=(console.services.clock() - timedelta(days=1)),
    )


@router.get("/ui/experiments/{key}")
def experiment(
    key: str, request: Request, person: Annotated[SignedIn, Depends(VIEWER)], segment: str = ""
) -> Response:
    return _detail(request, key, segment or None)
