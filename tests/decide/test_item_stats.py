from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loopwise.decide.item_stats import DecayedScores, ItemStats
from loopwise.events.kinds import EventKind

T0 = datetime(2025, 1, 1, tzinfo=UTC)
VIEW, CART, BUY, CLICK = (
    EventKind.ITEM_VIEW,
    EventKind.ADD_TO_CART,
    EventKind.PURCHASE,
    EventKind.CLICK,
)


def test_weights_by_kind_and_impressions_ignored() -> None:
    stats = ItemStats()
    stats.observe(VIEW, ["a"], T0)
    stats.observe(CART, ["b"], T0)
    stats.observe(BUY, ["c"], T0)
    stats.observe(CLICK, ["d"], T0)
    stats.observe(EventKind.IMPRESSION, ["e"], T0)
    stats.observe(EventKind.PAGE, ["e"], T0)
    assert stats.popular(T0, limit=10) == [("c", 5.0), ("b", 3.0), ("d", 2.0), ("a", 1.0)]
    assert "e" not in stats.first_seen


def test_popularity_halves_every_half_life() -> None:
    stats = ItemStats(half_life_days=7)
    stats.observe(BUY, ["a"], T0)
    assert stats.score("a", T0 + timedelta(days=7)) == pytest.approx(2.5)
    assert stats.score("a", T0 + timedelta(days=14)) == pytest.approx(1.25)


def test_recent_activity_outranks_older_heavier_activity() -> None:
    stats = ItemStats(half_life_days=1)
    stats.observe(BUY, ["old"], T0)  # 5, decays to 5/8 after 3 days
    stats.observe(VIEW, ["new"], T0 + timedelta(days=3))  # 1
    assert [item for item, _ in stats.popular(T0 + timedelta(days=3))] == ["new", "old"]
    # more events for an item move it up the live ranking
    stats.observe(VIEW, ["old"], T0 + timedelta(days=3))
    assert stats.popular(T0 + timedelta(days=3), limit=1)[0][0] == "old"


def test_ranking_survives_rebasing_over_long_spans() -> None:
    scores = DecayedScores(half_life_seconds=1.0)
    scores.add("a", 1.0, 0.0)
    scores.add("b", 3.0, 100.0)  # exponent 100 > the rebase threshold
    scores.add("a", 1.0, 100.0)
    assert scores.value("b", 100.0) == pytest.approx(3.0)
    assert scores.value("a", 100.0) == pytest.approx(1.0)
    assert [key for _, key in scores.slice(0, 2)] == ["b", "a"]


def test_segment_popularity_is_separate() -> None:
    stats = ItemStats()
    stats.observe(VIEW, ["shoe"], T0, segments=["runners"])
    stats.observe(VIEW, ["shoe"], T0, segments=["runners"])
    stats.observe(BUY, ["mat"], T0, segments=["yogis"])
    assert stats.popular(T0, segment="runners") == [("shoe", 2.0)]
    assert stats.popular(T0)[0] == ("mat", 5.0)
    assert stats.popular(T0, segment="unknown") == []
    assert stats.segments() == ["runners", "yogis"]
    assert stats.segment_volume("runners") == 1


def test_iter_popular_is_lazy_and_complete() -> None:
    stats = ItemStats()
    for index in range(200):
        stats.observe(VIEW, [f"i{index:03d}"], T0 + timedelta(seconds=index))
    ids = [item for item, _ in stats.iter_popular(T0 + timedelta(seconds=200), chunk=7)]
    assert len(ids) == 200
    assert ids[0] == "i199" and ids[-1] == "i000"


def test_trending_prefers_rising_items_with_volume() -> None:
    stats = ItemStats(trending_min_volume=3)
    now = T0 + timedelta(days=14)
    for day in range(14):  # steady: one view a day for two weeks
        stats.observe(VIEW, ["steady"], T0 + timedelta(days=day))
    for _ in range(6):  # a burst today
        stats.observe(VIEW, ["rising"], now - timedelta(hours=1))
    stats.observe(VIEW, ["rare"], now)  # too little volume
    trending = stats.trending(now)
    assert [item for item, _ in trending] == ["rising"]
    assert trending[0][1] > 1.0


def test_trending_cache_refreshes_with_event_time() -> None:
    stats = ItemStats(trending_min_volume=1, trending_refresh_events=1000)
    stats.observe(BUY, ["a"], T0)
    assert [item for item, _ in stats.trending(T0)] == ["a"]
    stats.observe(BUY, ["b"], T0)
    stats.observe(BUY, ["b"], T0)
    # within the same second and below the refresh count: the cached ranking is served
    assert [item for item, _ in stats.trending(T0)] == ["a"]
    later = T0 + timedelta(seconds=2)
    assert [item for item, _ in stats.trending(later)] == ["b", "a"]


def test_together_counts_pairs_with_recent_items() -> None:
    stats = ItemStats()
    stats.observe(VIEW, ["socks"], T0, recent_items=["shoe"])
    stats.observe(BUY, ["laces"], T0, recent_items=["shoe", "socks"])
    stats.observe(VIEW, ["mat"], T0, recent_items=["yoga-block"])
    together = dict(stats.together(["shoe"]))
    assert together == {"laces": 5.0, "socks": 1.0}
    # symmetric, and anchors are never returned
    assert dict(stats.together(["laces"])) == {"shoe": 5.0, "socks": 5.0}
    assert "shoe" not in dict(stats.together(["shoe", "socks"]))


def test_together_weights_newer_anchors_more() -> None:
    stats = ItemStats()
    stats.observe(VIEW, ["x"], T0, recent_items=["a"])
    stats.observe(VIEW, ["y"], T0, recent_items=["b"])
    assert [item for item, _ in stats.together(["a", "b"])] == ["x", "y"]
    assert [item for item, _ in stats.together(["b", "a"])] == ["y", "x"]


def test_items_in_one_order_are_bought_together() -> None:
    stats = ItemStats()
    stats.observe(BUY, ["a", "b"], T0)
    assert stats.together(["a"]) == [("b", 5.0)]
    assert stats.together(["b"]) == [("a", 5.0)]


def test_neighbours_are_bounded() -> None:
    stats = ItemStats(max_neighbours=10)
    for index in range(50):
        stats.observe(VIEW, [f"n{index}"], T0, recent_items=["hub"])
    stats.observe(BUY, ["best"], T0, recent_items=["hub"])
    neighbours = stats.together(["hub"], limit=100)
    assert len(neighbours) <= 12
    assert neighbours[0] == ("best", 5.0)


def test_first_seen_keeps_the_first_time() -> None:
    stats = ItemStats()
    stats.observe(VIEW, ["a"], T0)
    stats.observe(VIEW, ["a"], T0 + timedelta(days=1))
    assert stats.first_seen["a"] == T0
    assert stats.empty is False
    assert ItemStats().empty is True
