"""``loopwise decide-batch`` in process: a run on a data directory, and its refusals."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml
from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.config import SAMPLE_WORKSPACE
from tests.channels.conftest import channel_document

runner = CliRunner()
ENV = {"LOOPWISE_WRITE_KEY": "w", "LOOPWISE_SERVER_KEY": "s", "LOOPWISE_ADMIN_KEY": "a"}


def workspace_file(tmp_path: Path) -> Path:
    document = channel_document()
    document["items"] = str(SAMPLE_WORKSPACE.parent / "items.jsonl")
    path = tmp_path / "loopwise.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_campaign_from_a_user_file(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("ann\nbob\n")
    out = tmp_path / "out.jsonl"
    args = [
        "decide-batch",
        "--slot",
        "newsletter",
        "--users",
        str(users),
        "--out",
        str(out),
        "--data-dir",
        str(tmp_path / "data"),
        "--workspace",
        str(workspace_file(tmp_path)),
    ]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    assert "Decided 0 of 2 people for slot newsletter (2 no_consent)" in result.output
    rows = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert [(r["user_id"], r["reason"]) for r in rows] == [
        ("ann", "no_consent"),
        ("bob", "no_consent"),
    ]


def test_refusals(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("ann\n")
    data = ["--data-dir", str(tmp_path / "data"), "--workspace", str(workspace_file(tmp_path))]
    both = runner.invoke(
        app,
        [
            "decide-batch",
            "--slot",
            "newsletter",
            "--segment",
            "buyer",
            "--users",
            str(users),
            "--out",
            str(tmp_path / "o.csv"),
            *data,
        ],
        env=ENV,
    )
    assert both.exit_code == 2 and "exactly one audience" in both.output
    suffix = runner.invoke(
        app,
        [
            "decide-batch",
            "--slot",
            "newsletter",
            "--users",
            str(users),
            "--out",
            str(tmp_path / "o.txt"),
            *data,
        ],
        env=ENV,
    )
    assert suffix.exit_code == 2 and "--out" in suffix.output
    slot = runner.invoke(
        app,
        [
            "decide-batch",
            "--slot",
            "nope",
            "--users",
            str(users),
            "--out",
            str(tmp_path / "o.csv"),
            *data,
        ],
        env=ENV,
    )
    assert slot.exit_code == 2 and "Unknown slot 'nope'" in slot.output
    assert not (tmp_path / "o.csv").exists()  # refused before any output
