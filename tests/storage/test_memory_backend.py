"""Memory-only behaviour: rows are kept encoded, so what SQLite would not round-trip fails here
too, and the read handles are read-only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from loopwise.clock import isoformat
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.records import Exposure, ProfileRecord
from loopwise.storage.sqlite import SqliteStorage
from tests.storage.conftest import T0, make_event


@pytest.fixture
def memory() -> Iterator[MemoryStorage]:
    backend = MemoryStorage()
    yield backend
    backend.close()


@pytest.fixture(params=["memory", "sqlite"])
def embedded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    backend: Any = (
        MemoryStorage() if request.param == "memory" else SqliteStorage(tmp_path / "l.db")
    )
    yield backend
    backend.close()


UNENCODABLE: dict[str, Callable[[Any], Any]] = {
    "event property": lambda uow: uow.events.append(
        [make_event("m1", properties={"tags": {"a", "b"}})], ["p1"]
    ),
    "decision value": lambda uow: uow.decisions.insert(
        {"decision_id": "d1", "profile_id": "p1", "created_at": isoformat(T0), "x": object()}
    ),
    "item key": lambda uow: uow.catalog.upsert([{"id": "i1", 2: "non-string key"}]),
    "config value": lambda uow: uow.config.put("workspace", {"at": {1, 2}}),
    "consent value": lambda uow: uow.consent.put("k", {"choices": object()}),
}


@pytest.mark.parametrize("what", sorted(UNENCODABLE))
def test_what_does_not_encode_fails_the_job_as_on_sqlite(embedded: Any, what: str) -> None:
    with pytest.raises(TypeError):
        embedded.write(UNENCODABLE[what])
    assert embedded.events.count() == 0 and embedded.catalog.all() == []
    assert embedded.config.get("workspace") is None and embedded.decisions.count() == 0


def test_times_come_back_at_millisecond_precision_as_from_sqlite(embedded: Any) -> None:
    precise = T0 + timedelta(microseconds=987_654)
    event = make_event("m1", timestamp=precise)
    embedded.write(lambda uow: uow.events.append([event], ["p1"]))
    embedded.write(lambda uow: uow.exposures.insert(Exposure("exp", "p1", "a", precise)))
    [logged] = embedded.events.iter()
    assert logged.event.timestamp == T0 + timedelta(milliseconds=987)
    stored = embedded.exposures.get("exp", "p1")
    assert stored is not None and stored.exposed_at == T0 + timedelta(milliseconds=987)


def test_reads_are_copies_a_caller_cannot_change_stored_data(memory: MemoryStorage) -> None:
    memory.write(lambda uow: uow.config.put("workspace", {"slots": ["hero"]}))
    document = memory.config.get("workspace")
    assert document is not None
    document["slots"].append("changed")
    assert memory.config.get("workspace") == {"slots": ["hero"]}


def test_a_read_handle_cannot_write(memory: MemoryStorage) -> None:
    with pytest.raises(RuntimeError, match="read handle cannot write"):
        memory.profiles.upsert([ProfileRecord("p1", T0, b"x")])
    assert memory.profiles.count() == 0


def test_a_profile_must_be_bytes(memory: MemoryStorage) -> None:
    with pytest.raises(TypeError):
        memory.write(lambda uow: uow.profiles.upsert([ProfileRecord("p1", T0, "text")]))  # type: ignore[arg-type]
