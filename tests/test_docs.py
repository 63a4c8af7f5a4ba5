"""The documentation pages render as written: every code block closes before the next heading."""

from __future__ import annotations

from pathlib import Path

import pytest

DOCS = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md"))


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_code_blocks_close_and_swallow_no_heading(page: Path) -> None:
    fence: int | None = None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else number
        elif fence is not None and line.startswith("## "):  # a heading, not a YAML comment
            pytest.fail(f"{page.name}:{number}: heading inside the code block from line {fence}")
    assert fence is None, f"{page.name}: the code block from line {fence} never closes"


def test_every_top_level_field_has_its_section() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "workspace.md").read_text("utf-8")
    for field in ("holdout", "training", "experiments", "segments", "slots", "saved_groups"):
        assert f"\n## `{field}`\n" in text, field
