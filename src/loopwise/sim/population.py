"""Synthetic users: hidden tastes plus the observable context a real visitor brings.

A user's taste vector lives in the catalog's latent space (``[categories | tags | free dims]``):
strongly positive on one to three liked categories, mildly negative on the rest, with personal
likes and dislikes among the liked categories' tags and a random position on the hidden free
dimensions. Everything else (device and a real user-agent string, country and locale, traffic
source, visit frequency, price sensitivity, purchase propensity, consent) is drawn from weighted
lists chosen to look like a small Western e-commerce site. Part of the population is there on
day 0, the rest arrives during the simulated days; every user churns after an exponential
lifetime, so some leave before the end.

Interests drift: each user's share of attention over their liked categories moves from a first
mix (``interests``) to a second (``interests_later``) over ``drift_days`` after arrival, and a
visit has an *intent* — one liked category drawn from the current mix, often the previous
visit's again (:func:`session_intent`) and within it a *need*, one of the category's tags
(:func:`session_need`) — so what someone did last is the best guide to what they
want next, as in a real shop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from loopwise.sim.catalog import SimCatalog

DEVICE_WEIGHTS: dict[str, float] = {"desktop": 0.45, "mobile": 0.45, "tablet": 0.10}
USER_AGENTS: dict[str, tuple[str, ...]] = {
    "desktop": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
    ),
    "mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
    ),
    "tablet": (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
    ),
}
# country -> (weight, locale, timezone)
COUNTRIES: dict[str, tuple[float, str, str]] = {
    "US": (0.34, "en-US", "America/New_York"),
    "GB": (0.12, "en-GB", "Europe/London"),
    "DE": (0.12, "de-DE", "Europe/Berlin"),
    "FR": (0.09, "fr-FR", "Europe/Paris"),
    "NL": (0.06, "nl-NL", "Europe/Amsterdam"),
    "CA": (0.06, "en-CA", "America/Toronto"),
    "AU": (0.05, "en-AU", "Australia/Sydney"),
    "ES": (0.06, "es-ES", "Europe/Madrid"),
    "IT": (0.06, "it-IT", "Europe/Rome"),
    "SE": (0.04, "sv-SE", "Europe/Stockholm"),
}
TRAFFIC_WEIGHTS: dict[str, float] = {
    "direct": 0.33,
    "organic_search": 0.30,
    "paid": 0.10,
    "social": 0.11,
    "email": 0.08,
    "referral": 0.08,
}
# Share of users who grant each consent category (independently). Personalization ~85%.
CONSENT_RATES: dict[str, float] = {
    "analytics": 0.90,
    "personalization": 0.85,
    "pricing": 0.50,
    "marketing": 0.60,
}


@dataclass(frozen=True, eq=False)
class SimUser:
    """One simulated visitor. ``taste`` is ground truth: never sent, only used to act."""

    index: int
    id: str  # the user id they log in with (sent only once they identify)
    anonymous_id: str  # the browser's id, sent on every message
    taste: np.ndarray  # (d,) in the catalog's latent space
    liked_categories: tuple[int, ...]
    device: str
    user_agent: str
    country: str
    locale: str
    timezone: str
    traffic_source: str  # how they usually arrive
    visits_per_week: float
    price_sensitivity: float  # weight on log(price / reference price) in utility
    purchase_propensity: float  # in (0, 1): how readily they buy at all
    consent: dict[str, bool]
    registered: bool  # has an account and logs in at some point
    arrival_day: int
    churn_day: int  # first day they no longer visit (may lie beyond the simulated days)
    # attention over ``liked_categories`` at arrival and after ``drift_days`` (each sums to 1)
    interests: tuple[float, ...] = ()
    interests_later: tuple[float, ...] = ()
    drift_days: float = 30.0

    def active_on(self, day: int) -> bool:
        return self.arrival_day <= day < self.churn_day

    def interest_mix(self, day: int) -> np.ndarray:
        """Attention over ``liked_categories`` on ``day``: the arrival mix moving linearly to the
        later one over ``drift_days`` (uniform when the user has none)."""
        n = len(self.liked_categories)
        if not self.interests or len(self.interests) != n:
            return np.full(n, 1.0 / max(n, 1))
        f = min(1.0, max(0.0, (day - self.arrival_day) / max(self.drift_days, 1e-9)))
        mix = (1.0 - f) * np.asarray(self.interests) + f * np.asarray(self.interests_later)
        return np.asarray(mix / mix.sum())


#: Chance that a visit keeps the previous visit's intent (still shopping for the same thing).
INTENT_CARRYOVER = 0.6


def session_intent(
    user: SimUser, day: int, previous: int | None, draws: tuple[float, float]
) -> int:
    """The category index a visit is about: the ``previous`` visit's with probability
    :data:`INTENT_CARRYOVER`, else one drawn from :meth:`SimUser.interest_mix` (``draws`` are two
    uniform numbers, so the caller keeps its random stream fixed)."""
    liked = user.liked_categories
    if previous is not None and previous in liked and draws[0] < INTENT_CARRYOVER:
        return previous
    cumulative = np.cumsum(user.interest_mix(day))
    pick = int(np.searchsorted(cumulative, draws[1] * cumulative[-1], side="right"))
    return int(liked[min(pick, len(liked) - 1)])


#: Chance that a visit about the same category as the previous one is about the same need (the
#: same product type: still looking for running shoes, not just "sports").
NEED_CARRYOVER = 0.7


def session_need(
    user: SimUser,
    catalog: SimCatalog,
    intent: int,
    previous: int | None,
    draws: tuple[float, float],
) -> int:
    """The tag (index into ``catalog.tags``) a visit about category ``intent`` is after: the
    ``previous`` visit's need with probability :data:`NEED_CARRYOVER` when it is one of this
    category's tags, else one of the category's tags drawn by the user's own tag taste
    (softmax of their tag weights: people shop for the kinds of things they like)."""
    tags = np.flatnonzero(catalog.tag_category == intent)
    if previous is not None and previous in tags and draws[0] < NEED_CARRYOVER:
        return int(previous)
    n_cat = len(catalog.categories)
    taste = user.taste[n_cat + tags]
    cumulative = np.cumsum(np.exp(taste - taste.max()))
    pick = int(np.searchsorted(cumulative, draws[1] * cumulative[-1], side="right"))
    return int(tags[min(pick, tags.size - 1)])


def _weighted(rng: np.random.Generator, weights: dict[str, float], size: int) -> list[str]:
    keys = list(weights)
    p = np.array([weights[k] for k in keys])
    return [keys[i] for i in rng.choice(len(keys), size=size, p=p / p.sum())]


def taste_vector(
    rng: np.random.Generator, catalog: SimCatalog, liked: tuple[int, ...]
) -> np.ndarray:
    """Liked categories score 1.2-2.2 (split by a Dirichlet draw), others about -0.3; the liked
    categories' tags get personal N(0, 0.7) weights; free dims N(0, 0.7)."""
    n_cat, n_tags = len(catalog.categories), len(catalog.tags)
    taste = np.empty(catalog.dims)
    taste[:n_cat] = rng.normal(-0.3, 0.15, n_cat)
    weights = rng.dirichlet(np.full(len(liked), 2.0))
    taste[list(liked)] = 1.2 + weights
    tag_weights = rng.normal(0.0, 0.7, n_tags)
    tag_weights[~np.isin(catalog.tag_category, liked)] = 0.0
    taste[n_cat : n_cat + n_tags] = tag_weights
    taste[n_cat + n_tags :] = rng.normal(0.0, 0.7, catalog.free_dims)
    return taste


