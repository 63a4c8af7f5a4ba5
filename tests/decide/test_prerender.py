"""The pre-render cache: prerenderable slots are served from it (same content, new decision id),
per-person parts stay live, entries expire and go when the workspace or the catalog changes, and
a page decided with the cache equals the page decided without it."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopwise.catalog.items import Item
from loopwise.clock import FixedClock
from loopwise.config import parse_workspace
from loopwise.decide.prerender import PrerenderCache, PrerenderSettings, recipe_for
from loopwise.decide.request import DecideRequest, DecideResponse
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

WORKSPACE: dict[str, Any] = {
    "builtin_segments": False,
    "segments": [
        {"key": "uk", "name": "UK", "condition": {"context.country": "GB"}},
        {"key": "buyers", "name": "Buyers", "condition": {"profile.purchases": {"$gte": 1}}},
    ],
    "slots": [
        {"key": "hero", "kind": "block", "default_variant": "plain",
         "variants": [{"id": v, "content": {"headline": v}} for v in ("plain", "uk", "buyer",
                                                                       "phone")],
         "rules": [
             {"id": "buyers", "segments": ["buyers"], "then": {"variant": "buyer"},
              "priority": 9},
             {"id": "uk", "segments": ["uk"], "then": {"variant": "uk"}, "priority": 5},
             {"id": "phone", "when": {"context.device.type": "mobile"},
              "then": {"variant": "phone"}},
         ]},
        {"key": "mine", "kind": "list", "n": 3, "default_strategy": "category_affinity"},
        {"key": "trending", "kind": "list", "n": 3, "default_strategy": "popular"},
        {"key": "who", "kind": "block", "default_variant": "a",
         "variants": [{"id": "a", "content": {}}, {"id": "b", "content": {}}],
         "rules": [{"id": "many", "when": {"profile.page_views": {"$gte": 2}},
                    "then": {"variant": "b"}}]},
    ],
}  # fmt: skip

ITEMS = [
    Item(id=f"i{n}", title=f"Item {n}", categories=("c1" if n % 2 else "c2",)) for n in range(12)
]


def new_engine(document: dict[str, Any] | None = None, *, enabled: bool = True) -> Engine:
    document = {**(document or WORKSPACE), "prerender": {"enabled": enabled}}
    engine = Engine(parse_workspace(document), MemoryStorage(), clock=FixedClock(T0), seed=3)
    engine.put_items(list(ITEMS))
    return engine


def send(engine: Engine, anonymous_id: str, event: str, **properties: Any) -> None:
    message = {
        "anonymousId": anonymous_id, "event": event, "properties": properties,
        "messageId": str(uuid.uuid4()), "timestamp": engine.clock().isoformat(),
    }  # fmt: skip
    engine.ingest(parse_request(message, kind="track", received_at=engine.clock()))


def page(engine: Engine, anonymous_id: str, slots: list[str], **context: Any) -> DecideResponse:
    body = {"user": {"anonymous_id": anonymous_id}, "context": context,
            "slots": [{"slot": s} for s in slots]}  # fmt: skip
    return engine.decide(DecideRequest.model_validate(body))


def test_visitors_alike_share_one_prerendered_decision_with_their_own_decision_ids() -> None:
    engine = new_engine()
    first = page(engine, "a1", ["hero", "trending"], location={"country": "GB"})
    second = page(engine, "a2", ["hero", "trending"], location={"country": "GB"})
    assert first.cache is not None and second.cache is not None
    assert first.cache.slots == {"hero": "miss", "trending": "miss"}
    assert second.cache.slots == {"hero": "hit", "trending": "hit"}
    assert second.slots[0].variant is not None and second.slots[0].variant.id == "uk"
    assert [s.model_dump() for s in second.slots] == [s.model_dump() for s in first.slots]
    assert second.decision_id != first.decision_id
    assert first.cache.key is not None and first.cache.key == second.cache.key
    engine.services.decide.flush()
    assert engine.get_decision(second.decision_id) is not None  # logged like any decision
    other = page(engine, "a3", ["hero", "trending"], location={"country": "FR"})
    assert other.cache is not None and other.cache.slots["hero"] == "miss"
    assert other.cache.key != first.cache.key
    assert other.slots[0].variant is not None and other.slots[0].variant.id == "plain"


def test_the_context_key_holds_only_what_the_rules_read() -> None:
    engine = new_engine()
    page(engine, "a1", ["hero"], location={"country": "GB"}, page={"path": "/a"})
    again = page(engine, "a2", ["hero"], location={"country": "GB"}, page={"path": "/b"})
    phone = page(engine, "a3", ["hero"], userAgent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 "
                 "like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148")  # fmt: skip
    assert again.cache is not None and again.cache.slots["hero"] == "hit"  # path is not read
    assert phone.slots[0].variant is not None and phone.slots[0].variant.id == "phone"


def test_personal_parts_stay_live() -> None:
    engine = new_engine()
    send(engine, "buyer", "Order Completed", order_id="o1", revenue=5,
         products=[{"product_id": "i1"}])  # fmt: skip
    response = page(engine, "buyer", ["hero", "mine", "who", "trending"])
    assert response.cache is not None
    # a personal strategy and a profile rule are never cached; a list hiding what the person
    # bought is decided for them
    assert response.cache.slots == {
        "hero": "miss", "mine": "live", "who": "live", "trending": "live"
    }  # fmt: skip
    assert response.cache.key is None
    assert response.slots[0].variant is not None and response.slots[0].variant.id == "buyer"
    assert "i1" not in [i.id for i in response.slots[3].items]


def test_an_experiment_arm_overrides_the_cache_for_the_people_in_it() -> None:
    document = {
        **WORKSPACE,
        "experiments": [
            {
                "key": "hero-test",
                "slot": "hero",
                "arms": [
                    {"key": "control", "variant": "plain"},
                    {"key": "treat", "variant": "phone"},
                ],
            }
        ],
    }
    engine = new_engine(document)
    response = page(engine, "a1", ["hero", "trending"])
    assert response.cache is not None and response.cache.slots["hero"] == "live"
    assert any(r.kind == "experiment" for r in response.slots[0].reasons)


def test_entries_expire_and_workspace_or_catalog_changes_clear_them() -> None:
    now = [0.0]
    cache = PrerenderCache(lambda: PrerenderSettings(ttl_seconds=60), clock=lambda: now[0])
    engine = new_engine()
    engine.services.decide.prerender = cache
    assert page(engine, "a1", ["trending"]).cache.slots == {"trending": "miss"}  # type: ignore[union-attr]
    now[0] = 59.0
    assert page(engine, "a2", ["trending"]).cache.slots == {"trending": "hit"}  # type: ignore[union-attr]
    now[0] = 61.0
    assert page(engine, "a3", ["trending"]).cache.slots == {"trending": "miss"}  # type: ignore[union-attr]
    engine.put_items([Item(id="new", title="New")])  # a catalog change
    assert page(engine, "a4", ["trending"]).cache.slots == {"trending": "miss"}  # type: ignore[union-attr]
    assert page(engine, "a5", ["trending"]).cache.slots == {"trending": "hit"}  # type: ignore[union-attr]
    slot = next(s for s in engine.workspace_document()["slots"] if s["key"] == "trending")
    engine.put_slot("trending", {**slot, "n": 2})  # a workspace change
    response = page(engine, "a6", ["trending"])
    assert response.cache is not None and response.cache.slots == {"trending": "miss"}
    assert len(response.slots[0].items) == 2
    assert cache.stats()["hits"] == 2 and 0 < cache.hit_ratio() < 1


def test_a_cached_list_is_not_reused_where_an_earlier_slot_shows_its_items() -> None:
    document = {
        **WORKSPACE,
        "slots": [
            *WORKSPACE["slots"],
            {"key": "popular2", "kind": "list", "n": 3, "default_strategy": "popular"},
        ],
    }
    engine = new_engine(document)
    page(engine, "a1", ["popular2"])  # cached as decided alone
    both = page(engine, "a2", ["trending", "popular2"])
    assert both.cache is not None and both.cache.slots["popular2"] == "live"
    first, second = ([i.id for i in s.items] for s in both.slots)
    assert not set(first) & set(second)


def test_recipes_say_what_a_slot_reads() -> None:
    slots = {s.key: s for s in parse_workspace(WORKSPACE).slots}
    hero = recipe_for(slots["hero"])
    assert hero is not None
    assert hero.segment_keys == {"buyers", "uk"} and hero.context_paths == ("context.device.type",)
    assert recipe_for(slots["mine"]) is None and recipe_for(slots["who"]) is None


@pytest.mark.parametrize("seed", [1, 2])
def test_pages_decided_with_the_cache_equal_pages_decided_without_it(seed: int) -> None:
    cached, plain = new_engine(), new_engine(enabled=False)
    rng = random.Random(seed)
    for engine in (cached, plain):
        for n in range(30):
            send(engine, f"v{n % 7}", "Product Viewed", product_id=f"i{n % 12}")
    contexts = [{}, {"location": {"country": "GB"}}, {"location": {"country": "DE"}},
                {"device": {"type": "mobile"}}]  # fmt: skip
    hits = 0
    for n in range(200):
        visitor = f"p{rng.randrange(40)}"
        slots = rng.sample(["hero", "trending", "mine", "who"], rng.randrange(1, 5))
        context = rng.choice(contexts)
        a, b = page(cached, visitor, slots, **context), page(plain, visitor, slots, **context)
        assert [s.model_dump() for s in a.slots] == [s.model_dump() for s in b.slots], n
        hits += sum(v == "hit" for v in (a.cache.slots if a.cache else {}).values())
    assert hits > 100


def test_the_http_reply_says_what_came_from_the_cache() -> None:
    from loopwise.api.app import create_app
    from loopwise.api.keys import KeyKind, KeyRing

    ring = KeyRing.from_plain({KeyKind.SERVER: ["lw_server_t"]})
    engine = Engine(parse_workspace(WORKSPACE), MemoryStorage(), keys=ring, clock=FixedClock(T0))
    body = {"user": {"anonymous_id": "a1"}, "context": {"location": {"country": "GB"}},
            "slots": [{"slot": "hero"}]}  # fmt: skip
    with TestClient(create_app(engine)) as client:
        headers = {"Authorization": "Bearer lw_server_t"}
        first = client.post("/v1/decide", json=body, headers=headers)
        second = client.post("/v1/decide", json=body, headers=headers)
    assert first.headers["x-loopwise-cache"] == "miss"
    assert second.headers["x-loopwise-cache"] == "hit"
    assert second.headers["x-loopwise-cache-key"] == first.headers["x-loopwise-cache-key"]
    assert second.headers["x-loopwise-cache-max-age"] == "60"
    assert second.headers["cache-control"] == "private, no-store"
    assert second.json()["cache"]["slots"] == {"hero": "hit"}
