"""Live ingest, a restart on the same data and a replay of the log give one and the same state:
profiles, identity links, memberships, per-segment popularity, trending, co-occurrence, recently
viewed, exposures and their totals. (Round 1's three folds disagreed: a restarted engine served
per-segment popularity as overall popularity.)"""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from loopwise.catalog.importer import read_items
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.profiles import codec
from loopwise.storage.sqlite import SqliteStorage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def population(rng: random.Random, items: list[str], users: int) -> list[list[dict[str, Any]]]:
    """Batches of Segment messages from ``users`` people: browsing, carts, orders, sign-ins
    (some people on two devices, so profiles merge), in batches that mix people."""
    messages: list[dict[str, Any]] = []
    at = T0
    for n in range(users):
        anon = f"anon-{n}"
        devices = [anon, f"anon-{n}-phone"] if n % 5 == 0 else [anon]
        for device in devices:
            for _ in range(rng.randint(2, 8)):
                at += timedelta(seconds=rng.randint(5, 900))
                kind = rng.random()
                base = {"anonymousId": device, "timestamp": at.isoformat()}
                if kind < 0.15:
                    messages.append({"type": "page", "name": "Home", **base})
                elif kind < 0.75:
                    item = rng.choice(items)
                    messages.append(
                        {"type": "track", "event": "Product Viewed",
                         "properties": {"product_id": item}, **base}
                    )  # fmt: skip
                elif kind < 0.9:
                    item = rng.choice(items)
                    messages.append(
                        {"type": "track", "event": "Product Added",
                         "properties": {"product_id": item, "price": 20.0}, **base}
                    )  # fmt: skip
                else:
                    messages.append(
                        {"type": "track", "event": "Order Completed",
                         "properties": {"order_id": str(uuid.uuid4()), "revenue": 40.0,
                                        "products": [{"product_id": rng.choice(items)}]},
                         **base}
                    )  # fmt: skip
            if n % 3 == 0:  # signs in on this device: links (and merges the two devices)
                at += timedelta(seconds=30)
                messages.append(
                    {"type": "identify", "anonymousId": device, "userId": f"user-{n}",
                     "traits": {"plan": "gold"}, "timestamp": at.isoformat()}
                )  # fmt: skip
    rng.shuffle(messages)  # people interleave; per person the timestamps still order them
    messages.sort(key=lambda m: m["timestamp"])
    batches: list[list[dict[str, Any]]] = []
    while messages:
        size = rng.randint(1, 25)
        batches.append(messages[:size])
        messages = messages[size:]
    return batches


def open_engine(data: Path, clock: FixedClock) -> Engine:
    workspace = load_workspace_file(SAMPLE_WORKSPACE)
    engine = Engine(workspace, SqliteStorage(data / "loopwise.db"), clock=clock, seed=1)
    if not engine.services.catalog.items:
        engine.put_items(list(read_items(SAMPLE_WORKSPACE.parent / str(workspace.items))))
    return engine


def state(engine: Engine, at: datetime) -> dict[str, Any]:
    """Everything a decide can read, as plain values."""
    views = engine.services.views
    profiles = {r.id: codec.decode(r).to_record() for r in engine.storage.profiles.iter()}
    stats = views.item_stats.stats
    items = sorted(engine.services.catalog.items)
    popularity = {
        segment: {k: v for k, v in stats.scores(items, at, segment).items() if v}
        for segment in [None, *stats.segments()]
    }
    return {
        "profiles": profiles,
        "links": sorted(engine.storage.identities.iter()),
        "memberships": {pid: sorted(engine.services.profiles.membership(pid)) for pid in profiles},
        "popularity": popularity,
        "trending": stats.trending(at, limit=50),
        "together": {item: stats.together([item], limit=10) for item in items},
        "first_seen": dict(stats.first_seen),
        "exposures": sorted(
            (e.experiment, e.profile_id, e.arm, e.exposed_at, sorted(e.after.items()))
            for e in engine.storage.exposures.iter()
        ),
    }


def assert_same(live: Any, other: Any, path: str = "") -> None:
    """Equal, floats to 1e-9 relative (a checkpoint and a sum in another order may differ in the
    last bits)."""
    if isinstance(live, float) and isinstance(other, float):
        assert math.isclose(live, other, rel_tol=1e-9, abs_tol=1e-12), path
    elif isinstance(live, dict) and isinstance(other, dict):
        assert live.keys() == other.keys(), f"{path}: {set(live) ^ set(other)}"
        for key in live:
            assert_same(live[key], other[key], f"{path}.{key}")
    elif isinstance(live, list | tuple) and isinstance(other, list | tuple):
        assert len(live) == len(other), path
        for index, (a, b) in enumerate(zip(live, other, strict=True)):
            assert_same(a, b, f"{path}[{index}]")
    else:
        assert live == other, f"{path}: {live!r} != {other!r}"


@pytest.mark.parametrize(
    ("checkpoint_midway", "clean_shutdown"), [(False, True), (True, True), (True, False)]
)
def test_restart_and_replay_equal_the_live_engine(
    tmp_path: Path, checkpoint_midway: bool, clean_shutdown: bool
) -> None:
    clock = FixedClock(T0)
    live = open_engine(tmp_path, clock)
    items = sorted(live.services.catalog.items)[:60]
    rng = random.Random(7)
    batches = population(rng, items, users=60)
    for index, batch in enumerate(batches):
        for message in batch:
            message.setdefault("messageId", str(uuid.uuid4()))
        clock.now = datetime.fromisoformat(batch[-1]["timestamp"]) + timedelta(seconds=1)
        live.ingest(parse_request({"batch": batch}, kind="batch", received_at=clock()))
        if index % 7 == 0:  # decisions, exposures and their outcomes along the way
            anon = rng.choice(batch)["anonymousId"]
            decided = live.decide(
                DecideRequest.model_validate(
                    {"user": {"anonymous_id": anon}, "slots": [{"slot": "recommended"}]}
                )
            )
            live.services.decide.flush()
            properties = {"revenue": 30.0, "decision_id": decided.decision_id}
            order = {"type": "track", "anonymousId": anon, "event": "Order Completed",
                     "messageId": str(uuid.uuid4()), "timestamp": clock().isoformat(),
                     "properties": properties}  # fmt: skip
            live.ingest(parse_request(order, kind="track", received_at=clock()))
        if checkpoint_midway and index == len(batches) // 2:
            live.services.checkpointer.checkpoint_now()  # the rest is the tail a restart folds
    at = clock() + timedelta(hours=1)
    expected = state(live, at)
    assert expected["exposures"] and any(e[4] for e in expected["exposures"])
    assert len(expected["popularity"]) > 3  # overall and several segments
    if clean_shutdown:
        live.close()  # checkpoints what it holds
    else:  # as after kill -9: the newest checkpoint is the midway one, the rest is the tail
        live.services.watcher.stop()
        live.storage.close()

    restarted = open_engine(tmp_path, clock)
    assert_same(expected, state(restarted, at))
    report = restarted.replay()
    assert report["differing"] == 0
    assert_same(expected, state(restarted, at))
    restarted.close()

    again = open_engine(tmp_path, clock)  # and a restart after the replay
    assert_same(expected, state(again, at))
    again.close()
