"""The ground-truth choice model: how a simulated visitor reacts to what the site shows.

Every formula is here, in one place, so benchmarks can reason about the oracle:

* **Utility** of item ``i`` for user ``u`` (fixed, the oracle's ranking key)::

      U(u, i) = taste_u · v_i + quality_i - s_u · log(price_i / p_ref)

  ``p_ref`` is the catalog's median price, so price is neutral at the median and each doubling
  of price costs ``s_u · ln 2``. In a session the user acts on ``U + ε`` with ``ε ~ N(0, σ²)``
  per item (today's mood), so behaviour is noisy around the truth.
* **Click** on a shown item at 0-based position ``k``::

      P(click) = sigmoid(a + b · (U + ε)) / log2(k + 2)

  (position bias as in DCG: the second slot gets 63% of the first's attention).
* **Bounce**: a home page full of irrelevant content makes people leave. With ``Ū_shown`` the
  mean true utility of what was shown and ``Ū_u`` the user's mean utility over the catalog::

      P(bounce) = sigmoid(logit(β₀) - β₁ · (Ū_shown - Ū_u))

  Showing nothing, or something average for the user (random items), gives the base rate β₀;
  a good policy lowers it and a bad one raises it. This is what lets a bad policy *hurt*
  compared with showing popular items, not merely fail to help.
* **Organic browsing** (what the visitor finds without recommendations): ``1 + NegBin(r, ·)``
  distinct product views with mean ``λ`` (dispersion ``r``: many one-product visits and a long
  tail, as in real logs); each is, with probability ``1 - e``, a draw from
  ``softmax((U + ε) / τ)`` over the items of the user's liked categories, else a uniformly
  random item (``e`` = explore share). Before each view after the second the visitor goes back,
  with probability ``revisit_share``, to a product seen earlier in the visit (a view only, no
  second add). Products the user viewed in visits before the previous one (and not in it) appeal
  ``moved_on_discount`` less: people move on from what they looked at and set aside.
* **Add to cart** after viewing an item, with ``π_u`` the user's purchase propensity::

      P(add) = sigmoid(c₀ + c₁ · (U + ε) + c₂ · (π_u - π̄))

* **Order** when the cart is not empty, with ``Umax`` the best session utility in the cart::

      P(order) = sigmoid(d₀ + d₁ · Umax + d₂ · (π_u - π̄))

  Every cart item is bought (quantity 1); revenue is the sum of their prices.

Purchases therefore come from viewed items, and recommendations add views of whatever they show:
showing high-utility items lifts conversion, showing low-utility items lowers it.

* **Intent**: each visit is about one liked category (:func:`loopwise.sim.population.
  session_intent`); its items get ``+ intent_boost`` utility for the visit, organic views stay
  in it and often follow from the previous view (``follow_share``, :func:`loopwise.sim.session.
  organic_views`); within it the visit is after a *need* (one of the category's tags,
  :func:`loopwise.sim.population.session_need`), whose items get ``+ need_boost`` more.

Rates: the constants are set so a site showing popular items sees rates of a real, healthy
shop — about 3% of visits end in an order, 5% of shown recommendations are clicked, under a
third of home-page visits bounce (over half when the content is random), and about 10% of the
people who visit in two weeks buy (1,500 users, 300 items, 14 days, seed 3: 3.0%, 4.6%, 31%,
10.3%). They are higher than a typical shop's 1-2% per visit on purpose, so a demo with a few
thousand people can show a difference between arms; the ratios between good and bad policies
are what the model is for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from loopwise.sim.catalog import SimCatalog
from loopwise.sim.population import SimUser


@dataclass(frozen=True, slots=True)
class BehaviourParams:
    """The constants of the formulas in the module docstring (names follow them)."""

    noise_sd: float = 0.5  # sigma
    click_bias: float = -5.2  # a
    click_slope: float = 1.0  # b
    bounce_base: float = 0.55  # β₀
    bounce_slope: float = 0.8  # β₁
    organic_views: float = 4.6  # λ: mean distinct organic product views of a visit that stays
    organic_dispersion: float = 0.5  # r of the 1 + negative binomial count (huge: 1 + Poisson)
    revisit_share: float = 0.28  # chance of going back to a product seen earlier in the visit
    moved_on_discount: float = 2.0  # less appeal of products viewed before the previous visit
    explore_share: float = 0.25  # e
    browse_temperature: float = 1.0  # τ
    cart_bias: float = -9.5  # c₀
    cart_slope: float = 1.0  # c₁
    cart_propensity: float = 4.0  # c₂
    order_bias: float = -1.5  # d₀
    order_slope: float = 0.4  # d₁
    order_propensity: float = 4.0  # d₂
    mean_propensity: float = 0.25  # π̄ (the population's Beta(2, 6) mean)
    intent_boost: float = 0.8  # extra utility of the visit's intent category during the visit
    need_boost: float = 1.0  # extra utility of items with the visit's need (a tag of the intent)
    follow_share: float = 0.6  # chance an organic view follows from the previous one
    follow_similarity: float = 2.0  # weight of item similarity when following


DEFAULT_PARAMS = BehaviourParams()


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def utilities(user: SimUser, catalog: SimCatalog) -> np.ndarray:
    """``U(u, i)`` for every item (no noise): the oracle's ranking key."""
    return (
        catalog.item_vectors @ user.taste
        + catalog.quality
        - user.price_sensitivity * np.log(catalog.price / catalog.reference_price)
    )


