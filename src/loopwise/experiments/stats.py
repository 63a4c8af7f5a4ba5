r"""Experiment statistics from sufficient statistics, so reports never need per-user rows.

Every arm is summarised as ``SampleStats(n, sum, sum_sq)`` (users, Σy, Σy²); a conversion metric
is ``SampleStats.from_proportion(n, conversions)``. With ``μ = sum/n`` and the variance
``s² = (sum_sq - n·μ²)/(n - 1)`` (for a proportion ``s² = μ(1 - μ)``, as gbstats'
``ProportionStatistic``, so every figure matches GrowthBook's), control ``c`` and treatment ``t``:

Lift (``lift``)
    absolute ``Δ = μ_t - μ_c``,  ``se(Δ) = √(s_t²/n_t + s_c²/n_c)``;
    relative ``r = μ_t/μ_c - 1`` with the delta-method variance
    ``var(r) ≈ s_t²/(n_t μ_c²) + μ_t² s_c²/(n_c μ_c⁴)``.

Frequentist (``welch_test``) — as GrowthBook, the test is on the *relative* lift so the p-value and
the headline interval always agree: ``t = r / se(r)``, Welch-Satterthwaite degrees of freedom
``df = (a + b)² / (a²/(n_c - 1) + b²/(n_t - 1))`` with ``a = s_c²/n_c``, ``b = s_t²/n_t``;
two-sided ``p = 2·(1 - F_t(|t|; df))``; interval ``r ± F_t⁻¹(1 - alpha/2; df)·se(r)`` (and the same
for ``Δ``).

Bayesian (``bayesian``) — a Gaussian approximation on the relative lift (the delta method above,
chosen over a log-normal model so the flat-prior credible interval equals the z interval and one
standard error serves every method). Likelihood ``r ~ N(δ, se(r)²)``; prior flat or
``δ ~ N(m0, s0²)``. Posterior precision ``τ = 1/s0² + 1/se²``, mean ``μ = (m0/s0² + r/se²)/τ``,
sd ``s = τ^(-1/2)`` (flat: ``μ = r``, ``s = se``). Chance to win ``P(δ > 0) = Φ(μ/s)``; the risk of
shipping the treatment is its expected loss ``E[max(0, -δ)] = s·φ(μ/s) - μ·Φ(-μ/s)``, and of
keeping the control ``E[max(0, δ)] = s·φ(μ/s) + μ·Φ(μ/s)``.

Sequential (``sequential``) — the normal-mixture confidence sequence of Howard et al. (2021), as
GrowthBook's "sequential testing": with ``N = n_c + n_t``, per-observation scale ``s = se·√N``
and ``v = N·rho² + 1``, the interval ``estimate ± s·√(2v/(N²rho²) · ln(√v/alpha))`` covers the
truth at *every* N simultaneously with probability ≥ 1 - alpha, so results may be checked after
every batch. ``rho² = (-2 ln alpha + ln(-2 ln alpha + 1)) / tuning_n`` makes the sequence
tightest near ``N = tuning_n`` total users.

Sample-ratio mismatch (``srm``) — Pearson's χ² with ``k - 1`` df of observed users against
``total·w_i``; flagged when ``p < 0.001`` (strict, because it is checked continuously and a false
alarm stops an experiment).

CUPED (``cuped``) — each user's pre-exposure value ``x`` removes predictable variance from ``y``:
``y' = y - θ(x - x̄)`` with one ``θ = cov(x, y)/var(x)`` pooled within arms and ``x̄`` the mean of
``x`` over all arms (so every arm is shifted by the same reference and the expected lift is
unchanged). Its sums follow from ``(n, Σy, Σy², Σx, Σx², Σxy)``:
``Σy' = Σy - θ(Σx - n·x̄)``, ``Σy'² = Σy² - 2θ(Σxy - x̄Σy) + θ²(Σx² - 2x̄Σx + n·x̄²)``.

Ratio metrics (``ratio_stats``) — a metric ``Σy/Σx`` over users (revenue per view) is not a mean
of independent per-user values; the delta method linearises it: with per-user means ``μ_y``,
``μ_x``, sample (co)variances ``s_y², s_x², s_xy`` and ``R = μ_y/μ_x``,
``var(R) ≈ (s_y² - 2R·s_xy + R²·s_x²) / (n·μ_x²)``. It is returned as ``SampleStats`` with mean
``R`` and per-user variance ``n·var(R)``, so every test above applies unchanged.

Several arms (``compare_arms``) and segments (``segment_breakdown``) — each comparison as above,
p-values adjusted with Benjamini-Hochberg: ``p_(i)·m/i`` made monotone from the largest down.

Sample size (``sample_size``) — two proportions, two-sided, no continuity correction, per arm:
``n = (z_{1-a/2}·√(2p̄(1 - p̄)) + z_{power}·√(p₁(1 - p₁) + p₂(1 - p₂)))² / (p₂ - p₁)²``
with ``p₂ = p₁(1 + mde)``, ``p̄ = (p₁ + p₂)/2`` and ``a = alpha/(arms - 1)`` (Bonferroni over the
comparisons with the control). ``minimum_detectable_effect`` solves the same equation for mde.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

from loopwise.errors import ValidationFailed

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class SampleStats:
    """Sufficient statistics of one arm: users, Σy and Σy²; ``proportion`` when y is 0 or 1."""

    n: int
    sum: float
    sum_sq: float
    proportion: bool = False

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValidationFailed("A sample size cannot be negative.", field="n")

    @classmethod
    def from_proportion(cls, n: int, conversions: int) -> SampleStats:
        """A conversion metric: y is 0 or 1, so Σy² = Σy."""
        if n < 0 or conversions < 0 or conversions > n:
            raise ValidationFailed(
                f"Need 0 <= conversions <= users; got {conversions} conversions of {n} users.",
                field="conversions",
            )
        return cls(n, float(conversions), float(conversions), proportion=True)

    @classmethod
    def from_values(cls, values: npt.ArrayLike) -> SampleStats:
        array = np.asarray(values, dtype=float).ravel()
        return cls(int(array.size), float(array.sum()), float(np.square(array).sum()))

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Per-user variance: ``p(1 - p)`` for a proportion (the binomial variance, as gbstats),
        else the sample variance (ddof=1); 0 below two users. Clipped at 0 against rounding."""
        if self.n < 2:
            return 0.0
        if self.proportion:
            return self.mean * (1 - self.mean)
        return max((self.sum_sq - self.sum * self.sum / self.n) / (self.n - 1), 0.0)


