"""Fixtures giving each storage test a fresh backend of every kind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from loopwise.events.schema import Event
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.sqlite import SqliteStorage
from loopwise.storage.stores import Storage

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_event(message_id: str, user: str = "u1", minutes: float = 0, **fields: object) -> Event:
    """A track event at ``T0 + minutes`` (millisecond precision, as stored)."""
    at = T0 + timedelta(minutes=minutes)
    return Event(
        message_id=message_id,
        type="track",
        timestamp=at,
        received_at=at + timedelta(seconds=1),
        user_id=user,
        event="Product Viewed",
        properties={"item_id": f"item-{message_id}"},
        **fields,  # type: ignore[arg-type]
    )


def open_backend(kind: str, tmp_path: Path) -> Storage:
    if kind == "memory":
        return MemoryStorage()
    return SqliteStorage(tmp_path / "loopwise.db")


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    backend = open_backend(request.param, tmp_path)
    yield backend
    backend.close()


@pytest.fixture
def sqlite_storage(tmp_path: Path) -> Iterator[SqliteStorage]:
    backend = SqliteStorage(tmp_path / "loopwise.db")
    yield backend
    backend.close()


class DictStores:
    """The dict-based stores of ``loopwise.storage.memory`` (users, sessions, workspace
    history) behind ``Storage``'s read handles and ``write``, until the in-memory backend
    wires them itself: the contract tests run on them as on every backend."""

    def __init__(self) -> None:
        from loopwise.storage.memory.sessions import MemorySessionStore
        from loopwise.storage.memory.users import MemoryUserStore
        from loopwise.storage.memory.workspace_history import MemoryWorkspaceHistory

        self.users = MemoryUserStore()
        self.sessions = MemorySessionStore()
        self.workspace_history = MemoryWorkspaceHistory()

    def write(self, job: Any) -> Any:
        return job(self)

    def close(self) -> None:
        pass


@pytest.fixture(params=["memory", "sqlite", "dict"])
def people_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Stores for users, sessions and workspace history: every backend, plus the dict-based
    ones written for the in-memory backend."""
    backend: Any = (
        DictStores() if request.param == "dict" else open_backend(request.param, tmp_path)
    )
    yield backend
    backend.close()
