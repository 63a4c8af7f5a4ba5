from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from loopwise.experiments.cli import stats_app

runner = CliRunner()


def test_proportions_table() -> None:
    result = runner.invoke(
        stats_app, ["proportions", "--control", "10000/500", "--treatment", "10000/560"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Relative lift" in out and "12%" in out
    assert "-1.1% to 25%" in out  # 95% CI
    assert "0.07359" in out  # p-value: gbstats gives 0.0735868
    assert "96.3%" in out  # chance to win
    assert "No significant difference yet" in out


def test_proportions_json() -> None:
    result = runner.invoke(
        stats_app,
        ["proportions", "--control", "10000/500", "--treatment", "10000/600", "--json"],
    )
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["relative_lift"] == pytest.approx(0.2)
    assert report["significant"] is True
    assert report["verdict"].startswith("B beats A by 20%")


def test_proportions_alpha_option() -> None:
    result = runner.invoke(
        stats_app,
        ["proportions", "--control", "10000/500", "--treatment", "10000/560", "--alpha", "0.1"],
    )
    assert result.exit_code == 0
    assert "90% CI" in result.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["proportions", "--control", "500/10000", "--treatment", "10000/560"], "--control"),
        (["proportions", "--control", "10000/500", "--treatment", "lots"], "--treatment"),
        (["srm", "--users", "10000,x"], "--users"),
        (["srm", "--users", "10000,10600", "--weights", "0.5"], "--weights"),
        (["sample-size", "--baseline", "5", "--mde", "0.1"], "--baseline"),
        (["sample-size", "--baseline", "0.05", "--mde", "0"], "--mde"),
    ],
)
def test_bad_input_exits_2_with_error_naming_option(args: list[str], option: str) -> None:
    result = runner.invoke(stats_app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "error:" in result.stderr
    assert f"(at {option})" in result.stderr


def test_srm_table_and_json() -> None:
    table = runner.invoke(stats_app, ["srm", "--users", "10000,10600", "--weights", "0.5,0.5"])
    assert table.exit_code == 0
    assert "10,300" in table.stdout
    assert "Sample ratio mismatch" in table.stdout
    as_json = runner.invoke(stats_app, ["srm", "--users", "10000,10050", "--json"])
    report = json.loads(as_json.stdout)
    assert report["flagged"] is False
    assert report["weights"] == [0.5, 0.5]  # equal split by default


def test_sample_size_command() -> None:
    result = runner.invoke(stats_app, ["sample-size", "--baseline", "0.05", "--mde", "0.12"])
    assert result.exit_code == 0
    assert "21,885" in result.stdout
    as_json = runner.invoke(
        stats_app,
        ["sample-size", "--baseline", "0.05", "--mde", "0.12", "--arms", "3", "--json"],
    )
    assert json.loads(as_json.stdout)["users_per_arm"] > 21_885


def test_missing_required_option_is_usage_error() -> None:
    result = runner.invoke(stats_app, ["proportions", "--control", "10000/500"])
    assert result.exit_code == 2
    assert "--treatment" in result.output
