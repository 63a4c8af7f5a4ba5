"""Realistic people: interests that drift, visits with an intent, views that follow each other,
and rates near a real shop's."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from loopwise.sim import SimConfig, Simulation, popular_policy
from loopwise.sim.population import INTENT_CARRYOVER, session_intent


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return Simulation(SimConfig(seed=11, n_users=600, n_items=200, days=14))


@pytest.fixture(scope="module")
def run(sim: Simulation):  # type: ignore[no-untyped-def]
    return sim.run(popular_policy(sim.catalog), keep_messages=False)


def test_interests_move_from_the_first_mix_to_the_later_one(sim: Simulation) -> None:
    user = next(u for u in sim.users if len(u.liked_categories) == 3)
    first, later = np.asarray(user.interests), np.asarray(user.interests_later)
    assert user.interest_mix(user.arrival_day) == pytest.approx(first)
    end = user.arrival_day + int(np.ceil(user.drift_days))
    assert user.interest_mix(end) == pytest.approx(later)
    middle = user.interest_mix(user.arrival_day + int(user.drift_days / 2))
    assert np.all(middle >= np.minimum(first, later) - 1e-9)
    assert sum(user.interest_mix(end + 100)) == pytest.approx(1.0)


def test_intent_is_a_liked_category_often_carried_over(sim: Simulation) -> None:
    user = next(u for u in sim.users if len(u.liked_categories) >= 2)
    rng = np.random.default_rng(0)
    previous = user.liked_categories[0]
    picks = [session_intent(user, 3, previous, (rng.random(), rng.random())) for _ in range(2000)]
    assert set(picks) <= set(user.liked_categories)
    assert picks.count(previous) / len(picks) >= INTENT_CARRYOVER
    assert session_intent(user, 3, None, (0.0, 0.0)) == user.liked_categories[0]


def test_visits_stay_on_their_intent_and_views_follow_each_other(sim: Simulation, run) -> None:  # type: ignore[no-untyped-def]
    on_intent = total = similar_next = pairs = 0
    category = sim.catalog.category_index
    vectors = sim.catalog.item_vectors
    for outcome in run.sessions:
        assert outcome.intent is not None
        organic = [i for i in outcome.viewed if i not in outcome.clicked]
        on_intent += sum(int(category[i] == outcome.intent) for i in organic)
        total += len(organic)
        for a, b in itertools.pairwise(organic):
            pairs += 1
            similar_next += int(vectors[a] @ vectors[b] > np.median(vectors @ vectors[a]))
    assert on_intent / total > 0.6  # the explore share and clicks take the rest
    assert similar_next / pairs > 0.7


def test_rates_are_near_a_real_shop(run) -> None:  # type: ignore[no-untyped-def]
    total = run.total
    by_user: Counter[str] = Counter()
    for outcome in run.sessions:
        by_user[outcome.user_id] += outcome.converted
    buyers = sum(1 for n in by_user.values() if n) / len(by_user)
    assert 0.01 < total.conversion_rate < 0.08  # orders per visit
    assert 0.02 < total.click_through_rate < 0.12
    assert 0.15 < total.bounces / total.sessions < 0.5
    assert 0.03 < buyers < 0.25  # people who bought in two weeks


def test_a_visit_is_after_a_need_within_its_intent(sim: Simulation, run) -> None:  # type: ignore[no-untyped-def]
    n_cat = len(sim.catalog.categories)
    vectors = sim.catalog.item_vectors
    with_need = with_other = 0.0
    for outcome in run.sessions:
        assert outcome.need is not None
        assert sim.catalog.tag_category[outcome.need] == outcome.intent
        others = [
            int(t)
            for t in np.flatnonzero(sim.catalog.tag_category == outcome.intent)
            if t != outcome.need
        ]
        for i in (i for i in outcome.viewed if i not in outcome.clicked):
            with_need += vectors[i, n_cat + outcome.need] > 0
            with_other += float(np.mean(vectors[i, [n_cat + t for t in others]] > 0))
    # views go to the need's items far more than to another tag's of the same category
    assert with_need > 1.5 * with_other


def test_the_need_is_often_carried_over_and_follows_tag_taste(sim: Simulation) -> None:
    from loopwise.sim.population import NEED_CARRYOVER, session_need

    user = next(u for u in sim.users if len(u.liked_categories) >= 1)
    category = user.liked_categories[0]
    tags = np.flatnonzero(sim.catalog.tag_category == category)
    rng = np.random.default_rng(0)
    carried = [
        session_need(user, sim.catalog, category, int(tags[0]), (rng.random(), rng.random()))
        for _ in range(2000)
    ]
    assert set(carried) <= set(tags.tolist())
    assert carried.count(int(tags[0])) / len(carried) >= NEED_CARRYOVER
    fresh = Counter(
        session_need(user, sim.catalog, category, None, (rng.random(), rng.random()))
        for _ in range(4000)
    )
    liked_most = int(tags[int(np.argmax(user.taste[len(sim.catalog.categories) + tags]))])
    assert fresh.most_common(1)[0][0] == liked_most
