"""A seeded synthetic shop for model tests: users who each prefer one category of the sample
catalog, sending item views, add-to-carts and purchases through the real event schema."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from loopwise.catalog.items import Item
from loopwise.config import SAMPLE_WORKSPACE
from loopwise.events.normalize import parse_request
from loopwise.events.schema import Event

SAMPLE_ITEMS = SAMPLE_WORKSPACE.parent / "items.jsonl"
EVENT_NAMES = {"view": "Product Viewed", "cart": "Product Added", "purchase": "Order Completed"}


def message(user: str, item_id: str, at: datetime, kind: str = "view") -> dict[str, object]:
    properties: dict[str, object] = {"product_id": item_id}
    if kind == "purchase":
        properties = {"products": [{"product_id": item_id, "price": 10.0}], "revenue": 10.0}
    return {
        "anonymousId": user,
        "event": EVENT_NAMES[kind],
        "properties": properties,
        "messageId": str(uuid.uuid4()),
        "timestamp": at.isoformat(),
    }


def events_for(messages: list[dict[str, object]], received_at: datetime) -> list[Event]:
    out: list[Event] = []
    for m in messages:
        out.extend(parse_request(m, kind="track", received_at=received_at))
    return out


def taste_messages(
    items: list[Item], start: datetime, users: int = 60, per_user: int = 12, seed: int = 7
) -> list[dict[str, object]]:
    """Each user views ``per_user`` items, 90 % from their favourite category (by the item's
    first category), and puts some in the cart / buys them."""
    rng = random.Random(seed)
    by_category: dict[str, list[str]] = {}
    for item in items:
        by_category.setdefault(item.categories[0], []).append(item.id)
    categories = sorted(by_category)
    out: list[dict[str, object]] = []
    for u in range(users):
        favourite = categories[u % len(categories)]
        at = start + timedelta(minutes=u)
        for _ in range(per_user):
            pool = by_category[favourite] if rng.random() < 0.9 else [i.id for i in items]
            # the first half of a category is what everyone looks at most (a popularity skew)
            item_id = pool[min(int(rng.expovariate(1 / 8)), len(pool) - 1)]
            at += timedelta(minutes=3)
            out.append(message(f"user-{u}", item_id, at))
            roll = rng.random()
            if roll < 0.2:
                out.append(message(f"user-{u}", item_id, at + timedelta(seconds=30), "cart"))
            elif roll < 0.3:
                out.append(message(f"user-{u}", item_id, at + timedelta(seconds=60), "purchase"))
    return out


WORKSPACE_YAML = """
workspace: model-tests
items: {items}
training:
  min_interactions: 50
  half_life_days: 30
slots:
  - key: recs
    kind: list
    n: 5
    default_strategy: hybrid
    time_budget_ms: 2000  # a loaded CI machine must not turn a slow call into a fallback
    filters: {{in_stock: null}}
"""


def write_workspace(directory: Path, **training: object) -> Path:
    """A workspace with one list slot ``recs`` served by ``hybrid`` (no rules), on the sample
    catalog; ``training`` overrides settings of the training section."""
    import yaml

    document = yaml.safe_load(WORKSPACE_YAML.format(items=SAMPLE_ITEMS))
    document["training"].update(training)
    path = directory / "loopwise.yaml"
    path.write_text(yaml.safe_dump(document), "utf-8")
    return path
