"""Visits as long as real ones, going back to products seen earlier in them, and people who move
on from products they set aside; and the statistics that compare the simulator with a real log
(``benchmarks.bench_sequence.realism``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from benchmarks.bench_sequence import EVENT_NAMES, realism

from loopwise.models.interactions import Interaction
from loopwise.sim import SimConfig, Simulation, popular_policy
from loopwise.sim.behaviour import DEFAULT_PARAMS
from loopwise.sim.catalog import generate_catalog
from loopwise.sim.session import organic_view_count, organic_views


def test_visit_lengths_have_many_single_views_and_a_long_tail() -> None:
    rng = np.random.default_rng(0)
    counts = np.array([organic_view_count(rng, DEFAULT_PARAMS) for _ in range(20_000)])
    assert counts.min() == 1
    assert counts.mean() == pytest.approx(DEFAULT_PARAMS.organic_views, rel=0.05)
    assert np.mean(counts == 1) > 0.2  # 1 + Poisson(3.6) would give 3%
    assert np.mean(counts >= 10) > 0.05
    poisson = replace(DEFAULT_PARAMS, organic_dispersion=1e9)
    counts = np.array([organic_view_count(rng, poisson) for _ in range(20_000)])
    assert np.mean(counts == 1) < 0.05
    assert organic_view_count(rng, replace(DEFAULT_PARAMS, organic_views=1.0)) == 1


def test_revisits_go_back_to_an_earlier_product_not_the_previous_one() -> None:
    catalog = generate_catalog(120, np.random.default_rng(2))
    rng = np.random.default_rng(3)
    utility = rng.normal(0.0, 1.0, len(catalog))
    intent = np.flatnonzero(catalog.category_index == catalog.category_index[0])
    picks, follows = rng.random(12), rng.random(12)
    always = replace(DEFAULT_PARAMS, revisit_share=1.0)
    views = organic_views(catalog, utility, intent, picks, follows, always, rng.random((2, 12)))
    assert len(views) > 12  # every step after the second adds a revisit
    seen: list[int] = []
    revisits = 0
    for k, item in enumerate(views.tolist()):
        if item in seen and k and views[k - 1] != item:
            revisits += 1
        seen.append(item)
    assert revisits >= 10
    never = replace(DEFAULT_PARAMS, revisit_share=0.0)
    plain = organic_views(catalog, utility, intent, picks, follows, never)
    assert (
        plain.tolist()
        == organic_views(
            catalog, utility, intent, picks, follows, never, rng.random((2, 12))
        ).tolist()
    )
    assert len(plain) == 12


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return Simulation(SimConfig(seed=11, n_users=600, n_items=200, days=14))


def test_a_revisit_is_a_product_view_without_an_add(sim: Simulation) -> None:
    result = sim.run(popular_policy(sim.catalog), days=4)
    revisited = [o for o in result.sessions if o.revisits]
    assert revisited
    for outcome in revisited:
        assert len(set(outcome.viewed)) == len(outcome.viewed)
        views = [row for row in outcome.interactions if row[3] == "view"]
        assert len(views) == len(outcome.viewed) + outcome.revisits
    viewed = sum(1 for m in result.messages if m.get("event") == "Product Viewed")
    assert viewed == sum(len(o.viewed) + o.revisits for o in result.sessions)


def _stats(config: SimConfig) -> dict[str, float]:
    sim = Simulation(config)
    rows = sim.run(popular_policy(sim.catalog), keep_messages=False).interactions
    return realism([Interaction(u, i, t.timestamp(), EVENT_NAMES[k]) for u, i, t, k in rows])


def test_people_move_on_from_products_they_set_aside() -> None:
    config = SimConfig(seed=5, n_users=500, n_items=300, days=14)
    stay = _stats(replace(config, behaviour=replace(DEFAULT_PARAMS, moved_on_discount=0.0)))
    move = _stats(replace(config, behaviour=replace(DEFAULT_PARAMS, moved_on_discount=6.0)))
    older_stay = stay["from_earlier_visits"] - stay["from_previous_visit"]
    older_move = move["from_earlier_visits"] - move["from_previous_visit"]
    assert older_move < 0.6 * older_stay  # fewer returns to products of visits before the last
    assert move["from_previous_visit"] > 0.5 * stay["from_previous_visit"]  # the last one's stay


def test_realism_statistics_of_a_small_log() -> None:
    hour = 3600.0

    def click(user: str, item: str, at: float) -> Interaction:
        return Interaction(user, item, at, "view")

    log = [
        click("a", "x", 0.0),
        click("a", "x", 60.0),
        click("a", "y", 120.0),
        click("a", "x", 180.0),  # visit 1: x x y x
        Interaction("a", "y", 200.0, "add_to_cart"),  # not a click
        click("a", "y", 10 * hour),
        click("a", "z", 10 * hour + 60),  # visit 2, 10 h later: y z
        click("a", "x", 40 * hour),  # visit 3, 30 h later: x
        click("b", "z", 0.0),
    ]
    stats = realism(log)
    assert stats["people"] == 2 and stats["visits"] == 4
    assert stats["clicks_per_visit"] == pytest.approx(8 / 4)
    assert stats["single_click_visits"] == pytest.approx(2 / 4)
    assert stats["distinct_per_visit"] == pytest.approx((2 + 2 + 1 + 1) / 4)
    assert stats["consecutive_same"] == pytest.approx(1 / 4)  # pairs: xx xy yx yz
    assert stats["repeat_in_visit"] == pytest.approx(2 / 8)
    assert stats["from_previous_visit"] == pytest.approx(1 / 3)  # y (of y z) and not x
    assert stats["from_earlier_visits"] == pytest.approx(2 / 3)
    assert stats["from_previous_within_day"] == pytest.approx(1 / 2)
    assert stats["from_previous_after_day"] == pytest.approx(0.0)
    assert stats["hours_between_visits"] == pytest.approx(
        (10 * hour - 180 + 30 * hour - 60) / 2 / hour
    )
