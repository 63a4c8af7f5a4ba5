"""Strategies: where a list slot's candidate items come from.

THE INTERFACE TRAINED MODELS PLUG INTO. A strategy is any object with a ``name`` and a
``recommend(ctx, n) -> list[ScoredItem]`` method (:class:`Strategy`). The decider looks strategies
up by name in a :class:`StrategyRegistry` and never knows whether it is calling a heuristic below
or a trained model (ALS, EASE, a bandit...) registered later with ``registry.register(model)``;
registering under an existing name hot-swaps it. A strategy must:

- return at most ``n`` items, best first, only ids in ``ctx.catalog`` that are not in
  ``ctx.exclude`` and pass ``ctx.accept`` (use :meth:`StrategyContext.eligible`);
- be fast and pure: the decider measures it against the slot's time budget and uses the slot's
  fallback when it raises or overruns;
- say why in each ``ScoredItem.reason`` (shown to users), and set ``propensity`` when it
  randomises, so decisions can be evaluated offline.

Built-ins: ``popular``, ``trending``, ``recently_viewed``, ``together``, ``new_arrivals``,
``random`` and ``category_affinity``. Each falls back to popular items (and says so) when it has
nothing of its own; popular falls back to catalog order when no activity was recorded yet.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from loopwise.catalog.items import Item
from loopwise.decide import explain
from loopwise.decide.item_stats import DAY, ItemStats
from loopwise.decide.request import ReasonKind
from loopwise.errors import NotFound


@dataclass(frozen=True, slots=True)
class ScoredItem:
    """A candidate item. ``fallback`` marks items a strategy took from popular because it had
    nothing of its own (the decider words cold-start reasons with it). ``reason_kind`` is the
    kind of the decision reason ``reason`` becomes (trained models say ``model`` or
    ``cold_start``)."""

    item_id: str
    score: float
    propensity: float = 1.0
    reason: str = ""
    fallback: bool = False
    reason_kind: ReasonKind = "strategy"


@dataclass(slots=True)
class StrategyContext:
    """Everything a strategy may use for one slot of one request."""

    profile: Mapping[str, Any]
    context: Mapping[str, Any]
    segments: Sequence[str]
    catalog: Mapping[str, Item]
    stats: ItemStats
    now: datetime
    params: Mapping[str, Any] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    exclude: set[str] = field(default_factory=set)
    accept: Callable[[Item], bool] = lambda item: True
    # the ids of the catalog ``accept`` takes, when the decider has them at hand (the same
    # answer as asking ``accept``, without a call per item)
    accepted: frozenset[str] | None = None

    def eligible(self, item_id: str) -> bool:
        """In the catalog, not excluded, and accepted by the filters."""
        if item_id in self.exclude:
            return False
        accepted = self.accepted
        if accepted is not None:
            return item_id in accepted
        item = self.catalog.get(item_id)
        return item is not None and self.accept(item)


@runtime_checkable
class Strategy(Protocol):
    """``personal``: uses the person's profile (so not without consent, nor in a holdout);
    ``trained``: a learned model (disclosed as AI). Strategies that omit them count as personal
    and not trained (see :func:`is_personal`)."""

    name: str

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]: ...


def is_personal(strategy: object) -> bool:
    """Whether a strategy uses the person's data; unknown strategies are assumed to."""
    return bool(getattr(strategy, "personal", True))


def is_trained(strategy: object) -> bool:
    """Whether a strategy is a learned model (its decisions are disclosed as AI-influenced)."""
    return bool(getattr(strategy, "trained", False))


def profile_value(profile: Mapping[str, Any], path: str) -> Any:
    """``profile["cart"]["items"]`` for ``"cart.items"`` (a flat ``"cart.items"`` key works too)."""
    if path in profile:
        return profile[path]
    value: Any = profile
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def profile_ids(profile: Mapping[str, Any], path: str) -> list[str]:
    value = profile_value(profile, path)
    if isinstance(value, list | tuple):
        return [str(v) for v in value if isinstance(v, str | int) and not isinstance(v, bool)]
    return []


