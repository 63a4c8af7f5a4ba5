"""The workspace service: revisions, optimistic concurrency, restore, other processes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.decide.strategies import StrategyRegistry
from loopwise.errors import ConfigError
from loopwise.storage.sqlite import SqliteStorage
from loopwise.storage.stores import Storage
from loopwise.workspace.history import Author, StaleRevision
from loopwise.workspace.service import WorkspaceService
from tests.storage.conftest import T0

EDITOR = Author("ed@example.com", "console", "night owls")


def service(storage: Storage) -> WorkspaceService:
    workspace = load_workspace_file(SAMPLE_WORKSPACE)
    return WorkspaceService(storage, workspace, StrategyRegistry.default(), FixedClock(T0))


def segment(hour: int) -> dict[str, Any]:
    return {"name": "Night owls", "condition": {"context.time.hour": {"$gte": hour}}}


def test_every_change_is_a_revision_with_its_author_and_diff(storage: Storage) -> None:
    workspaces = service(storage)
    assert workspaces.revision == 1
    applied = workspaces.apply_entry("segments", "night_owls", segment(22), author=EDITOR)
    assert applied.revision == workspaces.revision == 2
    change = storage.workspace_history.get(2)
    assert change is not None
    assert (change.actor, change.source, change.comment) == (
        "ed@example.com",
        "console",
        "night owls",
    )
    assert change.diff[0].startswith("+ segments[night_owls]")
    assert change.document == workspaces.document()


def test_a_stale_revision_is_refused_with_what_changed(storage: Storage) -> None:
    workspaces = service(storage)
    workspaces.apply_entry("segments", "night_owls", segment(22), author=EDITOR, expected=1)
    with pytest.raises(StaleRevision) as raised:
        workspaces.apply_entry("segments", "early", segment(5), author=EDITOR, expected=1)
    problem = raised.value.to_problem()
    assert problem["status"] == 412
    assert problem["current_revision"] == 2
    assert problem["changes"][0].startswith("+ segments[night_owls]")
    assert "early" not in {s["key"] for s in workspaces.document()["segments"]}


def test_invalid_changes_apply_nothing_and_name_the_field(storage: Storage) -> None:
    workspaces = service(storage)
    with pytest.raises(ConfigError) as raised:
        workspaces.apply_entry(
            "segments",
            "bad",
            {"name": "Bad", "condition": {"profile.x": {"$in": 3}}},
            author=EDITOR,
        )
    assert raised.value.field is not None and raised.value.field.startswith("condition")
    assert workspaces.revision == 1 and storage.workspace_history.count() == 1


def test_restore_makes_an_old_document_live_as_a_new_revision(storage: Storage) -> None:
    workspaces = service(storage)
    original = workspaces.document()
    workspaces.apply_entry("segments", "night_owls", segment(22), author=EDITOR)
    workspaces.apply_entry("segments", "night_owls", None, author=EDITOR)
    workspaces.apply_entry("segments", "late", segment(23), author=EDITOR)
    applied = workspaces.restore(1, author=EDITOR.with_comment(""))
    assert applied.revision == 5
    assert workspaces.document() == original
    change = storage.workspace_history.get(5)
    assert change is not None and change.source == "restore"
    assert change.comment == "restored revision 1"
    assert change.diff == ("- segments[late]",)


def test_concurrent_edits_of_distinct_entries_all_survive(storage: Storage) -> None:
    workspaces = service(storage)
    threads = [
        threading.Thread(
            target=workspaces.apply_entry,
            args=("segments", f"s{i}", segment(i % 24)),
            kwargs={"author": EDITOR},
        )
        for i in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = {s["key"] for s in workspaces.document()["segments"]}
    assert {f"s{i}" for i in range(20)} <= keys
    assert workspaces.revision == 21


def test_two_processes_on_one_database_never_lose_an_edit(tmp_path: Path) -> None:
    """Two services on one SQLite file (two workers): each change is computed on the newest
    revision, whichever process made it."""
    first_storage = SqliteStorage(tmp_path / "db.sqlite")
    second_storage = SqliteStorage(tmp_path / "db.sqlite")
    try:
        first, second = service(first_storage), service(second_storage)
        first.apply_entry("segments", "from_first", segment(1), author=EDITOR)
        second.apply_entry("segments", "from_second", segment(2), author=EDITOR)  # not refreshed
        with pytest.raises(StaleRevision):
            first.apply_entry("segments", "late", segment(3), author=EDITOR, expected=2)
        keys = {s["key"] for s in first.document()["segments"]}
        assert {"from_first", "from_second"} <= keys
        assert first.revision == second.revision == 3
    finally:
        first_storage.close()
        second_storage.close()