@dataclass(frozen=True, slots=True)
class Lift:
    absolute: float
    relative: float
    absolute_se: float
    relative_se: float


@dataclass(frozen=True, slots=True)
class FrequentistResult:
    p_value: float
    ci_relative: Interval
    ci_absolute: Interval
    t: float
    df: float
    significant: bool


@dataclass(frozen=True, slots=True)
class BayesianResult:
    chance_to_win: float
    expected_loss: float
    """Risk of shipping the treatment: expected relative loss if it is in fact worse."""
    expected_loss_control: float
    """Risk of keeping the control: expected relative gain forgone if the treatment is better."""
    ci_relative: Interval
    posterior_mean: float
    posterior_sd: float


@dataclass(frozen=True, slots=True)
class SequentialResult:
    ci_relative: Interval
    ci_absolute: Interval
    significant: bool


@dataclass(frozen=True, slots=True)
class SrmResult:
    p_value: float
    chi2: float
    flagged: bool
    expected: tuple[float, ...]


def _check_arms(control: SampleStats, treatment: SampleStats) -> None:
    for name, arm in (("control", control), ("treatment", treatment)):
        if arm.n < 2:
            raise ValidationFailed(
                f"The {name} arm has {arm.n} users; at least 2 per arm are needed.", field=name
            )
    if control.mean == 0:
        raise ValidationFailed(
            "The control's mean is 0, so a relative lift is undefined; wait for conversions in "
            "the control arm.",
            field="control",
        )


def lift(control: SampleStats, treatment: SampleStats) -> Lift:
    """Absolute and relative lift of treatment over control with their standard errors."""
    _check_arms(control, treatment)
    mc, mt = control.mean, treatment.mean
    vc, vt = control.variance, treatment.variance
    abs_se = math.sqrt(vc / control.n + vt / treatment.n)
    rel_var = vt / (treatment.n * mc**2) + mt**2 * vc / (control.n * mc**4)
    return Lift(mt - mc, mt / mc - 1, abs_se, math.sqrt(rel_var))


def _welch_df(control: SampleStats, treatment: SampleStats) -> float:
    a = control.variance / control.n
    b = treatment.variance / treatment.n
    denominator = a * a / (control.n - 1) + b * b / (treatment.n - 1)
    return (a + b) ** 2 / denominator if denominator > 0 else float(control.n + treatment.n - 2)


def _interval(point: float, half_width: float) -> Interval:
    return (point - half_width, point + half_width)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValidationFailed(f"alpha must be between 0 and 1 (got {alpha}).", field="alpha")


