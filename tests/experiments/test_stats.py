from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from loopwise.errors import ValidationFailed
from loopwise.experiments.stats import (
    CupedInput,
    SampleStats,
    bayesian,
    benjamini_hochberg,
    compare_arms,
    cuped,
    lift,
    minimum_detectable_effect,
    sample_size,
    segment_breakdown,
    sequential,
    sequential_half_width,
    srm,
    welch_test,
)

# The issue's worked example: control 10,000 users / 500 conversions, treatment 10,000 / 560.
CONTROL = SampleStats.from_proportion(10_000, 500)
TREATMENT = SampleStats.from_proportion(10_000, 560)
# By hand (the binomial variance p(1 - p), as gbstats): s_c² = 0.05·0.95 = 0.0475,
# s_t² = 0.056·0.944 = 0.052864.
VAR_C = 0.05 * 0.95
VAR_T = 0.056 * 0.944
# delta method: var(r) = s_t²/(n μ_c²) + μ_t² s_c²/(n μ_c⁴) = 0.00211456 + 0.00238336
REL_SE = 0.0670665


def test_sample_stats_helpers() -> None:
    values = np.array([1.0, 2.0, 4.0, 7.0])
    s = SampleStats.from_values(values)
    assert (s.n, s.sum, s.sum_sq) == (4, 14.0, 70.0)
    assert s.mean == 3.5
    assert s.variance == pytest.approx(np.var(values, ddof=1))
    assert CONTROL.mean == 0.05
    assert CONTROL.variance == pytest.approx(VAR_C)
    assert SampleStats(1, 3.0, 9.0).variance == 0.0
    with pytest.raises(ValidationFailed):
        SampleStats.from_proportion(10, 11)


def test_lift_worked_example() -> None:
    result = lift(CONTROL, TREATMENT)
    assert result.relative == pytest.approx(0.12)
    assert result.absolute == pytest.approx(0.006)
    assert result.absolute_se == pytest.approx(math.sqrt((VAR_C + VAR_T) / 10_000))
    assert result.relative_se == pytest.approx(REL_SE, rel=1e-5)
    assert result.relative_se**2 == pytest.approx(
        VAR_T / (10_000 * 0.05**2) + 0.056**2 * VAR_C / (10_000 * 0.05**4)
    )


def test_welch_worked_example() -> None:
    result = welch_test(CONTROL, TREATMENT)
    # t = 0.12 / 0.06707 = 1.7892; with ~19,941 df the t and normal tails agree to 1e-5
    assert result.t == pytest.approx(0.12 / REL_SE, rel=1e-5)
    assert result.p_value == pytest.approx(0.0736, abs=5e-4)
    assert not result.significant
    lo, hi = result.ci_relative
    assert lo == pytest.approx(0.12 - 1.96 * REL_SE, abs=1e-3)  # -0.0115
    assert hi == pytest.approx(0.12 + 1.96 * REL_SE, abs=1e-3)  # 0.2515
    # the interval contains 0 exactly when p >= alpha
    assert lo < 0 < hi


def test_welch_df_and_absolute_interval_match_scipy() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(10, 2, size=40)
    b = rng.normal(11, 5, size=25)
    result = welch_test(SampleStats.from_values(a), SampleStats.from_values(b), alpha=0.1)
    reference = sps.ttest_ind(b, a, equal_var=False)
    assert result.df == pytest.approx(reference.df)
    ci = reference.confidence_interval(0.9)
    assert result.ci_absolute == pytest.approx((ci.low, ci.high))


def test_welch_significant_when_lift_is_large() -> None:
    result = welch_test(CONTROL, SampleStats.from_proportion(10_000, 650))
    assert result.significant and result.p_value < 1e-4
    assert result.ci_relative[0] > 0


def test_welch_without_variance() -> None:
    same = SampleStats(10, 10.0, 10.0)  # everyone converted
    assert welch_test(same, same).p_value == 1.0
    assert welch_test(same, SampleStats(10, 20.0, 40.0)).p_value == 0.0


def test_bayesian_flat_prior_by_hand() -> None:
    result = bayesian(CONTROL, TREATMENT)
    z = 0.12 / REL_SE
    assert result.posterior_mean == pytest.approx(0.12)
    assert result.posterior_sd == pytest.approx(REL_SE, rel=1e-5)
    assert result.chance_to_win == pytest.approx(sps.norm.cdf(z), rel=1e-5)  # 0.9632
    assert result.chance_to_win == pytest.approx(0.9632, abs=1e-4)
    # se·φ(z) - μ·Φ(-z) = 0.06707·0.08044 - 0.12·0.03679
    assert result.expected_loss == pytest.approx(0.000984, abs=2e-6)
    assert result.expected_loss_control - result.expected_loss == pytest.approx(0.12)


