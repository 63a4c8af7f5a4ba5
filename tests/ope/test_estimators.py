"""IPW, SNIPW and DR on data small enough to check by hand; bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from loopwise.ope.estimators import Rounds, dr, effective_sample_size, estimate_all, ipw, snipw


def _rounds() -> Rounds:
    return Rounds(
        reward=np.array([1.0, 0.0, 1.0, 0.0]),
        pscore=np.array([0.5, 0.5, 0.25, 0.25]),
        pi=np.array([1.0, 0.0, 0.5, 0.5]),
        q_logged=np.array([0.6, 0.2, 0.4, 0.4]),
        q_expected=np.array([0.6, 0.6, 0.4, 0.4]),
    )


def test_ipw_snipw_dr_by_hand() -> None:
    rounds = _rounds()
    # weights 2, 0, 2, 2: ipw = (2 + 0 + 2 + 0) / 4; snipw = 4 / 6
    assert ipw(rounds) == pytest.approx(1.0)
    assert snipw(rounds) == pytest.approx(4 / 6)
    # dr terms: 0.6 + 2 (0.4), 0.6 + 0, 0.4 + 2 (0.6), 0.4 + 2 (-0.4)
    assert dr(rounds) == pytest.approx((1.4 + 0.6 + 1.6 - 0.4) / 4)
    assert effective_sample_size(rounds) == pytest.approx(36 / 12)


def test_logging_policy_evaluated_on_itself_gives_the_observed_rate() -> None:
    rng = np.random.default_rng(0)
    pscore = rng.uniform(0.1, 0.9, 500)
    reward = (rng.random(500) < 0.3).astype(float)
    rounds = Rounds(reward=reward, pscore=pscore, pi=pscore)
    assert ipw(rounds) == pytest.approx(reward.mean())
    assert snipw(rounds) == pytest.approx(reward.mean())


def test_intervals_contain_the_value_and_are_reproducible() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    rounds = Rounds(
        reward=(rng.random(n) < 0.2).astype(float),
        pscore=np.full(n, 0.5),
        pi=rng.choice([0.0, 1.0], n),
        q_logged=np.full(n, 0.2),
        q_expected=np.full(n, 0.2),
    )
    first = estimate_all(rounds, n_bootstrap=300, seed=5)
    again = estimate_all(rounds, n_bootstrap=300, seed=5)
    assert first == again
    for estimate in first.values():
        assert estimate.lower <= estimate.value <= estimate.upper
        assert estimate.upper - estimate.lower < 0.1
    assert set(first) == {"ipw", "snipw", "dr"}


def test_unbiased_on_a_simulated_bandit() -> None:
    """Uniform logging over 3 arms; the candidate always plays the best arm (rate 0.5)."""
    rng = np.random.default_rng(2)
    rates = np.array([0.1, 0.5, 0.2])
    n = 30_000
    action = rng.integers(0, 3, n)
    reward = (rng.random(n) < rates[action]).astype(float)
    pi = (action == 1).astype(float)
    rounds = Rounds(reward=reward, pscore=np.full(n, 1 / 3), pi=pi)
    assert ipw(rounds) == pytest.approx(0.5, abs=0.02)
    assert snipw(rounds) == pytest.approx(0.5, abs=0.02)


def test_rejects_zero_propensities() -> None:
    with pytest.raises(ValueError, match="propensity"):
        Rounds(reward=np.ones(2), pscore=np.array([0.5, 0.0]), pi=np.ones(2))
