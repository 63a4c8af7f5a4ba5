"""Run a whole population against a policy, day by day, and keep the ground truth.

Everything derives from ``SimConfig.seed`` through numpy ``SeedSequence`` keys: the catalog and
the population from fixed keys, each day's visit schedule from ``(seed, day)``, and one stream
feeds the visits in schedule order; every visit draws a fixed amount from it whatever the policy
does. So the same seed gives byte-identical messages, and two policies
run on one :class:`Simulation` meet the same visitors at the same times in the same mood: their
results differ only because of what they showed (a paired comparison with low variance).

Baseline policies live here too: random, popular (learns online from the messages it sees),
oracle (highest true utility) and worst (lowest); :func:`split_policy` runs an A/B test between
policies so per-arm ground truth can be compared with what an experiment report estimates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import numpy as np

from loopwise.sim.behaviour import DEFAULT_PARAMS, BehaviourParams, ChoiceModel
from loopwise.sim.catalog import DEFAULT_CATEGORIES, DEFAULT_START, SimCatalog, generate_catalog
from loopwise.sim.population import SimUser, expected_sessions_per_day, generate_population
from loopwise.sim.session import (
    DEFAULT_SLOTS,
    Policy,
    PolicyRequest,
    PolicyResponse,
    SessionOutcome,
    SlotAsk,
    simulate_session,
)

# Relative visit intensity per hour (UTC) 00..21; visits start before 22:00 so they end the
# same day and each day's messages precede the next day's.
HOURLY_WEIGHTS = np.array(
    [
        *(1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.0, 2.2, 2.3, 2.4),  # 00-11
        *(2.6, 2.5, 2.3, 2.2, 2.3, 2.6, 3.0, 3.4, 3.5, 3.0),  # 12-21
    ]
)
_CATALOG_KEY, _POPULATION_KEY, _SCHEDULE_KEY, _SESSION_KEY, _NEED_KEY = 1, 2, 3, 4, 5

Interaction = tuple[str, str, datetime, str]  # (user id, item id, time, view|cart|purchase)
DayCallback = Callable[[int, list[dict[str, Any]]], None]


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    n_users: int = 2000
    n_items: int = 300
    days: int = 14
    start: datetime = DEFAULT_START  # midnight UTC of day 0
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    tags_per_category: int = 4
    free_dims: int = 4
    slots: tuple[SlotAsk, ...] = DEFAULT_SLOTS
    initial_share: float = 0.6  # users present on day 0; the rest arrive later
    mean_lifetime_days: float = 60.0
    registered_share: float = 0.3
    max_sessions_per_day: int = 3
    behaviour: BehaviourParams = DEFAULT_PARAMS


@dataclass(slots=True)
class ArmSummary:
    """Ground truth for the visits served by one policy arm."""

    sessions: int = 0
    bounces: int = 0
    impressions: int = 0  # items shown
    clicks: int = 0
    conversions: int = 0  # visits with an order
    revenue: float = 0.0

    def add(self, outcome: SessionOutcome) -> None:
        self.sessions += 1
        self.bounces += outcome.bounced
        self.impressions += len(outcome.shown)
        self.clicks += len(outcome.clicked)
        self.conversions += outcome.converted
        self.revenue = round(self.revenue + outcome.revenue, 2)

    @property
    def conversion_rate(self) -> float:
        return self.conversions / self.sessions if self.sessions else 0.0

    @property
    def click_rate(self) -> float:
        """Clicks per item shown."""
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def revenue_per_session(self) -> float:
        return self.revenue / self.sessions if self.sessions else 0.0

    @property
    def click_through_rate(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0


@dataclass(slots=True)
class SimResult:
    messages: list[dict[str, Any]]  # wire messages in time order (empty if not kept)
    sessions: list[SessionOutcome]  # in start order
    arms: dict[str, ArmSummary]

    @property
    def total(self) -> ArmSummary:
        total = ArmSummary()
        for outcome in self.sessions:
            total.add(outcome)
        return total

    @property
    def interactions(self) -> list[Interaction]:
        found = [row for outcome in self.sessions for row in outcome.interactions]
        found.sort(key=lambda row: row[2])
        return found


@runtime_checkable
class LearningPolicy(Protocol):
    """A policy that learns from the messages of every finished visit (the runner feeds it)."""

    def __call__(self, request: PolicyRequest) -> PolicyResponse: ...

    def observe(self, messages: list[dict[str, Any]]) -> None: ...


class Simulation:
    """A seeded world: catalog, users and the ground-truth behaviour model."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config = config or SimConfig()
        self.catalog: SimCatalog = generate_catalog(
            config.n_items,
            np.random.default_rng([config.seed, _CATALOG_KEY]),
            config.categories,
            config.tags_per_category,
            free_dims=config.free_dims,
            now=config.start,
        )
        self.users: list[SimUser] = generate_population(
            config.n_users,
            self.catalog,
            np.random.default_rng([config.seed, _POPULATION_KEY]),
            config.days,
            initial_share=config.initial_share,
            mean_lifetime_days=config.mean_lifetime_days,
            registered_share=config.registered_share,
        )
        self.model = ChoiceModel(self.catalog, config.behaviour)
        self._by_key: dict[str, SimUser] = {}
        for user in self.users:
            self._by_key[user.anonymous_id] = user
            self._by_key[user.id] = user

    def user_for(self, key: str) -> SimUser | None:
        """The user behind a user id or anonymous id."""
        return self._by_key.get(key)

    def utilities(self, user: SimUser) -> np.ndarray:
        return self.model.utilities(user)

    def true_utility(self, user: SimUser, item_index: int) -> float:
        return self.model.true_utility(user, item_index)

    def schedule(self, day: int) -> list[tuple[datetime, SimUser, int]]:
        """``(start, user, k)`` of every visit on ``day`` in time order (k-th visit that day)."""
        rng = np.random.default_rng([self.config.seed, _SCHEDULE_KEY, day])
        hours = HOURLY_WEIGHTS / HOURLY_WEIGHTS.sum()
        active = [user for user in self.users if user.active_on(day)]
        rates = np.array([expected_sessions_per_day(user) for user in active])
        counts = np.minimum(rng.poisson(rates), self.config.max_sessions_per_day)
        midnight = self.config.start + timedelta(days=day)
        visiting = np.flatnonzero(counts)
        # distinct hours per visitor, weighted: the Gumbel top-k trick, one matrix for the day
        keys = np.log(hours) + rng.gumbel(size=(visiting.size, hours.size))
        order = np.argsort(-keys, axis=1)
        seconds = rng.uniform(0.0, 3600.0, (visiting.size, int(counts.max(initial=0))))
        visits: list[tuple[datetime, SimUser, int]] = []
        for row, a in enumerate(visiting):
            count = int(counts[a])
            for k, hour in enumerate(np.sort(order[row, :count])):
                ms = int(hour) * 3_600_000 + round(float(seconds[row, k]) * 1000)
                visits.append((midnight + timedelta(milliseconds=ms), active[a], k))
        visits.sort(key=lambda visit: (visit[0], visit[1].index))
        return visits

    def run(
        self,
        policy: Policy,
        days: int | None = None,
        on_day: DayCallback | None = None,
        *,
        keep_messages: bool = True,
    ) -> SimResult:
        """Simulate ``days`` (default ``config.days``) of visits served by ``policy``.

        ``on_day(day, messages)`` gets each day's messages in time order once the day is done
        (e.g. to ingest them into an engine before the next day). A :class:`LearningPolicy`
        observes each visit's messages as soon as the visit ends. With ``keep_messages=False``
        neither the result nor its sessions keep messages (only the ground truth)."""
        days = self.config.days if days is None else days
        logged_in: set[int] = set()
        intents: dict[int, int] = {}  # each user's last visit's intent (carried over)
        needs: dict[int, int] = {}  # and its need
        last_viewed: dict[int, set[int]] = {}  # the items each user viewed in their last visit
        moved_on: dict[int, set[int]] = {}  # and those viewed before it, not in it
        discount = self.config.behaviour.moved_on_discount
        learner = policy if isinstance(policy, LearningPolicy) else None
        result = SimResult(messages=[], sessions=[], arms={})
        # one stream for every visit: each visit draws a fixed amount whatever the policy shows,
        # so runs of different policies stay in step visit by visit
        rng = np.random.default_rng([self.config.seed, _SESSION_KEY])
        need_rng = np.random.default_rng([self.config.seed, _NEED_KEY])
        for day in range(days):
            first_of_day = len(result.sessions)
            day_messages: list[dict[str, Any]] = []
            for start, user, k in self.schedule(day):
                outcome = simulate_session(
                    user,
                    day,
                    self.catalog,
                    policy,
                    rng,
                    start,
                    model=self.model,
                    slots=self.config.slots,
                    logged_in=user.index in logged_in,
                    session_key=f"{self.config.seed}:{user.id}:{day}:{k}",
                    previous_intent=intents.get(user.index),
                    previous_need=needs.get(user.index),
                    need_rng=need_rng,
                    moved_on=(
                        np.fromiter(moved_on.get(user.index, ()), dtype=np.int64)
                        if discount
                        else None
                    ),
                )
                if discount and not outcome.bounced:
                    before = last_viewed.get(user.index, set())
                    now = set(outcome.viewed)
                    moved_on[user.index] = (moved_on.get(user.index, set()) | before) - now
                    last_viewed[user.index] = now
                if outcome.intent is not None:
                    intents[user.index] = outcome.intent
                if outcome.need is not None:
                    needs[user.index] = outcome.need
                if outcome.logged_in:
                    logged_in.add(user.index)
                if learner is not None:
                    learner.observe(outcome.messages)
                result.sessions.append(outcome)
                result.arms.setdefault(outcome.arm, ArmSummary()).add(outcome)
                day_messages.extend(outcome.messages)
            day_messages.sort(key=lambda message: message["timestamp"])
            if on_day is not None:
                on_day(day, day_messages)
            if keep_messages:
                result.messages.extend(day_messages)
            else:  # benchmarks over big populations only want the ground truth
                for outcome in result.sessions[first_of_day:]:
                    outcome.messages = []
        return result


