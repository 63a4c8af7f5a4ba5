"""The edge bundle and loopwise-edge.js: 10,000 random contexts decided by the engine's own
segments and rules and by the edge module in Node (node's test runner) give identical
decisions; the HTTP route is versioned with an ETag."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopwise.config import parse_workspace
from loopwise.decide.decider import Decider
from loopwise.decide.edge_bundle import build_edge_bundle
from loopwise.decide.item_stats import ItemStats
from loopwise.decide.request import SlotRequest
from loopwise.decide.strategies import StrategyRegistry
from loopwise.segments.registry import SegmentRegistry

NOW = datetime(2026, 11, 2, 19, 30, tzinfo=UTC)
CASES = 10_000
PARITY_TEST = Path(__file__).with_name("edge_parity.test.mjs")

WORKSPACE: dict[str, Any] = {
    "segments": [
        {"key": "uk", "name": "UK", "condition": {"context.country": "GB"}},
        {"key": "handheld", "name": "Handheld",
         "condition": {"context.device.type": {"$in": ["mobile", "tablet"]}}},
        {"key": "evening", "name": "Evening", "condition": {"context.time.hour": {"$gte": 18}}},
        {"key": "summer", "name": "Summer campaign",
         "condition": {"context.campaign.name": {"$regex": "^summer"}}},
        {"key": "not_eu", "name": "Outside the EU",
         "condition": {"$nor": [{"context.country": {"$in": ["DE", "FR", "IT"]}}]}},
        {"key": "buyers", "name": "Buyers", "condition": {"profile.purchases": {"$gte": 1}}},
    ],
    "slots": [
        {"key": "hero", "kind": "block", "default_variant": "plain",
         "variants": [{"id": v, "content": {"headline": v}} for v in
                      ("plain", "uk", "mobile-evening", "summer", "pricing", "weekend")],
         "rules": [
             {"id": "summer", "segments": ["summer"], "then": {"variant": "summer"}, "priority": 5},
             {"id": "uk", "segments": ["uk"], "then": {"variant": "uk"}, "priority": 5,
              "when": {"context.page.path": {"$regex": "^/shop"}}},
             {"id": "mobile-evening", "segments": ["handheld"],
              "then": {"variant": "mobile-evening"},
              "when": {"segments": {"$all": ["evening"]}}, "priority": 3},
             {"id": "pricing-page", "when": {"$or": [{"context.page.path": "/pricing"},
                                                    {"context.locale": {"$exists": False}}]},
              "then": {"variant": "pricing"}, "priority": 3},
             {"id": "weekend", "when": {"context.time.weekday": {"$in": [5, 6]},
                                        "context.traffic_source": {"$ne": "paid"}},
              "then": {"variant": "weekend"}, "priority": 1},
             {"id": "expired", "then": {"variant": "uk"}, "priority": 99,
              "active_to": "2026-01-01T00:00:00Z"},
         ]},
        {"key": "banner", "kind": "block", "default_variant": "a",
         "variants": [{"id": "a", "content": {}}, {"id": "b", "content": {}}],
         "rules": [{"id": "eu", "segments": ["not_eu"], "then": {"variant": "b"}}]},
        {"key": "personal", "kind": "block", "default_variant": "a",
         "variants": [{"id": "a", "content": {}}, {"id": "b", "content": {}}],
         "rules": [{"id": "buyers", "segments": ["buyers"], "then": {"variant": "b"}}]},
    ],
}  # fmt: skip


def random_context(rng: random.Random) -> dict[str, Any]:
    context: dict[str, Any] = {
        "time": {"hour": rng.randrange(24), "weekday": rng.randrange(7)},
        "page": {"path": rng.choice(["/", "/pricing", "/shop/shoes", "/shop", "/blog/x"])},
    }
    optional = {
        "country": rng.choice(["GB", "US", "DE", "FR", "JP"]),
        "device": {"type": rng.choice(["desktop", "mobile", "tablet", "bot"])},
        "campaign": {"name": rng.choice(["summer-sale", "winter", "summer", "SUMMER"])},
        "traffic_source": rng.choice(["direct", "search", "paid", "social"]),
        "locale": rng.choice(["en-GB", "de-DE"]),
    }
    for key, value in optional.items():
        if rng.random() < 0.7:
            context[key] = value
    return context


def engine_cases(workspace: Any, count: int) -> list[dict[str, Any]]:
    """The engine's decisions: its segment registry and decider, for a visitor with no profile."""
    registry = SegmentRegistry(workspace.all_segments(), workspace.saved_groups)
    slots = {slot.key: slot for slot in workspace.slots}
    decider = Decider(slots, StrategyRegistry.default(), {}, ItemStats())
    rng = random.Random(15)
    requests = [SlotRequest(slot="hero"), SlotRequest(slot="banner")]
    cases = []
    for _ in range(count):
        context = random_context(rng)
        segments = registry.evaluate({"profile": {}, "context": context})
        decided = decider.decide_slots(
            requests, profile={}, context=context, segments=segments, segment_names={},
            now=NOW, rng=rng,
        )  # fmt: skip
        cases.append({
            "context": context,
            "slots": {d.slot: {"variant": d.variant.id if d.variant else None, "rule": d.rule}
                      for d in decided},
        })  # fmt: skip
    return cases