def welch_test(
    control: SampleStats, treatment: SampleStats, alpha: float = 0.05
) -> FrequentistResult:
    """Two-sided Welch t-test on the relative lift (see the module docstring)."""
    _check_alpha(alpha)
    result = lift(control, treatment)
    df = _welch_df(control, treatment)
    if result.relative_se > 0:
        t = result.relative / result.relative_se
        p_value = float(2 * stats.t.sf(abs(t), df))
    else:  # no variance at all: any difference is certain, none is no evidence
        t = 0.0 if result.relative == 0 else math.copysign(math.inf, result.relative)
        p_value = 1.0 if result.relative == 0 else 0.0
    quantile = float(stats.t.ppf(1 - alpha / 2, df))
    return FrequentistResult(
        p_value=p_value,
        ci_relative=_interval(result.relative, quantile * result.relative_se),
        ci_absolute=_interval(result.absolute, quantile * result.absolute_se),
        t=t,
        df=df,
        significant=p_value < alpha,
    )


def bayesian(
    control: SampleStats,
    treatment: SampleStats,
    prior: Literal["flat", "normal"] = "flat",
    prior_mean: float = 0.0,
    prior_sd: float = 0.3,
    alpha: float = 0.05,
) -> BayesianResult:
    """Posterior of the relative lift, chance to win and expected loss (module docstring)."""
    _check_alpha(alpha)
    result = lift(control, treatment)
    se = result.relative_se
    if prior == "normal":
        if prior_sd <= 0:
            raise ValidationFailed("prior_sd must be positive.", field="prior_sd")
        if se == 0:
            mean, sd = result.relative, 0.0
        else:
            precision = 1 / prior_sd**2 + 1 / se**2
            mean = (prior_mean / prior_sd**2 + result.relative / se**2) / precision
            sd = math.sqrt(1 / precision)
    elif prior == "flat":
        mean, sd = result.relative, se
    else:
        raise ValidationFailed(f"Unknown prior {prior!r}; use 'flat' or 'normal'.", field="prior")
    if sd == 0:
        win = 1.0 if mean > 0 else 0.0 if mean < 0 else 0.5
        loss_treatment, loss_control = max(-mean, 0.0), max(mean, 0.0)
    else:
        z = mean / sd
        win = float(stats.norm.cdf(z))
        density = float(stats.norm.pdf(z))
        loss_treatment = sd * density - mean * float(stats.norm.cdf(-z))
        loss_control = sd * density + mean * win
    half = float(stats.norm.ppf(1 - alpha / 2)) * sd
    return BayesianResult(
        chance_to_win=win,
        expected_loss=loss_treatment,
        expected_loss_control=loss_control,
        ci_relative=_interval(mean, half),
        posterior_mean=mean,
        posterior_sd=sd,
    )


def sequential_half_width(se: float, total_n: int, alpha: float, tuning_n: float) -> float:
    """Half-width of the normal-mixture confidence sequence for an estimate with std error
    ``se`` after ``total_n`` users (module docstring)."""
    _check_alpha(alpha)
    if tuning_n <= 0:
        raise ValidationFailed("tuning_n must be positive.", field="tuning_n")
    rho_sq = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning_n
    n = float(total_n)
    sigma = se * math.sqrt(n)
    scale = 2 * (n * rho_sq + 1) / (n * n * rho_sq) * math.log(math.sqrt(n * rho_sq + 1) / alpha)
    return sigma * math.sqrt(scale)


def sequential(
    control: SampleStats,
    treatment: SampleStats,
    alpha: float = 0.05,
    tuning_n: float = 5000,
) -> SequentialResult:
    """Always-valid intervals: safe to look at after every batch of traffic."""
    result = lift(control, treatment)
    total = control.n + treatment.n
    rel_half = sequential_half_width(result.relative_se, total, alpha, tuning_n)
    abs_half = sequential_half_width(result.absolute_se, total, alpha, tuning_n)
    ci_relative = _interval(result.relative, rel_half)
    return SequentialResult(
        ci_relative=ci_relative,
        ci_absolute=_interval(result.absolute, abs_half),
        significant=ci_relative[0] > 0 or ci_relative[1] < 0,
    )