def test_bayesian_expected_loss_matches_monte_carlo() -> None:
    result = bayesian(CONTROL, TREATMENT)
    draws = np.random.default_rng(1).normal(result.posterior_mean, result.posterior_sd, 2_000_000)
    assert result.expected_loss == pytest.approx(np.maximum(0, -draws).mean(), rel=0.02)
    assert result.expected_loss_control == pytest.approx(np.maximum(0, draws).mean(), rel=0.01)
    assert result.chance_to_win == pytest.approx((draws > 0).mean(), abs=1e-3)


def test_bayesian_normal_prior_shrinks_towards_prior_mean() -> None:
    result = bayesian(CONTROL, TREATMENT, prior="normal", prior_mean=0.0, prior_sd=0.3)
    precision = 1 / 0.3**2 + 1 / REL_SE**2
    assert result.posterior_sd == pytest.approx(math.sqrt(1 / precision), rel=1e-4)
    assert result.posterior_mean == pytest.approx((0.12 / REL_SE**2) / precision, rel=1e-4)
    assert result.posterior_mean < 0.12
    assert result.chance_to_win < bayesian(CONTROL, TREATMENT).chance_to_win
    with pytest.raises(ValidationFailed):
        bayesian(CONTROL, TREATMENT, prior="normal", prior_sd=0)


def test_sequential_half_width_by_hand() -> None:
    # N = 20,000, alpha = 0.05, tuning 5,000: rho² = (5.99146 + ln 6.99146)/5000 = 0.00158723,
    # v = N·rho² + 1 = 32.7446, half = se·√(2v/(N·rho²)·ln(√v/alpha)) = se·3.12712
    assert sequential_half_width(1.0, 20_000, 0.05, 5000) == pytest.approx(3.12712, rel=1e-5)
    result = sequential(CONTROL, TREATMENT)
    expected = (0.12 - 3.12712 * REL_SE, 0.12 + 3.12712 * REL_SE)
    assert result.ci_relative == pytest.approx(expected, abs=1e-5)
    assert not result.significant


def test_sequential_is_wider_than_fixed_horizon_and_narrows_with_data() -> None:
    fixed = welch_test(CONTROL, TREATMENT)
    seq = sequential(CONTROL, TREATMENT)
    assert seq.ci_relative[0] < fixed.ci_relative[0]
    assert seq.ci_relative[1] > fixed.ci_relative[1]
    widths = [
        sequential_half_width(1.0 / math.sqrt(n), n, 0.05, 5000) for n in (1000, 10_000, 100_000)
    ]
    assert widths[0] > widths[1] > widths[2]
    big = sequential(
        SampleStats.from_proportion(100_000, 5000), SampleStats.from_proportion(100_000, 5600)
    )
    assert big.significant and big.ci_relative[0] > 0


def test_srm_worked_example() -> None:
    result = srm([10_000, 10_600], [0.5, 0.5])
    # expected 10,300 each; χ² = 2 · 300²/10,300 = 17.4757, 1 df
    assert result.expected == (10_300.0, 10_300.0)
    assert result.chi2 == pytest.approx(2 * 300**2 / 10_300)
    assert result.p_value == pytest.approx(sps.chi2.sf(17.4757, 1), rel=1e-4)
    assert result.flagged


