"""``/ui``: the loop right now — traffic, decide's p99, the program's lift against the global
holdout, the running experiments' verdicts, and what needs attention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loopwise.clock import parse_timestamp
from loopwise.console.page_segments import COLOURS
from loopwise.console.people import SignedIn
from loopwise.console.web import VIEWER, ConsoleRoute, console_of, render
from loopwise.errors import LoopwiseError
from loopwise.experiments.settings import HOLDOUT_KEY

if TYPE_CHECKING:
    from loopwise.console.app import Console

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

FALLBACK_ALERT_SHARE = 0.2  # a slot serving its fallback this often needs a look
FALLBACK_MIN_DECISIONS = 20
CONSENT_DROP_POINTS = 0.10  # grant share of the last day vs the week before


@dataclass(frozen=True, slots=True)
class Alert:
    severity: str  # "bad" | "warn"
    text: str
    link: str


def experiment_results(console: Console) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every experiment (and the holdout) with its results; None when they cannot be read."""
    service = console.services.experiments
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for experiment in service.list(flush=False):
        try:
            out.append((experiment, service.results(experiment["key"], flush=False)))
        except LoopwiseError:
            out.append((experiment, None))
    return out


def guardrail_breaches(results: dict[str, Any], experiment: Any) -> list[str]:
    """Guardrail metrics significantly worse for some arm."""
    better = {m.key: m.higher_is_better for m in experiment.metrics} if experiment else {}
    found = []
    for metric in results.get("metrics", []):
        if not metric.get("guardrail"):
            continue
        sign = 1 if better.get(metric["key"], True) else -1
        for row in metric.get("results", []):
            lift = row.get("lift") or {}
            if row.get("significant") and sign * float(lift.get("relative", 0)) < 0:
                found.append(f"{metric['key']} ({row['arm']})")
    return found


def alerts(
    console: Console, results: list[tuple[dict[str, Any], dict[str, Any] | None]]
) -> list[Alert]:
    services = console.services
    compiled = services.workspace.compiled
    found: list[Alert] = []
    for experiment, result in results:
        if result is None or experiment["status"] != "running":
            continue
        link = f"/ui/experiments/{experiment['key']}"
        if result["srm"].get("flagged"):
            found.append(
                Alert(
                    "bad",
                    f"Sample-ratio mismatch in {experiment['key']} (p = "
                    f"{result['srm']['p_value']:.2g}): its results cannot be trusted yet.",
                    link,
                )
            )
        breaches = guardrail_breaches(result, compiled.experiment(experiment["key"]))
        if breaches:
            found.append(
                Alert(
                    "bad",
                    f"Guardrail breached in {experiment['key']}: {', '.join(breaches)}.",
                    link,
                )
            )
    found += _model_alerts(console)
    found += _ledger_alerts(console)
    return found


def _model_alerts(console: Console) -> list[Alert]:
    training = console.services.workspace.workspace.training
    if training.retrain_every_minutes <= 0:
        return []
    listing = console.engine.model_versions()
    current = next((v for v in listing.get("versions", []) if v.get("current")), None)
    created = parse_timestamp(current.get("created_at")) if current else None
    now = console.services.clock()
    limit = timedelta(minutes=training.retrain_every_minutes)
    if created is None:
        return [
            Alert("warn", "No trained model is served yet although retraining is on.", "/ui/models")
        ]
    if now - created > 2 * limit:
        age = (now - created).total_seconds() / 3600
        return [
            Alert(
                "warn",
                f"The served model is {age:.1f} h old, older than twice its retraining period "
                f"({training.retrain_every_minutes:g} min).",
                "/ui/models",
            )
        ]
    return []


def _ledger_alerts(console: Console) -> list[Alert]:
    ledger = console.ledger.last
    if ledger is None:
        return []
    found: list[Alert] = []
    for slot, (decided, fallbacks) in sorted(ledger.fallbacks.items()):
        if decided >= FALLBACK_MIN_DECISIONS and fallbacks / decided >= FALLBACK_ALERT_SHARE:
            found.append(
                Alert(
                    "warn",
                    f"Slot {slot} served its fallback in {fallbacks / decided:.0%} of {decided:,} "
                    "decisions in the last 24 h.",
                    f"/ui/slots/{slot}",
                )
            )
    today = ledger.counted_at.date()
    for category in console.services.workspace.workspace.privacy.consent_categories:
        day = ledger.consent_share(category, 1, today)
        week = ledger.consent_share(category, 7, today - timedelta(days=1))
        if sum(day) < 10 or sum(week) < 10:
            continue
        recent, before = day[0] / sum(day), week[0] / sum(week)
        if before - recent >= CONSENT_DROP_POINTS:
            found.append(
                Alert(
                    "warn",
                    f"Consent to {category} dropped: {recent:.0%} of choices today granted it, "
                    f"{before:.0%} over the week before.",
                    "/ui/privacy",
                )
            )
    if not ledger.verification.ok:
        found.append(
            Alert(
                "bad",
                f"The consent audit chain is broken: {ledger.verification.problem}.",
                "/ui/privacy",
            )
        )
    return found


