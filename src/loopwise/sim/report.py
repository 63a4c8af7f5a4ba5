"""The demo's HTML report: the engine's experiment results as tables and matplotlib plots.

Every figure comes from the engine's results documents (``GET /v1/experiments/{key}/results``
shape); the simulator's ground truth appears only in its own, labelled table.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

from loopwise.sim.demo import CLICK_METRIC, DemoResult

if TYPE_CHECKING:
    from loopwise.bandits.simulate import BanditSimulation

PRIMARY_METRIC = "purchase"
CONVERSION_METRICS = (PRIMARY_METRIC, CLICK_METRIC)  # shown as a share of exposed users


def metric_results(results: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """The per-arm rows of one metric (empty when the engine has none yet)."""
    for entry in results.get("metrics", []):
        if entry.get("key") == metric:
            return list(entry.get("results", []))
    return []


def treatment_row(results: dict[str, Any], metric: str) -> dict[str, Any] | None:
    """The first non-control arm's row of ``metric``."""
    control = results.get("control")
    return next((r for r in metric_results(results, metric) if r.get("arm") != control), None)


def percent(value: Any, digits: int = 1) -> str:
    return f"{value * 100:.{digits}f}%" if isinstance(value, int | float) else "-"


def lift_text(row: dict[str, Any]) -> str:
    lift = row.get("lift")
    if not isinstance(lift, dict):
        return "(control)"
    return (
        f"{percent(lift.get('relative'))} "
        f"(95% CI {percent(lift.get('ci_low'))} to {percent(lift.get('ci_high'))})"
    )


