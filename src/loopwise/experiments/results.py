"""Experiment results: from exposed users' outcomes to per-arm statistics and a verdict.

Pure: :mod:`loopwise.experiments.aggregates` turns each exposed person's totals into a
:class:`UserOutcome` — a metric's value counts the events *after* their first exposure and before
the experiment's end (conversion: 1 if any matching event, count: how many, revenue: Σ
``order_revenue``); the same metric in the pre-exposure window is the CUPED covariate; a ratio
metric keeps the numerator and denominator values — and keeps the sums below current.

Aggregation (``summarize``): per arm and metric the sums ``n, Σy, Σy², Σx, Σx², Σxy`` (``x`` is
the covariate, or the denominator of a ratio) — sufficient for every test in
:mod:`loopwise.experiments.stats`, so a report never needs per-user rows.

Report (``report``): per arm vs the control, the relative lift with its Welch 95% interval and
p-value (Benjamini-Hochberg across arms as ``p_adjusted``), Bayesian chance to win and expected
loss, the always-valid sequential interval, the CUPED-adjusted lift when the covariate varies; the
sample-ratio-mismatch χ² against the configured weights; a per-segment breakdown (segment
membership at exposure) with Benjamini-Hochberg across segments; and a verdict in words.
Arms with fewer than ``MIN_USERS_PER_ARM`` (30) users are not tested (no lift interval or p-value,
a note instead): below that the t-test's and delta method's normal approximations fail (a
segment of 8 users against 9 could show p < 10⁻⁶ from two big orders). Users needed for 80% power
at a relative effect ``mde``: ``sample_size`` for conversions, else
``n = 2(z_{1-alpha/2} + z_{0.8})² s² / (mde·μ_c)²``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scipy import stats as scipy_stats

from loopwise.errors import ValidationFailed
from loopwise.experiments.settings import ExperimentConfig, MetricConfig
from loopwise.experiments.stats import (
    CupedInput,
    SampleStats,
    bayesian,
    benjamini_hochberg,
    cuped,
    lift,
    ratio_stats,
    sample_size,
    segment_breakdown,
    sequential,
    srm,
    welch_test,
)

ALPHA = 0.05
POWER = 0.8
MIN_MDE = 0.05  # the smallest relative effect the verdict plans for
# Below this many users in an arm the normal approximations behind the t-test and the
# delta-method interval are not trusted (a handful of big orders would decide): no test is run.
MIN_USERS_PER_ARM = 30
# Values so large that a statistic overflows (one order of 1e80, as a public write key can send)
# make the comparison untestable, not the whole report an error.
TOO_LARGE = "values too large to compute statistics; look for an absurd revenue in the events"


# --- per user -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserOutcome:
    """One exposed user: arm, segments at exposure and ``metric key -> (y, x)``."""

    arm: str
    segments: frozenset[str]
    values: Mapping[str, tuple[float, float]]


# --- sufficient statistics ----------------------------------------------------------------------


@dataclass(slots=True)
class Moments:
    """Sums over users of ``y, y², x, x², xy`` (and how many had ``y > 0``)."""

    n: int = 0
    sum_y: float = 0.0
    sum_y2: float = 0.0
    sum_x: float = 0.0
    sum_x2: float = 0.0
    sum_xy: float = 0.0
    positive: int = 0

    def add(self, y: float, x: float = 0.0) -> None:
        self.n += 1
        self.sum_y += y
        self.sum_y2 += y * y
        self.sum_x += x
        self.sum_x2 += x * x
        self.sum_xy += x * y
        self.positive += y > 0

    def sample(self, kind: str) -> SampleStats:
        """The arm's statistics for the tests: a mean, or the delta-method ratio."""
        if kind == "ratio":
            return ratio_stats(
                self.n, self.sum_y, self.sum_y2, self.sum_x, self.sum_x2, self.sum_xy
            )
        if kind == "conversion":  # y is 0 or 1: the binomial variance, as gbstats
            return SampleStats.from_proportion(self.n, self.positive)
        return SampleStats(self.n, self.sum_y, self.sum_y2)

    def value(self, kind: str) -> float | None:
        if kind == "ratio":
            return self.sum_y / self.sum_x if self.sum_x else None
        return self.sum_y / self.n if self.n else None

    def cuped_input(self) -> CupedInput:
        return CupedInput(self.n, self.sum_y, self.sum_y2, self.sum_x, self.sum_x2, self.sum_xy)


