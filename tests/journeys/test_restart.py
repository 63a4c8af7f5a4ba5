"""Journey state lives in storage: a person waiting when the engine stops is still waiting when
it starts again, and gets their send at the same time as without the restart."""

from __future__ import annotations

from pathlib import Path

from loopwise.clock import EventTimeClock
from loopwise.engine import Engine
from loopwise.storage.sqlite import SqliteStorage
from tests.journeys.conftest import T0, cart_journey, hours, ingest, message, sends, workspace_with


def test_a_wait_survives_a_restart(tmp_path: Path) -> None:
    workspace = workspace_with([cart_journey()])
    path = tmp_path / "loopwise.db"
    engine = Engine(workspace, SqliteStorage(path), clock=EventTimeClock(T0))
    ingest(engine, message("u1", T0))
    assert engine.journey("cart")["steps"][0]["waiting"] == 1
    engine.close()
    again = Engine(workspace, SqliteStorage(path), clock=EventTimeClock(T0))
    try:
        ingest(again, message("u2", T0 + hours(3), "Product Viewed"))
        found = sends(again)
        assert [d.created_at for d in found] == [T0 + hours(1)]
        assert again.journey("cart")["steps"][1]["sent"] == 1
    finally:
        again.close()
