from __future__ import annotations

import numpy as np
import pytest

from loopwise.profiles.useragent import parse_device
from loopwise.sim.catalog import SimCatalog, generate_catalog
from loopwise.sim.population import COUNTRIES, TRAFFIC_WEIGHTS, SimUser, generate_population

DAYS = 20


@pytest.fixture(scope="module")
def catalog() -> SimCatalog:
    return generate_catalog(120, np.random.default_rng(1))


@pytest.fixture(scope="module")
def users(catalog: SimCatalog) -> list[SimUser]:
    return generate_population(
        4000, catalog, np.random.default_rng(2), DAYS, mean_lifetime_days=30.0
    )


def test_consent_shares_match_the_rates(users: list[SimUser]) -> None:
    share = {k: np.mean([u.consent[k] for u in users]) for k in users[0].consent}
    assert set(share) == {"analytics", "personalization", "pricing", "marketing"}
    assert share["personalization"] == pytest.approx(0.85, abs=0.02)
    assert share["analytics"] == pytest.approx(0.90, abs=0.02)
    assert share["pricing"] == pytest.approx(0.50, abs=0.03)
    assert share["marketing"] == pytest.approx(0.60, abs=0.03)


def test_user_agents_parse_to_the_users_device(users: list[SimUser]) -> None:
    seen = {(u.device, u.user_agent) for u in users}
    assert {device for device, _ in seen} == {"desktop", "mobile", "tablet"}
    for device, agent in seen:
        assert parse_device(agent)["type"] == device, agent


def test_context_fields_are_realistic(users: list[SimUser]) -> None:
    for user in users:
        assert user.country in COUNTRIES
        assert user.locale == COUNTRIES[user.country][1]
        assert user.traffic_source in TRAFFIC_WEIGHTS
        assert 0.2 <= user.visits_per_week <= 14.0
        assert user.price_sensitivity > 0
        assert 0 < user.purchase_propensity < 1
    us = np.mean([u.country == "US" for u in users])
    assert us == pytest.approx(0.34, abs=0.03)
    assert len({u.anonymous_id for u in users}) == len({u.id for u in users}) == len(users)


def test_tastes_are_concentrated_on_liked_categories(
    users: list[SimUser], catalog: SimCatalog
) -> None:
    n_cat = len(catalog.categories)
    for user in users[:500]:
        assert 1 <= len(user.liked_categories) <= 3
        weights = user.taste[:n_cat]
        liked = list(user.liked_categories)
        others = [c for c in range(n_cat) if c not in liked]
        assert weights[liked].min() > weights[others].max()
        # tags of categories the user does not like carry no weight
        tag_weights = user.taste[n_cat : n_cat + len(catalog.tags)]
        assert not tag_weights[~np.isin(catalog.tag_category, liked)].any()


def test_arrivals_and_churn(users: list[SimUser]) -> None:
    arrival = np.array([u.arrival_day for u in users])
    churn = np.array([u.churn_day for u in users])
    assert (churn > arrival).all()
    assert np.mean(arrival == 0) == pytest.approx(0.6, abs=0.03)
    late = arrival[arrival > 0]
    assert late.min() >= 1 and late.max() == DAYS - 1
    churned = np.mean(churn < DAYS)
    assert 0.2 < churned < 0.6  # 30-day mean lifetime over 20 days: many, not all, leave
    user = users[int(np.argmax(arrival))]
    assert not user.active_on(user.arrival_day - 1)
    assert user.active_on(user.arrival_day)
    assert not user.active_on(user.churn_day)


def test_same_seed_same_population(catalog: SimCatalog) -> None:
    def draw(seed: int) -> list[tuple[object, ...]]:
        users = generate_population(50, catalog, np.random.default_rng(seed), 7)
        return [(u.anonymous_id, u.country, u.taste.tolist(), u.consent) for u in users]

    assert draw(9) == draw(9)
    assert draw(9) != draw(10)
