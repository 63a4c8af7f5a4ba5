"""decide() in-process: p50/p99 for a 3-slot page of the sample workspace.

Profiles are built through the real ingest path (a seeded population browsing the sample catalog),
then every timed request decides hero + recommended + trending for a random known user.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from loopwise.catalog.importer import read_items
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.storage.memory import MemoryStorage

PAGE = [{"slot": "hero"}, {"slot": "recommended", "n": 4}, {"slot": "trending", "n": 4}]


def build_engine(users: int, events_per_user: int, seed: int = 1) -> tuple[Engine, list[str]]:
    workspace = load_workspace_file(SAMPLE_WORKSPACE)
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    engine = Engine(workspace, MemoryStorage(), clock=clock, seed=seed)
    items = list(read_items(SAMPLE_WORKSPACE.parent / str(workspace.items)))
    engine.put_items(items)
    rng = random.Random(seed)
    names = ["Product Viewed"] * 8 + ["Product Added", "Order Completed"]
    ids = []
    for u in range(users):
        anon = f"bench-{u}"
        ids.append(anon)
        favourite = rng.choice(items).categories[0]
        pool = [i for i in items if favourite in i.categories]
        batch: list[dict[str, Any]] = []
        for _ in range(events_per_user):
            item = rng.choice(pool if rng.random() < 0.7 else items)
            name = rng.choice(names)
            props: dict[str, Any] = {"product_id": item.id}
            if name == "Order Completed":
                props = {
                    "order_id": str(uuid.uuid4()),
                    "revenue": item.price or 10,
                    "products": [{"product_id": item.id}],
                }
            batch.append(
                {
                    "type": "track",
                    "anonymousId": anon,
                    "event": name,
                    "properties": props,
                    "messageId": str(uuid.uuid4()),
                    "timestamp": (clock() - timedelta(minutes=rng.randint(0, 5000))).isoformat(),
                }
            )
        engine.ingest(parse_request({"batch": batch}, kind="batch", received_at=clock()))
    return engine, ids


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return sorted_values[index]


def run(users: int = 2000, events_per_user: int = 10, requests: int = 5000) -> dict[str, Any]:
    engine, ids = build_engine(users, events_per_user)
    rng = random.Random(2)
    requests_ = [
        DecideRequest.model_validate(
            {
                "user": {"anonymous_id": rng.choice(ids)},
                "context": {
                    "page": {"url": "https://shop.test/"},
                    "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
                    "AppleWebKit/537.36 (KHTML, like Gecko) "
                    "Chrome/120.0 Safari/537.36",
                },
                "slots": PAGE,
            }
        )
        for _ in range(requests)
    ]
    for request in requests_[:200]:  # warm caches
        engine.decide(request)
    timings = []
    for request in requests_:
        start = time.perf_counter()
        engine.decide(request)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    engine.close()
    return {
        "profiles": users,
        "items": len(engine._catalog),
        "requests": requests,
        "p50_ms": percentile(timings, 0.50),
        "p99_ms": percentile(timings, 0.99),
        "mean_ms": sum(timings) / len(timings),
    }


if __name__ == "__main__":
    print(run())
