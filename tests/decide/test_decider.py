from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from loopwise.catalog.items import Item
from loopwise.decide.decider import Decider, is_cold_start
from loopwise.decide.filters import ItemFilters
from loopwise.decide.item_stats import ItemStats
from loopwise.decide.request import DecideRequest, SlotDecision, SlotRequest
from loopwise.decide.slots import Slot
from loopwise.decide.strategies import ScoredItem, StrategyContext, StrategyRegistry
from loopwise.errors import ValidationFailed
from loopwise.events.kinds import EventKind

NOW = datetime(2025, 5, 1, 12, tzinfo=UTC)
CATEGORIES = ("running", "yoga", "camping")


def build_catalog() -> dict[str, Item]:
    """30 items: r00-r09 running, y00-y09 yoga, c00-c09 camping; every 5th is out of stock."""
    items = {}
    for category in CATEGORIES:
        for index in range(10):
            item_id = f"{category[0]}{index:02d}"
            items[item_id] = Item(
                item_id,
                title=f"{category.title()} {index}",
                url=f"https://shop.test/{item_id}",
                categories=(category,),
                attributes={"price": 10.0 * (index + 1), "in_stock": index % 5 != 4, "margin": 0.3},
                created_at=NOW - timedelta(days=index + 1),
            )
    return items


def build_stats() -> ItemStats:
    """Camping is the most popular overall; within a category lower index = more popular."""
    stats = ItemStats()
    at = NOW - timedelta(hours=1)
    for category, base in (("camping", 30), ("yoga", 20), ("running", 10)):
        for index in range(10):
            for _ in range(base - index):
                stats.observe(EventKind.ITEM_VIEW, [f"{category[0]}{index:02d}"], at)
    return stats


class Boom:
    name = "boom"

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        raise RuntimeError("model file is corrupt")


class Slow:
    """Pretends to take 80 ms by moving the decider's fake timer."""

    name = "slow"

    def __init__(self, timer: FakeTimer) -> None:
        self.timer = timer

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        self.timer.now += 0.080
        return [ScoredItem("y00", 1.0, reason="slow but sure")]


class Sloppy:
    """A badly behaved model: duplicates, unknown and out-of-stock ids, bad propensities."""

    name = "sloppy"

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        return [
            ScoredItem("nope", 5.0),
            ScoredItem("r04", 4.0),  # out of stock
            ScoredItem("r01", 3.0, propensity=7.0),
            ScoredItem("r01", 2.0),
            ScoredItem("r02", 1.0, propensity=0.25),
        ]


class FakeTimer:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


SLOTS: list[dict[str, Any]] = [
    {
        "key": "hero",
        "kind": "block",
        "variants": [
            {"id": "generic", "content": {"headline": "Gear for every adventure"}},
            {"id": "running", "content": {"headline": "Run further", "cta": "Shop running"}},
        ],
        "rules": [
            {"id": "running-fans", "segments": ["running_fans"], "then": {"variant": "running"}}
        ],
    },
    {
        "key": "recs",
        "kind": "list",
        "default_strategy": "category_affinity",
        "rules": [
            {
                "id": "spring-sale",
                "when": {"context.campaign.name": "spring"},
                "then": {"pin": ["y03", "y04", "c02"], "bury": ["r00"], "exclude": ["r01"]},
            },
            {
                "id": "boost-trail",
                "when": {"context.page.path": "/trail"},
                "then": {"boost": ["r03"], "boost_factor": 10},
            },
        ],
    },
    {"key": "more", "kind": "list", "n": 6},
    {
        "key": "fragile",
        "kind": "list",
        "default_strategy": "boom",
        "fallback_items": ["y05", "y06"],
    },
    {"key": "slow", "kind": "list", "default_strategy": "slow", "fallback_items": ["c05"], "n": 2},
    {"key": "ghost", "kind": "list", "default_strategy": "als", "n": 2},
    {"key": "sloppy", "kind": "list", "default_strategy": "sloppy", "n": 3},
    {
        "key": "history",
        "kind": "list",
        "default_strategy": "recently_viewed",
        "fallback_items": ["c09", "c08", "c07"],
        "n": 4,
    },
    {"key": "explore", "kind": "list", "exploration": 0.5, "n": 4},
]

RUNNER = {
    "item_views": 12,
    "recently_viewed": ["r02", "r05"],
    "purchased_items": ["r00"],
    "affinity": {"categories": {"running": 9.0, "yoga": 1.0}},
}


@pytest.fixture()
def timer() -> FakeTimer:
    return FakeTimer()


@pytest.fixture()
def decider(timer: FakeTimer) -> Decider:
    registry = StrategyRegistry.default()
    for strategy in (Boom(), Slow(timer), Sloppy()):
        registry.register(strategy)
    slots = {raw["key"]: Slot.model_validate(raw) for raw in SLOTS}
    return Decider(slots, registry, build_catalog(), build_stats(), timer=timer)


