"""Live changes and the workspace file: never lost, reported, reconciled by the CLI (issue 13
item 9), and the history printed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.config import SAMPLE_WORKSPACE
from loopwise.engine import Engine

runner = CliRunner()
NIGHT_OWLS = {"name": "Night owls", "condition": {"context.time.hour": {"$gte": 22}}}


def workspace_file(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    shutil.copy(SAMPLE_WORKSPACE, folder / "loopwise.yaml")
    shutil.copy(SAMPLE_WORKSPACE.parent / "items.jsonl", folder / "items.jsonl")
    return folder / "loopwise.yaml"


def live_change_then_file_change(tmp_path: Path) -> tuple[Path, Path]:
    data, path = tmp_path / "data", workspace_file(tmp_path)
    engine, _ = Engine.open(data, path, watch=False)
    engine.put_segment("night_owls", NIGHT_OWLS)
    engine.close()
    path.write_text(
        path.read_text().replace("name: Running fans", "name: Runners"), encoding="utf-8"
    )
    return data, path


def segment_names(engine: Engine) -> dict[str, str]:
    return {s["key"]: s["name"] for s in engine.workspace_document()["segments"]}


def test_a_changed_file_never_drops_live_changes_and_the_conflict_is_reported(
    tmp_path: Path,
) -> None:
    data, path = live_change_then_file_change(tmp_path)
    engine, _ = Engine.open(data, path, watch=False)
    try:
        conflict = engine.services.workspace.file_conflict
        assert conflict is not None
        assert "- segments[night_owls]" in conflict.changes
        assert '~ segments[running_fans].name: "Running fans" → "Runners"' in conflict.changes
        assert "loopwise workspace pull" in conflict.message()
        assert segment_names(engine)["night_owls"] == "Night owls"  # the live one is kept
    finally:
        engine.close()
    result = runner.invoke(
        app, ["workspace", "diff", "--data-dir", str(data), "--workspace", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert "- segments[night_owls]" in result.output


def test_pull_writes_the_live_workspace_to_the_file(tmp_path: Path) -> None:
    data, path = live_change_then_file_change(tmp_path)
    result = runner.invoke(
        app, ["workspace", "pull", "--data-dir", str(data), "--workspace", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert "night_owls" in path.read_text()
    assert "Runners" in (path.parent / "loopwise.yaml.bak").read_text()
    engine, _ = Engine.open(data, path, watch=False)
    try:
        assert engine.services.workspace.file_conflict is None
        assert segment_names(engine)["running_fans"] == "Running fans"
        assert "night_owls" in segment_names(engine)
    finally:
        engine.close()


def test_push_applies_the_file_over_the_live_workspace_in_the_history(tmp_path: Path) -> None:
    data, path = live_change_then_file_change(tmp_path)
    args = ["--data-dir", str(data), "--workspace", str(path)]
    result = runner.invoke(app, ["workspace", "push", *args, "-m", "the file wins"])
    assert result.exit_code == 0, result.output
    engine, _ = Engine.open(data, path, watch=False)
    try:
        assert engine.services.workspace.file_conflict is None
        assert segment_names(engine)["running_fans"] == "Runners"
        assert "night_owls" not in segment_names(engine)
    finally:
        engine.close()
    listed = runner.invoke(app, ["history", "--json", "--data-dir", str(data)])
    assert listed.exit_code == 0, listed.output
    history = json.loads(listed.output)
    assert [h["source"] for h in history] == ["push", "admin", "file"]
    assert history[0]["comment"] == "the file wins"
    assert "- segments[night_owls]" in history[0]["changes"]
    restored = runner.invoke(app, ["workspace", "restore", "2", *args])
    assert restored.exit_code == 0, restored.output
    text = runner.invoke(app, ["history", "--data-dir", str(data)]).output
    assert "revision 4" in text and "restored revision 2" in text


def test_a_changed_file_without_live_changes_is_applied_and_recorded(tmp_path: Path) -> None:
    data, path = tmp_path / "data", workspace_file(tmp_path)
    Engine.open(data, path, watch=False)[0].close()
    path.write_text(path.read_text().replace("name: Running fans", "name: Runners"))
    engine, _ = Engine.open(data, path, watch=False)
    try:
        assert engine.services.workspace.file_conflict is None
        assert segment_names(engine)["running_fans"] == "Runners"
        latest = engine.storage.workspace_history.latest()
        assert latest is not None and latest.revision == 2 and latest.source == "file"
    finally:
        engine.close()
    again, _ = Engine.open(data, path, watch=False)  # no new revision on an unchanged restart
    try:
        assert again.services.workspace.revision == 2
    finally:
        again.close()
