"""The pre-render cache: slot decisions that depend only on segment membership and the request's
context, cached per (slot, segment signature, context key) for a short time.

Most of a page is the same for everyone in the same segments on the same kind of request: the
hero of a UK visitor on a phone, the trending list. Such a slot is *prerenderable* when nothing
about the person beyond their segments can change it:

- block slots whose rules read only ``context`` and ``segments`` (never ``profile``);
- list slots whose strategies are non-personal and deterministic (``popular``, ``trending``,
  ``new_arrivals``), with no exploration and no boost or bury, whose rules read only context and
  segments. A list is cached as decided alone and reused when none of its items is already on
  the page (a later list skips what earlier slots show).

The key of one slot decision holds only what the decision reads: the segments its rules name (all
segments when a rule reads ``segments`` itself or ``popular`` ranks per segment), the values of the
context paths its conditions read, which of its rules are active now, the pricing consent, the
impersonal reason (no consent, holdout), and for lists the person's "cold start" flag, the size
and filters asked. Per-person parts stay live: a slot an experiment arm overrides for this person,
and a list whose filters would hide items the person bought or viewed, are decided as usual.

Entries expire after ``ttl_seconds`` (popularity moves; TTL is how stale a list may be) and all of
them go when the workspace or the catalog changes (:meth:`PrerenderCache.invalidate`). A cached
decision is shared by the responses that hit it: nothing changes a decision after it is made.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from loopwise.decide.decider import is_cold_start
from loopwise.decide.request import (
    CacheInfo,
    CacheStatus,
    Reason,
    SlotDecision,
    SlotRequest,
    built,
)
from loopwise.decide.rules import Rule
from loopwise.decide.slots import Slot

# built-in strategies whose answer is a function of the item statistics, the catalog, the time
# and (``popular`` per segment) the segments: never of the person or a random draw
PRERENDERABLE_STRATEGIES = frozenset({"popular", "trending", "new_arrivals"})


class PrerenderSettings(BaseModel):
    """``prerender:`` in ``loopwise.yaml``."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Cache prerenderable slot decisions.")
    ttl_seconds: int = Field(
        default=60, ge=1, le=86_400, description="How long a cached slot decision is served."
    )
    max_entries: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Cached slot decisions kept (LRU)."
    )


@dataclass(frozen=True, slots=True)
class _Recipe:
    """What one prerenderable slot's decision reads."""

    kind: Literal["block", "list"]
    segment_keys: frozenset[str] | None  # None: every segment of the person
    context_paths: tuple[str, ...]
    rules: tuple[Rule, ...]
    reads_purchases: bool
    reads_views: bool


DecideSlots = Callable[[list[SlotRequest], set[str]], list[SlotDecision]]
"""Decides slot requests with the given items already on the page (the decider, bound to one
person and request)."""