def decide(
    decider: Decider,
    *slots: str | SlotRequest,
    profile: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    segments: list[str] | None = None,
    seed: int = 7,
) -> list[SlotDecision]:
    requests = [s if isinstance(s, SlotRequest) else SlotRequest(slot=s) for s in slots]
    return decider.decide_slots(
        requests,
        profile=RUNNER if profile is None else profile,
        context=context or {},
        segments=segments or [],
        segment_names={"running_fans": "Running fans"},
        now=NOW,
        rng=random.Random(seed),
    )


def ids(decision: SlotDecision) -> list[str]:
    return [item.id for item in decision.items]


def texts(decision: SlotDecision, kind: str | None = None) -> list[str]:
    return [r.text for r in decision.reasons if kind is None or r.kind == kind]


def test_runner_gets_running_items_with_reasons(decider: Decider) -> None:
    (recs,) = decide(decider, "recs")
    assert ids(recs) == ["r01", "r02", "r03", "r05"]  # r00 bought, r04 out of stock
    assert recs.strategy == "category_affinity" and recs.rule is None and not recs.fallback
    assert texts(recs, "strategy") == [
        'Strategy category_affinity: popular in your top category "running"'
    ]
    assert all(item.propensity == 1.0 for item in recs.items) and recs.propensity == 1.0
    first = recs.items[0]
    assert (first.title, first.url) == ("Running 1", "https://shop.test/r01")
    assert first.attributes == {"price": 20.0, "in_stock": True}  # margin stays private


def test_block_slot_variant_by_segment_rule(decider: Decider) -> None:
    (hero,) = decide(decider, "hero", segments=["running_fans"])
    assert hero.kind == "block" and hero.variant is not None
    assert hero.variant.id == "running"
    assert hero.variant.content["cta"] == "Shop running"
    assert hero.rule == "running-fans"
    assert texts(hero) == [
        'Rule "running-fans" matched: you are in segment Running fans',
        "You are in segment Running fans",
        'Variant "running" chosen by rule "running-fans"',
    ]
    assert [r.ref for r in hero.reasons] == ["running-fans", "running_fans", "running"]
    (other,) = decide(decider, "hero", segments=["yoga_fans"])
    assert other.variant is not None and other.variant.id == "generic" and other.rule is None
    assert texts(other, "variant") == ['Variant "generic": the slot\'s default content']


def test_pinned_items_come_first_and_respect_filters(decider: Decider) -> None:
    (recs,) = decide(decider, "recs", context={"campaign": {"name": "spring"}})
    # y04 is out of stock, so it is not pinned; r01 is excluded by the rule
    assert ids(recs)[:2] == ["y03", "c02"]
    assert "r01" not in ids(recs)
    assert recs.rule == "spring-sale"
    assert 'Rule "spring-sale" pinned y03, c02 to the top' in texts(recs, "rule")


def test_bury_moves_items_to_the_end(decider: Decider) -> None:
    profile = {**RUNNER, "purchased_items": []}
    request = SlotRequest(slot="recs", n=5)
    (plain,) = decide(decider, request, profile=profile)
    assert ids(plain)[0] == "r00"
    (sale,) = decide(decider, request, profile=profile, context={"campaign": {"name": "spring"}})
    assert ids(sale) == ["y03", "c02", "r02", "r03", "r05"]  # r00 buried out of the top 5


def test_boost_moves_an_item_up(decider: Decider) -> None:
    (plain,) = decide(decider, "recs")
    assert ids(plain).index("r03") == 2
    (boosted,) = decide(decider, "recs", context={"page": {"path": "/trail"}})
    assert ids(boosted)[0] == "r03"
    assert boosted.rule == "boost-trail"
    assert 'Rule "boost-trail" matched: its conditions hold for this visit' in texts(boosted)


def test_no_item_repeats_across_slots(decider: Decider) -> None:
    recs, more, history = decide(decider, "recs", "more", "history")
    shown = ids(recs) + ids(more) + ids(history)
    assert len(shown) == len(set(shown)) == 14
    assert ids(more) == ["c00", "c01", "c02", "c03", "c05", "c06"]  # popular, c04 out of stock
    # r02/r05 were shown above, so recently_viewed has nothing left and says so
    assert ids(history) == ["c07", "c08", "y00", "y01"]
    assert texts(history, "strategy") == [
        "Strategy recently_viewed: no recently viewed items to show, showing popular items"
    ]


def test_cold_start_falls_back_to_popular(decider: Decider) -> None:
    assert is_cold_start({}) and not is_cold_start(RUNNER)
    (recs,) = decide(decider, "recs", profile={})
    assert ids(recs) == ["c00", "c01", "c02", "c03"]
    assert "Cold start: no history yet, showing popular items" in texts(recs, "cold_start")
    assert texts(recs, "strategy") == [
        "Strategy category_affinity: no category interests yet, showing popular items"
    ]