class _MixedCatalogOrder:
    """The catalog with its categories interleaved (one item of each in turn), so that a store
    with no activity yet shows a varied shelf rather than the first category only. Cached for the
    last catalog object seen (the engine replaces the catalog object whenever it changes)."""

    def __init__(self) -> None:
        # one tuple, swapped whole, so concurrent readers never see a torn cache
        self._cached: tuple[Mapping[str, Item] | None, int, list[str]] = (None, -1, [])

    def of(self, catalog: Mapping[str, Item]) -> list[str]:
        source, size, order = self._cached
        if catalog is source and len(catalog) == size:
            return order
        buckets: dict[str, list[str]] = {}
        for item_id, item in catalog.items():
            first = item.categories[0] if item.categories else ""
            buckets.setdefault(first, []).append(item_id)
        columns = list(buckets.values())
        order = [
            column[row]
            for row in range(max((len(c) for c in columns), default=0))
            for column in columns
            if row < len(column)
        ]
        self._cached = (catalog, len(catalog), order)
        return order


_MIXED_ORDER = _MixedCatalogOrder()


def popular_items(
    ctx: StrategyContext,
    n: int,
    *,
    skip: Iterable[str] = (),
    segment: str | None = None,
    why: str | None = None,
    fill_catalog: bool = True,
) -> list[ScoredItem]:
    """Up to ``n`` eligible items by popularity (overall or in ``segment``), topped up in catalog
    order when activity data runs out. ``why`` marks a strategy falling back to popular."""
    taken = set(skip)
    if why is not None:
        text, order_text = explain.instead_popular(why), f"{why}; {explain.CATALOG_ORDER}"
    else:
        text = explain.popular_in_segment(segment) if segment else explain.POPULAR
        order_text = explain.CATALOG_ORDER
    fallback = why is not None
    out: list[ScoredItem] = []
    if n <= 0:
        return out
    for item_id, score in ctx.stats.iter_popular(ctx.now, segment):
        if item_id not in taken and ctx.eligible(item_id):
            out.append(ScoredItem(item_id, score, reason=text, fallback=fallback))
            taken.add(item_id)
            if len(out) >= n:
                return out
    if not fill_catalog:
        return out
    for item_id in _MIXED_ORDER.of(ctx.catalog):
        if item_id not in taken and ctx.eligible(item_id):
            out.append(ScoredItem(item_id, 0.0, reason=order_text, fallback=fallback))
            taken.add(item_id)
            if len(out) >= n:
                break
    return out


def popular_instead(
    ctx: StrategyContext, n: int, why: str, skip: Iterable[str] = ()
) -> list[ScoredItem]:
    """What a strategy returns when it has nothing of its own: popular items, saying why."""
    return popular_items(ctx, n, skip=skip, why=why)


POOL_CACHE_LIMIT = 4096  # cached category pools per catalog (top-category combinations)
#: Requests that must see the same popularity ranking before it is split by category: a split
#: walks the whole ranking, and on a live shop the ranking moves with every event.
SPLIT_AFTER = 8
#: Requests between two splits at least: a split costs a few ms at 10k items, so a ranking that
#: moves every few requests (a shop with a trickle of events) must not make every eighth
#: request pay one; between splits the whole-ranking walk answers (same results).
SPLIT_EVERY = 500


CategorySlice = tuple[list[float], list[int], list[str]]  # -stored popularity, rank, id
EMPTY_SLICE: CategorySlice = ([], [], [])


Candidate = tuple[float, int, str, str]  # (score, -global rank, item id, category)


def _keep_best(best: list[Candidate], entry: Candidate, n: int) -> None:
    """Keep ``entry`` in the min-heap ``best`` of the ``n`` best candidates so far."""
    if len(best) < n:
        heapq.heappush(best, entry)
    elif entry > best[0]:
        heapq.heapreplace(best, entry)


def _popular_in_category(best: list[Candidate]) -> list[ScoredItem]:
    return [
        ScoredItem(item_id, score, reason=explain.popular_in_category(category))
        for score, _, item_id, category in sorted(best, reverse=True)
    ]