class PrerenderCache:
    """Thread-safe. ``clock`` gives seconds: the engine's clock, so a simulation or a backtest
    running on event time expires entries on its own time."""

    def __init__(
        self,
        settings: Callable[[], PrerenderSettings],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, SlotDecision]] = OrderedDict()
        self._recipes: dict[str, _Recipe] = {}
        self._recipes_for: object = None
        self._generation = 0
        self.hits = 0
        self.misses = 0
        self.live = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget every entry (the workspace or the catalog changed)."""
        with self._lock:
            self._entries.clear()
            self._recipes_for = None
            self._generation += 1

    def __len__(self) -> int:
        return len(self._entries)

    def hit_ratio(self) -> float:
        """Hits over every slot decision asked of the cache (live slots included)."""
        total = self.hits + self.misses + self.live
        return self.hits / total if total else 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "live": self.live,
            "entries": len(self._entries),
            "hit_ratio": round(self.hit_ratio(), 4),
        }

    # -- one page ------------------------------------------------------------------------------
    def decide_page(
        self,
        slots: Mapping[str, Slot],
        requests: Sequence[SlotRequest],
        decide: DecideSlots,
        *,
        profile: Mapping[str, Any],
        context: Mapping[str, Any],
        segments: Sequence[str],
        now: datetime,
        pricing: bool,
        impersonal: Reason | None,
        overridden: frozenset[str],
    ) -> tuple[list[SlotDecision], CacheInfo]:
        """Every requested slot's decision, in order, from the cache where it may be.

        A list decision is cached as decided with nothing else on the page; it is reused when
        none of its items is already on the page (a fixed ranking's top n without some items it
        does not contain is the same top n), else this slot is decided live."""
        settings = self._settings()
        if not settings.enabled or any(r.slot not in slots for r in requests):
            return decide(list(requests), set()), _info({}, {}, requests, settings)
        recipes = self._recipes_of(slots)
        if not any(r.slot in recipes for r in requests):  # every slot live (a campaign's list)
            with self._lock:
                self.live += len(requests)
            statuses: dict[str, CacheStatus] = dict.fromkeys((r.slot for r in requests), "live")
            return decide(list(requests), set()), _info(statuses, {}, requests, settings)
        member_of = frozenset(segments)
        with self._lock:
            generation = self._generation
        shown: set[str] = set()
        out: list[SlotDecision] = []
        statuses = {}
        keys: dict[str, str] = {}
        run: list[SlotRequest] = []  # live slots in a row: decided in one call

        def flush() -> None:
            if run:
                for decision in decide(list(run), shown):
                    shown.update(item.id for item in decision.items)
                    out.append(decision)
                    statuses[decision.slot] = "live"
                run.clear()

        for request in requests:
            recipe = recipes.get(request.slot)
            if recipe is None or not self._prerenderable(recipe, request, profile, overridden):
                run.append(request)
                continue
            flush()
            key = _key(request, recipe, profile, context, member_of, now, pricing, impersonal)
            keys[request.slot] = key
            status: CacheStatus = "hit"
            decision = self._get(key)
            if decision is None:
                decision = decide([request], set())[0]
                self._put(key, decision, generation, settings)
                status = "miss"
            if not shown.isdisjoint(item.id for item in decision.items):
                decision, status = decide([request], shown)[0], "live"
            statuses[request.slot] = status
            shown.update(item.id for item in decision.items)
            out.append(decision)
        flush()
        with self._lock:
            self.hits += sum(s == "hit" for s in statuses.values())
            self.misses += sum(s == "miss" for s in statuses.values())
            self.live += sum(s == "live" for s in statuses.values())
        ordered = {r.slot: statuses[r.slot] for r in requests}
        return out, _info(ordered, keys, requests, settings)

    @staticmethod
    def _prerenderable(
        recipe: _Recipe,
        request: SlotRequest,
        profile: Mapping[str, Any],
        overridden: frozenset[str],
    ) -> bool:
        """Whether this person's decision of the slot is the one everyone alike gets: no
        experiment arm of theirs changes it and its filters hide nothing of theirs."""
        if request.slot in overridden:
            return False
        if recipe.kind == "block":
            return True
        if recipe.reads_purchases and profile.get("purchased_items"):
            return False
        if recipe.reads_views and profile.get("recently_viewed"):
            return False
        return not _request_filters_personal(request)

    def _get(self, key: str) -> SlotDecision | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def _put(
        self, key: str, decision: SlotDecision, generation: int, settings: PrerenderSettings
    ) -> None:
        """Stored unless the cache was invalidated since the page began (the decision may come
        from the old workspace)."""
        with self._lock:
            if generation != self._generation:
                return
            self._entries[key] = (self._clock() + settings.ttl_seconds, decision)
            self._entries.move_to_end(key)
            while len(self._entries) > settings.max_entries:
                self._entries.popitem(last=False)

    # -- recipes -------------------------------------------------------------------------------
    def _recipes_of(self, slots: Mapping[str, Slot]) -> dict[str, _Recipe]:
        with self._lock:
            if self._recipes_for is slots:
                return self._recipes
        recipes = {key: r for key, slot in slots.items() if (r := recipe_for(slot)) is not None}
        with self._lock:
            self._recipes, self._recipes_for = recipes, slots
        return recipes


def recipe_for(slot: Slot) -> _Recipe | None:
    """What a slot's decision reads, or None when it depends on the person (never cached)."""
    if slot.strategy == "bandit":
        return None  # drawn afresh for every decision, and learning
    paths: set[str] = set()
    for rule in slot.rules:
        _read_paths(rule.when, paths)
    roots = {path.split(".", 1)[0] for path in paths}
    if "profile" in roots:
        return None
    segment_keys: frozenset[str] | None = frozenset(k for r in slot.rules for k in r.segments)
    if "segments" in roots:
        segment_keys = None
    reads_purchases = reads_views = False
    if slot.kind == "list":
        if slot.exploration > 0:
            return None
        strategies = [(slot.default_strategy, slot.strategy_params)]
        for rule in slot.rules:
            params = rule.then.strategy_params
            merged = params if rule.then.strategy else {**slot.strategy_params, **params}
            strategies.append((rule.then.strategy or slot.default_strategy, merged))
        if any(name not in PRERENDERABLE_STRATEGIES for name, _ in strategies):
            return None
        if any(rule.then.boost or rule.then.bury for rule in slot.rules):
            return None  # rank-shaped: excluding an item elsewhere on the page could reorder
        if any(name == "popular" and params.get("per_segment") for name, params in strategies):
            segment_keys = None
        filters = [slot.filters, *(r.then.filters for r in slot.rules if r.then.filters)]
        reads_purchases = any(f.exclude_purchased for f in filters)
        reads_views = any(f.exclude_seen for f in filters)
    context_paths = tuple(sorted(p for p in paths if p.split(".", 1)[0] == "context"))
    return _Recipe(
        kind=slot.kind,
        segment_keys=segment_keys,
        context_paths=context_paths,
        rules=tuple(slot.rules),
        reads_purchases=reads_purchases,
        reads_views=reads_views,
    )


