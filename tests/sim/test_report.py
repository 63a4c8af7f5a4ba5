from __future__ import annotations

from typing import Any

from loopwise.sim.demo import DemoConfig, DemoResult
from loopwise.sim.report import lift_text, render_html, treatment_row
from loopwise.sim.runner import ArmSummary


def results(lift: float) -> dict[str, Any]:
    return {
        "experiment": "personalized-vs-popular",
        "control": "control",
        "arms": [{"key": "control", "users": 900}, {"key": "personalized", "users": 910}],
        "srm": {"p_value": 0.81, "flagged": False},
        "metrics": [
            {
                "key": "purchase",
                "kind": "conversion",
                "results": [
                    {"arm": "control", "users": 900, "value": 0.2, "conversions": 180},
                    {
                        "arm": "personalized",
                        "users": 910,
                        "value": 0.2 * (1 + lift),
                        "conversions": 200,
                        "lift": {"relative": lift, "ci_low": lift - 0.1, "ci_high": lift + 0.1},
                        "p_value": 0.012,
                        "chance_to_win": 0.99,
                    },
                ],
            }
        ],
        "verdict": "personalized beats control",
    }


def demo_result() -> DemoResult:
    truth = {"control": ArmSummary(sessions=10, conversions=2)}
    return DemoResult(
        config=DemoConfig(days=2, users=100),
        results=results(0.25),
        by_segment={"mobile": results(0.4), "desktop": results(0.1)},
        daily=[{"day": 1, "results": results(0.2)}, {"day": 2, "results": results(0.25)}],
        ground_truth=truth,
        visits=10,
        events=100,
        seconds=1.0,
        mode="in-process",
    )


def test_treatment_row_and_lift_text() -> None:
    row = treatment_row(results(0.25), "purchase")
    assert row is not None and row["arm"] == "personalized"
    assert lift_text(row) == "25.0% (95% CI 15.0% to 35.0%)"
    assert treatment_row(results(0.25), "revenue") is None


def test_report_has_both_plots_and_the_engines_numbers() -> None:
    page = render_html(demo_result())
    assert page.count("data:image/png;base64,") == 2  # conversion over time, lift per segment
    assert "personalized beats control" in page
    assert "25.0% (95% CI 15.0% to 35.0%)" in page
    assert "mobile" in page and "40.0%" in page
    assert "no mismatch" in page


def test_report_without_data_has_no_plots() -> None:
    empty = demo_result()
    empty.results, empty.by_segment, empty.daily = {}, {}, []
    page = render_html(empty)
    assert "data:image/png" not in page and "no verdict" in page