def holdout_chart(result: dict[str, Any]) -> dict[str, Any] | None:
    """The personalized arm's lift per holdout metric with its 95% interval, as a chart."""
    labels, points, bars = [], [], []
    for metric in result.get("metrics", []):
        row = next((r for r in metric["results"] if r["arm"] != result["control"]), None)
        lift = (row or {}).get("lift")
        if not lift:
            continue
        labels.append(metric["key"])
        points.append(round(lift["relative"] * 100, 2))
        bars.append([round(lift["ci_low"] * 100, 2), round(lift["ci_high"] * 100, 2)])
    if not labels:
        return None
    return interval_chart(labels, points, bars, "lift vs holdout, %")


def lift_over_time_chart(over_time: dict[str, Any]) -> dict[str, Any] | None:
    """The personalized arm's lift per holdout metric by day of first exposure: the estimate as a
    line and its 95% interval as a band, so a marketer sees whether the lift holds up."""
    days = over_time.get("days") or []
    if len(days) < 2:
        return None
    labels = [row["date"][5:] for row in days]
    keys = [metric["key"] for metric in days[-1]["metrics"]]
    datasets: list[dict[str, Any]] = []
    for i, key in enumerate(keys):
        colour = COLOURS[i % len(COLOURS)]
        estimate, low, high = [], [], []
        for row in days:
            metric = next((m for m in row["metrics"] if m["key"] == key), None)
            lift = metric["results"][0]["lift"] if metric and metric["results"] else None
            estimate.append(round(lift["relative"] * 100, 2) if lift else None)
            low.append(round(lift["ci_low"] * 100, 2) if lift else None)
            high.append(round(lift["ci_high"] * 100, 2) if lift else None)
        band = {"borderWidth": 0, "pointRadius": 0, "spanGaps": True}
        datasets += [
            {"label": f"{key} lift, %", "data": estimate, "borderColor": colour,
             "backgroundColor": colour, "spanGaps": True},
            {"label": f"{key} 95% low", "data": low, **band},
            {"label": f"{key} 95% interval", "data": high, "fill": "-1",
             "backgroundColor": colour + "33", **band},
        ]  # fmt: skip
    if not any(v is not None for d in datasets for v in d["data"]):
        return None
    return {
        "type": "line",
        "data": {"labels": labels, "datasets": datasets},
        "options": {
            "plugins": {
                "title": {
                    "display": True,
                    "text": "Lift vs holdout by day of first exposure (everyone up to that day), %",
                }
            },
            "scales": {"y": {"title": {"display": True, "text": "%"}}},
        },
    }


def interval_chart(
    labels: list[str], points: list[float], bars: list[list[float]], title: str
) -> dict[str, Any]:
    """A Chart.js config: floating bars for 95% intervals, a point for each estimate."""
    return {
        "type": "bar",
        "data": {
            "labels": labels,
            "datasets": [
                {"label": "95% interval", "data": bars, "backgroundColor": "rgba(11,92,173,0.35)"},
                {
                    "label": "estimate",
                    "type": "line",
                    "data": points,
                    "showLine": False,
                    "pointRadius": 5,
                    "backgroundColor": "#13263d",
                    "borderColor": "#13263d",
                },
            ],
        },
        "options": {
            "indexAxis": "y",
            "plugins": {"title": {"display": True, "text": title}},
            "scales": {"x": {"title": {"display": True, "text": "%"}}},
        },
    }


@router.get("/ui")
def overview(request: Request, person: Annotated[SignedIn, Depends(VIEWER)]) -> Response:
    console = console_of(request)
    results = experiment_results(console)
    holdout = next((r for e, r in results if e["key"] == HOLDOUT_KEY and r is not None), None)
    over_time = (
        console.services.experiments.results_over_time(HOLDOUT_KEY, flush=False)
        if holdout
        else None
    )
    census = console.census.last
    return render(
        request,
        "overview.html",
        rates=console.pulse.rates() if console.pulse is not None else None,
        experiments=[(e, r) for e, r in results if e["key"] != HOLDOUT_KEY],
        holdout=holdout,
        holdout_chart=holdout_chart(holdout) if holdout else None,
        lift_chart=lift_over_time_chart(over_time) if over_time else None,
        alerts=alerts(console, results),
        profiles=census.profiles if census else None,
        counted_at=census.counted_at if census else None,
        revision=console.services.workspace.revision,
    )