def interaction_log(sim: Simulation, policy: Policy, days: int | None = None) -> list[Interaction]:
    """``(user id, item id, time, "view" | "cart" | "purchase")`` rows in time order: the
    user x item training/evaluation data for offline recommender benchmarks."""
    return sim.run(policy, days, keep_messages=False).interactions


# --- baseline policies ------------------------------------------------------------------------


def _decision_id(prefix: str, request: PolicyRequest) -> str:
    """Deterministic and unique per visit: the visitor and the visit's start (ms)."""
    return f"{prefix}-{request.anonymous_id}-{int(request.timestamp.timestamp() * 1000)}"


def _fill(request: PolicyRequest, ranked: list[str]) -> dict[str, list[str]]:
    """Give each slot the next ``n`` ids of one ranking (no item twice on a page)."""
    slots: dict[str, list[str]] = {}
    position = 0
    for ask in request.slots:
        slots[ask.slot] = ranked[position : position + ask.n]
        position += ask.n
    return slots


def _page_size(request: PolicyRequest) -> int:
    return sum(ask.n for ask in request.slots)


def random_policy(catalog: SimCatalog, rng: np.random.Generator) -> Policy:
    """Uniformly random distinct items."""

    def policy(request: PolicyRequest) -> PolicyResponse:
        size = min(_page_size(request), len(catalog))
        picked: dict[int, None] = {}
        while len(picked) < size:  # a few draws with rejection beat a permutation of all items
            picked.update(dict.fromkeys(rng.integers(len(catalog), size=size).tolist()))
        ranked = [catalog.ids[i] for i in list(picked)[:size]]
        return PolicyResponse(_decision_id("random", request), _fill(request, ranked), "random")

    return policy