class _RankingByCategory:
    """The overall popularity ranking split by category: per category, its items' negated
    stored popularity, global rank and id, in ranking order (parallel lists of atoms: a split
    adds a few objects for the garbage collector to track, not one per item). Built for one
    catalog object and one state of the ranking, once that state has served ``SPLIT_AFTER``
    requests and at most once per ``SPLIT_EVERY`` requests."""

    def __init__(self) -> None:
        # (catalog, size, ranking key, slices) swapped whole: readers never see a torn state
        self._state: tuple[Mapping[str, Item] | None, int, object, dict[str, CategorySlice]] = (
            None,
            -1,
            None,
            {},
        )
        self._waiting: tuple[object, int] = (None, 0)  # (ranking key, requests seen)
        self._since_split = SPLIT_EVERY  # requests since the last split (the first may split)

    def of(self, catalog: Mapping[str, Item], stats: ItemStats) -> dict[str, CategorySlice] | None:
        key = stats.ranking_key()
        source, size, built_for, slices = self._state
        if source is catalog and size == len(catalog) and built_for == key:
            return slices
        waiting, seen = self._waiting
        seen = seen + 1 if waiting == key else 1
        self._waiting = (key, seen)
        self._since_split += 1
        if seen < SPLIT_AFTER or self._since_split < SPLIT_EVERY:
            return None
        self._since_split = 0
        key, order = stats.ranking()
        slices = {}
        for rank, (negative, item_id) in enumerate(order):
            item = catalog.get(item_id)
            if item is None:
                continue
            for category in dict.fromkeys(item.categories):
                found = slices.get(category)
                if found is None:
                    found = slices[category] = ([], [], [])
                found[0].append(negative)
                found[1].append(rank)
                found[2].append(item_id)
        self._state = (catalog, len(catalog), key, slices)
        return slices


class _CatalogIndex:
    """Per-catalog derived data, rebuilt when the catalog object or its size changes."""

    def __init__(self) -> None:
        self._source: Mapping[str, Item] | None = None
        self._size = -1
        self.by_category: dict[str, list[str]] = {}
        self.newest: list[tuple[datetime, str]] = []
        # (by_category, pools) swapped as one value, so a pool is never cached for another catalog
        self._pool_state: tuple[dict[str, list[str]], dict[tuple[str, ...], list[str]]] = ({}, {})

    def refresh(self, catalog: Mapping[str, Item]) -> _CatalogIndex:
        if catalog is self._source and len(catalog) == self._size:
            return self
        by_category: dict[str, list[str]] = {}
        dated: list[tuple[datetime, str]] = []
        for item_id, item in catalog.items():
            for category in item.categories:
                by_category.setdefault(category, []).append(item_id)
            if item.created_at is not None:
                dated.append((item.created_at, item_id))
        dated.sort(key=lambda pair: pair[0], reverse=True)
        self._source, self._size = catalog, len(catalog)
        self.by_category, self.newest = by_category, dated
        self._pool_state = (by_category, {})
        return self

    def pool(self, categories: Sequence[str]) -> list[str]:
        """Items of ``categories`` in that order, each once. Cached per category tuple: a page
        asks for the same few top-category combinations over and over, and building the pool
        walks every item of those categories (read-only for callers)."""
        by_category, pools = self._pool_state
        key = tuple(categories)
        found = pools.get(key)
        if found is None:
            found = list(dict.fromkeys(i for c in key for i in by_category.get(c, ())))
            if len(pools) < POOL_CACHE_LIMIT:
                pools[key] = found
        return found


class PopularStrategy:
    """Most popular items (decayed). ``per_segment: true`` uses the popularity within the user's
    most specific segment (the one with the narrowest activity that still has ``n`` items);
    ``segment: key`` forces one segment."""

    name = "popular"
    personal = False
    trained = False

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        segment = self._segment(ctx, n)
        if segment is None:
            return popular_items(ctx, n)
        items = popular_items(ctx, n, segment=segment, fill_catalog=False)
        return items + popular_items(ctx, n - len(items), skip=[i.item_id for i in items])

    @staticmethod
    def _segment(ctx: StrategyContext, n: int) -> str | None:
        forced = ctx.params.get("segment")
        if isinstance(forced, str) and forced:
            return forced
        if not ctx.params.get("per_segment"):
            return None
        usable = [
            (ctx.stats.segment_volume(key), index, key)
            for index, key in enumerate(ctx.segments)
            if ctx.stats.segment_volume(key) >= n
        ]
        return min(usable)[2] if usable else None


