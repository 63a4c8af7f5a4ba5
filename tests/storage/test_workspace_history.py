"""The workspace history's contract, on every backend: revisions in order, no gaps, no
overwrites."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from loopwise.errors import Conflict
from loopwise.storage.records import WorkspaceChange
from tests.storage.conftest import T0


def change(revision: int, **fields: Any) -> WorkspaceChange:
    return WorkspaceChange(
        revision=revision,
        at=T0 + timedelta(minutes=revision),
        actor=fields.get("actor", "a@example.com"),
        source=fields.get("source", "console"),
        comment=fields.get("comment", f"change {revision}"),
        document={"workspace": "w", "segments": [{"key": f"s{revision}"}]},
        diff=(f"+ segments[0].key: s{revision}",),
    )


def test_append_latest_get_list(storage: Any) -> None:
    assert storage.workspace_history.latest() is None
    for revision in (1, 2, 3):
        storage.write(lambda uow, r=revision: uow.workspace_history.append(change(r)))
    history = storage.workspace_history
    assert history.latest() == change(3)
    assert history.get(2) == change(2)
    assert history.get(9) is None
    assert [c.revision for c in history.list()] == [3, 2, 1]
    assert [c.revision for c in history.list(limit=2)] == [3, 2]
    assert [c.revision for c in history.list(before=3)] == [2, 1]
    assert history.count() == 3


@pytest.mark.parametrize("revision", [1, 2, 4])
def test_only_the_next_revision_is_accepted(storage: Any, revision: int) -> None:
    storage.write(lambda uow: uow.workspace_history.append(change(1)))
    storage.write(lambda uow: uow.workspace_history.append(change(2)))
    with pytest.raises(Conflict) as raised:
        storage.write(lambda uow: uow.workspace_history.append(change(revision)))
    assert raised.value.extra["current_revision"] == 2
    assert storage.workspace_history.latest() == change(2)


def test_the_first_revision_is_one(storage: Any) -> None:
    with pytest.raises(Conflict):
        storage.write(lambda uow: uow.workspace_history.append(change(2)))
    assert storage.workspace_history.count() == 0
