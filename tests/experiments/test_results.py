"""The results pipeline on hand-made data: outcome join, sufficient statistics, report, verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loopwise.events.schema import Event
from loopwise.experiments.results import (
    Moments,
    Summary,
    UserOutcome,
    report,
    summarize,
    users_needed,
)
from loopwise.experiments.settings import ExperimentConfig, MetricConfig
from loopwise.experiments.stats import SampleStats, ratio_stats, sample_size

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def experiment(**changes: Any) -> ExperimentConfig:
    fields: dict[str, Any] = {
        "key": "recs",
        "slot": "recs",
        "arms": [
            {"key": "control", "strategy": "popular"},
            {"key": "personalized", "strategy": "category_affinity"},
        ],
        "metrics": [
            {"key": "purchase", "kind": "conversion", "event": "Order Completed"},
            {"key": "revenue", "kind": "revenue", "event": "Order Completed"},
            {"key": "views", "kind": "count", "event": "Product Viewed"},
            {
                "key": "revenue_per_view",
                "kind": "ratio",
                "numerator": "revenue",
                "denominator": "views",
            },
        ],
    }
    fields.update(changes)
    return ExperimentConfig.model_validate(fields)


def event(name: str, minutes: float, **properties: Any) -> Event:
    at = T0 + timedelta(minutes=minutes)
    return Event(
        message_id=f"m{name}{minutes}",
        type="track",
        timestamp=at,
        received_at=at,
        anonymous_id="a",
        event=name,
        properties=properties,
    )


def test_report_on_hand_counts_matches_the_issue_example() -> None:
    # control 10,000 users / 500 conversions vs treatment 10,000 / 560: relative lift 0.12
    exp = experiment(metrics=[{"key": "purchase", "event": "Order Completed"}])
    summary = Summary(
        users={"control": 10_000, "personalized": 10_000},
        moments={
            "control": {"purchase": Moments(10_000, 500, 500, positive=500)},
            "personalized": {"purchase": Moments(10_000, 560, 560, positive=560)},
        },
    )
    body = report(exp, summary)
    assert body["arms"] == [
        {"key": "control", "users": 10_000, "weight": 0.5},
        {"key": "personalized", "users": 10_000, "weight": 0.5},
    ]
    assert body["srm"]["flagged"] is False and body["srm"]["p_value"] == pytest.approx(1.0)
    control, treated = body["metrics"][0]["results"]
    assert control == {
        "arm": "control",
        "users": 10_000,
        "value": 0.05,
        "conversions": 500,
        "sum": 500,
    }
    assert treated["lift"]["relative"] == pytest.approx(0.12)
    assert treated["lift"]["absolute"] == pytest.approx(0.006)
    assert treated["lift"]["ci_low"] < 0.12 < treated["lift"]["ci_high"]
    assert 0.05 < treated["p_value"] < 0.1  # not significant at 95%
    assert 0.9 < treated["chance_to_win"] < 1
    # the same figures as `loopwise stats proportions` and GrowthBook's gbstats
    assert treated["p_value"] == pytest.approx(0.0735868, rel=1e-5)
    assert treated["chance_to_win"] == pytest.approx(0.963214, rel=1e-5)
    seq = treated["sequential"]
    assert seq["ci_low"] < treated["lift"]["ci_low"] and seq["ci_high"] > treated["lift"]["ci_high"]
    assert treated["cuped"] is None  # no covariate
    needed = sample_size(0.05, 0.12)
    assert body["verdict"] == (
        "No significant difference yet between personalized and control on purchase (lift "
        f"+12.0%, 95% CI {round(treated['lift']['ci_low'] * 100)}% to "
        f"{round(treated['lift']['ci_high'] * 100)}%, p = {treated['p_value']:.2g}); keep "
        f"running until ~{needed:,} users per arm for 80% power to detect a 12% lift."
    )


def test_significant_winner_and_srm_verdicts() -> None:
    exp = experiment(metrics=[{"key": "purchase", "event": "Order Completed"}])
    win = Summary(
        users={"control": 10_000, "personalized": 10_000},
        moments={
            "control": {"purchase": Moments(10_000, 500, 500, positive=500)},
            "personalized": {"purchase": Moments(10_000, 650, 650, positive=650)},
        },
    )
    verdict = report(exp, win)["verdict"]
    assert verdict.startswith("personalized beats control by 30% (95% CI ")
    skewed = Summary(
        users={"control": 10_000, "personalized": 9_000},
        moments=win.moments,
    )
    body = report(exp, skewed)
    assert body["srm"]["flagged"] is True and body["srm"]["observed"] == [10_000, 9_000]
    assert body["verdict"].startswith("SRM detected")
    assert "Do not trust these results" in body["verdict"]


def test_summarize_builds_arm_and_segment_moments_and_cuped_uses_the_covariate() -> None:
    exp = experiment(metrics=[{"key": "revenue", "kind": "revenue", "event": "Order Completed"}])
    users = []
    for i in range(200):
        past = float(i % 10)
        for arm, bonus in (("control", 0.0), ("personalized", 1.0)):
            y = 2 * past + bonus + (i % 3)  # outcome follows the past closely
            segments = ["mobile"] if i % 2 else ["desktop"]
            users.append(UserOutcome(arm, frozenset(segments), {"revenue": (y, past)}))
    summary = summarize(exp, users)
    assert summary.users == {"control": 200, "personalized": 200}
    control = summary.moments["control"]["revenue"]
    assert control.n == 200 and control.sum_x == pytest.approx(sum(i % 10 for i in range(200)))
    assert set(summary.by_segment) == {"mobile", "desktop"}
    assert summary.by_segment["mobile"]["control"]["revenue"].n == 100
    body = report(exp, summary)
    treated = body["metrics"][0]["results"][1]
    cuped = treated["cuped"]
    assert cuped is not None and cuped["theta"] == pytest.approx(2.0, rel=0.05)
    plain_width = treated["lift"]["ci_high"] - treated["lift"]["ci_low"]
    assert cuped["ci_high"] - cuped["ci_low"] < plain_width / 2  # variance removed
    assert {s["segment"] for s in body["segments"]} == {"mobile", "desktop"}
    assert all(s["p_adjusted"] >= s["p_value"] for s in body["segments"])
    only_mobile = report(exp, summary, segment="mobile")
    assert only_mobile["segment"] == "mobile" and only_mobile["segments"] == []


def test_ratio_metric_uses_the_delta_method() -> None:
    # every user: numerator 2, denominator 4 -> ratio 0.5 with no variance
    stats = ratio_stats(10, 20.0, 40.0, 40.0, 160.0, 80.0)
    assert stats.mean == pytest.approx(0.5) and stats.variance == pytest.approx(0.0)
    exp = experiment()
    users = [
        UserOutcome(
            arm,
            frozenset(),
            {
                "purchase": (float(i % 4 == 0), 0.0),
                "revenue": (10.0 * (i % 4 == 0) * (2 if arm == "personalized" else 1), 0.0),
                "views": (float(1 + i % 3), 0.0),
                "revenue_per_view": (
                    10.0 * (i % 4 == 0) * (2 if arm == "personalized" else 1),
                    float(1 + i % 3),
                ),
            },
        )
        for i in range(400)
        for arm in ("control", "personalized")
    ]
    body = report(exp, summarize(exp, users))
    ratio = next(m for m in body["metrics"] if m["key"] == "revenue_per_view")
    control, treated = ratio["results"]
    assert control["value"] == pytest.approx(
        sum(10.0 * (i % 4 == 0) for i in range(400)) / sum(1 + i % 3 for i in range(400))
    )
    assert treated["lift"]["relative"] == pytest.approx(1.0)
    assert treated["cuped"] is None


def test_too_little_data_is_said_not_computed() -> None:
    exp = experiment(metrics=[{"key": "purchase", "event": "Order Completed"}])
    summary = summarize(exp, [UserOutcome("control", frozenset(), {"purchase": (0.0, 0.0)})])
    body = report(exp, summary)
    treated = body["metrics"][0]["results"][1]
    assert treated["lift"] is None and "too few to test" in treated["note"]
    assert body["verdict"].startswith("Not enough data yet for personalized on purchase")
    assert report(exp, summarize(exp, []))["verdict"].startswith("No exposures yet")


def test_small_arms_get_no_test_even_when_big_orders_would_look_certain() -> None:
    """8 control users with 5 big orders vs 9 treated users with 3 small ones: the delta method
    alone would call the revenue drop certain (p < 1e-6); below 30 users an arm is not tested."""
    exp = experiment(metrics=[{"key": "revenue", "kind": "revenue", "event": "Order Completed"}])
    control = [70.0, 80.0, 75.0, 65.0, 76.0, 0.0, 0.0, 0.0]
    treated = [11.0, 12.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    users = [UserOutcome("control", frozenset(), {"revenue": (y, 0.0)}) for y in control]
    users += [UserOutcome("personalized", frozenset(), {"revenue": (y, 0.0)}) for y in treated]
    row = report(exp, summarize(exp, users))["metrics"][0]["results"][1]
    assert row["lift"] is None and row.get("p_value") is None and "too few" in row["note"]
    bigger = users * 4  # 32 and 36 users: tested
    row = report(exp, summarize(exp, bigger))["metrics"][0]["results"][1]
    assert row["lift"]["relative"] == pytest.approx(33.0 / 9 / (366.0 / 8) - 1)
    assert row["p_value"] is not None


@pytest.mark.parametrize("huge", [1e80, 1e200])
def test_an_absurd_revenue_is_reported_as_untestable_not_a_crash(huge: float) -> None:
    """One order of 1e80 or 1e200 (valid JSON, accepted by ingest, e.g. sent with the public
    write key) made the statistics overflow: the results endpoint answered 500 for good."""
    exp = experiment(metrics=[{"key": "revenue", "kind": "revenue", "event": "Order Completed"}])
    users = [
        UserOutcome(arm, frozenset({"vip"}), {"revenue": (float(i % 3) * 10, 0.0)})
        for arm in ("control", "personalized")
        for i in range(40)
    ]
    users[0] = UserOutcome("control", frozenset({"vip"}), {"revenue": (huge, 1.0)})
    body = report(exp, summarize(exp, users))
    row = body["metrics"][0]["results"][1]
    assert row["lift"] is None and "too large" in row["note"]
    assert row.get("p_value") is None and row.get("cuped") is None
    assert body["segments"] == []
    assert body["verdict"].startswith("Not enough data yet for personalized on revenue")


def test_guardrail_harm_is_reported() -> None:
    exp = experiment(
        metrics=[
            {"key": "purchase", "event": "Order Completed"},
            {
                "key": "returns",
                "event": "Order Refunded",
                "kind": "count",
                "guardrail": True,
                "higher_is_better": False,
            },
        ]
    )
    summary = Summary(
        users={"control": 5000, "personalized": 5000},
        moments={
            "control": {
                "purchase": Moments(5000, 250, 250, positive=250),
                "returns": Moments(5000, 100, 100, positive=100),
            },
            "personalized": {
                "purchase": Moments(5000, 260, 260, positive=260),
                "returns": Moments(5000, 40, 40, positive=40),
            },
        },
    )
    verdict = report(exp, summary)["verdict"]
    assert "Guardrail" not in verdict  # fewer returns is not harm
    summary.moments["personalized"]["returns"] = Moments(5000, 200, 200, positive=200)
    assert "Guardrail returns is worse for personalized (+100%" in report(exp, summary)["verdict"]


def test_users_needed_for_means_and_conversions() -> None:
    assert users_needed(SampleStats.from_proportion(1000, 50), "conversion", 0.1) == sample_size(
        0.05, 0.1
    )
    revenue = SampleStats.from_values([0.0, 10.0] * 500)  # mean 5, variance ~25
    n = users_needed(revenue, "revenue", 0.1)
    assert n is not None and 1500 < n < 1600  # 2 * 7.85 * 25 / 0.25
    assert users_needed(SampleStats(0, 0, 0), "revenue", 0.1) is None


def test_workspace_validation_of_metrics_and_arms() -> None:
    with pytest.raises(ValueError, match="numerator and denominator"):
        MetricConfig(key="r", kind="ratio")
    with pytest.raises(ValueError, match="needs event"):
        MetricConfig(key="c", kind="conversion")
    with pytest.raises(ValueError, match="not an arm"):
        experiment(control="nope")
    with pytest.raises(ValueError, match="unknown arm"):
        experiment(force={"qa": "nope"})
    with pytest.raises(ValueError, match="reserved"):
        experiment(key="holdout")
    assert experiment(control="personalized").control_index == 1