class TrendingStrategy:
    """Items whose interest is rising fastest (short vs long window)."""

    name = "trending"
    personal = False
    trained = False

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        out = []
        for item_id, score in ctx.stats.trending(ctx.now, limit=len(ctx.catalog) + 1):
            if ctx.eligible(item_id):
                out.append(ScoredItem(item_id, score, reason=explain.TRENDING))
                if len(out) >= n:
                    return out
        if out:
            return out + popular_items(ctx, n - len(out), skip=[i.item_id for i in out])
        return popular_instead(ctx, n, "nothing is trending yet")


class RecentlyViewedStrategy:
    """The user's recently viewed items, newest first (profile.recently_viewed)."""

    name = "recently_viewed"
    personal = True
    trained = False

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        viewed = [i for i in profile_ids(ctx.profile, "recently_viewed") if ctx.eligible(i)]
        if not viewed:
            return popular_instead(ctx, n, "no recently viewed items to show")
        return [
            ScoredItem(item_id, 1.0 / (1 + rank), reason=explain.RECENTLY_VIEWED)
            for rank, item_id in enumerate(viewed[:n])
        ]


class TogetherStrategy:
    """Viewed/bought together: co-occurrence with anchor items. Anchors are ``params.items``
    (e.g. the product on the page), then the cart, then the ``params.anchors`` (5) most
    recently viewed items."""

    name = "together"
    personal = True
    trained = False

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        explicit = ctx.params.get("items")
        anchors = [str(i) for i in explicit] if isinstance(explicit, list) else []
        anchors += profile_ids(ctx.profile, "cart.items")
        limit = ctx.params.get("anchors", 5)
        recent = profile_ids(ctx.profile, "recently_viewed")
        anchors += recent[: limit if isinstance(limit, int) and limit > 0 else 5]
        if not anchors:
            return popular_instead(ctx, n, "nothing viewed yet to pair with")
        out = []
        for item_id, score in ctx.stats.together(anchors, limit=max(100, 10 * n)):
            if ctx.eligible(item_id):
                out.append(ScoredItem(item_id, score, reason=explain.TOGETHER))
                if len(out) >= n:
                    break
        if not out:
            return popular_instead(ctx, n, "nothing seen together with your items yet")
        return out


class NewArrivalsStrategy:
    """Newest catalog items by ``created_at`` (else when first seen in events); optional
    ``max_age_days``."""

    name = "new_arrivals"
    personal = False
    trained = False

    def __init__(self) -> None:
        self._index = _CatalogIndex()

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        index = self._index.refresh(ctx.catalog)
        dated = index.newest
        if not dated:
            seen = ctx.stats.first_seen
            dated = sorted(
                ((seen[i], i) for i in ctx.catalog if i in seen),
                key=lambda pair: pair[0],
                reverse=True,
            )
        max_age = ctx.params.get("max_age_days")
        out = []
        for created, item_id in dated:
            age_days = max(0.0, (ctx.now - created).total_seconds() / DAY)
            if isinstance(max_age, int | float) and age_days > max_age:
                break
            if ctx.eligible(item_id):
                out.append(ScoredItem(item_id, 1.0 / (1.0 + age_days), reason=explain.NEW_ARRIVAL))
                if len(out) >= n:
                    break
        if not out:
            return popular_instead(ctx, n, "no new arrivals")
        return out