def _number(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def conversion_over_time(result: DemoResult, metric: str = PRIMARY_METRIC) -> str | None:
    """PNG (base64) of each arm's conversion rate after each simulated day."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    series: dict[str, list[tuple[int, float]]] = {}
    for snapshot in result.daily:
        for row in metric_results(snapshot["results"], metric):
            if isinstance(row.get("value"), int | float) and row.get("users"):
                series.setdefault(str(row["arm"]), []).append((snapshot["day"], row["value"]))
    if not series:
        return None
    figure = Figure(figsize=(7, 3.6))
    axes = figure.subplots()
    for arm, points in series.items():
        axes.plot([d for d, _ in points], [v * 100 for _, v in points], marker="o", label=arm)
    axes.set_xlabel("simulated day")
    axes.set_ylabel(f"{metric} conversion (% of exposed users)")
    axes.set_title("Conversion per arm over time (cumulative)")
    axes.grid(alpha=0.3)
    axes.legend()
    return _png(figure)


def lift_by_segment(result: DemoResult, metric: str = PRIMARY_METRIC) -> str | None:
    """PNG (base64) of the treatment's relative lift with its 95% CI, per segment."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = [("everyone", treatment_row(result.results, metric))]
    rows += [(key, treatment_row(found, metric)) for key, found in result.by_segment.items()]
    points = [
        (name, row["lift"])
        for name, row in rows
        if row is not None
        and isinstance(row.get("lift"), dict)
        and all(isinstance(row["lift"].get(k), int | float) for k in ("relative", "ci_low"))
        and isinstance(row["lift"].get("ci_high"), int | float)
    ]
    if not points:
        return None
    figure = Figure(figsize=(7, 0.45 * len(points) + 1.2))
    axes = figure.subplots()
    ys = list(range(len(points)))[::-1]
    centre = [lift["relative"] * 100 for _, lift in points]
    low = [c - lift["ci_low"] * 100 for c, (_, lift) in zip(centre, points, strict=True)]
    high = [lift["ci_high"] * 100 - c for c, (_, lift) in zip(centre, points, strict=True)]
    axes.errorbar(centre, ys, xerr=[low, high], fmt="o", capsize=4)
    axes.axvline(0, color="grey", linewidth=1)
    axes.set_yticks(ys, [name for name, _ in points])
    axes.set_xlabel(f"relative lift in {metric} conversion, % (95% CI)")
    axes.set_title("Lift of the personalized arm, per segment")
    axes.grid(alpha=0.3, axis="x")
    return _png(figure)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def arm_rows(results: dict[str, Any], metric: str) -> list[list[str]]:
    rows = []
    for row in metric_results(results, metric):
        value = row.get("value")
        shown = percent(value, 2) if metric in CONVERSION_METRICS else _number(value, 2)
        rows.append(
            [
                str(row.get("arm")),
                str(row.get("users", 0)),
                str(row.get("conversions", "-")),
                shown,
                lift_text(row),
                _number(row.get("p_value"), 4),
                percent(row.get("chance_to_win")),
            ]
        )
    return rows


ARM_HEADERS = ["arm", "users", "conversions", "value", "lift", "p-value", "chance to win"]
TRUTH_HEADERS = ["arm", "visits", "visits with an order", "rate", "shown items clicked"]


def bandit_section(sim: BanditSimulation) -> list[str]:
    """The bandit-vs-A/B/n simulation: regret curve, click rates measured by the experiments
    engine and the ground truth beside them."""
    from loopwise.bandits.simulate import regret_plot

    summary = sim.to_dict()
    regret = summary["final_regret"]
    rows = []
    for row in metric_results(sim.results, "clicked"):
        rows.append([str(row.get("arm")), str(row.get("users", 0)), percent(row.get("value"), 2),
                     lift_text(row)])  # fmt: skip
    parts = [
        "<h2>Bandit vs a fixed A/B/n split (hero headline)</h2>",
        f"<p>{sim.visitors} simulated visitors (seed {sim.seed}), half on phones; each device "
        "has its own best of four headlines. An experiment gives half the traffic the classic "
        "A/B/n test (one fixed headline per arm) and half the slot's bandit (Thompson sampling "
        "per device segment, learning from clicks). Click rate: bandit "
        f"<b>{percent(sim.expected_rate.get('bandit'), 2)}</b> vs A/B/n "
        f"<b>{percent(sim.expected_rate.get('ab'), 2)}</b> (<b>{sim.gain:+.1%}</b> clicks; the "
        f"oracle, always the best headline per device, {percent(sim.best_rate, 2)}). Clicks "
        f"lost against the oracle: bandit {regret.get('bandit', 0):.1f} in "
        f"{sim.decisions.get('bandit', 0)} decisions, A/B/n {regret.get('ab', 0):.1f} in "
        f"{sim.decisions.get('ab', 0)}.</p>",
    ]
    plot = regret_plot(sim)
    if plot:
        parts.append(f"<img alt='cumulative regret' src='data:image/png;base64,{plot}'>")
    parts += [
        "<h3>Click rate per arm (the engine's experiment results)</h3>",
        _table(["arm", "users", "clicked", "lift vs first arm"], rows),
    ]
    return parts


def render_html(result: DemoResult, bandits: BanditSimulation | None = None) -> str:
    results = result.results
    srm = results.get("srm") or {}
    over_time = conversion_over_time(result)
    by_segment = lift_by_segment(result)
    segment_rows = []
    for key, found in result.by_segment.items():
        row = treatment_row(found, PRIMARY_METRIC)
        users = sum(int(a.get("users", 0)) for a in found.get("arms", []))
        if row is not None:
            segment_rows.append([key, str(users), lift_text(row), _number(row.get("p_value"), 4)])
    truth_rows = [
        [
            arm,
            str(s.sessions),
            str(s.conversions),
            percent(s.conversion_rate, 2),
            percent(s.click_rate, 2),
        ]
        for arm, s in sorted(result.ground_truth.items())
    ]
    config = result.config
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Loopwise demo report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;"
        "padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f4f4f4}"
        ".verdict{font-size:1.2em;padding:.6em;background:#eef6ee;border-left:4px solid #4a4}"
        "</style></head><body>",
        "<h1>Loopwise demo: personalized vs popular</h1>",
        f"<p>{html.escape(result.mode)} engine, {config.users} simulated users over "
        f"{config.days} days (seed {config.seed}): {result.visits} visits, {result.events} events, "
        f"{result.seconds:.0f} s. Arms: control = <code>{html.escape(config.control_strategy)}"
        f"</code>, personalized = <code>{html.escape(config.personalized_strategy)}</code>.</p>",
        f"<p class='verdict'>{html.escape(str(results.get('verdict', 'no verdict')))}</p>",
        f"<p>Pre-render cache: {result.cache.get('hit', 0)} of {sum(result.cache.values())} "
        f"slot decisions served from it ({result.cache_hit_ratio:.1%}).</p>",
        "<h2>Per arm (the engine's results)</h2><h3>Purchase conversion per exposed user</h3>",
        _table(ARM_HEADERS, arm_rows(results, PRIMARY_METRIC)),
        "<h3>Revenue per exposed user</h3>",
        _table(ARM_HEADERS, arm_rows(results, "revenue")),
        "<h3>Content clicked per exposed user</h3>",
        "<p>Any content clicked after exposure: the experiment slot's direct effect (the hero "
        "and trending, shown alike in both arms, add the same clicks to each).</p>",
        _table(ARM_HEADERS, arm_rows(results, CLICK_METRIC)),
        f"<p>Sample ratio check: p = {_number(srm.get('p_value'), 4)} — "
        f"{'MISMATCH: do not trust these results' if srm.get('flagged') else 'no mismatch'}.</p>",
    ]
    if over_time:
        parts.append(f"<img alt='conversion per arm over time' src='data:image/png;base64,"
                     f"{over_time}'>")  # fmt: skip
    parts.append("<h2>Per segment (segment at exposure)</h2>")
    if by_segment:
        parts.append(f"<img alt='lift per segment' src='data:image/png;base64,{by_segment}'>")
    parts.append(_table(["segment", "users", "lift", "p-value"], segment_rows))
    if bandits is not None:
        parts += bandit_section(bandits)
    parts += [
        "<h2>Simulator ground truth (per visit; not seen by the engine)</h2>",
        _table(TRUTH_HEADERS, truth_rows),
        "<p>The simulator decides what simulated people do from what the engine shows them; "
        "it plants no results. The engine measures the experiment from its own exposure and "
        "event logs.</p></body></html>",
    ]
    return "\n".join(parts)