def test_srm_uneven_weights_and_no_mismatch() -> None:
    result = srm([2_000, 4_020, 3_980], [0.2, 0.4, 0.4])
    assert result.expected == pytest.approx((2000, 4000, 4000))
    assert result.chi2 == pytest.approx(0 + 400 / 4000 + 400 / 4000)
    assert not result.flagged
    assert srm([500, 500], [1, 1]).p_value == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("observed", "weights", "field"),
    [([10], [1.0], "observed"), ([10, 20], [0.5], "weights"), ([10, 20], [1, 0], "weights")],
)
def test_srm_rejects_bad_input(observed: list[int], weights: list[float], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        srm(observed, weights)
    assert info.value.field == field


def test_cuped_matches_per_user_adjustment() -> None:
    rng = np.random.default_rng(3)
    x_c, x_t = rng.gamma(2, 5, 3000), rng.gamma(2, 5, 2500)
    y_c = 0.8 * x_c + rng.normal(0, 3, 3000)
    y_t = 0.8 * x_t + 1.0 + rng.normal(0, 3, 2500)
    result = cuped([CupedInput.from_values(y_c, x_c), CupedInput.from_values(y_t, x_t)])
    # θ: pooled within-arm regression slope
    xc, xt = x_c - x_c.mean(), x_t - x_t.mean()
    yc, yt = y_c - y_c.mean(), y_t - y_t.mean()
    theta = (xc @ yc + xt @ yt) / (xc @ xc + xt @ xt)
    assert result.theta == pytest.approx(theta)
    x_bar = np.concatenate([x_c, x_t]).mean()
    for adjusted, y, x in zip(result.arms, (y_c, y_t), (x_c, x_t), strict=True):
        direct = SampleStats.from_values(y - theta * (x - x_bar))
        assert adjusted.n == direct.n
        assert adjusted.sum == pytest.approx(direct.sum)
        assert adjusted.sum_sq == pytest.approx(direct.sum_sq)
    raw_se = lift(SampleStats.from_values(y_c), SampleStats.from_values(y_t)).absolute_se
    assert lift(*result.arms).absolute_se < 0.5 * raw_se  # x explains most of y's variance


def test_cuped_without_signal_changes_nothing() -> None:
    arm = CupedInput(n=4, sum_y=10, sum_y2=30, sum_x=8, sum_x2=16, sum_xy=20)  # x constant (2)
    result = cuped([arm, arm])
    assert result.theta == 0.0
    assert result.arms[0] == SampleStats(4, 10, 30)


def test_benjamini_hochberg_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04, 0.5 → times 4/1, 4/2, 4/3, 4/4 = 0.04, 0.06, 0.0533, 0.5;
    # monotone from the top: 0.04, 0.0533, 0.0533, 0.5
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.5])
    assert adjusted == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert benjamini_hochberg([]) == []


