"""The learners, pure numpy: Beta-Bernoulli Thompson sampling and linear Thompson sampling.

Thompson sampling shows each arm with the probability that it is the best under the posterior.
Rather than drawing one posterior sample and showing its argmax (whose probability is then
unknown), Loopwise computes those probabilities by numerical integration over the arms'
posterior CDFs (deterministic: the same state gives the same distribution), mixes in the
exploration floor, and draws the arm from the result — so the propensity logged with the decision
is exactly the probability the arm was drawn with (what off-policy evaluation needs). Drawing
from that distribution is Thompson sampling: the chance of each arm is the same.

- :class:`BetaArms` — per arm ``trials`` and ``successes``; posterior Beta(prior_alpha +
  successes, prior_beta + trials - successes).
- :class:`LinearArms` — per arm ridge regression of the reward on the features: ``A = ridge I
  + sum x x^T``, ``b = sum r x``; posterior N(A^-1 b, noise^2 A^-1), so the sampled reward of an
  arm for context x is normal with mean ``x . mu`` and variance ``noise^2 x^T A^-1 x``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import betainc, ndtr

FloatArray = NDArray[np.float64]
GRID = 256  # cells of the numerical integration of each arm's chance to be best


def with_floor(probabilities: FloatArray, floor: float) -> FloatArray:
    """Every arm at least ``floor``; the rest shared in proportion (uniform if the floor leaves
    nothing)."""
    k = len(probabilities)
    if k == 0:
        return probabilities
    if floor * k >= 1.0:
        return np.full(k, 1.0 / k)
    total = float(probabilities.sum())
    base = probabilities / total if total > 0 else np.full(k, 1.0 / k)
    return np.asarray(floor + (1.0 - floor * k) * base)


def best_arm_from_cdfs(cdf: FloatArray) -> FloatArray:
    """Each arm's probability of the largest draw, from every arm's CDF on one grid (K x G+1)
    covering all their mass: ``P(k best) = integral of dF_k(x) prod_{j != k} F_j(x)``, summed
    over the grid's cells with the other arms' CDFs at each cell's middle. Deterministic: the
    same posterior always gives the same probabilities."""
    d_cdf = np.diff(cdf, axis=1)
    middle = np.maximum((cdf[:, 1:] + cdf[:, :-1]) / 2.0, 1e-300)
    log_middle = np.log(middle)
    others = np.exp(log_middle.sum(axis=0, keepdims=True) - log_middle)
    p = np.maximum((d_cdf * others).sum(axis=1), 0.0)
    total = float(p.sum())
    return np.asarray(p / total) if total > 0 else np.full(len(p), 1.0 / len(p))


def best_beta(alpha: FloatArray, beta: FloatArray, grid: int = GRID) -> FloatArray:
    """P(each Beta(alpha_k, beta_k) draw is the largest), by numerical integration."""
    total = alpha + beta
    mean = alpha / total
    sd = np.sqrt(alpha * beta / (total * total * (total + 1.0)))
    lo = max(0.0, float(np.min(mean - 12.0 * sd)))
    hi = min(1.0, float(np.max(mean + 12.0 * sd)))
    x = np.linspace(lo, hi, grid + 1)
    x[0], x[-1] = (0.0 if lo <= 0 else lo), (1.0 if hi >= 1 else hi)
    cdf = betainc(alpha[:, None], beta[:, None], x[None, :])
    return best_arm_from_cdfs(np.asarray(cdf, dtype=np.float64))


def best_normal(mean: FloatArray, sd: FloatArray, grid: int = GRID) -> FloatArray:
    """P(each N(mean_k, sd_k^2) draw is the largest), by numerical integration."""
    sd = np.maximum(sd, 1e-9)
    lo = float(np.min(mean - 10.0 * sd))
    hi = float(np.max(mean + 10.0 * sd))
    x = np.linspace(lo, hi, grid + 1)
    cdf = ndtr((x[None, :] - mean[:, None]) / sd[:, None])
    return best_arm_from_cdfs(np.asarray(cdf, dtype=np.float64))


def best_arm_probabilities(draws: FloatArray) -> FloatArray:
    """(samples, arms) posterior draws -> how often each arm is the best (ties split)."""
    samples, _k = draws.shape
    best = draws.max(axis=1, keepdims=True)
    winners = draws >= best
    counts = (winners / winners.sum(axis=1, keepdims=True)).sum(axis=0)
    return np.asarray(counts / samples)


@dataclass(slots=True)
class BetaArms:
    """Counts per arm (variant id -> [trials, successes])."""

    counts: dict[str, list[float]] = field(default_factory=dict)

    def arm(self, arm: str) -> list[float]:
        return self.counts.setdefault(arm, [0.0, 0.0])

    def trial(self, arm: str) -> None:
        self.arm(arm)[0] += 1.0

    def success(self, arm: str) -> None:
        self.arm(arm)[1] += 1.0

    def trials(self, arms: Sequence[str]) -> list[float]:
        return [self.counts.get(a, [0.0, 0.0])[0] for a in arms]

    def probabilities(
        self, arms: Sequence[str], prior_alpha: float, prior_beta: float, grid: int = GRID
    ) -> FloatArray:
        counts = np.array([self.counts.get(a, [0.0, 0.0]) for a in arms], dtype=np.float64)
        trials, successes = counts[:, 0], counts[:, 1]
        alpha = prior_alpha + successes
        beta = prior_beta + np.maximum(trials - successes, 0.0)
        return best_beta(alpha, beta, grid)

    def to_record(self) -> dict[str, Any]:
        return {"counts": {a: list(c) for a, c in self.counts.items()}}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> BetaArms:
        return cls({str(a): [float(c[0]), float(c[1])] for a, c in record["counts"].items()})


@dataclass(slots=True)
class LinearArms:
    """Ridge statistics per arm: ``A`` (d x d) and ``b`` (d), and how many decisions."""

    dim: int
    ridge: float
    a: dict[str, FloatArray] = field(default_factory=dict)
    b: dict[str, FloatArray] = field(default_factory=dict)
    n: dict[str, float] = field(default_factory=dict)
    _inverse: dict[str, FloatArray] = field(default_factory=dict)

    def _ensure(self, arm: str) -> None:
        if arm not in self.a:
            self.a[arm] = self.ridge * np.eye(self.dim)
            self.b[arm] = np.zeros(self.dim)
            self.n[arm] = 0.0

    def trial(self, arm: str, x: FloatArray) -> None:
        self._ensure(arm)
        self.a[arm] = self.a[arm] + np.outer(x, x)
        self.n[arm] += 1.0
        self._inverse.pop(arm, None)

    def success(self, arm: str, x: FloatArray) -> None:
        self._ensure(arm)
        self.b[arm] = self.b[arm] + x

    def trials(self, arms: Sequence[str]) -> list[float]:
        return [self.n.get(a, 0.0) for a in arms]

    def inverse(self, arm: str) -> FloatArray:
        self._ensure(arm)
        cached = self._inverse.get(arm)
        if cached is not None:
            return cached
        inv: FloatArray = np.asarray(np.linalg.inv(self.a[arm]), dtype=np.float64)
        self._inverse[arm] = inv
        return inv

    def posterior(self, arms: Sequence[str], x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Mean and standard deviation of each arm's expected reward at ``x``."""
        inverses = np.stack([self.inverse(arm) for arm in arms])  # (K, d, d)
        mus = np.einsum("kij,kj->ki", inverses, np.stack([self.b[arm] for arm in arms]))
        means = mus @ x
        variances = np.einsum("i,kij,j->k", x, inverses, x)
        return np.asarray(means), np.sqrt(np.maximum(variances, 0.0))

    def probabilities(
        self, arms: Sequence[str], x: FloatArray, noise: float, grid: int = GRID
    ) -> FloatArray:
        means, sds = self.posterior(arms, x)
        return best_normal(means, noise * sds, grid)

    def to_record(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "ridge": self.ridge,
            "a": {k: v.tolist() for k, v in self.a.items()},
            "b": {k: v.tolist() for k, v in self.b.items()},
            "n": dict(self.n),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LinearArms:
        arms = cls(int(record["dim"]), float(record["ridge"]))
        arms.a = {k: np.asarray(v, dtype=np.float64) for k, v in record["a"].items()}
        arms.b = {k: np.asarray(v, dtype=np.float64) for k, v in record["b"].items()}
        arms.n = {k: float(v) for k, v in record["n"].items()}
        return arms


def _value_at(attributes: Mapping[str, Any], path: str) -> Any:
    value: Any = attributes
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def feature_vector(
    features: Sequence[str], profile: Mapping[str, Any], context: Mapping[str, Any]
) -> FloatArray:
    """``[1, f_1, ..., f_k]``: numbers and booleans as ``sign(v) log(1 + |v|)`` (counts and
    0-100 scores on one small scale), ``path=value`` as 1 when the attribute equals the value,
    anything missing or non-numeric as 0."""
    attributes = {"profile": profile, "context": context}
    out = [1.0]
    for spec in features:
        path, sep, expected = spec.partition("=")
        value = _value_at(attributes, path)
        if sep:
            out.append(1.0 if value is not None and str(value) == expected else 0.0)
        elif isinstance(value, bool):
            out.append(1.0 if value else 0.0)
        elif isinstance(value, int | float) and math.isfinite(value):
            out.append(math.copysign(math.log1p(abs(value)), value))
        else:
            out.append(0.0)
    return np.asarray(out, dtype=np.float64)
