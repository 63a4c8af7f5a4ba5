from __future__ import annotations

import json

import pytest

from loopwise.errors import ValidationFailed
from loopwise.experiments.calculator import (
    format_percent,
    parse_float_list,
    parse_fraction,
    parse_int_list,
    proportions_report,
    sample_size_report,
    srm_report,
)
from loopwise.experiments.stats import sample_size


def test_parse_fraction() -> None:
    assert parse_fraction("10000/500", "--control") == (10_000, 500)
    assert parse_fraction(" 10,000 / 500 ", "--control") == (10_000, 500)
    assert parse_fraction("10_000/0", "--control") == (10_000, 0)


@pytest.mark.parametrize("text", ["10000", "10000/abc", "-5/1", "0.5/1", "", "500/10000", "1/0"])
def test_parse_fraction_errors_name_the_option(text: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_fraction(text, "--control")
    assert info.value.field == "--control"
    assert "10000/500" in info.value.detail or "users" in info.value.detail


def test_parse_lists() -> None:
    assert parse_int_list("10000, 10600", "--users") == [10_000, 10_600]
    assert parse_float_list("0.5,0.5", "--weights") == [0.5, 0.5]
    for bad in ("10000", "10000,x", "1,-2"):
        with pytest.raises(ValidationFailed) as info:
            parse_int_list(bad, "--users")
        assert info.value.field == "--users"
    for bad in ("0.5,a", "0.5,0", "nan,1"):
        with pytest.raises(ValidationFailed) as info:
            parse_float_list(bad, "--weights")
        assert info.value.field == "--weights"


def test_format_percent() -> None:
    assert format_percent(0.12) == "12"
    assert format_percent(0.0312) == "3.1"
    assert format_percent(0.03) == "3"
    assert format_percent(-0.0115) == "-1.1"
    assert format_percent(-0.0001) == "0"
    assert format_percent(0.2099) == "21"


def test_proportions_report_worked_example() -> None:
    report = proportions_report((10_000, 500), (10_000, 560))
    assert report["control"] == {"users": 10_000, "conversions": 500, "rate": 0.05}
    assert report["treatment"]["rate"] == 0.056
    assert report["relative_lift"] == pytest.approx(0.12)
    assert report["absolute_lift"] == pytest.approx(0.006)
    assert report["p_value"] == pytest.approx(0.0736, abs=5e-4)
    assert report["significant"] is False
    assert report["chance_to_win"] == pytest.approx(0.9632, abs=1e-4)
    assert report["risk"]["treatment"] == pytest.approx(0.000984, abs=2e-6)
    lo, hi = report["ci_relative"]
    assert lo < 0 < hi
    seq_lo, seq_hi = report["sequential"]["ci_relative"]
    assert seq_lo < lo and seq_hi > hi
    assert report["users_needed_per_arm"] == sample_size(0.05, 0.12) == 21_885
    assert report["verdict"] == (
        "No significant difference yet (B vs A +12%, 95% CI -1.1% to +25%, p = 0.0736); "
        "about 11,885 more users per arm needed to detect a 12% lift"
    )
    json.dumps(report)  # JSON-ready


def test_proportions_report_winner_and_loser() -> None:
    win = proportions_report((10_000, 500), (10_000, 600))
    assert win["significant"]
    assert win["verdict"].startswith("B beats A by 20% (95% CI 6.2\u201334%)")
    lose = proportions_report((10_000, 600), (10_000, 500))
    assert lose["significant"]
    assert lose["verdict"].startswith("B is worse than A by 17%")


def test_proportions_report_alpha_changes_confidence() -> None:
    report = proportions_report((10_000, 500), (10_000, 560), alpha=0.1)
    assert report["significant"]  # p = 0.074 < 0.1
    assert "90% CI" in report["verdict"]


def test_proportions_report_identical_rates() -> None:
    report = proportions_report((1000, 50), (1000, 50))
    assert report["users_needed_per_arm"] is None
    assert "identical" in report["verdict"]


def test_proportions_report_errors() -> None:
    with pytest.raises(ValidationFailed) as info:
        proportions_report((1000, 0), (1000, 5))
    assert info.value.field == "--control"
    with pytest.raises(ValidationFailed) as info:
        proportions_report((1000, 10), (1000, 5), alpha=2)
    assert info.value.field == "--alpha"


def test_srm_report() -> None:
    report = srm_report([10_000, 10_600], [0.5, 0.5])
    assert report["flagged"]
    assert report["expected"] == [10_300.0, 10_300.0]
    assert report["p_value"] == pytest.approx(2.91e-5, rel=1e-2)
    assert report["verdict"].startswith("Sample ratio mismatch (p = 2.9e-05 < 0.001)")
    ok = srm_report([1000, 2010], [1, 2])
    assert not ok["flagged"]
    assert ok["weights"] == pytest.approx([1 / 3, 2 / 3])
    with pytest.raises(ValidationFailed) as info:
        srm_report([1000, 1000], [0.5])
    assert info.value.field == "--weights"


def test_sample_size_report() -> None:
    report = sample_size_report(0.05, 0.12)
    assert report["users_per_arm"] == 21_885
    assert report["total_users"] == 43_770
    assert report["verdict"] == (
        "About 21,885 users per arm (43,770 in total) to detect a 12% lift from a 5% baseline "
        "with 80% power."
    )
    with pytest.raises(ValidationFailed) as info:
        sample_size_report(5, 0.1)
    assert info.value.field == "--baseline"