def true_utility(user: SimUser, catalog: SimCatalog, item_index: int) -> float:
    """``U(u, i)`` for one item."""
    price_term = np.log(catalog.price[item_index] / catalog.reference_price)
    return float(
        catalog.item_vectors[item_index] @ user.taste
        + catalog.quality[item_index]
        - user.price_sensitivity * price_term
    )


def position_bias(positions: np.ndarray) -> np.ndarray:
    """``1 / log2(k + 2)`` for 0-based positions."""
    return 1.0 / np.log2(np.asarray(positions, dtype=float) + 2.0)


def click_probability(
    utility: np.ndarray, positions: np.ndarray, params: BehaviourParams = DEFAULT_PARAMS
) -> np.ndarray:
    return sigmoid(params.click_bias + params.click_slope * utility) * position_bias(positions)


def bounce_probability(
    shown_utility: np.ndarray, user_mean_utility: float, params: BehaviourParams = DEFAULT_PARAMS
) -> float:
    """Base rate when nothing is shown; lower for relevant content, higher for irrelevant."""
    if shown_utility.size == 0:
        return params.bounce_base
    relevance = float(shown_utility.mean()) - user_mean_utility
    return _sigmoid(logit(params.bounce_base) - params.bounce_slope * relevance)


def browse_distribution(
    session_utility: np.ndarray,
    liked_items: np.ndarray,
    params: BehaviourParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """Probability of each item being the next organic view (sums to 1)."""
    n = session_utility.size
    probs = np.full(n, params.explore_share / n)
    if liked_items.size == 0:
        return probs / probs.sum()
    scaled = session_utility[liked_items] / params.browse_temperature
    weights = np.exp(scaled - scaled.max())
    probs[liked_items] += (1.0 - params.explore_share) * weights / weights.sum()
    return probs / probs.sum()


def add_to_cart_probability(
    utility: np.ndarray | float, propensity: float, params: BehaviourParams = DEFAULT_PARAMS
) -> np.ndarray:
    return sigmoid(
        params.cart_bias
        + params.cart_slope * np.asarray(utility, dtype=float)
        + params.cart_propensity * (propensity - params.mean_propensity)
    )


def order_probability(
    cart_utility: np.ndarray, propensity: float, params: BehaviourParams = DEFAULT_PARAMS
) -> float:
    """Checkout probability of a non-empty cart; 0 for an empty one."""
    if cart_utility.size == 0:
        return 0.0
    return _sigmoid(
        params.order_bias
        + params.order_slope * float(cart_utility.max())
        + params.order_propensity * (propensity - params.mean_propensity)
    )


class ChoiceModel:
    """The behaviour model bound to one catalog, caching each user's utility vector."""

    def __init__(self, catalog: SimCatalog, params: BehaviourParams = DEFAULT_PARAMS) -> None:
        self.catalog = catalog
        self.params = params
        self._utilities: dict[int, np.ndarray] = {}
        self._mean: dict[int, float] = {}
        self._liked: dict[tuple[int, ...], np.ndarray] = {}
        self._ranking: dict[int, np.ndarray] = {}

    def utilities(self, user: SimUser) -> np.ndarray:
        """``U(u, ·)``; the returned array is shared, do not modify it."""
        cached = self._utilities.get(user.index)
        if cached is None:
            cached = utilities(user, self.catalog)
            cached.flags.writeable = False
            self._utilities[user.index] = cached
            self._mean[user.index] = float(cached.mean())
        return cached

    def true_utility(self, user: SimUser, item_index: int) -> float:
        return float(self.utilities(user)[item_index])

    def mean_utility(self, user: SimUser) -> float:
        self.utilities(user)
        return self._mean[user.index]

    def liked_items(self, user: SimUser) -> np.ndarray:
        """Indices of the items in the user's liked categories."""
        found = self._liked.get(user.liked_categories)
        if found is None:
            found = self.catalog.items_in(user.liked_categories)
            self._liked[user.liked_categories] = found
        return found

    def ranking(self, user: SimUser) -> np.ndarray:
        """Item indices from the highest to the lowest true utility (ties by index); shared."""
        found = self._ranking.get(user.index)
        if found is None:
            found = np.argsort(-self.utilities(user), kind="stable")
            found.flags.writeable = False
            self._ranking[user.index] = found
        return found
