"""The pure learners: floor, best-arm probabilities, posteriors, features."""

from __future__ import annotations

import numpy as np
import pytest

from loopwise.bandits.learners import (
    BetaArms,
    LinearArms,
    best_arm_probabilities,
    best_beta,
    best_normal,
    feature_vector,
    with_floor,
)


def test_floor_keeps_every_arm_and_sums_to_one() -> None:
    p = with_floor(np.array([1.0, 0.0, 0.0]), 0.01)
    assert p.min() == pytest.approx(0.01)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] == pytest.approx(0.98)
    assert np.allclose(with_floor(np.array([1.0, 0.0]), 0.5), [0.5, 0.5])


def test_best_arm_probabilities_split_ties() -> None:
    draws = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    assert np.allclose(best_arm_probabilities(draws), [0.25, 0.75, 0.0])


def test_beta_posterior_prefers_the_arm_with_more_successes() -> None:
    arms = BetaArms()
    for _ in range(200):
        arms.trial("a")
        arms.trial("b")
    for _ in range(60):
        arms.success("b")
    for _ in range(20):
        arms.success("a")
    p = arms.probabilities(["a", "b"], 1.0, 1.0)
    assert p[1] > 0.99
    assert p.sum() == pytest.approx(1.0)
    again = BetaArms.from_record(arms.to_record())
    assert again.counts == arms.counts


def test_linear_posterior_learns_which_arm_suits_which_context() -> None:
    arms = LinearArms(dim=2, ridge=1.0)
    mobile, desktop = np.array([1.0, 1.0]), np.array([1.0, 0.0])
    rng = np.random.default_rng(1)
    for _ in range(400):
        for x, best in ((mobile, "m"), (desktop, "d")):
            for arm in ("m", "d"):
                arms.trial(arm, x)
                if rng.random() < (0.6 if arm == best else 0.1):
                    arms.success(arm, x)
    assert arms.probabilities(["m", "d"], mobile, 0.25)[0] > 0.95
    assert arms.probabilities(["m", "d"], desktop, 0.25)[1] > 0.95
    restored = LinearArms.from_record(arms.to_record())
    assert np.allclose(restored.posterior(["m"], mobile)[0], arms.posterior(["m"], mobile)[0])


@pytest.mark.parametrize(
    ("alpha", "beta"),
    [
        ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
        ([2.0, 5.0, 3.0], [30.0, 40.0, 20.0]),
        ([20.0, 25.0, 400.0], [980.0, 975.0, 9600.0]),
        ([1.0, 300.0], [1.0, 700.0]),
    ],
)
def test_integrated_best_arm_probabilities_match_monte_carlo(
    alpha: list[float], beta: list[float]
) -> None:
    a, b = np.array(alpha), np.array(beta)
    exact = best_beta(a, b)
    draws = np.random.default_rng(0).beta(a, b, size=(400_000, len(a)))
    assert exact.sum() == pytest.approx(1.0)
    assert np.allclose(exact, best_arm_probabilities(draws), atol=0.004)
    mean, sd = np.array([0.1, 0.12, 0.0]), np.array([0.05, 0.02, 0.3])
    draws = mean + sd * np.random.default_rng(1).standard_normal((400_000, 3))
    assert np.allclose(best_normal(mean, sd), best_arm_probabilities(draws), atol=0.004)


def test_feature_vector() -> None:
    profile = {"engagement": 99.0, "known": True, "device": {"type": "mobile"}, "name": "x"}
    x = feature_vector(
        ["profile.engagement", "profile.known", "profile.device.type=mobile", "profile.name",
         "context.missing", "profile.device.type=desktop"],
        profile,
        {},
    )  # fmt: skip
    assert x.tolist() == pytest.approx([1.0, np.log1p(99.0), 1.0, 1.0, 0.0, 0.0, 0.0])
