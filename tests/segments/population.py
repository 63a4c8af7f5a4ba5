"""Three kinds of visitors, as the events a site would send, for the clustering tests.

- runners: four sessions a day apart, running gear viewed and bought (about 300 per order);
- yoga browsers: one recent session viewing yoga items, no order;
- lapsed hikers: one short session two months ago viewing a hiking item.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from loopwise.catalog.items import Item
from loopwise.clock import Clock
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request

GROUPS = ("runner", "yoga", "hiker")


def item_ids(category: str) -> list[str]:
    return [f"t-{category}-{n}" for n in range(8)]


def item_records() -> list[dict[str, Any]]:
    """The test items: eight per category, one category each (so a visitor's taste is exactly
    one category)."""
    return [
        {"id": i, "title": f"{category} {i}", "categories": [category]}
        for category in ("running", "yoga", "hiking")
        for i in item_ids(category)
    ]


def category_items(engine: Engine | None, category: str) -> list[str]:
    """Ids of this category's test items, added to the engine's catalog on first use."""
    ids = item_ids(category)
    if engine is not None and engine.get_item(ids[0]) is None:
        engine.put_items([Item.from_record(r) for r in item_records()])
    return ids


def _message(anonymous_id: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "anonymousId": anonymous_id,
        "messageId": str(uuid.uuid4()),
        "timestamp": at.isoformat(),
        **fields,
    }


def view(anonymous_id: str, at: datetime, item_id: str) -> dict[str, Any]:
    return _message(anonymous_id, at, event="Product Viewed", properties={"product_id": item_id})


def order(anonymous_id: str, at: datetime, item_id: str, revenue: float) -> dict[str, Any]:
    return _message(
        anonymous_id,
        at,
        event="Order Completed",
        properties={
            "order_id": str(uuid.uuid4()),
            "revenue": revenue,
            "products": [{"product_id": item_id, "price": revenue}],
        },
    )


def ingest(engine: Engine, clock: Clock, messages: list[dict[str, Any]]) -> None:
    engine.ingest(parse_request({"batch": messages}, kind="batch", received_at=clock()))


def runner_messages(engine: Engine | None, anonymous_id: str, end: datetime, n: int) -> list[dict]:
    running = category_items(engine, "running")
    messages = []
    for session in range(4):
        start = end - timedelta(days=3 - session, hours=1)
        for j in range(3):
            item = running[(n + session + j) % len(running)]
            messages.append(view(anonymous_id, start + timedelta(minutes=j), item))
        item = running[(n + session) % len(running)]
        messages.append(order(anonymous_id, start + timedelta(minutes=5), item, 250.0 + 10 * n))
    return messages


def yoga_messages(engine: Engine | None, anonymous_id: str, end: datetime, n: int) -> list[dict]:
    yoga = category_items(engine, "yoga")
    start = end - timedelta(hours=2)
    return [
        view(anonymous_id, start + timedelta(minutes=j), yoga[(n + j) % len(yoga)])
        for j in (0, 1, 2, 3)
    ]


def hiker_messages(engine: Engine | None, anonymous_id: str, end: datetime, n: int) -> list[dict]:
    hiking = category_items(engine, "hiking")
    return [view(anonymous_id, end - timedelta(days=60 + n % 5), hiking[n % len(hiking)])]


BUILDERS = {"runner": runner_messages, "yoga": yoga_messages, "hiker": hiker_messages}


def ingest_groups(engine: Engine, clock: Clock, per_group: int) -> dict[str, list[str]]:
    """``per_group`` visitors of each kind, anonymous ids ``<group>-<n>``, all before now."""
    members: dict[str, list[str]] = {}
    for group in GROUPS:
        members[group] = [f"{group}-{n}" for n in range(per_group)]
        messages = [
            message
            for n, anonymous_id in enumerate(members[group])
            for message in BUILDERS[group](engine, anonymous_id, clock(), n)
        ]
        for start in range(0, len(messages), 500):
            ingest(engine, clock, messages[start : start + 500])
    return members