class PopularPolicy:
    """Most-interacted items so far: views 1, add-to-cart 3, purchase 5 (ties: catalog order).
    Counts start from ``counts`` and grow with every visit the runner shows it."""

    WEIGHTS: Mapping[str, float] = {"Product Viewed": 1.0, "Product Added": 3.0}
    PURCHASE_WEIGHT = 5.0

    def __init__(self, catalog: SimCatalog, counts: Mapping[str, float] | None = None) -> None:
        self.catalog = catalog
        self.scores = np.zeros(len(catalog))
        for item_id, count in (counts or {}).items():
            index = catalog.index_of.get(item_id)
            if index is not None:
                self.scores[index] += count

    def __call__(self, request: PolicyRequest) -> PolicyResponse:
        top = np.argsort(-self.scores, kind="stable")[: _page_size(request)]
        ranked = [self.catalog.ids[int(i)] for i in top]
        return PolicyResponse(_decision_id("popular", request), _fill(request, ranked), "popular")

    def observe(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            name = message.get("event")
            props = message.get("properties", {})
            weight = self.WEIGHTS.get(name) if isinstance(name, str) else None
            if weight is not None:
                self._add(props.get("product_id"), weight)
            elif name == "Order Completed":
                for product in props.get("products", []):
                    self._add(product.get("product_id"), self.PURCHASE_WEIGHT)

    def _add(self, item_id: Any, weight: float) -> None:
        index = self.catalog.index_of.get(item_id) if isinstance(item_id, str) else None
        if index is not None:
            self.scores[index] += weight


def popular_policy(catalog: SimCatalog, counts: Mapping[str, float] | None = None) -> PopularPolicy:
    return PopularPolicy(catalog, counts)


def _ranked_policy(sim: Simulation, name: str, best_first: bool) -> Policy:
    def policy(request: PolicyRequest) -> PolicyResponse:
        user = sim.user_for(request.user_key)
        if user is None:
            return PolicyResponse(None, {}, name)
        order = sim.model.ranking(user)
        if not best_first:
            order = order[::-1]
        ranked = [sim.catalog.ids[int(i)] for i in order[: _page_size(request)]]
        return PolicyResponse(_decision_id(name, request), _fill(request, ranked), name)

    return policy


def oracle_policy(sim: Simulation) -> Policy:
    """The items with the highest true utility for the visitor (an upper bound)."""
    return _ranked_policy(sim, "oracle", best_first=True)


def worst_policy(sim: Simulation) -> Policy:
    """The items with the lowest true utility for the visitor (a policy that really hurts)."""
    return _ranked_policy(sim, "worst", best_first=False)


@dataclass
class SplitPolicy:
    """An A/B test: each visitor is hashed (by anonymous id) into one arm for good."""

    arms: dict[str, Policy]
    salt: str = "sim"
    weights: dict[str, float] = field(default_factory=dict)  # default: equal

    def arm_for(self, anonymous_id: str) -> str:
        names = list(self.arms)
        weights = np.array([self.weights.get(name, 1.0) for name in names])
        digest = hashlib.sha256(f"{self.salt}:{anonymous_id}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * weights.sum()
        index = int(np.searchsorted(np.cumsum(weights), point, side="right"))
        return names[min(index, len(names) - 1)]

    def __call__(self, request: PolicyRequest) -> PolicyResponse:
        arm = self.arm_for(request.anonymous_id)
        response = self.arms[arm](request)
        return PolicyResponse(response.decision_id, response.items_by_slot, arm)

    def observe(self, messages: list[dict[str, Any]]) -> None:
        for policy in self.arms.values():
            if isinstance(policy, LearningPolicy):
                policy.observe(messages)


def split_policy(
    arms: Mapping[str, Policy], salt: str = "sim", weights: Mapping[str, float] | None = None
) -> SplitPolicy:
    if not arms:
        raise ValueError("give at least one arm")
    return SplitPolicy(dict(arms), salt, dict(weights or {}))
