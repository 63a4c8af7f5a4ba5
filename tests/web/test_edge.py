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
def client(request: pytest.FixtureRequest) -> Any:
    from loopwise.api.app import create_app
    from loopwise.api.keys import KeyKind, KeyRing
    from loopwise.clock import FixedClock
    from loopwise.engine import Engine
    from loopwise.storage.memory import MemoryStorage
    from tests.api.conftest import ADMIN, SERVER, WRITE

    ring = KeyRing.from_plain({KeyKind.WRITE: [WRITE], KeyKind.SERVER: [SERVER],
                               KeyKind.ADMIN: [ADMIN]})  # fmt: skip
    document = experiment_workspace() if "exposures" in request.node.name else WORKSPACE
    engine = Engine(parse_workspace(document), MemoryStorage(), keys=ring, clock=FixedClock(NOW))
    with TestClient(create_app(engine)) as test_client:
        yield test_client


# -- experiments at the edge --------------------------------------------------------------------
EXPERIMENT_CASES = 3_000
EXPERIMENTS_TEST = Path(__file__).with_name("edge_experiments.test.mjs")
HOLDOUT_PERCENT = 10
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]


def experiment_workspace() -> dict[str, Any]:
    """WORKSPACE with experiments on its edge slots (hashing v1 and v2, weights, coverage, a
    namespace, targeting, one not started yet), a forced one (that slot goes to the API) and a
    10 % global holdout."""
    promo = {
        "key": "promo",
        "kind": "block",
        "default_variant": "x",
        "variants": [{"id": v, "content": {"v": v}} for v in ("x", "y", "z")],
        "rules": [{"id": "uk-promo", "segments": ["uk"], "then": {"variant": "y"}}],
    }
    qa = {
        "key": "qa",
        "kind": "block",
        "default_variant": "a",
        "variants": [{"id": "a", "content": {}}, {"id": "b", "content": {}}],
    }
    arms = [{"key": "a", "variant": "a"}, {"key": "b", "variant": "b"}]
    experiments = [
        {"key": "banner-split", "slot": "banner", "coverage": 0.8,
         "arms": [{"key": "a", "variant": "a", "weight": 0.3},
                  {"key": "b", "variant": "b", "weight": 0.7}],
         "targeting": {"context.device.type": {"$ne": "tablet"}}},
        {"key": "promo-later", "slot": "promo", "start": "2027-01-01T00:00:00Z",
         "arms": [{"key": "x", "variant": "x"}, {"key": "z", "variant": "z"}]},
        {"key": "promo-half", "slot": "promo", "hash_version": 1, "seed": "s1",
         "namespace": {"id": "promo", "start": 0, "end": 0.5},
         "arms": [{"key": "x", "variant": "x"}, {"key": "z", "variant": "z"}]},
        {"key": "promo-rest", "slot": "promo",
         "arms": [{"key": "x", "variant": "x"}, {"key": "y", "variant": "y"},
                  {"key": "z", "variant": "z"}]},
        {"key": "qa-forced", "slot": "qa", "arms": arms, "force": {"tester": "b"}},
    ]  # fmt: skip
    return {
        **WORKSPACE,
        "slots": [*WORKSPACE["slots"], promo, qa],
        "experiments": experiments,
        "holdout": {"percent": HOLDOUT_PERCENT},
    }


def random_raw_context(rng: random.Random) -> dict[str, Any]:
    """A Segment-style context as a page would send it."""
    path = rng.choice(["/", "/pricing", "/shop/shoes", "/blog/x"])
    context: dict[str, Any] = {"page": {"url": f"https://shop.test{path}"}}
    if rng.random() < 0.9:
        context["userAgent"] = rng.choice(USER_AGENTS)
    if rng.random() < 0.8:
        context["location"] = {"country": rng.choice(["GB", "US", "DE", "JP", "CA"])}
    if rng.random() < 0.5:
        context["locale"] = rng.choice(["en-GB", "en-US"])
    return context


def arm_in(slot: Any) -> str | None:
    return next((r.ref for r in slot.reasons if r.kind == "experiment"), None)


