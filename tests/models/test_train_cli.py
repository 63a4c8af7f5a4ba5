"""``loopwise train`` and ``loopwise models list|rollback`` on a data directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from loopwise.catalog.importer import read_items
from loopwise.cli import app
from loopwise.engine import Engine
from tests.models.synthetic import SAMPLE_ITEMS, events_for, taste_messages, write_workspace

runner = CliRunner()
ENV = {"LOOPWISE_WRITE_KEY": "w", "LOOPWISE_SERVER_KEY": "s", "LOOPWISE_ADMIN_KEY": "a"}
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def fill(data_dir: Path, workspace: Path, users: int) -> None:
    engine, _ = Engine.open(data_dir, workspace, environ=ENV)
    try:
        items = list(read_items(SAMPLE_ITEMS))
        if users:
            engine.ingest(events_for(taste_messages(items, T0, users=users), T0))
    finally:
        engine.close()


def test_train_prints_metrics_and_version_then_list_and_rollback(tmp_path: Path) -> None:
    workspace = write_workspace(tmp_path)
    data = tmp_path / "data"
    fill(data, workspace, users=30)
    args = ["--data-dir", str(data), "--workspace", str(workspace)]
    first = runner.invoke(app, ["train", *args], env=ENV)
    assert first.exit_code == 0, first.output
    assert "ndcg@10" in first.output and "hybrid" in first.output
    assert "v1-" in first.output and "is now current" in first.output

    second = runner.invoke(app, ["train", *args, "--json"], env=ENV)
    assert second.exit_code == 0, second.output
    metadata = json.loads(second.output)
    assert metadata["version"].startswith("v2-")
    assert metadata["data_window"]["users"] == 30
    assert metadata["event_weights"]["purchase"] == 5.0

    listed = runner.invoke(app, ["models", "list", "--data-dir", str(data), "--json"], env=ENV)
    listing = json.loads(listed.output)
    assert listing["current"] == metadata["version"] and len(listing["versions"]) == 2
    table = runner.invoke(app, ["models", "list", "--data-dir", str(data)], env=ENV)
    assert "v1-" in table.output and "v2-" in table.output

    back = runner.invoke(app, ["models", "rollback", "--data-dir", str(data)], env=ENV)
    assert back.exit_code == 0 and "v1-" in back.output
    again = runner.invoke(app, ["models", "rollback", "--data-dir", str(data)], env=ENV)
    assert again.exit_code == 2 and "nothing to roll back" in again.output

    engine, _ = Engine.open(data, workspace, environ=ENV)  # a restarted server serves v1
    try:
        assert engine.model_versions()["current"].startswith("v1-")
    finally:
        engine.close()


def test_train_refuses_too_little_data_with_a_clear_message(tmp_path: Path) -> None:
    workspace = write_workspace(tmp_path)
    data = tmp_path / "data"
    fill(data, workspace, users=1)
    result = runner.invoke(
        app, ["train", "--data-dir", str(data), "--workspace", str(workspace)], env=ENV
    )
    assert result.exit_code == 2
    assert "training needs at least 50" in result.output
    assert not (data / "models" / "current").exists()


def test_rollback_to_an_unloadable_version_fails_and_keeps_current(tmp_path: Path) -> None:
    workspace = write_workspace(tmp_path)
    data = tmp_path / "data"
    fill(data, workspace, users=30)
    args = ["--data-dir", str(data), "--workspace", str(workspace), "--json"]
    for _ in range(2):
        assert runner.invoke(app, ["train", *args], env=ENV).exit_code == 0
    first = next((data / "models").glob("v1-*"))
    (first / "models.pkl").write_bytes(b"truncated")
    current = (data / "models" / "current").read_text()
    back = runner.invoke(app, ["models", "rollback", "--data-dir", str(data)], env=ENV)
    assert back.exit_code == 2 and "cannot be loaded" in back.output
    assert (data / "models" / "current").read_text() == current