def test_failing_strategy_uses_static_fallback(decider: Decider) -> None:
    (fragile,) = decide(decider, "fragile")
    assert ids(fragile) == ["y05", "y06", "c00", "c01"]
    assert fragile.fallback is True and fragile.strategy == "boom"
    assert texts(fragile, "fallback") == [
        "Fallback: strategy boom failed (RuntimeError: model file is corrupt), "
        "showing the static fallback and popular items"
    ]


def test_strategy_over_budget_is_not_used(decider: Decider, timer: FakeTimer) -> None:
    (slow,) = decide(decider, "slow")
    assert ids(slow) == ["c05", "c00"]
    assert slow.fallback
    assert "took 80 ms, over its 50 ms budget" in texts(slow, "fallback")[0]
    budget = decider.slots["slow"].model_copy(update={"time_budget_ms": 100.0})
    decider.slots["slow"] = budget
    (relaxed,) = decide(decider, "slow")
    assert ids(relaxed) == ["y00", "c05"]
    assert texts(relaxed, "fallback") == [
        "Fallback: strategy slow found 1 of 2 items, filled up with the static fallback"
    ]


def test_unregistered_strategy_falls_back(decider: Decider) -> None:
    (ghost,) = decide(decider, "ghost")
    assert ids(ghost) == ["c00", "c01"]
    assert texts(ghost, "fallback") == [
        "Fallback: strategy als failed (not registered), showing popular items"
    ]


def test_sloppy_strategy_output_is_cleaned(decider: Decider) -> None:
    (sloppy,) = decide(decider, "sloppy", profile={})
    assert ids(sloppy) == ["r01", "r02", "c00"]
    assert [item.propensity for item in sloppy.items] == [1.0, 0.25, 1.0]
    assert sloppy.propensity == 0.25
    assert any("found 2 of 3 items, filled up with popular items" in t for t in texts(sloppy))


def test_short_strategy_is_filled_from_static_then_popular(decider: Decider) -> None:
    (history,) = decide(decider, SlotRequest(slot="history", n=6))
    assert ids(history) == ["r02", "r05", "c08", "c07", "c00", "c01"]  # c09 is out of stock
    assert history.fallback
    assert texts(history, "fallback") == [
        "Fallback: strategy recently_viewed found 2 of 6 items, "
        "filled up with the static fallback and popular items"
    ]


def test_request_overrides_size_and_filters(decider: Decider) -> None:
    request = SlotRequest(slot="more", n=2, filters=ItemFilters(categories=["yoga"], price_min=25))
    (more,) = decide(decider, request)
    assert ids(more) == ["y02", "y03"]
    assert texts(more, "filter") == ["Filters: categories yoga; price from 25"]


def test_exploration_propensities(decider: Decider) -> None:
    explored_runs = 0
    for seed in range(200):
        (slot,) = decide(decider, "explore", profile={}, seed=seed)
        propensities = sorted(item.propensity for item in slot.items)
        explored = [r for r in slot.reasons if r.kind == "exploration"]
        if explored:
            explored_runs += 1
            # 24 in-stock items, 4 shown before exploring: 20 in the pool
            assert propensities == pytest.approx([0.5 / 20, 0.5, 0.5, 0.5])
            assert slot.propensity == pytest.approx(0.5 / 20)
            assert explored[0].ref in ids(slot)
            assert ids(slot) != ["c00", "c01", "c02", "c03"]
        else:
            assert ids(slot) == ["c00", "c01", "c02", "c03"]
            assert propensities == [0.5] * 4
    assert 60 < explored_runs < 140  # epsilon = 0.5


def test_no_exploration_means_certainty(decider: Decider) -> None:
    (more,) = decide(decider, "more")
    assert {item.propensity for item in more.items} == {1.0}


def test_decisions_are_reproducible(decider: Decider) -> None:
    first = decide(decider, "recs", "explore", "hero", seed=11)
    again = decide(decider, "recs", "explore", "hero", seed=11)
    assert [d.model_dump() for d in first] == [d.model_dump() for d in again]


def test_unknown_slot_names_the_field(decider: Decider) -> None:
    with pytest.raises(ValidationFailed) as info:
        decide(decider, "recs", "sidebar")
    assert info.value.field == "slots[1].slot"
    assert "hero" in info.value.detail and "sidebar" in info.value.detail
    assert info.value.to_problem()["known_slots"][0] == "explore"