class RandomStrategy:
    """Uniformly random eligible items: pure exploration. Propensity = n / eligible items."""

    name = "random"
    personal = False
    trained = False

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        pool = [item_id for item_id in ctx.catalog if ctx.eligible(item_id)]
        if not pool:
            return []
        chosen = ctx.rng.sample(pool, min(n, len(pool)))
        propensity = len(chosen) / len(pool)
        return [
            ScoredItem(item_id, 0.0, propensity=propensity, reason=explain.RANDOM)
            for item_id in chosen
        ]


def category_weights(profile: Mapping[str, Any], limit: int = 3) -> dict[str, float]:
    """The person's top ``limit`` categories (``affinity.categories``, else the ranks of
    ``top_categories``), each relative to the strongest, strongest first (ties by name)."""
    raw = profile_value(profile, "affinity.categories")
    scores: dict[str, float] = {}
    if isinstance(raw, Mapping):
        scores = {
            str(k): float(v)
            for k, v in raw.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        }
    if not scores:
        top = profile_ids(profile, "top_categories")
        scores = {c: 1.0 / (1 + rank) for rank, c in enumerate(top)}
    chosen = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    if not chosen:
        return {}
    top_score = chosen[0][1]
    return {category: score / top_score for category, score in chosen}


class CategoryAffinityStrategy:
    """Popular items within the user's top categories, weighted by affinity.

    Score = item popularity x (category affinity / top affinity), over the ``top_categories``
    (3) categories with the highest ``profile.affinity.categories`` (else
    ``profile.top_categories``); ties (e.g. no activity yet) go to the stronger category, then
    catalog order. Scores the top categories' items directly when they hold at most
    ``max_pool`` (500) items, else walks the popularity ranking, which stops as soon as no later
    item can beat the n-th (same result; big pools are popular categories, so the walk ends
    early: decide p99 3.4 -> 1.3 ms at 10k items). The foundation's main personal strategy.
    """

    name = "category_affinity"
    personal = True
    trained = False

    def __init__(self, max_pool: int = 500) -> None:
        self._index = _CatalogIndex()
        self._by_category = _RankingByCategory()
        self.max_pool = max_pool

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        weights = self._weights(ctx)
        if not weights:
            return popular_instead(ctx, n, "no category interests yet")
        index = self._index.refresh(ctx.catalog)
        by_strength = list(weights)  # _weights orders them strongest first (ties by name)
        # an upper bound of the pool's size (items may sit in several categories): building the
        # pool of a new category combination walks all its items, which big pools must not do
        if sum(len(index.by_category.get(c, ())) for c in by_strength) <= self.max_pool:
            out = self._score_pool(ctx, n, weights, index.pool(by_strength))
        else:
            out = self._walk_ranking(ctx, n, weights)
            if len(out) < n:  # items without activity: top up from the categories themselves
                taken = {item.item_id for item in out}
                out += [
                    ScoredItem(i, 0.0, reason=explain.popular_in_category(c))
                    for i, c in self._pick(
                        ctx, index.pool(by_strength), weights, taken, n - len(out)
                    )
                ]
        if not out:
            return popular_instead(ctx, n, "nothing available in your top categories")
        return out

    @staticmethod
    def _category(item: Item, weights: Mapping[str, float]) -> str | None:
        best, best_weight = None, 0.0
        for category in item.categories:
            weight = weights.get(category, 0.0)
            if weight > best_weight:
                best, best_weight = category, weight
        return best

    def _score_pool(
        self, ctx: StrategyContext, n: int, weights: Mapping[str, float], pool: list[str]
    ) -> list[ScoredItem]:
        popularity = ctx.stats.scores(pool, ctx.now)
        entries = []
        for position, item_id in enumerate(pool):
            if not ctx.eligible(item_id):
                continue
            category = self._category(ctx.catalog[item_id], weights)
            if category is None:
                continue
            weight = weights[category]
            entries.append((popularity[item_id] * weight, weight, -position, item_id, category))
        return [
            ScoredItem(item_id, score, reason=explain.popular_in_category(category))
            for score, _, _, item_id, category in heapq.nlargest(n, entries)
        ]

    def _walk_ranking(
        self, ctx: StrategyContext, n: int, weights: Mapping[str, float]
    ) -> list[ScoredItem]:
        slices = self._by_category.of(ctx.catalog, ctx.stats)
        if slices is not None:
            return self._walk_categories(ctx, n, weights, slices)
        best: list[Candidate] = []  # min-heap
        for rank, (item_id, popularity) in enumerate(ctx.stats.iter_popular(ctx.now)):
            if len(best) >= n and popularity <= best[0][0]:
                break  # weights are <= 1: no later item can beat the current n-th
            item = ctx.catalog.get(item_id)
            category = self._category(item, weights) if item is not None else None
            if category is None or not ctx.eligible(item_id):
                continue
            entry = (popularity * weights[category], -rank, item_id, category)
            _keep_best(best, entry, n)
        return _popular_in_category(best)

    def _walk_categories(
        self,
        ctx: StrategyContext,
        n: int,
        weights: Mapping[str, float],
        slices: Mapping[str, CategorySlice],
    ) -> list[ScoredItem]:
        """The walk of :meth:`_walk_ranking` over the top categories' own slices of the ranking:
        the same best ``n`` (same scores, same tie order by global rank), without stepping over
        the items of other categories. A category's slice stops once its weight times the next
        popularity is below the current n-th score (strictly: an equal score with an earlier
        rank could still come from another slice)."""
        factor = ctx.stats.popular_factor(ctx.now)
        catalog, category_of = ctx.catalog, self._category
        # ctx.eligible and _keep_best inlined: this loop runs for every person of a campaign
        exclude, accepted, accept = ctx.exclude, ctx.accepted, ctx.accept
        best: list[Candidate] = []  # min-heap
        seen: set[str] = set()
        for own in weights:
            weight = weights[own]
            negatives, ranks, ids = slices.get(own, EMPTY_SLICE)
            for negative, rank, item_id in zip(negatives, ranks, ids, strict=True):
                popularity = -negative * factor
                if len(best) >= n and popularity * weight < best[0][0]:
                    break
                if item_id in seen:
                    continue
                seen.add(item_id)
                item = catalog.get(item_id)
                if item is None or item_id in exclude:
                    continue
                if accepted is not None:
                    if item_id not in accepted:
                        continue
                elif not accept(item):
                    continue
                category = category_of(item, weights)
                if category is None:
                    continue
                entry = (popularity * weights[category], -rank, item_id, category)
                if len(best) < n:
                    heapq.heappush(best, entry)
                elif entry > best[0]:
                    heapq.heapreplace(best, entry)
        return _popular_in_category(best)

    def _pick(
        self,
        ctx: StrategyContext,
        pool: list[str],
        weights: Mapping[str, float],
        taken: set[str],
        n: int,
    ) -> list[tuple[str, str]]:
        picked: list[tuple[str, str]] = []
        for item_id in pool:
            if len(picked) >= n:
                break
            if item_id not in taken and ctx.eligible(item_id):
                category = self._category(ctx.catalog[item_id], weights)
                if category is not None:
                    picked.append((item_id, category))
        return picked

    @staticmethod
    def _weights(ctx: StrategyContext) -> dict[str, float]:
        limit = ctx.params.get("top_categories", 3)
        limit = limit if isinstance(limit, int) and limit > 0 else 3
        return category_weights(ctx.profile, limit)