def _read_paths(condition: Any, paths: set[str]) -> None:
    """The attribute paths a condition reads (through ``$and``/``$or``/``$nor``/``$not``); the
    operators under a path (``$elemMatch`` included) read only that path."""
    if not isinstance(condition, Mapping):
        return
    for key, value in condition.items():
        if key in ("$and", "$or", "$nor") and isinstance(value, list):
            for item in value:
                _read_paths(item, paths)
        elif key == "$not":
            _read_paths(value, paths)
        elif isinstance(key, str) and not key.startswith("$"):
            paths.add(key)


def _request_filters_personal(request: SlotRequest) -> bool:
    filters = request.filters
    if filters is None:
        return False
    named = filters.model_fields_set
    return bool(
        ("exclude_purchased" in named and filters.exclude_purchased)
        or ("exclude_seen" in named and filters.exclude_seen)
    )


def _value_at(attributes: Mapping[str, Any], path: str) -> Any:
    current: Any = attributes
    for part in path.split(".")[1:]:
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _key(
    request: SlotRequest,
    recipe: _Recipe,
    profile: Mapping[str, Any],
    context: Mapping[str, Any],
    member_of: frozenset[str],
    now: datetime,
    pricing: bool,
    impersonal: Reason | None,
) -> str:
    segments = member_of if recipe.segment_keys is None else member_of & recipe.segment_keys
    parts: list[Any] = [
        request.slot,
        sorted(segments),
        [[path, _value_at(context, path)] for path in recipe.context_paths],
        [rule.is_active(now) for rule in recipe.rules],
        pricing,
        [impersonal.kind, impersonal.ref, impersonal.text] if impersonal is not None else None,
    ]
    if recipe.kind == "list":
        filters = request.filters.model_dump(mode="json") if request.filters else None
        parts += [request.n, filters, is_cold_start(profile)]
    raw = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _info(
    statuses: dict[str, CacheStatus],
    keys: Mapping[str, str],
    requests: Sequence[SlotRequest],
    settings: PrerenderSettings,
) -> CacheInfo:
    statuses = statuses or {r.slot: "live" for r in requests}
    page_key = None
    if requests and all(r.slot in keys for r in requests):
        joined = "|".join(keys[r.slot] for r in requests)
        page_key = hashlib.sha256(joined.encode()).hexdigest()[:32]
    # built, not validated: one per decide (each person of a campaign)
    return built(CacheInfo, {"slots": statuses, "key": page_key, "max_age": settings.ttl_seconds})
