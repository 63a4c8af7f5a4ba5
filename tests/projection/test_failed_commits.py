"""A commit that fails (the disk is full) leaves nothing in memory ahead of disk: views learn of
a change only after it is committed. (Round 1 showed 30 purchases in memory after three failed
attempts of a 10-order batch, and 40 after the retry that stored 10.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.engine import Engine
from loopwise.errors import StorageUnavailable
from loopwise.events.normalize import parse_request
from loopwise.events.schema import Event
from loopwise.storage.sqlite import SqliteStorage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def orders(user: str, count: int) -> list[Event]:
    batch = [
        {"type": "track", "userId": user, "event": "Order Completed",
         "messageId": f"{user}-order-{n}", "properties": {"order_id": f"o{n}", "revenue": 10}}
        for n in range(count)
    ]  # fmt: skip
    return parse_request({"batch": batch}, kind="batch", received_at=T0)


def purchases(engine: Engine, user: str) -> int:
    view = engine.profile_view(user)
    return 0 if view is None else int(view["profile"]["purchases"])


@pytest.fixture
def full_disk(tmp_path: Path) -> Any:
    storage = SqliteStorage(tmp_path / "loopwise.db")
    engine = Engine(load_workspace_file(SAMPLE_WORKSPACE), storage, clock=FixedClock(T0))

    def fill() -> None:
        pages = storage.write(lambda uow: uow.pragma("page_count"))
        storage.set_max_page_count(int(pages))

    def free() -> None:
        storage.set_max_page_count(1_000_000_000)

    yield engine, fill, free
    engine.close()


def test_three_failed_attempts_then_one_retry_count_once(full_disk: Any) -> None:
    engine, fill, free = full_disk
    engine.ingest(orders("warmup", 1))
    fill()
    for _ in range(3):
        with pytest.raises(StorageUnavailable):
            engine.ingest(orders("buyer", 10))
        assert purchases(engine, "buyer") == 0  # nothing in memory the disk does not have
    assert engine.health()["write"].startswith("failing")
    free()
    result = engine.ingest(orders("buyer", 10))
    assert result.accepted == 10
    assert purchases(engine, "buyer") == 10
    assert engine.counts()["events"] == 11
    assert engine.health()["write"] == "ok"
    assert engine.replay()["differing"] == 0


def test_under_concurrent_load_every_profile_equals_its_replay(full_disk: Any) -> None:
    engine, fill, free = full_disk
    users = [f"u-{n}" for n in range(100)]

    def send(user: str) -> bool:
        try:
            engine.ingest(orders(user, 3))
            return True
        except StorageUnavailable:
            return False

    with ThreadPoolExecutor(8) as pool:
        first = list(pool.map(send, users[:50]))
        fill()
        during = list(pool.map(send, users[50:]))
        free()
        retried = list(pool.map(send, users))  # every client retries its batch
    # a full database still takes what fits in its free pages: some batches failed, not all
    assert all(first) and not all(during) and all(retried)
    assert {purchases(engine, user) for user in users} == {3}
    assert engine.counts()["events"] == 300
    assert engine.replay()["differing"] == 0  # (message ids are fixed, so retries dedupe)


def test_healthz_says_which_part_fails_and_recovers(
    full_disk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    import loopwise.storage.health as engine_module
    from loopwise.api.app import create_app

    monkeypatch.setattr(engine_module, "HEALTH_PROBE_SECONDS", 3600.0)
    engine, fill, free = full_disk
    client = TestClient(create_app(engine))
    assert client.get("/healthz").json()["checks"] == {"read": "ok", "write": "ok"}
    engine.ingest(orders("warmup", 1))
    fill()
    with pytest.raises(StorageUnavailable):
        engine.ingest(orders("buyer", 10))
    reply = client.get("/healthz")
    assert reply.status_code == 503
    problem = reply.json()
    assert problem["field"] == "write" and "full" in problem["detail"]
    assert problem["checks"]["read"] == "ok"
    free()  # (itself a write that commits)
    assert client.get("/healthz").status_code == 200


def test_an_idle_server_probes_whether_writes_work_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import loopwise.storage.health as engine_module
    from loopwise.storage.memory import MemoryStorage

    storage = MemoryStorage()
    engine = Engine(load_workspace_file(SAMPLE_WORKSPACE), storage, clock=FixedClock(T0))
    try:
        storage._writer._failed(OSError("No space left on device"))
        monkeypatch.setattr(engine_module, "HEALTH_PROBE_SECONDS", 3600.0)
        assert engine.health()["write"] == "failing: OSError: No space left on device"
        monkeypatch.setattr(engine_module, "HEALTH_PROBE_SECONDS", 0.0)  # the wait is over
        assert engine.health()["ok"] is True  # the probe write committed
    finally:
        engine.close()