@dataclass(slots=True)
class Summary:
    """Per-arm users and ``Moments`` per metric, overall and per segment."""

    users: dict[str, int] = field(default_factory=dict)
    moments: dict[str, dict[str, Moments]] = field(default_factory=dict)  # arm -> metric
    by_segment: dict[str, dict[str, dict[str, Moments]]] = field(default_factory=dict)


def summarize(experiment: ExperimentConfig, users: Iterable[UserOutcome]) -> Summary:
    summary = Summary(
        users={arm.key: 0 for arm in experiment.arms},
        moments={
            arm.key: {m.key: Moments() for m in experiment.metrics} for arm in experiment.arms
        },
    )
    for user in users:
        if user.arm not in summary.users:  # an arm removed from the workspace since
            continue
        summary.users[user.arm] += 1
        for metric in experiment.metrics:
            y, x = user.values.get(metric.key, (0.0, 0.0))
            summary.moments[user.arm][metric.key].add(y, x)
            for segment in user.segments:
                arms = summary.by_segment.setdefault(segment, {})
                arms.setdefault(user.arm, {}).setdefault(metric.key, Moments()).add(y, x)
    return summary


# --- report -------------------------------------------------------------------------------------


def _interval(low: float, high: float) -> dict[str, float]:
    return {"ci_low": low, "ci_high": high}


def _finite(value: Any) -> bool:
    """Whether every number in ``value`` (nested dicts) is finite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def _testable(control: SampleStats, treatment: SampleStats, alpha: float) -> bool:
    """Whether the Welch test of the pair is computable and finite (no overflow)."""
    try:
        test = welch_test(control, treatment, alpha)
    except (ValidationFailed, ArithmeticError):
        return False
    return _finite({"p": test.p_value, "low": test.ci_relative[0], "high": test.ci_relative[1]})


def _cuped(control: Moments, treatment: Moments, alpha: float) -> dict[str, Any] | None:
    """CUPED-adjusted lift, or None when the covariate carries no information."""
    if control.n < 2 or treatment.n < 2:
        return None
    inputs = [control.cuped_input(), treatment.cuped_input()]
    if all(i.sum_x2 * i.n - i.sum_x**2 <= 0 for i in inputs):
        return None  # x constant within every arm (e.g. nobody has a past)
    try:
        adjusted = cuped(inputs)
        adjusted_control, adjusted_treatment = adjusted.arms
        theta = adjusted.theta
        result = lift(adjusted_control, adjusted_treatment)
        test = welch_test(adjusted_control, adjusted_treatment, alpha)
    except (ValidationFailed, ArithmeticError):
        return None
    out = {
        "theta": theta,
        "relative": result.relative,
        **_interval(*test.ci_relative),
        "p_value": test.p_value,
    }
    return out if _finite(out) else None


def _compare(
    kind: str, control: Moments, treatment: Moments, alpha: float
) -> tuple[dict[str, Any], float | None]:
    """The treatment's statistics against the control, and its raw p-value (None: untestable)."""
    try:
        c, t = control.sample(kind), treatment.sample(kind)
        if min(c.n, t.n) < MIN_USERS_PER_ARM:
            return {
                "lift": None,
                "note": f"fewer than {MIN_USERS_PER_ARM} users in an arm: too few to test yet",
            }, None
        result = lift(c, t)
        test = welch_test(c, t, alpha)
        posterior = bayesian(c, t, alpha=alpha)
        always = sequential(c, t, alpha)
    except ValidationFailed as exc:
        return {"lift": None, "note": exc.detail}, None
    except ArithmeticError:
        return {"lift": None, "note": TOO_LARGE}, None
    out: dict[str, Any] = {
        "lift": {
            "absolute": result.absolute,
            "relative": result.relative,
            **_interval(*test.ci_relative),
            "absolute_ci_low": test.ci_absolute[0],
            "absolute_ci_high": test.ci_absolute[1],
        },
        "p_value": test.p_value,
        "chance_to_win": posterior.chance_to_win,
        "expected_loss": posterior.expected_loss,
        "sequential": {**_interval(*always.ci_relative), "significant": always.significant},
    }
    if not _finite(out):
        return {"lift": None, "note": TOO_LARGE}, None
    out["cuped"] = _cuped(control, treatment, alpha) if kind != "ratio" else None
    return out, test.p_value


