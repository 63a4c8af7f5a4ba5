"""The scores benchmark's section renders what it measured."""

from __future__ import annotations

from typing import Any

from benchmarks.bench_scores import markdown


def _result(added_cpu_ms: float) -> dict[str, Any]:
    overall = {
        "n": 1200, "base_rate": 0.25, "auc": 0.731, "pr_auc": 0.5, "brier": 0.16,
        "brier_base_rate": 0.1875, "ece": 0.021,
    }  # fmt: skip
    report = {
        "label": "purchase within 7 days",
        "overall": overall,
        "uncalibrated": {"ece": 0.08},
        "calibration_method": "isotonic",
        "segments": {"buyer": {**overall, "n": 300}},
    }
    return {
        "users": 100, "days": 20, "seed": 1, "events": 5000, "people": 90, "moments": 900,
        "examples_seconds": 1.0, "training_seconds": 2.0, "features": 56,
        "report": {"convert": report}, "skipped": {"churn": "too few"}, "trees": 80, "depth": 4,
        "profiles_scored": 90, "repeats": 3, "membership_ms": (0.05, 0.06),
        "membership_with_scores_ms": (0.05 + added_cpu_ms, 0.2), "update_ms": added_cpu_ms,
        "update_wall_ms": 0.14, "standalone_ms": (0.1, 0.3), "lightgbm_predict_ms": 1.5,
        "max_raw_difference": 1e-15,
    }  # fmt: skip


def test_markdown_reports_quality_and_the_budget_verdict() -> None:
    text = "\n".join(markdown(_result(0.04)))
    assert "| `convert` | purchase within 7 days | 1,200 | 0.250 | 0.731 |" in text
    assert "| `churn` | skipped: too few |" in text
    assert "| `convert` | buyer | 300 |" in text
    assert "**0.040**" in text and "within" in text
    assert "OVER" in "\n".join(markdown(_result(0.5)))
