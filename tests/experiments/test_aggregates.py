"""Experiment results kept current: each exposed person's totals become metric values, and the
incrementally kept statistics equal those summarised from scratch."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from loopwise.experiments.aggregates import ExperimentAggregates, exposure_outcome
from loopwise.experiments.results import summarize
from loopwise.experiments.settings import ExperimentConfig
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.records import Exposure

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def experiment() -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "key": "exp",
            "slot": "recommended",
            "arms": [{"key": "control", "strategy": "popular"},
                     {"key": "personalized", "strategy": "category_affinity"}],
            "metrics": [
                {"key": "purchase", "event": "Order Completed"},
                {"key": "revenue", "kind": "revenue", "event": "Order Completed"},
                {"key": "views", "kind": "count", "event": "Product Viewed"},
                {"key": "revenue_per_view", "kind": "ratio", "numerator": "revenue",
                 "denominator": "views"},
            ],
        }
    )  # fmt: skip


def exposure(n: int, arm: str, after: dict[str, tuple[float, float]], **kw: Any) -> Exposure:
    return Exposure("exp", f"p{n}", arm, T0 + timedelta(minutes=n), after=after, **kw)


def test_an_exposures_totals_become_its_metric_values() -> None:
    e = exposure(
        1,
        "control",
        {"Order Completed": (2.0, 30.0), "Product Viewed": (2.0, 0.0)},
        segments=("vip",),
        before={"Order Completed": (1.0, 10.0)},
    )
    outcome = exposure_outcome(experiment(), e)
    assert outcome.values["purchase"] == (1.0, 1.0)
    assert outcome.values["revenue"] == (30.0, 10.0)
    assert outcome.values["views"] == (2.0, 0.0)
    assert outcome.values["revenue_per_view"] == (30.0, 2.0)
    assert outcome.segments == frozenset({"vip"})


def test_incremental_statistics_equal_a_summary_from_scratch() -> None:
    rng = random.Random(3)
    storage = MemoryStorage()
    config = experiment()
    people = [
        exposure(n, rng.choice(["control", "personalized"]), {}, segments=("vip",) * (n % 2))
        for n in range(60)
    ]
    storage.write(lambda uow: [uow.exposures.insert(e) for e in people[:30]])
    aggregates = ExperimentAggregates(storage.exposures)
    aggregates.summary(config)  # built from the store: the first 30
    current = {e.profile_id: e for e in people[:30]}
    aggregates.changed(people[30:])  # new exposures (from decide)
    current.update({e.profile_id: e for e in people[30:]})
    for _ in range(200):  # metric events arriving: an exposure's totals grow
        pid = rng.choice(list(current))
        old = current[pid]
        name = rng.choice(["Order Completed", "Product Viewed"])
        count, revenue = old.after.get(name, (0.0, 0.0))
        new = replace(old, after={**old.after, name: (count + 1, revenue + 7)})
        current[pid] = new
        aggregates.changed([new], [old])
    kept = aggregates.summary(config)
    scratch = summarize(config, [exposure_outcome(config, e) for e in current.values()])
    assert kept.users == scratch.users
    for arm, metrics in scratch.moments.items():
        for key, moments in metrics.items():
            got = kept.moments[arm][key]
            assert (got.n, got.positive) == (moments.n, moments.positive)
            assert abs(got.sum_y - moments.sum_y) < 1e-6 and abs(got.sum_xy - moments.sum_xy) < 1e-6
    vip = aggregates.summary(config, "vip")
    assert sum(vip.users.values()) == sum(1 for e in current.values() if "vip" in e.segments)
    storage.close()


def test_results_by_day_of_exposure_accumulate_to_the_overall_summary() -> None:
    rng = random.Random(5)
    storage = MemoryStorage()
    config = experiment()
    people = [
        Exposure(
            "exp",
            f"p{n}",
            rng.choice(["control", "personalized"]),
            T0 + timedelta(hours=7 * n),
            after={"Order Completed": (float(rng.random() < 0.3), 5.0)},
        )
        for n in range(40)
    ]
    storage.write(lambda uow: [uow.exposures.insert(e) for e in people[:20]])
    aggregates = ExperimentAggregates(storage.exposures)
    aggregates.changed(people[20:])  # before the first build: ignored, the store is read
    aggregates.summary(config)
    aggregates.changed(people[20:])
    days = aggregates.cumulative_by_day(config)
    expected_days = sorted({e.exposed_at.date() for e in people})
    assert [d for d, _ in days] == expected_days
    for day, summary in days:
        upto = [e for e in people if e.exposed_at.date() <= day]
        scratch = summarize(config, [exposure_outcome(config, e) for e in upto])
        assert summary.users == scratch.users
        got = summary.moments["personalized"]["purchase"]
        want = scratch.moments["personalized"]["purchase"]
        assert (got.n, got.positive) == (want.n, want.positive)
    assert days[-1][1].users == aggregates.summary(config).users
    storage.close()