def _metric_results(
    experiment: ExperimentConfig, metric: MetricConfig, summary: Summary, alpha: float
) -> dict[str, Any]:
    control_key = experiment.control_key
    control = summary.moments[control_key][metric.key]
    rows: list[dict[str, Any]] = []
    p_values: list[tuple[int, float]] = []
    for arm in experiment.arms:
        moments = summary.moments[arm.key][metric.key]
        row: dict[str, Any] = {
            "arm": arm.key,
            "users": moments.n,
            "value": moments.value(metric.kind),
            "conversions": moments.positive,
            "sum": moments.sum_y,
        }
        if arm.key != control_key:
            compared, p_value = _compare(metric.kind, control, moments, alpha)
            row.update(compared)
            if p_value is not None:
                p_values.append((len(rows), p_value))
        rows.append(row)
    adjusted = benjamini_hochberg([p for _, p in p_values])
    for (index, _), p_adj in zip(p_values, adjusted, strict=True):
        rows[index]["p_adjusted"] = p_adj
        rows[index]["significant"] = p_adj < alpha
    return {
        "key": metric.key,
        "kind": metric.kind,
        "guardrail": metric.guardrail,
        "results": rows,
    }


def _srm(experiment: ExperimentConfig, summary: Summary) -> dict[str, Any]:
    observed = [summary.users[arm.key] for arm in experiment.arms]
    weights = experiment.weights
    out: dict[str, Any] = {
        "p_value": None,
        "flagged": False,
        "expected": [],
        "observed": observed,
    }
    if sum(observed) == 0 or any(w <= 0 for w in weights):
        return out
    result = srm(observed, weights)
    out.update(p_value=result.p_value, flagged=result.flagged, expected=list(result.expected))
    return out


def _segments(experiment: ExperimentConfig, summary: Summary, alpha: float) -> list[dict[str, Any]]:
    """Every (metric, arm) across segments, Benjamini-Hochberg-adjusted across the segments."""
    out: list[dict[str, Any]] = []
    control_key = experiment.control_key
    for metric in experiment.metrics:
        for arm in experiment.arms:
            if arm.key == control_key:
                continue
            pairs: dict[str, tuple[SampleStats, SampleStats]] = {}
            for segment, arms in sorted(summary.by_segment.items()):
                control = arms.get(control_key, {}).get(metric.key)
                treatment = arms.get(arm.key, {}).get(metric.key)
                if control is None or treatment is None:
                    continue
                try:
                    pair = (control.sample(metric.kind), treatment.sample(metric.kind))
                except ValidationFailed:
                    continue
                if min(pair[0].n, pair[1].n) >= MIN_USERS_PER_ARM and _testable(*pair, alpha):
                    pairs[segment] = pair
            for result in segment_breakdown(pairs, alpha):
                control_stats, treatment_stats = pairs[result.segment]
                out.append(
                    {
                        "segment": result.segment,
                        "metric": metric.key,
                        "arm": arm.key,
                        "users": {control_key: control_stats.n, arm.key: treatment_stats.n},
                        "lift": {
                            "absolute": result.lift.absolute,
                            "relative": result.lift.relative,
                            **_interval(*result.frequentist.ci_relative),
                        },
                        "p_value": result.frequentist.p_value,
                        "p_adjusted": result.adjusted_p_value,
                        "significant": result.significant,
                    }
                )
    return out


