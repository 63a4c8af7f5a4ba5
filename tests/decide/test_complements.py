"""The ``complements`` strategy: cart cross-sells from bought-together and category complements,
never what is in the cart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from loopwise.catalog.items import Item
from loopwise.decide.item_stats import ItemStats
from loopwise.decide.strategies import ComplementsStrategy, StrategyContext, StrategyRegistry
from loopwise.events.kinds import EventKind

NOW = datetime(2025, 3, 1, tzinfo=UTC)
BUY, VIEW = EventKind.PURCHASE, EventKind.ITEM_VIEW

CATALOG = {
    item.id: item
    for item in [
        Item("camera", categories=("cameras",)),
        Item("camera-2", categories=("cameras",)),
        Item("card", categories=("memory",)),
        Item("card-big", categories=("memory",)),
        Item("tripod", categories=("tripods",)),
        Item("tripod-mini", categories=("tripods",)),
        Item("bag", categories=("bags",), attributes={"in_stock": False}),
        Item("sock", categories=("clothing",)),
    ]
}


def stats() -> ItemStats:
    s = ItemStats()
    day = NOW - timedelta(days=1)
    for _ in range(3):  # bought together: camera with card, camera with the second camera
        s.observe(BUY, ["camera", "card"], day)
    for _ in range(4):
        s.observe(BUY, ["camera", "camera-2"], day)
    s.observe(BUY, ["camera", "bag"], day)
    for _ in range(5):
        s.observe(VIEW, ["sock"], day)
    s.observe(VIEW, ["tripod-mini"], day)
    return s


def ctx(cart: list[str], params: dict[str, Any] | None = None) -> StrategyContext:
    return StrategyContext(
        profile={"cart": {"items": cart}},
        context={},
        segments=[],
        catalog=CATALOG,
        stats=stats(),
        now=NOW,
        params=params or {},
        accept=lambda item: item.in_stock,
    )


def test_bought_together_comes_first_and_a_same_category_item_counts_less() -> None:
    picks = ComplementsStrategy().recommend(ctx(["camera"]), 4)
    ids = [p.item_id for p in picks]
    # camera-2 was bought with the camera more often (4 vs 3) but is another camera: x0.25
    assert ids[:2] == ["card", "camera-2"]
    assert picks[0].score == 1.0
    assert "cart" in picks[0].reason
    assert "camera" not in ids and "bag" not in ids  # the cart; out of stock


def test_configured_category_complements_join_in() -> None:
    params = {"categories": {"cameras": ["tripods", "cameras"]}}
    picks = ComplementsStrategy().recommend(ctx(["camera"], params), 5)
    ids = [p.item_id for p in picks]
    assert ids[0] == "card"
    # the popular tripod first (0.5), then the other (0.25); the cart's own category is no
    # complement of itself
    assert ids.index("tripod-mini") < ids.index("tripod")
    assert next(p for p in picks if p.item_id == "tripod-mini").score == 0.5
    assert "tripods" in next(p for p in picks if p.item_id == "tripod").reason


def test_the_cart_is_excluded_for_the_whole_slot() -> None:
    context = ctx(["camera", "card"])
    picks = ComplementsStrategy().recommend(context, 8)
    assert not {"camera", "card"} & {p.item_id for p in picks}
    assert {"camera", "card"} <= context.exclude  # the decider's fallbacks skip them too


def test_an_empty_cart_falls_back_to_popular_and_says_so() -> None:
    picks = ComplementsStrategy().recommend(ctx([]), 2)
    assert [p.item_id for p in picks] == ["camera", "camera-2"]  # the most bought
    assert all(p.fallback for p in picks)
    assert "cart is empty" in picks[0].reason


def test_explicit_items_count_as_cart() -> None:
    context = StrategyContext(
        profile={}, context={}, segments=[], catalog=CATALOG, stats=stats(), now=NOW,
        params={"items": ["camera"]},
    )  # fmt: skip
    assert ComplementsStrategy().recommend(context, 1)[0].item_id == "card"


def test_it_is_a_built_in_and_personal() -> None:
    registry = StrategyRegistry.default()
    assert "complements" in registry.names()
    assert registry.get("complements").personal is True  # type: ignore[attr-defined]