def generate_population(
    n_users: int,
    catalog: SimCatalog,
    rng: np.random.Generator,
    days: int,
    *,
    initial_share: float = 0.6,
    mean_lifetime_days: float = 60.0,
    registered_share: float = 0.3,
) -> list[SimUser]:
    """``n_users`` users; ``initial_share`` of them exist on day 0, the rest arrive uniformly on
    days 1..days-1. Lifetimes are exponential with mean ``mean_lifetime_days``."""
    if n_users < 0 or days < 1:
        raise ValueError("n_users must be >= 0 and days >= 1")
    n_cat = len(catalog.categories)
    devices = _weighted(rng, DEVICE_WEIGHTS, n_users)
    countries = _weighted(rng, {c: w for c, (w, _, _) in COUNTRIES.items()}, n_users)
    sources = _weighted(rng, TRAFFIC_WEIGHTS, n_users)
    visits = np.clip(rng.gamma(1.5, 1.5, n_users), 0.2, 14.0)
    sensitivity = rng.gamma(2.0, 0.15, n_users)
    propensity = rng.beta(2.0, 6.0, n_users)
    consents = {k: rng.random(n_users) < rate for k, rate in CONSENT_RATES.items()}
    registered = rng.random(n_users) < registered_share
    present = rng.random(n_users) < initial_share
    late = rng.integers(1, max(days, 2), n_users) if days > 1 else np.zeros(n_users, int)
    arrival = np.where(present, 0, late)
    lifetime = np.ceil(rng.exponential(mean_lifetime_days, n_users)).astype(int)
    n_liked = rng.choice([1, 2, 3], size=n_users, p=[0.45, 0.35, 0.20])
    users: list[SimUser] = []
    for u in range(n_users):
        liked = tuple(
            sorted(int(c) for c in rng.choice(n_cat, min(int(n_liked[u]), n_cat), replace=False))
        )
        device = devices[u]
        agents = USER_AGENTS[device]
        _, locale, timezone = COUNTRIES[countries[u]]
        users.append(
            SimUser(
                index=u,
                id=f"user-{u + 1:06d}",
                anonymous_id=f"anon-{rng.bytes(8).hex()}",
                taste=taste_vector(rng, catalog, liked),
                liked_categories=liked,
                device=device,
                user_agent=agents[int(rng.integers(len(agents)))],
                country=countries[u],
                locale=locale,
                timezone=timezone,
                traffic_source=sources[u],
                visits_per_week=round(float(visits[u]), 3),
                price_sensitivity=float(sensitivity[u]),
                purchase_propensity=float(propensity[u]),
                consent={k: bool(v[u]) for k, v in consents.items()},
                registered=bool(registered[u]),
                arrival_day=int(arrival[u]),
                churn_day=int(arrival[u]) + max(1, int(lifetime[u])),
            )
        )
    # interest drift from its own stream, drawn after the rest, so tastes stay as they were
    drift_rng = np.random.default_rng(rng.integers(0, 2**63 - 1))
    return [
        replace(
            user,
            interests=_mix(drift_rng, len(user.liked_categories)),
            interests_later=_mix(drift_rng, len(user.liked_categories)),
            drift_days=float(drift_rng.uniform(14.0, 45.0)),
        )
        for user in users
    ]


def _mix(rng: np.random.Generator, n: int) -> tuple[float, ...]:
    return tuple(float(x) for x in rng.dirichlet(np.full(n, 0.7)))


def expected_sessions_per_day(user: SimUser) -> float:
    """Mean visits on a day the user is active (visits are Poisson around this)."""
    return user.visits_per_week / 7.0
