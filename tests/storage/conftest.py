"""Fixtures giving each storage test a fresh backend of every kind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
