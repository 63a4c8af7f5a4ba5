"""``loopwise demo``'s printed summary and where it writes its report."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.sim.cli import print_result
from loopwise.sim.demo import DemoConfig, DemoResult


def test_a_run_without_exposures_prints_instead_of_crashing() -> None:
    """No user was exposed yet: the engine's sample-ratio p-value is null."""
    results = {"arms": [], "metrics": [], "srm": {"p_value": None, "flagged": False}}
    result = DemoResult(
        config=DemoConfig(days=1, users=50),
        results={
            **results,
            "verdict": "No exposures yet: no user has been served this experiment.",
        },
        by_segment={},
        daily=[],
        ground_truth={},
        visits=0,
        events=0,
        seconds=0.0,
        mode="in-process",
    )
    print_result(result)  # raised TypeError on f"{None:.4f}"


def test_the_report_goes_into_a_new_directory(tmp_path: Path) -> None:
    report = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(
        app,
        ["demo", "--in-process", "--days", "1", "--users", "50", "--report", str(report)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "Loopwise demo" in report.read_text()
