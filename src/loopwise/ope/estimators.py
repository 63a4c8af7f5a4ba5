"""Off-policy estimators: IPW, self-normalised IPW and doubly robust, with bootstrap intervals.

Pure numpy over one logged bandit data set: for each logged round *i* the reward ``r_i``, the
logging policy's propensity ``p_i`` of what it showed, the candidate policy's probability
``pi_i`` of that same action (in the same position), and for doubly robust the reward model's
prediction ``q_i`` for the logged action and its expectation ``e_i = sum_a pi(a|x_i) q(x_i, a)``
under the candidate.

- IPW (inverse probability weighting): ``mean(w_i r_i)`` with ``w_i = pi_i / p_i`` — the same
  formula as Open Bandit Pipeline's ``InverseProbabilityWeighting``;
- SNIPW (self-normalised): ``sum(w_i r_i) / sum(w_i)``;
- DR (doubly robust): ``mean(e_i + w_i (r_i - q_i))``.

Intervals are percentile bootstrap intervals over rounds (resampled with replacement), seeded,
so a report is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

DEFAULT_BOOTSTRAP = 1000
DEFAULT_ALPHA = 0.05
ESTIMATORS = ("ipw", "snipw", "dr")


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimator's value with its bootstrap confidence interval."""

    value: float
    lower: float
    upper: float
    confidence: float

    def to_dict(self) -> dict[str, object]:
        return {
            "value": self.value,
            "interval": {"lower": self.lower, "upper": self.upper, "confidence": self.confidence},
        }


@dataclass(frozen=True, slots=True)
class Rounds:
    """The per-round inputs of the estimators (equal-length 1-d arrays)."""

    reward: FloatArray
    pscore: FloatArray
    pi: FloatArray  # candidate's probability of the logged action (in its position)
    q_logged: FloatArray | None = None  # reward model at the logged action
    q_expected: FloatArray | None = None  # sum over actions of pi(a|x) q(x, a)

    def __post_init__(self) -> None:
        n = len(self.reward)
        for name in ("pscore", "pi", "q_logged", "q_expected"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} rounds, reward has {n}")
        if n and float(np.min(self.pscore)) <= 0.0:
            raise ValueError("every logged propensity must be > 0")

    @property
    def weights(self) -> FloatArray:
        return self.pi / self.pscore


def ipw(rounds: Rounds) -> float:
    return float(np.mean(rounds.weights * rounds.reward))


def snipw(rounds: Rounds) -> float:
    w = rounds.weights
    total = float(np.sum(w))
    return float(np.sum(w * rounds.reward) / total) if total > 0 else 0.0


def dr(rounds: Rounds) -> float:
    if rounds.q_logged is None or rounds.q_expected is None:
        raise ValueError("doubly robust needs the reward model's predictions")
    return float(np.mean(_dr_terms(rounds)))


def _dr_terms(rounds: Rounds) -> FloatArray:
    assert rounds.q_logged is not None and rounds.q_expected is not None
    return rounds.q_expected + rounds.weights * (rounds.reward - rounds.q_logged)


def estimate_all(
    rounds: Rounds,
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 12345,
) -> dict[str, Estimate]:
    """IPW, SNIPW and (when the reward model's predictions are given) DR, each with a
    ``1 - alpha`` percentile bootstrap interval from ``n_bootstrap`` resamples of the rounds."""
    n = len(rounds.reward)
    if n == 0:
        raise ValueError("no logged rounds to estimate from")
    w = rounds.weights
    wr = w * rounds.reward
    has_dr = rounds.q_logged is not None and rounds.q_expected is not None
    terms = _dr_terms(rounds) if has_dr else None
    values: dict[str, float] = {"ipw": ipw(rounds), "snipw": snipw(rounds)}
    if terms is not None:
        values["dr"] = float(np.mean(terms))
    rng = np.random.default_rng(seed)
    boot: dict[str, list[float]] = {name: [] for name in values}
    chunk = max(1, min(n_bootstrap, 2_000_000 // max(n, 1)))
    done = 0
    while done < n_bootstrap:
        size = min(chunk, n_bootstrap - done)
        idx = rng.integers(0, n, size=(size, n))
        boot["ipw"].extend(wr[idx].mean(axis=1).tolist())
        sums = w[idx].sum(axis=1)
        sn = np.divide(wr[idx].sum(axis=1), sums, out=np.zeros(size), where=sums > 0)
        boot["snipw"].extend(sn.tolist())
        if terms is not None:
            boot["dr"].extend(terms[idx].mean(axis=1).tolist())
        done += size
    out: dict[str, Estimate] = {}
    for name, value in values.items():
        samples = np.asarray(boot[name])
        lower, upper = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
        out[name] = Estimate(value, float(lower), float(upper), 1.0 - alpha)
    return out


def effective_sample_size(rounds: Rounds) -> float:
    """Kish's effective sample size of the importance weights: how many logged rounds the
    estimate is really worth."""
    w = rounds.weights
    square = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / square if square > 0 else 0.0
