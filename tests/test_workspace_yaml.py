from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.config import load_workspace_file
from loopwise.errors import ConfigError
from loopwise.workspace_yaml import MAX_VALUES, read_yaml

# The classic "billion laughs": 1 KB whose aliases stand for 9**9 (387 million) strings.
LAUGHS = "\n".join(
    [
        'lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]" for i in range(1, 9)),
    ]
)


def load(tmp_path: Path, content: str | bytes) -> ConfigError:
    path = tmp_path / "loopwise.yaml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(ConfigError) as info:
        load_workspace_file(path)
    assert info.value.detail.startswith(f"{path}:")
    return info.value


def test_billion_laughs_is_refused_without_expanding(tmp_path: Path) -> None:
    assert len(LAUGHS) < 1100
    error = load(tmp_path, LAUGHS)
    assert f"more than {MAX_VALUES:,} values through aliases" in error.detail
    assert error.extra["line"] is not None


def test_a_few_aliases_still_work() -> None:
    text = (
        'mobile: &mobile {"context.device.type": "mobile"}\n'
        "segments:\n"
        "  - {key: a, name: A, condition: *mobile}\n"
        "  - {key: b, name: B, condition: *mobile}\n"
    )
    document, lines = read_yaml("w.yaml", text.encode())
    assert document["segments"][1]["condition"] == {"context.device.type": "mobile"}
    assert lines[("segments", 1)] == 4


def test_binary_file(tmp_path: Path) -> None:
    error = load(tmp_path, b"workspace: x\n\xff\xfe\x00\x01binary")
    assert "not UTF-8 text (byte 13)" in error.detail
    assert error.extra["line"] == 2


def test_control_characters(tmp_path: Path) -> None:
    error = load(tmp_path, 'workspace: ok\nitems: "a\x00b"\n')
    assert ":2: not valid YAML: special characters are not allowed" in error.detail


def test_a_5000_digit_integer(tmp_path: Path) -> None:
    error = load(tmp_path, "profiles:\n  session_timeout_minutes: " + "9" * 5000 + "\n")
    assert ":2: a number with 5,000 characters" in error.detail


@pytest.mark.parametrize(
    ("text", "line", "first"),
    [
        ("workspace: a\nbuiltin_segments: true\nworkspace: b\n", 3, 1),
        ("segments:\n  - key: a\n    name: A\n    key: b\n    condition: {}\n", 4, 2),
        ('segments: [{key: a, name: A, condition: {"x": 1, "x": 2}}]\n', 1, 1),
    ],
)
def test_duplicate_keys_are_refused(tmp_path: Path, text: str, line: int, first: int) -> None:
    error = load(tmp_path, text)
    assert f":{line}: key " in error.detail
    assert f"is given twice in this mapping (first on line {first})" in error.detail


def test_deep_nesting(tmp_path: Path) -> None:
    error = load(tmp_path, "a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert "nested too deeply" in error.detail


def test_a_value_its_constructor_refuses(tmp_path: Path) -> None:
    error = load(tmp_path, "workspace: !!timestamp 2024-99-99\n")
    assert "a value cannot be read (month must be in 1..12)" in error.detail


def test_check_prints_the_message_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS)
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert "values through aliases" in result.output
    assert "Traceback" not in result.output