def engine_experiment_cases(count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The real engine's decide (identity, consent defaults, holdout, GrowthBook assignment) for
    new visitors, with the context namespace it decided with and the exposures it stored."""
    from loopwise.clock import FixedClock
    from loopwise.decide.request import DecideRequest
    from loopwise.engine import Engine
    from loopwise.experiments.settings import HOLDOUT_KEY
    from loopwise.profiles.context import request_context_attributes
    from loopwise.profiles.identity import profile_id_for
    from loopwise.storage.memory import MemoryStorage

    workspace = parse_workspace(experiment_workspace())
    bundle = build_edge_bundle(workspace)
    engine = Engine(workspace, MemoryStorage(), clock=FixedClock(NOW))
    rng = random.Random(16)
    slots = [{"slot": key} for key in bundle["slots"]]
    cases = []
    for index in range(count):
        raw = random_raw_context(rng)
        anonymous_id = f"visitor-{index}"
        request = DecideRequest.model_validate(
            {"user": {"anonymous_id": anonymous_id}, "context": raw, "slots": slots}
        )
        decided = engine.decide(request)
        pid = profile_id_for(anonymous_id)
        cases.append({
            "anonymous_id": anonymous_id, "profile_id": pid,
            "context": request_context_attributes(raw, workspace.profiles, NOW),
            "slots": {s.slot: {"variant": s.variant.id if s.variant else None, "rule": s.rule,
                               "arm": arm_in(s)} for s in decided.slots},
        })  # fmt: skip
    engine.services.decide.flush()
    for case in cases:
        stored = engine.services.views.exposures.of(case["profile_id"])
        case["exposures"] = sorted(
            f"{e.experiment}:{e.arm}" for e in stored.values() if e.experiment != HOLDOUT_KEY
        )
    engine.close()
    return bundle, cases


def test_the_bundle_carries_context_only_experiments_with_their_hashing() -> None:
    bundle = build_edge_bundle(parse_workspace(experiment_workspace()))
    assert "qa" in bundle["personal"]  # a QA force map needs the API (the edge has no ids)
    assert [e["key"] for e in bundle["experiments"]["promo"]] == [
        "promo-later", "promo-half", "promo-rest"
    ]  # fmt: skip
    banner = bundle["experiments"]["banner"][0]
    assert [x for r in banner["ranges"] for x in r] == pytest.approx([0.0, 0.24, 0.3, 0.86])
    assert bundle["holdout"] == {"percent": HOLDOUT_PERCENT / 100, "seed": "holdout"}
    assert bundle["consent"]["countries"]["DE"] == {"analytics": False, "personalization": False}


@pytest.mark.skipif(shutil.which("node") is None, reason="the parity test runs in Node")
def test_node_assigns_experiments_as_the_engine_does(tmp_path: Path) -> None:
    bundle, cases = engine_experiment_cases(EXPERIMENT_CASES)
    arms = {c["slots"][s]["arm"] for c in cases for s in c["slots"]}
    assert {"banner-split:a", "banner-split:b", "promo-half:x", "promo-rest:y"} <= arms
    assert None in arms  # opted-out regions, bots, the holdout and coverage serve no arm
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"bundle": bundle, "now": NOW.isoformat(), "cases": cases}))
    run = subprocess.run(
        ["node", "--test", str(EXPERIMENTS_TEST)], capture_output=True, text=True, timeout=120,
        env={"LOOPWISE_EDGE_EXPERIMENT_CASES": str(path)},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# pass 1" in run.stdout


def test_edge_exposures_are_stored_as_a_decide_would(client: TestClient) -> None:
    from tests.api.conftest import SERVER, WRITE, bearer

    post = lambda body, key=SERVER: client.post(  # noqa: E731
        "/v1/edge/exposures", json=body, headers=bearer(key)
    )
    seen = {"experiment": "banner-split", "arm": "b", "slot": "banner"}
    us = {"user": {"anonymous_id": "edge-1"}, "context": {"country": "US"}, "exposures": [seen]}
    first = post(us)
    assert first.status_code == 200, first.text
    assert first.json()["recorded"] == [  # with the person's side of the global holdout
        {"experiment": "holdout", "arm": "personalized"},
        {"experiment": "banner-split", "arm": "b"},
    ]
    again = post({**us, "exposures": [{**seen, "arm": "a"}]})
    assert again.json()["recorded"] == []  # the first exposure stays
    assert {"experiment": "banner-split", "arm": "b"} in again.json()["kept"]
    results = client.get("/v1/experiments/banner-split/results", headers=bearer(SERVER)).json()
    assert {a["key"]: a["users"] for a in results["arms"]}["b"] == 1
    bot = post({**us, "user": {"anonymous_id": "edge-2"},
                "context": {"country": "US", "device": {"type": "bot"}}})  # fmt: skip
    assert bot.json()["recorded"] == [] and bot.json()["skipped"][0]["reason"] == "a bot"
    eu = post({**us, "user": {"anonymous_id": "edge-3"}, "context": {"country": "DE"}})
    assert eu.json()["skipped"][0]["reason"] == "no personalization consent"
    agreed = post({**us, "user": {"anonymous_id": "edge-4"}, "context": {"country": "DE"},
                   "consent": {"personalization": True, "analytics": True}})  # fmt: skip
    assert {"experiment": "banner-split", "arm": "b"} in agreed.json()["recorded"]
    unknown = post({**us, "exposures": [{**seen, "experiment": "nope"}]})
    assert unknown.status_code == 400
    assert unknown.json()["field"] == "exposures[0].experiment"
    assert post(us, key=WRITE).status_code == 403
