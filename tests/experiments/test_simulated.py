"""Simulated experiments with known truth: the methods must keep their promises, not just compute.

Everything is seeded, so the counts below are deterministic; the bounds are the issue's
(≤ 16 of 200 A/A runs flagged at alpha = 0.05, i.e. 5% plus binomial noise).
"""

from __future__ import annotations

import numpy as np

from loopwise.experiments.assignment import ArmSpec, ExperimentSpec, assign
from loopwise.experiments.results import Moments, Summary, report
from loopwise.experiments.settings import ExperimentConfig
from loopwise.experiments.stats import (
    CupedInput,
    SampleStats,
    cuped,
    sample_size,
    sequential,
    srm,
    welch_test,
)

RUNS = 200
MAX_FALSE_POSITIVES = 16
BASELINE = 0.05


def _arms(n: int, conversions: np.ndarray) -> tuple[SampleStats, SampleStats]:
    return (
        SampleStats.from_proportion(n, int(conversions[0])),
        SampleStats.from_proportion(n, int(conversions[1])),
    )


def test_aa_fixed_horizon_false_positive_rate() -> None:
    rng = np.random.default_rng(20240601)
    n = 5000
    conversions = rng.binomial(n, BASELINE, size=(RUNS, 2))
    flagged = sum(welch_test(*_arms(n, run)).significant for run in conversions)
    assert flagged <= MAX_FALSE_POSITIVES
    assert flagged >= 2  # the test is not vacuous: about 5% do flag


def test_aa_sequential_survives_peeking_after_every_batch() -> None:
    rng = np.random.default_rng(7)
    batches, batch = 20, 500
    # cumulative conversions per (run, look, arm), users per arm after look k: (k + 1) * batch
    cumulative = rng.binomial(batch, BASELINE, size=(RUNS, batches, 2)).cumsum(axis=1)
    sequential_flags = 0
    naive_flags = 0
    for run in cumulative:
        looks = [_arms((k + 1) * batch, run[k]) for k in range(batches)]
        sequential_flags += any(sequential(c, t).significant for c, t in looks)
        naive_flags += any(welch_test(c, t).significant for c, t in looks)
    assert sequential_flags <= MAX_FALSE_POSITIVES
    # why the sequential method exists: peeking at a fixed-horizon test inflates false positives
    assert naive_flags > MAX_FALSE_POSITIVES


def test_true_twenty_percent_lift_is_detected_with_calculated_sample_size() -> None:
    n = sample_size(BASELINE, 0.2, alpha=0.05, power=0.8)
    rng = np.random.default_rng(11)
    control = rng.binomial(n, BASELINE, size=RUNS)
    treatment = rng.binomial(n, BASELINE * 1.2, size=RUNS)
    results = [
        welch_test(*_arms(n, np.array([c, t]))) for c, t in zip(control, treatment, strict=True)
    ]
    detected = sum(r.significant and r.ci_relative[0] > 0 for r in results)
    # the calculator promises 80% power; allow binomial noise (sd ≈ 2.8% over 200 runs)
    assert 0.72 * RUNS <= detected <= 0.88 * RUNS
    estimates = np.array([(t / c) - 1 for c, t in zip(control, treatment, strict=True)])
    assert abs(float(np.median(estimates)) - 0.2) < 0.02


def test_sequential_detects_true_lift_when_watched() -> None:
    rng = np.random.default_rng(5)
    batches, batch = 30, 1000
    rates = np.array([BASELINE, BASELINE * 1.2])
    cumulative = rng.binomial(batch, rates, size=(RUNS, batches, 2)).cumsum(axis=1)
    detected = 0
    for run in cumulative:
        for k in range(batches):
            result = sequential(*_arms((k + 1) * batch, run[k]))
            if result.significant:
                detected += result.ci_relative[0] > 0
                break
    assert detected >= 0.9 * RUNS


def test_srm_caught_when_exposures_are_dropped_from_one_arm() -> None:
    rng = np.random.default_rng(3)
    users = 40_000  # 20,000 per arm expected
    control = rng.binomial(users, 0.5, size=RUNS)
    treatment_assigned = users - control
    logged = rng.binomial(treatment_assigned, 0.95)  # 5% of treatment exposures lost
    caught = sum(
        srm([int(c), int(t)], [0.5, 0.5]).flagged for c, t in zip(control, logged, strict=True)
    )
    assert caught >= 0.9 * RUNS
    healthy = sum(
        srm([int(c), int(t)], [0.5, 0.5]).flagged
        for c, t in zip(control, treatment_assigned, strict=True)
    )
    assert healthy <= 2  # p < 0.001 threshold: about 0.2 false alarms expected in 200


