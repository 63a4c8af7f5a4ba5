from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.cli_tables import fits, print_table
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.experiments.report_cli import print_report

ENV = {"LOOPWISE_WRITE_KEY": "w", "LOOPWISE_SERVER_KEY": "s", "LOOPWISE_ADMIN_KEY": "a"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace's recs-personalized experiment with 120 exposed visitors."""
    data = tmp_path_factory.mktemp("report") / "data"
    engine, _ = Engine.open(data, environ=ENV)
    try:
        for i in range(120):
            request = {"user": {"anonymous_id": f"v{i}"}, "slots": [{"slot": "recommended"}]}
            engine.decide(DecideRequest.model_validate(request))
        for i in range(0, 120, 7):
            order = {
                "anonymousId": f"v{i}",
                "event": "Order Completed",
                "properties": {"revenue": 30},
            }
            engine.ingest(parse_request(order, kind="track", received_at=engine.clock()))
    finally:
        engine.close()
    return data


def arm_keys(data: Path) -> list[str]:
    engine, _ = Engine.open(data, environ=ENV)
    try:
        return [arm["key"] for arm in engine.experiment_results("recs-personalized")["arms"]]
    finally:
        engine.close()


def test_report_at_80_columns_shows_every_arm_and_column_in_full(data_dir: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["experiments", "report", "recs-personalized", "--data-dir", str(data_dir)],
        env={**ENV, "COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "…" not in out
    assert all(len(line) <= 80 for line in out.splitlines() if not line.startswith("Verdict"))
    for arm in arm_keys(data_dir):
        assert f"arm: {arm}" in out
    for column in ("conversions", "95% CI", "chance to win", "always-valid CI", "p-value"):
        assert column in out


def test_report_on_a_wide_terminal_keeps_the_table(data_dir: Path) -> None:
    engine, _ = Engine.open(data_dir, environ=ENV)
    try:
        report = engine.experiment_results("recs-personalized")
    finally:
        engine.close()
    wide = Console(file=io.StringIO(), width=200)
    print_report(report, wide)
    out = wide.file.getvalue()  # type: ignore[attr-defined]
    assert "arm: control" not in out  # one row per arm, a header row above
    header = next(line for line in out.splitlines() if "chance to win" in line)
    assert "users" in header and "CUPED lift" in header


def test_experiments_list_at_80_columns(data_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["experiments", "list", "--data-dir", str(data_dir)], env={**ENV, "COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and "recs-personalized" in result.output


def test_a_table_that_fits_is_printed_as_a_table() -> None:
    table = Table("arm", "users")
    table.add_row("control", "10")
    console = Console(file=io.StringIO(), width=80)
    assert fits(table, console)
    print_table(table, console)
    assert "arm: control" not in console.file.getvalue()  # type: ignore[attr-defined]
    narrow = Console(file=io.StringIO(), width=12)
    assert not fits(table, narrow)
    print_table(table, narrow)
    assert narrow.file.getvalue().splitlines() == ["arm: control", "  users  10"]  # type: ignore[attr-defined]
