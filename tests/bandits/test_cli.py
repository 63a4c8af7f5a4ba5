"""``loopwise bandits show|reset`` on a data directory; a reset survives the next start."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.clock import FixedClock
from loopwise.engine import Engine
from tests.bandits.conftest import T0, bandit_workspace, run_loop


def test_show_and_reset(tmp_path: Path) -> None:
    workspace_file = tmp_path / "loopwise.yaml"
    document = bandit_workspace().model_dump(mode="json", exclude_none=True)
    workspace_file.write_text(yaml.safe_dump(document))
    clock = FixedClock(T0)
    engine, _ = Engine.open(tmp_path / "data", workspace_file, clock=clock)
    run_loop(engine, clock, {"a": 0.1, "b": 0.5, "c": 0.1}, 80)
    engine.close()
    common = ["--data-dir", str(tmp_path / "data"), "--workspace", str(workspace_file)]
    runner = CliRunner()
    shown = runner.invoke(app, ["bandits", "show", "--json", *common])
    assert shown.exit_code == 0, shown.output
    (learner,) = json.loads(shown.output)["bandits"]
    assert sum(arm["decisions"] for arm in learner["arms"].values()) == 80
    table = runner.invoke(app, ["bandits", "show", *common])
    assert table.exit_code == 0 and "hero" in table.output
    reset = runner.invoke(app, ["bandits", "reset", "--yes", *common])
    assert reset.exit_code == 0, reset.output
    after = runner.invoke(app, ["bandits", "show", "--json", *common])
    assert json.loads(after.output)["bandits"] == []  # the old decisions no longer count