@given(st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_benjamini_hochberg_properties(p_values: list[float]) -> None:
    adjusted = benjamini_hochberg(p_values)
    assert all(a >= p - 1e-12 and a <= 1 for a, p in zip(adjusted, p_values, strict=True))
    order = np.argsort(p_values, kind="stable")
    ranked = [adjusted[i] for i in order]
    assert ranked == sorted(ranked)


def test_compare_arms_several_arms() -> None:
    arms = [
        CONTROL,
        SampleStats.from_proportion(10_000, 505),
        SampleStats.from_proportion(10_000, 650),
    ]
    results = compare_arms(arms)
    assert [r.arm_index for r in results] == [1, 2]
    flat, winner = results
    assert not flat.significant and winner.significant
    assert winner.lift.relative == pytest.approx(0.3)
    assert all(r.adjusted_p_value >= r.frequentist.p_value for r in results)
    assert winner.bayesian.chance_to_win > 0.99
    against_arm2 = compare_arms(arms, control_index=2)
    assert [r.arm_index for r in against_arm2] == [0, 1]
    assert against_arm2[0].lift.relative < 0
    with pytest.raises(ValidationFailed):
        compare_arms(arms, control_index=3)


def test_segment_breakdown_corrects_for_many_segments() -> None:
    segments = {
        "mobile": (SampleStats.from_proportion(5000, 250), SampleStats.from_proportion(5000, 330)),
        "desktop": (SampleStats.from_proportion(5000, 250), SampleStats.from_proportion(5000, 262)),
        "tablet": (SampleStats.from_proportion(300, 15), SampleStats.from_proportion(300, 24)),
        "tiny": (SampleStats.from_proportion(1, 0), SampleStats.from_proportion(1, 1)),
    }
    results = {r.segment: r for r in segment_breakdown(segments)}
    assert set(results) == {"mobile", "desktop", "tablet"}
    raw = [results[k].frequentist.p_value for k in ("mobile", "desktop", "tablet")]
    assert [results[k].adjusted_p_value for k in ("mobile", "desktop", "tablet")] == (
        pytest.approx(benjamini_hochberg(raw))
    )
    assert results["mobile"].significant and not results["desktop"].significant


def test_sample_size_by_hand() -> None:
    # p1 = 0.05, p2 = 0.056, p̄ = 0.053: (1.959964·√(2·0.053·0.947) + 0.841621·√(0.0475 +
    # 0.052864))² / 0.006² = (0.620976 + 0.266630)² / 0.000036 = 21,884.6 → 21,885
    assert sample_size(0.05, 0.12) == 21_885
    assert sample_size(0.05, 0.12, arms=3) > 21_885  # Bonferroni over two comparisons
    assert sample_size(0.05, 0.2) < sample_size(0.05, 0.1)
    assert sample_size(0.05, -0.12) > 0


def test_minimum_detectable_effect_inverts_sample_size() -> None:
    assert minimum_detectable_effect(0.05, 21_885) == pytest.approx(0.12, abs=1e-4)
    mde = minimum_detectable_effect(0.1, 5000, alpha=0.01, power=0.9)
    assert sample_size(0.1, mde, alpha=0.01, power=0.9) == pytest.approx(5000, abs=1)
    assert minimum_detectable_effect(0.5, 2) == math.inf


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"baseline_rate": 0, "mde_relative": 0.1}, "baseline"),
        ({"baseline_rate": 1.5, "mde_relative": 0.1}, "baseline"),
        ({"baseline_rate": 0.05, "mde_relative": 0}, "mde"),
        ({"baseline_rate": 0.6, "mde_relative": 1}, "mde"),
        ({"baseline_rate": 0.05, "mde_relative": 0.1, "alpha": 1}, "alpha"),
        ({"baseline_rate": 0.05, "mde_relative": 0.1, "power": 0}, "power"),
        ({"baseline_rate": 0.05, "mde_relative": 0.1, "arms": 1}, "arms"),
    ],
)
def test_sample_size_rejects_bad_input(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        sample_size(**kwargs)
    assert info.value.field == field
    assert info.value.detail


def test_relative_lift_needs_control_conversions() -> None:
    with pytest.raises(ValidationFailed) as info:
        lift(SampleStats.from_proportion(100, 0), SampleStats.from_proportion(100, 3))
    assert info.value.field == "control"
    with pytest.raises(ValidationFailed):
        lift(SampleStats(1, 1, 1), TREATMENT)


# --- agreement with GrowthBook's gbstats, on gbstats' own published test cases -----------------


def test_the_issue_example_matches_gbstats() -> None:
    """10,000/500 vs 10,000/560: gbstats gives p = 0.0735868 and chance to win 0.963214."""
    frequentist = welch_test(CONTROL, TREATMENT)
    assert frequentist.p_value == pytest.approx(0.0735868, rel=1e-5)
    assert bayesian(CONTROL, TREATMENT).chance_to_win == pytest.approx(0.963214, rel=1e-5)


def test_binomial_t_test_matches_gbstats() -> None:
    """gbstats tests/frequentist/test_tests.py, test_two_sided_ttest_binom: 14/28 vs 16/30."""
    control, treatment = SampleStats.from_proportion(28, 14), SampleStats.from_proportion(30, 16)
    result = welch_test(control, treatment)
    assert lift(control, treatment).relative == pytest.approx(0.06667, abs=5e-6)
    assert lift(control, treatment).relative_se == pytest.approx(0.2717, abs=5e-5)
    assert result.ci_relative == pytest.approx((-0.47767, 0.61101), abs=5e-6)
    assert result.p_value == pytest.approx(0.80707, abs=5e-6)


def test_mean_t_test_matches_gbstats() -> None:
    """gbstats test_two_sided_ttest: means 0.41 (sd 3.9, n 3407) vs 0.7 (sd 6.2, n 3461), given
    as sums; relative and absolute results."""
    control = SampleStats(3407, 1396.87, 52377.9767)
    treatment = SampleStats(3461, 2422.7, 134698.29)
    result = welch_test(control, treatment)
    found = lift(control, treatment)
    assert found.relative == pytest.approx(0.70732, abs=5e-6)
    assert found.relative_se == pytest.approx(0.37879, abs=5e-6)
    assert result.ci_relative == pytest.approx((-0.03526, 1.44989), abs=5e-6)
    assert result.p_value == pytest.approx(0.06191, abs=5e-6)
    assert found.absolute_se == pytest.approx(0.12478, abs=5e-6)
    assert result.ci_absolute == pytest.approx((0.04538, 0.53462), abs=5e-6)


def test_bayesian_effect_test_matches_gbstats() -> None:
    """gbstats tests/bayesian/test_tests.py, EffectBayesianABTest with the default flat prior:
    49/100 vs 51/100."""
    result = bayesian(SampleStats.from_proportion(100, 49), SampleStats.from_proportion(100, 51))
    assert result.posterior_mean == pytest.approx(0.04082, abs=5e-6)
    assert result.posterior_sd == pytest.approx(0.14725, abs=5e-6)
    assert result.ci_relative == pytest.approx((-0.24779, 0.32943), abs=5e-6)
    assert result.chance_to_win == pytest.approx(0.60918, abs=5e-6)
    # gbstats' risk = [of keeping the control, of shipping the treatment]
    assert result.expected_loss_control == pytest.approx(0.0814, abs=5e-5)
    assert result.expected_loss == pytest.approx(0.04058, abs=5e-6)