def test_rule_strategy_and_params_override() -> None:
    slot = Slot.model_validate(
        {
            "key": "s",
            "kind": "list",
            "n": 2,
            "strategy_params": {"per_segment": True},
            "rules": [
                {"id": "new", "segments": ["vip"], "then": {"strategy": "new_arrivals"}},
                {
                    "id": "yogis",
                    "segments": ["yogi"],
                    "then": {"strategy_params": {"segment": "y"}},
                },
            ],
        }
    )
    stats = build_stats()
    stats.observe(EventKind.PURCHASE, ["y08"], NOW, segments=["y"])
    decider = Decider({"s": slot}, StrategyRegistry.default(), build_catalog(), stats)
    (vip,) = decide(decider, "s", segments=["vip"])
    assert vip.strategy == "new_arrivals" and vip.rule == "new"
    assert ids(vip) == ["y00", "c00"]  # created a day ago; r00 was bought
    (yogi,) = decide(decider, "s", segments=["yogi"])
    assert yogi.strategy == "popular" and ids(yogi) == ["y08", "c00"]


def test_request_validation() -> None:
    ok = DecideRequest.model_validate({"user": {"anonymous_id": "a1"}, "slots": [{"slot": "recs"}]})
    assert ok.context == {}
    with pytest.raises(ValidationError, match="user_id or anonymous_id"):
        DecideRequest.model_validate({"user": {}, "slots": [{"slot": "recs"}]})
    with pytest.raises(ValidationError) as info:
        DecideRequest.model_validate(
            {"user": {"user_id": "u"}, "slots": [{"slot": "a"}, {"slot": "b"}, {"slot": "a"}]}
        )
    error = info.value.errors()[0]
    assert error["loc"] == ("slots", 2, "slot")
    assert "slots[0]" in error["msg"]
    with pytest.raises(ValidationError) as info:
        DecideRequest.model_validate({"user": {"user_id": "u"}, "slots": [{"slot": "a", "n": 0}]})
    assert info.value.errors()[0]["loc"] == ("slots", 0, "n")
    with pytest.raises(ValidationError):
        DecideRequest.model_validate({"user": {"user_id": "u"}, "slots": []})
    with pytest.raises(ValidationError):
        DecideRequest.model_validate(
            {"user": {"user_id": "u"}, "slots": [{"slot": f"s{i}"} for i in range(21)]}
        )


def test_personal_strategy_is_disclosed_as_ai_influenced(decider: Decider) -> None:
    recs, more = decide(decider, "recs", "more")
    assert recs.ai_influenced  # category_affinity chose from the runner's own interests
    assert not more.ai_influenced  # popular uses no personal data
    # the reasons say so too, in the "model" reason the "Why am I seeing this?" answer shows
    model = [r for r in recs.reasons if r.kind == "model"]
    assert len(model) == 1 and model[0].text.startswith("AI-influenced")
    assert not [r for r in more.reasons if r.kind == "model"]


def test_impersonal_decision_uses_popular_and_says_why(decider: Decider) -> None:
    from loopwise.decide import explain

    (recs,) = decider.decide_slots(
        [SlotRequest(slot="recs")],
        profile={},
        context={},
        segments=[],
        segment_names={},
        now=NOW,
        rng=random.Random(7),
        impersonal=explain.not_consented(),
    )
    assert recs.strategy == "popular" and not recs.ai_influenced
    assert ids(recs) == ["c00", "c01", "c02", "c03"]
    kinds = [r.kind for r in recs.reasons]
    assert "consent" in kinds
    assert any("instead of category_affinity" in t for t in texts(recs, "strategy"))


def test_frozen_catalog_decider_gives_the_same_decisions_as_validated_models(
    timer: FakeTimer,
) -> None:
    """A decider over a copy-on-write catalog (the engine's) works out accepted ids and public
    item forms once and builds its list decisions without re-validating them: the decisions
    equal the plain decider's, and each equals its own validated copy (fields, fields set,
    JSON)."""
    registry = StrategyRegistry.default()
    slots = {raw["key"]: Slot.model_validate(raw) for raw in SLOTS if raw["key"] != "boom"}
    catalog, stats = build_catalog(), build_stats()
    plain = Decider(slots, registry, catalog, stats, timer=timer)
    frozen = Decider(slots, registry, catalog, stats, timer=timer, frozen_catalog=True)
    for _ in range(3):  # accepted ids are worked out on a filter setting's second use
        for profile in (RUNNER, {}):
            pages = [
                decide(d, *(SlotRequest(slot=k) for k in slots), profile=profile)
                for d in (plain, frozen)
            ]
            assert pages[0] == pages[1]
            for decision in pages[1]:
                again = SlotDecision.model_validate(decision.model_dump())
                assert again == decision
                assert again.model_dump_json() == decision.model_dump_json()
                if decision.kind == "list":
                    assert decision.model_fields_set == {
                        f for f in SlotDecision.model_fields if f not in ("variant", "bandit")
                    }
                    for item in decision.items:
                        assert item.model_fields_set == set(type(item).model_fields)
