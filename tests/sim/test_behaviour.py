from __future__ import annotations

import numpy as np
import pytest

from loopwise.sim.behaviour import (
    BehaviourParams,
    ChoiceModel,
    add_to_cart_probability,
    bounce_probability,
    browse_distribution,
    click_probability,
    order_probability,
    true_utility,
    utilities,
)
from loopwise.sim.catalog import SimCatalog, generate_catalog
from loopwise.sim.population import SimUser, generate_population


@pytest.fixture(scope="module")
def catalog() -> SimCatalog:
    return generate_catalog(150, np.random.default_rng(4))


@pytest.fixture(scope="module")
def users(catalog: SimCatalog) -> list[SimUser]:
    return generate_population(200, catalog, np.random.default_rng(5), 7)


def test_vectorised_utilities_match_the_formula(catalog: SimCatalog, users: list[SimUser]) -> None:
    user = users[0]
    vector = utilities(user, catalog)
    for i in range(0, len(catalog), 7):
        expected = (
            catalog.item_vectors[i] @ user.taste
            + catalog.quality[i]
            - user.price_sensitivity * np.log(catalog.price[i] / catalog.reference_price)
        )
        assert true_utility(user, catalog, i) == pytest.approx(expected)
        assert vector[i] == pytest.approx(expected)


def test_liked_categories_have_higher_utility(catalog: SimCatalog, users: list[SimUser]) -> None:
    model = ChoiceModel(catalog)
    gaps = []
    for user in users:
        u = model.utilities(user)
        liked = np.isin(catalog.category_index, user.liked_categories)
        gaps.append(u[liked].mean() - u[~liked].mean())
    # taste dominates, though a price-sensitive fan of an expensive category can be the exception
    assert np.median(gaps) > 1.0
    assert np.mean(np.array(gaps) > 0) > 0.95


def test_model_ranking_is_by_true_utility(catalog: SimCatalog, users: list[SimUser]) -> None:
    model = ChoiceModel(catalog)
    user = users[3]
    ranked = model.ranking(user)
    u = model.utilities(user)
    assert sorted(ranked.tolist()) == list(range(len(catalog)))
    assert (np.diff(u[ranked]) <= 0).all()
    assert model.true_utility(user, int(ranked[0])) == u.max()


def test_clicks_rise_with_utility_and_fall_with_position() -> None:
    p = click_probability(np.array([2.0, 2.0, 2.0, -1.0]), np.array([0, 1, 5, 0]))
    assert p[0] > p[1] > p[2]
    assert p[0] > p[3]
    assert p[1] == pytest.approx(p[0] / np.log2(3))


def test_bounce_is_base_rate_for_nothing_or_average_and_moves_with_relevance() -> None:
    params = BehaviourParams(bounce_base=0.3)
    assert bounce_probability(np.array([]), 1.0, params) == pytest.approx(0.3)
    assert bounce_probability(np.array([0.5, 1.5]), 1.0, params) == pytest.approx(0.3)
    assert bounce_probability(np.array([3.0]), 1.0, params) < 0.15
    assert bounce_probability(np.array([-2.0]), 1.0, params) > 0.6


def test_browsing_favours_liked_high_utility_items() -> None:
    u = np.array([3.0, 1.0, 0.0, 5.0, 5.0])
    liked = np.array([0, 1, 2])
    p = browse_distribution(u, liked, BehaviourParams(explore_share=0.2))
    assert p.sum() == pytest.approx(1.0)
    assert p[0] > p[1] > p[2]
    assert p[3] == pytest.approx(0.2 / 5)  # only random exploration reaches unliked items
    assert p[:3].sum() == pytest.approx(0.8 + 3 * 0.2 / 5)


def test_cart_and_order_rise_with_utility_and_propensity() -> None:
    low, high = add_to_cart_probability(np.array([0.0, 3.0]), 0.25)
    assert low < high
    assert add_to_cart_probability(1.0, 0.6) > add_to_cart_probability(1.0, 0.1)
    assert order_probability(np.array([]), 0.9) == 0.0
    assert order_probability(np.array([3.0]), 0.25) > order_probability(np.array([0.0]), 0.25)
    assert order_probability(np.array([1.0]), 0.5) > order_probability(np.array([1.0]), 0.1)
