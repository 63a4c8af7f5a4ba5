"""Workspace diffs read as entry changes."""

from __future__ import annotations

from loopwise.workspace.diff import diff_documents


def test_keyed_entries_are_matched_by_key() -> None:
    before = {
        "segments": [{"key": "a", "name": "A"}, {"key": "b", "name": "B"}],
        "slots": [{"key": "hero", "rules": [{"id": "r1", "priority": 5}]}],
    }
    after = {
        "segments": [{"key": "b", "name": "Bee"}, {"key": "c", "name": "C"}],
        "slots": [{"key": "hero", "rules": [{"id": "r1", "priority": 9}]}],
        "workspace": "w",
    }
    assert diff_documents(before, after) == [
        "- segments[a]",
        '~ segments[b].name: "B" → "Bee"',
        '+ segments[c]: {"key":"c","name":"C"}',
        "~ slots[hero].rules[r1].priority: 5 → 9",
        '+ workspace: "w"',
    ]


def test_reordering_is_one_line_and_equal_documents_none() -> None:
    before = {"rules": [{"id": "a"}, {"id": "b"}]}
    after = {"rules": [{"id": "b"}, {"id": "a"}]}
    assert diff_documents(before, after) == ["~ rules order: b, a"]
    assert diff_documents(after, after) == []