def srm(observed: Sequence[int], weights: Sequence[float], threshold: float = 0.001) -> SrmResult:
    """χ² test that users split across arms as the weights say (module docstring)."""
    if len(observed) < 2:
        raise ValidationFailed("Give the user count of at least two arms.", field="observed")
    if len(weights) != len(observed):
        raise ValidationFailed(
            f"Got {len(observed)} user counts but {len(weights)} weights; give one weight per arm.",
            field="weights",
        )
    if any(count < 0 for count in observed) or sum(observed) == 0:
        raise ValidationFailed("User counts must be >= 0 and not all zero.", field="observed")
    if any(w <= 0 for w in weights):
        raise ValidationFailed("Every weight must be positive.", field="weights")
    total_weight = float(sum(weights))
    total = float(sum(observed))
    expected = [total * w / total_weight for w in weights]
    chi2, p_value = stats.chisquare(np.asarray(observed, dtype=float), np.asarray(expected))
    p = float(p_value)
    return SrmResult(p, float(chi2), p < threshold, tuple(expected))


# --- CUPED --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CupedInput:
    """Per-arm sums of each user's metric ``y`` and pre-exposure covariate ``x``."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float

    @classmethod
    def from_values(cls, y: npt.ArrayLike, x: npt.ArrayLike) -> CupedInput:
        ya = np.asarray(y, dtype=float).ravel()
        xa = np.asarray(x, dtype=float).ravel()
        if ya.shape != xa.shape:
            raise ValidationFailed("y and x need one value per user each.", field="x")
        return cls(
            int(ya.size),
            float(ya.sum()),
            float(np.square(ya).sum()),
            float(xa.sum()),
            float(np.square(xa).sum()),
            float((xa * ya).sum()),
        )


@dataclass(frozen=True, slots=True)
class CupedResult:
    theta: float
    arms: tuple[SampleStats, ...]
    """Adjusted statistics, one per input arm, ready for ``lift``/``welch_test``/..."""


def cuped(arms: Sequence[CupedInput]) -> CupedResult:
    """Variance-reduced ``SampleStats`` per arm (module docstring); ``θ`` pooled within arms."""
    if not arms or any(arm.n < 2 for arm in arms):
        raise ValidationFailed("CUPED needs at least 2 users in every arm.", field="arms")
    dof = sum(arm.n for arm in arms) - len(arms)
    cov = sum(a.sum_xy - a.sum_x * a.sum_y / a.n for a in arms) / dof
    var_x = sum(a.sum_x2 - a.sum_x * a.sum_x / a.n for a in arms) / dof
    theta = cov / var_x if var_x > 0 else 0.0
    x_bar = sum(a.sum_x for a in arms) / sum(a.n for a in arms)
    adjusted = tuple(
        SampleStats(
            a.n,
            a.sum_y - theta * (a.sum_x - a.n * x_bar),
            a.sum_y2
            - 2 * theta * (a.sum_xy - x_bar * a.sum_y)
            + theta**2 * (a.sum_x2 - 2 * x_bar * a.sum_x + a.n * x_bar**2),
        )
        for a in arms
    )
    return CupedResult(theta, adjusted)


# --- Ratio metrics -----------------------------------------------------------------------------


def ratio_stats(
    n: int, sum_y: float, sum_y2: float, sum_x: float, sum_x2: float, sum_xy: float
) -> SampleStats:
    """``Σy/Σx`` as ``SampleStats`` with the delta-method variance (module docstring)."""
    if n < 2 or sum_x == 0:
        raise ValidationFailed(
            f"A ratio needs at least 2 users and a non-zero denominator (got {n} users, "
            f"denominator {sum_x:g}).",
            field="denominator",
        )
    mean_y, mean_x = sum_y / n, sum_x / n
    var_y = (sum_y2 - n * mean_y**2) / (n - 1)
    var_x = (sum_x2 - n * mean_x**2) / (n - 1)
    cov = (sum_xy - n * mean_x * mean_y) / (n - 1)
    ratio = mean_y / mean_x
    per_user = max((var_y - 2 * ratio * cov + ratio**2 * var_x) / mean_x**2, 0.0)
    return SampleStats(n, n * ratio, (n - 1) * per_user + n * ratio**2)


# --- Several comparisons ------------------------------------------------------------------------


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (compare each with alpha to control the false discovery
    rate across segments, arms or metrics)."""
    if not p_values:
        return []
    adjusted = stats.false_discovery_control(np.asarray(p_values, dtype=float), method="bh")
    return [float(p) for p in adjusted]


@dataclass(frozen=True, slots=True)
class ArmComparison:
    arm_index: int
    lift: Lift
    frequentist: FrequentistResult
    bayesian: BayesianResult
    sequential: SequentialResult
    adjusted_p_value: float
    """Benjamini-Hochberg across the compared arms; ``significant`` uses it."""
    significant: bool


