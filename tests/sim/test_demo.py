from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.errors import ConfigError
from loopwise.sim.demo import EXPERIMENT, DemoConfig, arm_of, run_demo, training_days


def test_arm_of_reads_the_experiment_reason() -> None:
    response = {
        "slots": [
            {"reasons": [{"kind": "rule", "ref": "x"}]},
            {"reasons": [{"kind": "experiment", "ref": f"{EXPERIMENT}:personalized"}]},
        ]
    }
    assert arm_of(response, EXPERIMENT) == "personalized"
    assert arm_of({"slots": [{"reasons": []}]}, EXPERIMENT) == "not in experiment"


def test_training_days_start_after_day_one() -> None:
    assert training_days(DemoConfig(days=10, train_every_days=3)) == {0, 3, 6}
    assert training_days(DemoConfig(days=10, train_every_days=0)) == set()


def test_in_process_demo_measures_the_experiment_from_the_engine(tmp_path: Path) -> None:
    days_seen: list[int] = []
    result = run_demo(
        DemoConfig(days=2, users=150, in_process=True),
        tmp_path,
        on_day=lambda day, visits: days_seen.append(day),
    )
    assert days_seen == [0, 1] and len(result.daily) == 2
    arms = {arm["key"]: arm["users"] for arm in result.results["arms"]}
    assert set(arms) == {"control", "personalized"} and sum(arms.values()) > 0
    # the engine exposed exactly the people the simulator saw served by an arm (per person)
    truth = result.ground_truth
    assert set(truth) <= {"control", "personalized", "not in experiment"}
    assert truth["control"].sessions + truth["personalized"].sessions >= sum(arms.values())
    purchase = next(m for m in result.results["metrics"] if m["key"] == "purchase")
    assert {row["arm"] for row in purchase["results"]} == {"control", "personalized"}
    # the click metric counts the simulator's content clicks: people who clicked at least once
    click = next(m for m in result.results["metrics"] if m["key"] == "click")
    clickers = {row["arm"]: row["conversions"] for row in click["results"]}
    assert set(clickers) == {"control", "personalized"}
    clicks = sum(truth[arm].clicks for arm in ("control", "personalized"))
    assert 0 < sum(clickers.values()) <= clicks
    assert result.events > 0 and result.visits == sum(s.sessions for s in truth.values())
    # three slots a visit: the hero and trending may come from the pre-render cache (150
    # visitors over two days rarely share a key within its 15 minutes), the experiment's list
    # never does
    assert sum(result.cache.values()) == 3 * result.visits
    assert result.cache["live"] >= result.visits
    assert result.cache["hit"] > 0 and result.cache_hit_ratio < 2 / 3
    # the cart-abandonment journey's holdout is measured by the experiments engine
    journey_arms = {arm["key"]: arm["users"] for arm in result.journey["arms"]}
    assert set(journey_arms) == {"holdout", "journey"} and journey_arms["journey"] > 0


def test_demo_command_over_http_writes_the_report(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        app,
        ["demo", "--days", "1", "--users", "80", "--report", str(report)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "verdict:" in result.output and "visits" in result.output
    page = report.read_text()
    assert "Loopwise demo" in page and "Simulator ground truth" in page


def test_a_data_dir_with_an_engine_in_it_is_refused(tmp_path: Path) -> None:
    """The simulator's message ids are seeded: a second run into the same data directory would
    see its events dropped as duplicates and report a mix of both runs."""
    (tmp_path / "loopwise.db").write_bytes(b"")
    with pytest.raises(ConfigError) as raised:
        run_demo(DemoConfig(days=1, users=50, in_process=True), tmp_path)
    assert raised.value.field == "data_dir"
    result = CliRunner().invoke(
        app, ["demo", "--days", "1", "--users", "50", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "already holds" in result.output
    assert not (tmp_path / "loopwise.yaml").exists()


def test_the_http_demo_ignores_proxy_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's server is on 127.0.0.1: a proxy from the environment (as on many office
    machines) must not carry those calls (they failed with "the engine did not start")."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    result = run_demo(DemoConfig(days=1, users=50), tmp_path)
    assert result.mode == "HTTP" and result.visits > 0