def test_the_bundle_holds_only_context_only_slots() -> None:
    bundle = build_edge_bundle(parse_workspace(WORKSPACE))
    assert set(bundle["slots"]) == {"hero", "banner"}
    assert bundle["personal"] == ["personal"]
    assert "buyers" not in {s["key"] for s in bundle["segments"]}
    assert bundle["slots"]["hero"]["rules"][0]["id"] == "expired"  # priority order


@pytest.mark.skipif(shutil.which("node") is None, reason="the parity test runs in Node")
def test_node_decides_10000_random_contexts_as_the_engine_does(tmp_path: Path) -> None:
    workspace = parse_workspace(WORKSPACE)
    cases = engine_cases(workspace, CASES)
    assert len({c["slots"]["hero"]["variant"] for c in cases}) == 6  # every rule is exercised
    path = tmp_path / "cases.json"
    bundle = build_edge_bundle(workspace)
    path.write_text(json.dumps({"bundle": bundle, "now": NOW.isoformat(), "cases": cases}))
    run = subprocess.run(
        ["node", "--test", str(PARITY_TEST)],
        capture_output=True, text=True, timeout=120, env={"LOOPWISE_EDGE_CASES": str(path)},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# pass 1" in run.stdout


def test_the_route_is_versioned_with_an_etag(client: TestClient) -> None:
    from tests.api.conftest import SERVER, WRITE, bearer

    response = client.get("/v1/edge/bundle", headers=bearer(SERVER))
    assert response.status_code == 200
    etag = response.headers["etag"]
    assert etag == f'"{response.json()["version"]}"'
    again = client.get("/v1/edge/bundle", headers={**bearer(SERVER), "If-None-Match": etag})
    assert again.status_code == 304
    assert client.get("/v1/edge/bundle", headers=bearer(WRITE)).status_code == 403


@pytest.fixture
def client() -> Any:
    from loopwise.api.app import create_app
    from loopwise.api.keys import KeyKind, KeyRing
    from loopwise.clock import FixedClock
    from loopwise.engine import Engine
    from loopwise.storage.memory import MemoryStorage
    from tests.api.conftest import ADMIN, SERVER, WRITE

    ring = KeyRing.from_plain({KeyKind.WRITE: [WRITE], KeyKind.SERVER: [SERVER],
                               KeyKind.ADMIN: [ADMIN]})  # fmt: skip
    engine = Engine(parse_workspace(WORKSPACE), MemoryStorage(), keys=ring, clock=FixedClock(NOW))
    with TestClient(create_app(engine)) as test_client:
        yield test_client
