"""Consent drives the loop, through the library entry point ``loopwise.Engine``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopwise.catalog.importer import read_items
from loopwise.catalog.items import Item
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file, parse_workspace
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WORKSPACE = load_workspace_file(SAMPLE_WORKSPACE)
ITEMS: list[Item] = list(read_items(SAMPLE_WORKSPACE.parent / str(WORKSPACE.items)))


def new_engine(clock: FixedClock, *, seed: int = 1, document: dict | None = None) -> Engine:
    workspace = parse_workspace(document) if document is not None else WORKSPACE
    engine = Engine(workspace, MemoryStorage(), clock=clock, seed=seed)
    engine.put_items(ITEMS)
    return engine


@pytest.fixture()
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture()
def engine(clock: FixedClock) -> Engine:
    return new_engine(clock)


def send(engine: Engine, clock: FixedClock, kind: str, **message: Any) -> Any:
    clock.advance(20)
    message.setdefault("messageId", str(uuid.uuid4()))
    message.setdefault("timestamp", clock().isoformat())
    return engine.ingest(parse_request(message, kind=kind, received_at=clock()))


def view(engine: Engine, clock: FixedClock, item_id: str, **ids: Any) -> Any:
    return send(
        engine, clock, "track", event="Product Viewed", properties={"product_id": item_id}, **ids
    )


def category_items(category: str) -> list[str]:
    return [item.id for item in ITEMS if category in item.categories]


def decide(engine: Engine, context: dict | None = None, **user: str) -> dict[str, Any]:
    request = DecideRequest.model_validate(
        {
            "user": user,
            "context": context or {"page": {"url": "https://shop.test/"}},
            "slots": [{"slot": "hero"}, {"slot": "recommended", "n": 4}, {"slot": "trending"}],
        }
    )
    return engine.decide(request).model_dump(mode="json")


def slot(body: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in body["slots"] if s["slot"] == key)


def unhurried_workspace() -> dict[str, Any]:
    """The sample, with strategy time budgets no busy test machine overruns: an overrun falls
    back, which would make the two decisions differ for reasons unrelated to consent. Without the
    sample's experiment, so every user gets the slot's own (personal) strategy."""
    document = WORKSPACE.document()
    document["experiments"] = []
    for entry in document["slots"]:
        entry["time_budget_ms"] = 60_000
    return document


UNHURRIED = unhurried_workspace()


# -- analytics ----------------------------------------------------------------------------------


def test_without_analytics_events_leave_no_profile_and_no_identifiable_event(
    engine: Engine, clock: FixedClock
) -> None:
    engine.put_consent("u1", {"categories": {"analytics": False}, "source": "banner"})
    item = category_items("hiking")[0]
    before = engine.services.views.item_stats.stats.score(item, clock())
    result = view(engine, clock, item, userId="u1", anonymousId="a1")
    assert (result.accepted, result.anonymised) == (0, 1)
    assert engine.profile_view("u1") is None and engine.profile_view("a1") is None
    assert engine.storage.events.count() == 0 and engine.storage.profiles.count() == 0
    assert list(engine.storage.identities.iter()) == []
    # only the anonymous item count used it
    assert engine.services.views.item_stats.stats.score(item, clock()) > before


def test_eu_visitors_are_opt_in_and_segment_consent_fields_grant_analytics(
    engine: Engine, clock: FixedClock
) -> None:
    item = category_items("running")[0]
    de = {"location": {"country": "DE"}}
    view(engine, clock, item, anonymousId="eu1", context=de)
    assert engine.profile_view("eu1") is None
    granted = {**de, "consent": {"categoryPreferences": {"analytics": True, "Ads": True}}}
    view(engine, clock, item, anonymousId="eu1", context=granted)
    assert engine.profile_view("eu1") is not None
    assert engine.storage.events.count() == 1
    history = engine.consent_history("eu1")
    assert [(r["source"], r["before"], r["after"]) for r in history] == [
        ("event", {}, {"analytics": True})
    ]
    # the same preferences on every later event are not new changes
    view(engine, clock, item, anonymousId="eu1", context=granted)
    assert len(engine.consent_history("eu1")) == 1
    assert engine.get_consent("eu1")["categories"]["analytics"] is True


def test_an_event_that_withdraws_analytics_is_itself_kept_out(
    engine: Engine, clock: FixedClock
) -> None:
    item = category_items("yoga")[0]
    view(engine, clock, item, userId="u2")
    withdraw = {"consent": {"categoryPreferences": {"analytics": False}}}
    result = view(engine, clock, item, userId="u2", context=withdraw)
    assert result.anonymised == 1
    assert engine.storage.events.count() == 1  # the earlier event only
    assert engine.get_consent("u2")["explicit"]["analytics"]["source"] == "event"


def test_without_analytics_decisions_are_logged_under_no_profile(
    engine: Engine, clock: FixedClock
) -> None:
    engine.put_consent("u3", {"categories": {"analytics": False}})
    body = decide(engine, user_id="u3")
    stored = engine.get_decision(body["decision_id"])
    assert stored is not None and stored["profile_id"] == ""


# -- identity -----------------------------------------------------------------------------------


def test_consent_given_while_anonymous_follows_the_person(
    engine: Engine, clock: FixedClock
) -> None:
    view(engine, clock, category_items("hiking")[0], anonymousId="anon-7")
    engine.put_consent("anon-7", {"categories": {"personalization": False}, "source": "banner"})
    send(engine, clock, "identify", userId="user-7", anonymousId="anon-7")
    assert engine.get_consent("user-7")["categories"]["personalization"] is False
    reasons = slot(decide(engine, user_id="user-7"), "recommended")["reasons"]
    assert any(r["kind"] == "consent" for r in reasons)


def test_on_merge_the_most_recent_choice_per_category_wins(
    engine: Engine, clock: FixedClock
) -> None:
    view(engine, clock, category_items("hiking")[0], anonymousId="anon-8")
    view(engine, clock, category_items("running")[0], userId="user-8")
    engine.put_consent("user-8", {"categories": {"pricing": False, "marketing": True}})
    clock.advance(60)
    engine.put_consent("anon-8", {"categories": {"pricing": True}})
    send(engine, clock, "alias", userId="user-8", previousId="anon-8")
    state = engine.get_consent("user-8")
    assert state["categories"]["pricing"] is True and state["categories"]["marketing"] is True
    assert engine.resolve("anon-8") == engine.resolve("user-8")
    assert len(engine.consent_history("user-8")) == 2


# -- personalization and pricing ----------------------------------------------------------------


def test_withdrawn_personalization_applies_to_the_very_next_request(clock: FixedClock) -> None:
    engine = new_engine(clock, document=UNHURRIED)
    for item in category_items("hiking")[:3]:
        view(engine, clock, item, userId="u9")
    personal = slot(decide(engine, user_id="u9"), "recommended")
    assert personal["strategy"] == "category_affinity" and personal["ai_influenced"]
    engine.put_consent("u9", {"categories": {"personalization": False}})
    body = decide(engine, user_id="u9")
    after = slot(body, "recommended")
    assert after["strategy"] == "popular" and not after["ai_influenced"]
    assert not body["ai_influenced"]
    assert {"kind": "consent", "ref": "personalization"}.items() <= next(
        r for r in after["reasons"] if r["kind"] == "consent"
    ).items()
    assert body["segments"] == decide(engine, user_id="brand-new")["segments"]
    engine.put_consent("u9", {"categories": {"personalization": True}})
    assert slot(decide(engine, user_id="u9"), "recommended")["strategy"] == "category_affinity"


def test_a_withdrawal_wins_over_a_choice_an_event_dated_in_the_future(
    engine: Engine, clock: FixedClock
) -> None:
    # a client clock 1 hour ahead (no sentAt to correct it): the event's time is in the future
    ahead = (T0 + timedelta(hours=1)).isoformat()
    preferences = {"consent": {"categoryPreferences": {"personalization": True}}}
    send(engine, clock, "track", userId="u-ahead", event="Product Viewed", properties={},
         timestamp=ahead, context=preferences)  # fmt: skip
    assert engine.get_consent("u-ahead")["categories"]["personalization"] is True
    clock.advance(60)
    engine.put_consent("u-ahead", {"categories": {"personalization": False}, "source": "banner"})
    assert engine.get_consent("u-ahead")["categories"]["personalization"] is False
    reasons = slot(decide(engine, user_id="u-ahead"), "recommended")["reasons"]
    assert any(r["kind"] == "consent" for r in reasons)


def pricing_workspace() -> dict[str, Any]:
    document = WORKSPACE.document()
    hero = next(s for s in document["slots"] if s["key"] == "hero")
    hero["rules"].insert(
        0,
        {
            "id": "member-price",
            "description": "Members get their personal price",
            "when": {"profile.item_views": {"$gte": 1}},
            "then": {"variant": "running-season"},
            "priority": 1000,
            "pricing": True,
        },
    )
    return document


def test_a_pricing_rule_fires_only_with_pricing_consent(clock: FixedClock) -> None:
    engine = new_engine(clock, document=pricing_workspace())
    assert engine.workspace.slots[0].rules[0].pricing
    view(engine, clock, category_items("cycling")[0], userId="p1")
    assert slot(decide(engine, user_id="p1"), "hero")["rule"] == "member-price"
    engine.put_consent("p1", {"categories": {"pricing": False}})
    hero = slot(decide(engine, user_id="p1"), "hero")
    assert hero["rule"] != "member-price"
    # personalization still on: other profile rules still apply
    assert hero["variant"]["id"] in {"welcome", "welcome-back", "running-season"}


# -- property: no personalization == a brand-new user -------------------------------------------

KINDS = ["Product Viewed", "Product Added", "Order Completed"]
history_strategy = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, len(ITEMS) - 1), st.booleans()),
    min_size=1,
    max_size=12,
)
contexts = st.fixed_dictionaries(
    {"page": st.just({"url": "https://shop.test/"})},
    optional={
        "location": st.sampled_from([{"country": "US"}, {"country": "GB"}, {"country": "DE"}]),
        "campaign": st.just({"source": "newsletter", "medium": "email"}),
    },
)


def without_ids(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("decision_id", "profile_id")}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=history_strategy, context=contexts, seed=st.integers(0, 2**16))
def test_without_personalization_a_decision_equals_a_brand_new_users(
    history: list[tuple[str, int, bool]], context: dict[str, Any], seed: int
) -> None:
    """Two engines with the same seed and the same events (so the same item statistics); in one
    the person with the history decides, in the other a person never seen before."""
    bodies = []
    for who in ("h1", "newcomer"):
        clock = FixedClock(T0)
        engine = new_engine(clock, seed=seed, document=UNHURRIED)
        for kind, index, identified in history:
            ids = {"userId": "h1"} if identified else {"anonymousId": "h1-anon"}
            properties: dict[str, Any] = {"product_id": ITEMS[index].id}
            if kind == "Order Completed":
                properties = {"products": [{"product_id": ITEMS[index].id}], "revenue": 10}
            send(engine, clock, "track", event=kind, properties=properties, **ids)
        send(engine, clock, "identify", userId="h1", anonymousId="h1-anon")
        engine.put_consent(who, {"categories": {"personalization": False}})
        bodies.append(without_ids(decide(engine, context=context, user_id=who)))
    assert bodies[0] == bodies[1]


def test_consent_is_durable_across_restarts(tmp_path: Path) -> None:
    engine, _ = Engine.open(tmp_path, environ={})
    try:
        engine.put_consent("u-restart", {"categories": {"personalization": False}})
    finally:
        engine.close()
    reopened, _ = Engine.open(tmp_path, environ={})
    try:
        state = reopened.get_consent("u-restart")
        assert state["explicit"]["personalization"]["granted"] is False
        reasons = slot(decide(reopened, user_id="u-restart"), "recommended")["reasons"]
        assert any(r["kind"] == "consent" for r in reasons)
    finally:
        reopened.close()
