"""An engine on the sample store with campaign, search and cross-sell slots, in memory."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from loopwise.catalog.importer import read_items
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, Workspace, parse_workspace
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

CHANNEL_SLOTS: list[dict[str, Any]] = [
    {
        "key": "newsletter",
        "kind": "list",
        "description": "Picks in the weekly email",
        "n": 3,
        "default_strategy": "category_affinity",
    },
    {
        "key": "email-hero",
        "kind": "block",
        "variants": [
            {"id": "generic", "content": {"headline": "New this week"}},
            {"id": "runners", "content": {"headline": "For your next run"}},
        ],
        "rules": [{"id": "runners", "segments": ["running_fans"], "then": {"variant": "runners"}}],
    },
    {
        "key": "cart-cross-sell",
        "kind": "list",
        "n": 4,
        "default_strategy": "complements",
        "strategy_params": {"categories": {"running": ["swimming"], "yoga": ["outdoor-living"]}},
    },
]


def channel_document(**channels: Any) -> dict[str, Any]:
    document = yaml.safe_load(SAMPLE_WORKSPACE.read_text())
    document["slots"] = [*document["slots"], *CHANNEL_SLOTS]
    document["experiments"] = []  # campaigns and reranks decided without the sample's test
    if channels:
        document["channels"] = channels
    return document


def channel_workspace(**channels: Any) -> Workspace:
    return parse_workspace(channel_document(**channels))


@pytest.fixture()
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture()
def make_engine(clock: FixedClock) -> Callable[..., Engine]:
    def make(**channels: Any) -> Engine:
        engine = Engine(channel_workspace(**channels), MemoryStorage(), clock=clock, seed=1)
        items = SAMPLE_WORKSPACE.parent / "items.jsonl"
        engine.put_items(list(read_items(items)))
        return engine

    return make


@pytest.fixture()
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()


def send(engine: Engine, clock: FixedClock, kind: str, **message: Any) -> None:
    message.setdefault("messageId", str(uuid.uuid4()))
    message.setdefault("timestamp", clock().isoformat())
    engine.ingest(parse_request(message, kind=kind, received_at=clock()))


def consent(engine: Engine, user_id: str, **choices: bool) -> None:
    engine.put_consent(user_id, {"categories": choices})


def view(engine: Engine, clock: FixedClock, user_id: str, item_ids: list[str]) -> None:
    for item_id in item_ids:
        clock.advance(30)
        send(
            engine,
            clock,
            "track",
            userId=user_id,
            event="Product Viewed",
            properties={"product_id": item_id},
        )


def category(engine: Engine, name: str) -> list[str]:
    items, _ = engine.list_items(0, 10_000)
    return [i.id for i in items if i.categories and i.categories[0] == name]
