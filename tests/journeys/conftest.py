"""Helpers for journey tests: an engine on memory storage with journeys, on the event-time
clock, and messages in the Segment wire format."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loopwise.catalog.importer import read_items
from loopwise.clock import EventTimeClock, isoformat
from loopwise.config import SAMPLE_WORKSPACE, Workspace, load_workspace_file, parse_workspace
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SECRET_ENV = "LOOPWISE_TEST_WEBHOOK_SECRET"
ENDPOINT = {"key": "crm", "url": "http://127.0.0.1:9/hook", "secret_env": SECRET_ENV}


def workspace_with(journeys: list[dict[str, Any]], **extra: Any) -> Workspace:
    base = load_workspace_file(SAMPLE_WORKSPACE).model_dump(mode="json", by_alias=True)
    base.pop("items", None)
    base["journeys"] = journeys
    base["webhooks"] = extra.pop("webhooks", {"endpoints": [ENDPOINT]})
    base.update(extra)
    return parse_workspace(base)


def cart_journey(**overrides: Any) -> dict[str, Any]:
    return {"key": "cart", "template": "cart_abandonment", "endpoint": "crm", **overrides}


@pytest.fixture()
def make_engine() -> Iterator[Any]:
    engines: list[Engine] = []

    def make(journeys: list[dict[str, Any]], **extra: Any) -> Engine:
        engine = Engine(
            workspace_with(journeys, **extra), MemoryStorage(), clock=EventTimeClock(T0), seed=1
        )
        engines.append(engine)
        sample = load_workspace_file(SAMPLE_WORKSPACE)
        engine.put_items(list(read_items(SAMPLE_WORKSPACE.parent / str(sample.items))))
        return engine

    yield make
    for engine in engines:
        engine.close()


def message(
    user: str,
    at: datetime,
    event: str = "Product Added",
    *,
    marketing: bool | None = True,
    timezone: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if marketing is not None:
        context["consent"] = {"categoryPreferences": {"marketing": marketing}}
    if timezone is not None:
        context["timezone"] = timezone
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "messageId": str(uuid.uuid4()),
        "timestamp": isoformat(at),
        "properties": properties or {"item_id": "sku-1"},
        "context": context,
    }


def ingest(engine: Engine, *messages: dict[str, Any]) -> None:
    from loopwise.clock import parse_timestamp

    newest = max(parse_timestamp(m["timestamp"]) or T0 for m in messages)
    engine.ingest(parse_request({"batch": list(messages)}, kind="batch", received_at=newest))


def sends(engine: Engine, journey: str = "cart") -> list[Any]:
    """The outbox's deliveries of one journey's steps, oldest first."""
    storage = engine.storage
    found = []
    pids = {r.profile_id for r in storage.journeys.iter(journey)}
    for pid in sorted(pids):
        for d in storage.outbox.for_profile(pid):
            if d.payload.get("journey") == journey and d.payload.get("type") == "journey.step":
                found.append(d)
    return sorted(found, key=lambda d: (d.created_at, d.key))


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