def users_needed(control: SampleStats, kind: str, mde: float, alpha: float = ALPHA) -> int | None:
    """Users per arm for 80% power to detect a relative change ``mde`` (module docstring)."""
    if control.n < 2 or control.mean <= 0:
        return None
    if kind == "conversion" and control.mean < 1 and control.mean * (1 + mde) < 1:
        return sample_size(control.mean, mde, alpha, POWER)
    z = float(scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(POWER))
    return math.ceil(2 * z * z * control.variance / (mde * control.mean) ** 2)


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _verdict(
    experiment: ExperimentConfig, summary: Summary, metrics: list[dict[str, Any]], srm_: dict
) -> str:
    control = experiment.control_key
    if sum(summary.users.values()) == 0:
        return "No exposures yet: no user has been served this experiment."
    if srm_["flagged"]:
        split = "/".join(str(n) for n in srm_["observed"])
        planned = "/".join(_percent(w) for w in experiment.weights)
        return (
            f"SRM detected (p = {srm_['p_value']:.2g}): arms got {split} users where {planned} "
            "was configured. Do not trust these results until the cause is found (assignment, "
            "exposure logging or bots)."
        )
    primary = next((m for m in metrics if not m["guardrail"]), None)
    if primary is None:
        return "No primary metric: add a non-guardrail metric to the experiment to get a verdict."
    sentences: list[str] = []
    spec = next(m for m in experiment.metrics if m.key == primary["key"])
    control_moments = summary.moments[control][spec.key]
    for row in primary["results"]:
        if row["arm"] == control:
            continue
        arm, name = row["arm"], primary["key"]
        if row.get("lift") is None:
            sentences.append(f"Not enough data yet for {arm} on {name}: {row.get('note', '')}")
            continue
        rel = row["lift"]["relative"]
        low, high = row["lift"]["ci_low"], row["lift"]["ci_high"]
        interval = f"95% CI {_percent(low)} to {_percent(high)}"
        if row.get("significant"):
            direction = "beats" if rel > 0 else "is worse than"
            sentences.append(
                f"{arm} {direction} {control} by {_percent(abs(rel))} ({interval}) on {name} "
                f"(p = {row['p_value']:.2g}, chance to win {_percent(row['chance_to_win'])})."
            )
            continue
        mde = max(abs(rel), MIN_MDE)
        try:
            needed = users_needed(control_moments.sample(spec.kind), spec.kind, mde)
        except (ValidationFailed, ArithmeticError):
            needed = None
        advice = (
            f"; keep running until ~{needed:,} users per arm for 80% power to detect a "
            f"{_percent(mde)} lift"
            if needed is not None and needed > min(summary.users[control], summary.users[arm])
            else ""
        )
        sentences.append(
            f"No significant difference yet between {arm} and {control} on {name} (lift "
            f"{rel:+.1%}, {interval}, p = {row['p_value']:.2g}){advice}."
        )
    for metric, config in zip(metrics, experiment.metrics, strict=True):
        if not metric["guardrail"]:
            continue
        sign = 1 if config.higher_is_better else -1
        for row in metric["results"]:
            if row.get("significant") and sign * row["lift"]["relative"] < 0:
                sentences.append(
                    f"Guardrail {metric['key']} is worse for {row['arm']} "
                    f"({row['lift']['relative']:+.0%}, p = {row['p_value']:.2g})."
                )
    return " ".join(sentences)


def report(
    experiment: ExperimentConfig,
    summary: Summary,
    *,
    segment: str | None = None,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """The results document (``GET /v1/experiments/{key}/results``)."""
    metrics = [_metric_results(experiment, m, summary, alpha) for m in experiment.metrics]
    srm_result = _srm(experiment, summary)
    return {
        "experiment": experiment.key,
        "slot": experiment.slot,
        "status": experiment.status,
        "control": experiment.control_key,
        "segment": segment,
        "arms": [
            {"key": arm.key, "users": summary.users[arm.key], "weight": weight}
            for arm, weight in zip(experiment.arms, experiment.weights, strict=True)
        ],
        "srm": srm_result,
        "metrics": metrics,
        "segments": _segments(experiment, summary, alpha) if segment is None else [],
        "verdict": _verdict(experiment, summary, metrics, srm_result),
    }