BUILTIN_STRATEGIES: tuple[type[Strategy], ...] = (
    PopularStrategy,
    TrendingStrategy,
    RecentlyViewedStrategy,
    TogetherStrategy,
    NewArrivalsStrategy,
    RandomStrategy,
    CategoryAffinityStrategy,
)


class StrategyRegistry:
    """Strategies by name. ``register`` adds or hot-swaps one (e.g. a freshly trained model)."""

    def __init__(self, strategies: Iterable[Strategy] = ()) -> None:
        self._strategies: dict[str, Strategy] = {}
        for strategy in strategies:
            self.register(strategy)

    @classmethod
    def default(cls) -> StrategyRegistry:
        """A registry holding the built-in strategies."""
        return cls(strategy() for strategy in BUILTIN_STRATEGIES)

    def register(self, strategy: Strategy) -> None:
        name = getattr(strategy, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError("a strategy needs a non-empty string `name`")
        if not callable(getattr(strategy, "recommend", None)):
            raise ValueError(f"strategy {name!r} has no recommend(ctx, n) method")
        self._strategies[name] = strategy

    def get(self, name: str) -> Strategy:
        strategy = self._strategies.get(name)
        if strategy is None:
            raise NotFound(
                f"No strategy named {name!r}. Known strategies: {', '.join(self.names())}. "
                "Fix the slot's strategy or register (train) the model first.",
                field="strategy",
            )
        return strategy

    def names(self) -> list[str]:
        return sorted(self._strategies)

    def __contains__(self, name: object) -> bool:
        return name in self._strategies


# -- cart cross-sells (docs/channels.md) -----------------------------------------------------------
#: How much an item sharing a category with the cart counts against a complement (a second camera
#: is rarely the cross-sell of a camera).
SAME_CATEGORY_WEIGHT = 0.25
#: Score of the best item of a configured complement category, against 1 for the best
#: bought-together item.
CATEGORY_COMPLEMENT_WEIGHT = 0.5


class ComplementsStrategy:
    """Cart cross-sells: what goes with the cart *now* (``profile.cart.items``, plus
    ``params.items`` when the page names more), never what is already in it.

    Two sources, merged by score: items bought (and added, viewed) together with the cart's items
    in the item statistics, normalised to the best one (1), items sharing a category with the
    cart counting ``params.same_category_weight`` (0.25); and the popular items of the complement
    categories the slot configures for the cart's categories (``params.categories``:
    ``{camera: [memory-cards, tripods]}``), the best at ``params.category_weight`` (0.5) falling
    by rank. The cart's items are excluded for the whole slot, its fallbacks included."""

    name = "complements"
    personal = True
    trained = False

    def __init__(self) -> None:
        self._index = _CatalogIndex()

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        explicit = ctx.params.get("items")
        cart = [str(i) for i in explicit] if isinstance(explicit, list) else []
        cart = list(dict.fromkeys([*cart, *profile_ids(ctx.profile, "cart.items")]))
        ctx.exclude.update(cart)  # the slot's fallbacks must not show the cart either
        if not cart:
            return popular_instead(ctx, n, "your cart is empty")
        in_cart = {c for i in cart if (item := ctx.catalog.get(i)) for c in item.categories}
        scored: dict[str, ScoredItem] = {}
        for candidate in self._together(ctx, n, cart, in_cart):
            scored[candidate.item_id] = candidate
        for candidate in self._category_complements(ctx, n, in_cart):
            known = scored.get(candidate.item_id)
            if known is None or candidate.score > known.score:
                scored[candidate.item_id] = candidate
        if not scored:
            return popular_instead(ctx, n, "nothing is bought together with your cart yet")
        ranked = sorted(scored.values(), key=lambda s: (-s.score, s.item_id))
        return ranked[:n]

    def _together(
        self, ctx: StrategyContext, n: int, cart: list[str], in_cart: set[str]
    ) -> list[ScoredItem]:
        same = _fraction(ctx.params.get("same_category_weight"), SAME_CATEGORY_WEIGHT)
        found: list[tuple[float, str]] = []
        for item_id, score in ctx.stats.together(cart, limit=max(100, 10 * n)):
            if not ctx.eligible(item_id):
                continue
            categories = ctx.catalog[item_id].categories
            shares = bool(in_cart) and not in_cart.isdisjoint(categories)
            found.append((score * (same if shares else 1.0), item_id))
        top = max((score for score, _ in found), default=0.0)
        if top <= 0:
            return []
        return [
            ScoredItem(item_id, score / top, reason=explain.BOUGHT_WITH_CART)
            for score, item_id in found
            if score > 0
        ]

    def _category_complements(
        self, ctx: StrategyContext, n: int, in_cart: set[str]
    ) -> list[ScoredItem]:
        mapping = ctx.params.get("categories")
        if not isinstance(mapping, Mapping) or not in_cart:
            return []
        wanted: list[str] = []
        for category in sorted(in_cart):
            targets = mapping.get(category)
            if isinstance(targets, list):
                wanted += [str(t) for t in targets if str(t) not in in_cart]
        if not wanted:
            return []
        weight = _fraction(ctx.params.get("category_weight"), CATEGORY_COMPLEMENT_WEIGHT)
        index = self._index.refresh(ctx.catalog)
        out: list[ScoredItem] = []
        for category in dict.fromkeys(wanted):
            pool = [i for i in index.by_category.get(category, ()) if ctx.eligible(i)]
            popularity = ctx.stats.scores(pool, ctx.now)
            order = sorted(range(len(pool)), key=lambda k: (-popularity[pool[k]], k))[:n]
            best = [pool[k] for k in order]
            text = explain.complements_category(category)
            out += [
                ScoredItem(item_id, weight / (1 + rank), reason=text)
                for rank, item_id in enumerate(best)
            ]
        return out


def _fraction(value: object, default: float) -> float:
    """A 0-1 parameter, else ``default``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return default
    return min(1.0, max(0.0, float(value)))


BUILTIN_STRATEGIES = (*BUILTIN_STRATEGIES, ComplementsStrategy)
# -- diversity against filter bubbles (a list slot's ``diversity`` settings) ---------------------


def item_features(item: Item | None) -> frozenset[str]:
    """What makes two items alike for diversity: their categories and tags."""
    if item is None:
        return frozenset()
    return frozenset([f"c:{c}" for c in item.categories] + [f"t:{t}" for t in item.tags])


def item_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two items' features (0 when either has none)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def mmr_order(
    ids: Sequence[str], scores: Sequence[float], catalog: Mapping[str, Item], n: int, lam: float
) -> list[int]:
    """Maximal marginal relevance (Carbonell & Goldstein 1998): positions of ``ids`` (ranked
    best first with ``scores``) in the order MMR picks up to ``n`` of them — each time the one
    maximising ``lam · relevance - (1 - lam) · max similarity to those already picked``, with
    relevance the score min-max normalised over the candidates and similarity
    :func:`item_similarity`. ``lam`` 1 keeps the ranking."""
    if lam >= 1.0 or len(ids) <= 1:
        return list(range(min(n, len(ids))))
    low, high = min(scores), max(scores)
    span = (high - low) or 1.0
    relevance = [(s - low) / span for s in scores]
    features = [item_features(catalog.get(i)) for i in ids]
    left = list(range(len(ids)))
    picked: list[int] = []
    closest = [0.0] * len(ids)  # max similarity of each candidate to the picked ones
    while left and len(picked) < n:
        best = max(left, key=lambda j: (lam * relevance[j] - (1 - lam) * closest[j], -j))
        picked.append(best)
        left.remove(best)
        for j in left:
            closest[j] = max(closest[j], item_similarity(features[j], features[best]))
    return picked


def unfamiliar_items(
    ctx: StrategyContext, n: int, skip: Iterable[str] = (), pool: int = 20
) -> tuple[list[str], int]:
    """Serendipity candidates: up to ``pool`` popular eligible items none of whose categories
    the person has shown interest in (``affinity.categories``), and of them ``n`` drawn at
    random; returns (picked ids, pool size) so the caller can log the propensity."""
    liked = profile_value(ctx.profile, "affinity.categories")
    known = {str(c) for c in liked} if isinstance(liked, Mapping) else set()
    taken = set(skip)
    found: list[str] = []
    for item_id, _score in ctx.stats.iter_popular(ctx.now, None):
        item = ctx.catalog.get(item_id)
        if item is None or item_id in taken or not ctx.eligible(item_id):
            continue
        if known.intersection(item.categories):
            continue
        found.append(item_id)
        if len(found) >= pool:
            break
    if len(found) < pool:
        for item_id, item in ctx.catalog.items():
            if len(found) >= pool:
                break
            if item_id in taken or item_id in found or not ctx.eligible(item_id):
                continue
            if not known.intersection(item.categories):
                found.append(item_id)
    picked = ctx.rng.sample(found, min(n, len(found)))
    return picked, len(found)