def test_real_hash_assignment_passes_srm_and_broken_logging_fails() -> None:
    experiment = ExperimentSpec(key="checkout-cta", arms=[ArmSpec(key="a"), ArmSpec(key="b")])
    results = [assign(experiment, f"profile-{i}", {}) for i in range(40_000)]
    arms = np.array([r.arm_index for r in results if r is not None and r.in_experiment])
    assert arms.size == 40_000
    counts = np.bincount(arms, minlength=2)
    assert not srm(counts.tolist(), [0.5, 0.5]).flagged
    keep = np.random.default_rng(0).random(arms.size) >= 0.05
    logged = np.bincount(arms[(arms == 0) | keep], minlength=2)
    assert srm(logged.tolist(), [0.5, 0.5]).flagged


def test_cuped_keeps_aa_rate_and_tightens_intervals() -> None:
    rng = np.random.default_rng(17)
    n = 2000
    pre = rng.gamma(2.0, 10.0, size=(RUNS, 2, n))
    post = 0.7 * pre + rng.normal(0, 8, size=(RUNS, 2, n))  # no treatment effect
    sums = {
        "y": post.sum(axis=2),
        "y2": (post**2).sum(axis=2),
        "x": pre.sum(axis=2),
        "x2": (pre**2).sum(axis=2),
        "xy": (pre * post).sum(axis=2),
    }
    flagged = 0
    narrower = 0
    for r in range(RUNS):
        inputs = [
            CupedInput(n, *(float(sums[k][r, arm]) for k in ("y", "y2", "x", "x2", "xy")))
            for arm in range(2)
        ]
        adjusted_c, adjusted_t = cuped(inputs).arms
        adjusted = welch_test(adjusted_c, adjusted_t)
        raw_c, raw_t = (SampleStats(n, i.sum_y, i.sum_y2) for i in inputs)
        raw = welch_test(raw_c, raw_t)
        flagged += adjusted.significant
        narrower += (adjusted.ci_relative[1] - adjusted.ci_relative[0]) < 0.7 * (
            raw.ci_relative[1] - raw.ci_relative[0]
        )
    assert flagged <= MAX_FALSE_POSITIVES
    assert narrower == RUNS


# --- the same promises through the results pipeline (Summary -> report) ------------------------

PIPELINE_EXPERIMENT = ExperimentConfig.model_validate(
    {
        "key": "recs",
        "slot": "recs",
        "arms": [
            {"key": "control", "strategy": "popular"},
            {"key": "personalized", "strategy": "category_affinity"},
        ],
        "metrics": [{"key": "purchase", "kind": "conversion", "event": "Order Completed"}],
    }
)


def _summary(users: tuple[int, int], conversions: tuple[int, int]) -> Summary:
    arms = ("control", "personalized")
    return Summary(
        users=dict(zip(arms, users, strict=True)),
        moments={
            arm: {"purchase": Moments(n, float(c), float(c), positive=c)}
            for arm, n, c in zip(arms, users, conversions, strict=True)
        },
    )


def _treated(body: dict) -> dict:
    return body["metrics"][0]["results"][1]


def test_pipeline_aa_false_positives_fixed_horizon_and_sequential_peeking() -> None:
    rng = np.random.default_rng(99)
    looks, batch = 10, 1000
    cumulative = rng.binomial(batch, BASELINE, size=(RUNS, looks, 2)).cumsum(axis=1)
    fixed = 0
    peeking = 0
    for run in cumulative:
        reports = [
            report(PIPELINE_EXPERIMENT, _summary(((k + 1) * batch,) * 2, tuple(run[k])))
            for k in range(looks)
        ]
        fixed += bool(_treated(reports[-1])["significant"])
        peeking += any(_treated(r)["sequential"]["significant"] for r in reports)
        assert not any(r["srm"]["flagged"] for r in reports)
    assert fixed <= MAX_FALSE_POSITIVES
    assert peeking <= MAX_FALSE_POSITIVES


def test_pipeline_detects_a_true_twenty_percent_lift() -> None:
    n = sample_size(BASELINE, 0.2)
    rng = np.random.default_rng(21)
    control = rng.binomial(n, BASELINE, size=RUNS)
    treatment = rng.binomial(n, BASELINE * 1.2, size=RUNS)
    bodies = [
        report(PIPELINE_EXPERIMENT, _summary((n, n), (int(c), int(t))))
        for c, t in zip(control, treatment, strict=True)
    ]
    detected = [
        b for b in bodies if _treated(b)["significant"] and _treated(b)["lift"]["ci_low"] > 0
    ]
    assert len(detected) >= 0.72 * RUNS
    assert all(b["verdict"].startswith("personalized beats control by") for b in detected)


def test_pipeline_flags_srm_when_exposures_are_dropped_from_one_arm() -> None:
    rng = np.random.default_rng(8)
    users = 40_000
    control = rng.binomial(users, 0.5, size=RUNS)
    dropped = rng.binomial(users - control, 0.95)  # 5% of treatment exposures never logged
    caught = 0
    for c, t in zip(control, dropped, strict=True):
        body = report(PIPELINE_EXPERIMENT, _summary((int(c), int(t)), (int(c) // 20, int(t) // 20)))
        caught += body["srm"]["flagged"] and body["verdict"].startswith("SRM detected")
    assert caught >= 0.9 * RUNS