def compare_arms(
    arms: Sequence[SampleStats],
    control_index: int = 0,
    alpha: float = 0.05,
    tuning_n: float = 5000,
) -> list[ArmComparison]:
    """Every non-control arm against the control, with BH-adjusted p-values."""
    if len(arms) < 2:
        raise ValidationFailed("Compare at least two arms.", field="arms")
    if not 0 <= control_index < len(arms):
        raise ValidationFailed(
            f"control_index {control_index} is not an arm; use 0..{len(arms) - 1}.",
            field="control_index",
        )
    control = arms[control_index]
    others = [i for i in range(len(arms)) if i != control_index]
    tests = [welch_test(control, arms[i], alpha) for i in others]
    adjusted = benjamini_hochberg([t.p_value for t in tests])
    return [
        ArmComparison(
            arm_index=i,
            lift=lift(control, arms[i]),
            frequentist=test,
            bayesian=bayesian(control, arms[i], alpha=alpha),
            sequential=sequential(control, arms[i], alpha, tuning_n),
            adjusted_p_value=p_adj,
            significant=p_adj < alpha,
        )
        for i, test, p_adj in zip(others, tests, adjusted, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class SegmentResult:
    segment: str
    lift: Lift
    frequentist: FrequentistResult
    adjusted_p_value: float
    significant: bool


def segment_breakdown(
    segments: Mapping[str, tuple[SampleStats, SampleStats]], alpha: float = 0.05
) -> list[SegmentResult]:
    """Per-segment (control, treatment) results, BH-adjusted so that slicing into many segments
    does not manufacture winners. Segments too small to test are left out."""
    usable = {
        key: pair
        for key, pair in segments.items()
        if pair[0].n >= 2 and pair[1].n >= 2 and pair[0].mean != 0
    }
    tests = {key: welch_test(c, t, alpha) for key, (c, t) in usable.items()}
    adjusted = benjamini_hochberg([test.p_value for test in tests.values()])
    return [
        SegmentResult(key, lift(*usable[key]), test, p_adj, p_adj < alpha)
        for (key, test), p_adj in zip(tests.items(), adjusted, strict=True)
    ]


# --- Planning -----------------------------------------------------------------------------------


def _check_plan(baseline_rate: float, alpha: float, power: float, arms: int) -> None:
    if not 0 < baseline_rate < 1:
        raise ValidationFailed(
            f"The baseline rate must be between 0 and 1, e.g. 0.05 for 5% (got {baseline_rate}).",
            field="baseline",
        )
    _check_alpha(alpha)
    if not 0 < power < 1:
        raise ValidationFailed(f"power must be between 0 and 1 (got {power}).", field="power")
    if arms < 2:
        raise ValidationFailed("An experiment needs at least 2 arms.", field="arms")


def _n_required(p1: float, mde: float, alpha: float, power: float, arms: int) -> float:
    p2 = p1 * (1 + mde)
    p_bar = (p1 + p2) / 2
    z_alpha = float(stats.norm.ppf(1 - alpha / (arms - 1) / 2))
    z_beta = float(stats.norm.ppf(power))
    root = z_alpha * math.sqrt(2 * p_bar * (1 - p_bar)) + z_beta * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return root**2 / (p2 - p1) ** 2


def sample_size(
    baseline_rate: float,
    mde_relative: float,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int = 2,
) -> int:
    """Users needed per arm to detect a relative change of ``mde_relative`` (module docstring)."""
    _check_plan(baseline_rate, alpha, power, arms)
    if mde_relative == 0 or mde_relative <= -1 or baseline_rate * (1 + mde_relative) >= 1:
        raise ValidationFailed(
            "The minimum detectable effect must be non-zero and keep the rate inside (0, 1), "
            f"e.g. 0.1 for a 10% relative lift (got {mde_relative}).",
            field="mde",
        )
    return math.ceil(_n_required(baseline_rate, mde_relative, alpha, power, arms))


def minimum_detectable_effect(
    baseline_rate: float,
    n_per_arm: int,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int = 2,
) -> float:
    """Smallest positive relative lift detectable with ``n_per_arm`` users per arm."""
    _check_plan(baseline_rate, alpha, power, arms)
    if n_per_arm < 2:
        raise ValidationFailed("Give at least 2 users per arm.", field="n_per_arm")
    upper = (1 - baseline_rate) / baseline_rate * (1 - 1e-9)
    if _n_required(baseline_rate, upper, alpha, power, arms) > n_per_arm:
        return math.inf
    return float(
        optimize.brentq(
            lambda mde: _n_required(baseline_rate, mde, alpha, power, arms) - n_per_arm,
            1e-9,
            upper,
            xtol=1e-12,
        )
    )
