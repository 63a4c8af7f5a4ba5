"""The decider: fills the requested slots of one page for one user.

Per slot: select the rule (priority, then specificity) → block slots get the rule's or the
default variant; list slots ask the strategy for candidates (3x what is needed, to survive
filtering), apply the rule's pin/boost/bury/exclude and the merged filters, never repeat an item
shown in an earlier slot, top up from the static fallback and popular items when short, and
explore (epsilon-greedy) with honest propensities. A strategy that raises or overruns the slot's
time budget never fails the request: the static fallback takes its place and a reason says so.
Pure: no storage and no wall clock (``now`` and ``rng`` are passed in; only the budget timer
reads ``time.perf_counter``), so decisions are reproducible.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from loopwise.bandits.explain import bandit_reasons
from loopwise.bandits.service import BanditService
from loopwise.bandits.settings import BANDIT, BanditSettings
from loopwise.catalog.items import Item
from loopwise.decide import explain
from loopwise.decide.filters import AcceptedIds, ItemFilters, build_filter
from loopwise.decide.item_stats import ItemStats
from loopwise.decide.request import (
    DecidedItem,
    DecidedVariant,
    Reason,
    ReasonKind,
    SlotDecision,
    SlotRequest,
    built,
)
from loopwise.decide.rules import CompiledRules, Rule, RuleAction
from loopwise.decide.slots import Diversity, Slot
from loopwise.decide.strategies import (
    ScoredItem,
    StrategyContext,
    StrategyRegistry,
    is_personal,
    is_trained,
    mmr_order,
    popular_items,
    profile_ids,
    unfamiliar_items,
)
from loopwise.errors import NotFound, ValidationFailed
from loopwise.segments.conditions import SavedGroups

log = logging.getLogger(__name__)

CANDIDATE_FACTOR = 3  # ask strategies for this many times n, so filters leave enough
PRIVATE_ATTRIBUTES = frozenset({"margin", "cost"})  # business data never sent to clients
MAX_STRATEGY_REASONS = 3


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 5x (a few per person)
class _Pick:
    item_id: str
    score: float
    propensity: float
    reason: str
    source: str  # strategy | pin | static | popular | explore
    fallback: bool = False
    reason_kind: ReasonKind = "strategy"


@dataclass(frozen=True, slots=True)
class SlotOverride:
    """What an experiment arm changes in one slot for one decision: the strategy (and params)
    of a list slot or the variant of a block slot, whatever rule matched; ``reason`` (kind
    ``experiment``) is added to the slot's reasons. Filters, pins and fallbacks still apply."""

    reason: Reason
    strategy: str | None = None
    strategy_params: Mapping[str, Any] | None = None
    variant: str | None = None


def is_cold_start(profile: Mapping[str, Any]) -> bool:
    """No item views and no purchases yet: nothing to personalise from."""
    views = profile.get("item_views") or 0
    purchases = profile.get("purchases") or 0
    return (
        not views
        and not purchases
        and not profile_ids(profile, "recently_viewed")
        and not profile_ids(profile, "purchased_items")
    )


def public_attributes(item: Item) -> dict[str, Any]:
    return {
        key: value
        for key, value in item.attributes.items()
        if key not in PRIVATE_ATTRIBUTES and not key.startswith("_")
    }


class Decider:
    """Decides pages from one workspace's slots. Rebuild it when slots change; the catalog and
    stats mappings are read live. ``frozen_catalog``: the catalog object never changes in place
    (the engine's is copy-on-write and rebuilds the decider on a change), so what the filters
    accept of it, and each item's public form, can be worked out once."""

    def __init__(
        self,
        slots: Mapping[str, Slot],
        strategies: StrategyRegistry,
        catalog: Mapping[str, Item],
        stats: ItemStats,
        *,
        saved_groups: SavedGroups | None = None,
        timer: Callable[[], float] = time.perf_counter,
        bandits: BanditService | None = None,
        frozen_catalog: bool = False,
    ) -> None:
        self.slots = dict(slots)
        self.strategies = strategies
        self.catalog = catalog
        self.stats = stats
        self._rules = {key: CompiledRules(slot.rules, saved_groups) for key, slot in slots.items()}
        self._timer = timer
        self.bandits = bandits
        self._accepted = AcceptedIds(catalog) if frozen_catalog else None
        self._public: dict[str, dict[str, Any]] | None = {} if frozen_catalog else None
        # (slot, rule) -> merged filters, for requests without filters of their own
        self._filters: dict[tuple[str, str | None], tuple[Rule | None, ItemFilters]] = {}

    def decide_slots(
        self,
        requests: Sequence[SlotRequest],
        *,
        profile: Mapping[str, Any],
        context: Mapping[str, Any],
        segments: Sequence[str],
        segment_names: Mapping[str, str],
        now: datetime,
        rng: random.Random,
        impersonal: Reason | None = None,
        pricing: bool = True,
        overrides: Mapping[str, SlotOverride] | None = None,
        shown: Iterable[str] = (),
    ) -> list[SlotDecision]:
        """One decision per requested slot, in request order. Raises ``ValidationFailed`` (field
        ``slots[i].slot``) for an unknown slot before deciding anything.

        ``impersonal`` (a reason: no consent, holdout...) decides without the person's data: the
        caller passes an empty profile and context-only segments, and personal strategies are
        replaced by ``popular``; the reason is added to every list slot. Without ``pricing``
        (consent), rules flagged ``pricing`` do not fire.

        ``overrides`` (slot key -> :class:`SlotOverride`, from experiment arms) replaces the
        strategy or variant the slot would use; absent slots decide as usual. ``shown`` holds
        items already on the page (decided elsewhere, e.g. the pre-render cache): lists skip
        them."""
        for index, request in enumerate(requests):
            if request.slot not in self.slots:
                known = sorted(self.slots)
                raise ValidationFailed(
                    f"Unknown slot {request.slot!r}. Known slots: {', '.join(known) or 'none'}. "
                    "Fix the key or define the slot in the workspace.",
                    field=f"slots[{index}].slot",
                    known_slots=known,
                )
        attributes = {"profile": profile, "context": context, "segments": list(segments)}
        on_page = set(shown)
        decisions = []
        for request in requests:
            slot = self.slots[request.slot]
            rule = self._rules[request.slot].select(attributes, segments, now, pricing=pricing)
            reasons = _rule_reasons(rule, segments, segment_names)
            override = overrides.get(request.slot) if overrides else None
            if override is not None:
                reasons.append(override.reason)
            if slot.kind == "block":
                if self._bandit_serves(slot, rule, override):
                    decisions.append(
                        self._bandit_block(
                            request.slot, slot, rule, reasons, profile, context, segments, rng
                        )
                    )
                else:
                    decisions.append(_block(request.slot, slot, rule, reasons, override))
                continue
            filters = self._merged_filters(request, slot, rule)
            ctx = self._context(slot, filters, rule, profile, context, segments, now, rng, override)
            ctx.exclude.update(on_page)
            decision = self._list(
                request.slot, slot, request, rule, ctx, reasons, impersonal, override
            )
            reason = explain.filters_applied(filters)
            if reason is not None:
                decision.reasons.append(reason)
            on_page.update(item.id for item in decision.items)
            decisions.append(decision)
        return decisions

    def _merged_filters(self, request: SlotRequest, slot: Slot, rule: Rule | None) -> ItemFilters:
        """Slot ← rule ← request filters; the first two merged once per rule (a merge validates
        a new model)."""
        if request.filters is not None:
            return slot.filters.merged(rule.then.filters if rule else None).merged(request.filters)
        key = (request.slot, rule.id if rule is not None else None)
        cached = self._filters.get(key)
        if cached is not None and cached[0] is rule:
            return cached[1]
        filters = slot.filters.merged(rule.then.filters if rule else None)
        self._filters[key] = (rule, filters)
        return filters

    def _context(
        self,
        slot: Slot,
        filters: ItemFilters,
        rule: Rule | None,
        profile: Mapping[str, Any],
        context: Mapping[str, Any],
        segments: Sequence[str],
        now: datetime,
        rng: random.Random,
        override: SlotOverride | None = None,
    ) -> StrategyContext:
        action = rule.then if rule is not None else None
        accept, exclude = build_filter(filters, profile)
        if action is not None:
            exclude.update(action.exclude)
        _, params = _strategy_for(slot, action, override)
        accepted = self._accepted.of(filters, accept) if self._accepted is not None else None
        return StrategyContext(
            profile=profile,
            context=context,
            segments=segments,
            catalog=self.catalog,
            stats=self.stats,
            now=now,
            params=params,
            rng=rng,
            exclude=exclude,
            accept=accept,
            accepted=accepted,
        )

    def _list(
        self,
        key: str,
        slot: Slot,
        request: SlotRequest,
        rule: Rule | None,
        ctx: StrategyContext,
        reasons: list[Reason],
        impersonal: Reason | None = None,
        override: SlotOverride | None = None,
    ) -> SlotDecision:
        action = rule.then if rule is not None else None
        name, _ = _strategy_for(slot, action, override)
        if impersonal is not None:
            reasons.append(impersonal)
            if self._personal(name):
                reasons.append(explain.impersonal_instead(name, "popular"))
                name = "popular"
        n = request.n or slot.n
        candidates, problem = self._run(name, ctx, CANDIDATE_FACTOR * n, slot.time_budget_ms)
        picks = [
            _Pick(c.item_id, c.score, c.propensity, c.reason, "strategy", c.fallback, c.reason_kind)
            for c in _clean(candidates, ctx)
        ]
        picks = _shape(picks, action)
        if slot.diversity is not None and slot.diversity.mmr_lambda < 1 and picks:
            order = mmr_order(
                [p.item_id for p in picks],
                [p.score for p in picks],
                ctx.catalog,
                len(picks),
                slot.diversity.mmr_lambda,
            )
            picks = [picks[i] for i in order]
            reasons.append(explain.diversified(slot.diversity.mmr_lambda))
        pins = _pins(action, ctx, n)
        pinned = {pick.item_id for pick in pins}
        chosen = pins + [pick for pick in picks if pick.item_id not in pinned][: n - len(pins)]
        found = len(chosen) - len(pins)
        chosen, sources = self._fill(chosen, slot, ctx, n)
        chosen, explored = _explore(chosen, slot.exploration, ctx)
        if slot.diversity is not None and slot.diversity.explore_positions:
            chosen = _reserve(chosen, slot.diversity, ctx, reasons, self.catalog)

        if rule is not None and pins:
            reasons.append(explain.pinned(rule.id, [pick.item_id for pick in pins]))
        if problem is not None:
            reasons.append(explain.strategy_failed(name, problem, _source_names(sources)))
            log.warning("strategy %s failed for slot %s: %s", name, key, problem)
        else:
            reasons.extend(_strategy_reasons(name, chosen))
            if sources:
                reasons.append(
                    explain.filled_up(name, found, n - len(pins), _source_names(sources))
                )
        from_popular = name == "popular" or problem is not None or any(p.fallback for p in chosen)
        said = any(r.kind == "cold_start" for r in reasons)
        if from_popular and is_cold_start(ctx.profile) and not said:
            reasons.append(explain.cold_start("popular items"))
        if explored is not None:
            item = self.catalog[explored.item_id]
            reasons.append(explain.explored(item.title, item.id, slot.exploration))

        items = [self._item(pick) for pick in chosen]
        ai_influenced = (
            problem is None
            and ((impersonal is None and self._personal(name)) or self._trained(name))
            and any(pick.source == "strategy" and not pick.fallback for pick in chosen)
        )
        if ai_influenced:
            reasons.append(explain.ai_influenced(name, self._trained(name)))
        values = {
            "slot": key,
            "kind": "list",
            "variant": None,
            "items": items,
            "rule": rule.id if rule is not None else None,
            "strategy": name,
            "fallback": problem is not None or bool(sources),
            "propensity": float(min((item.propensity for item in items), default=1.0)),
            "ai_influenced": bool(ai_influenced),
            "reasons": reasons,
            "bandit": None,
        }
        decision = built(SlotDecision, values)
        decision.__pydantic_fields_set__.difference_update(("variant", "bandit"))
        return decision

    def _bandit_serves(self, slot: Slot, rule: Rule | None, override: SlotOverride | None) -> bool:
        """An experiment arm's bandit, else the slot's bandit unless a rule picks the variant."""
        if self.bandits is None:
            return False
        if override is not None and (override.variant is not None or override.strategy):
            return override.strategy == BANDIT
        if slot.strategy != BANDIT:
            return False
        return rule is None or rule.then.variant is None

    def _bandit_block(
        self,
        key: str,
        slot: Slot,
        rule: Rule | None,
        reasons: list[Reason],
        profile: Mapping[str, Any],
        context: Mapping[str, Any],
        segments: Sequence[str],
        rng: random.Random,
    ) -> SlotDecision:
        """The bandit draws the variant; the decision carries the exact propensity and the
        bandit's trace (logged with the decision, read back by learning and OPE)."""
        assert self.bandits is not None
        settings = slot.bandit or BanditSettings()
        choice = self.bandits.choose(
            key,
            settings,
            [v.id for v in slot.variants],
            [v.weight for v in slot.variants],
            profile=profile,
            context=context,
            segments=segments,
            rng=rng,
        )
        variant = slot.variant(choice.variant) or slot.default_variant_model()
        reasons.extend(bandit_reasons(choice, settings))
        return SlotDecision(
            slot=key,
            kind="block",
            variant=DecidedVariant(id=variant.id, content=variant.content),
            rule=rule.id if rule is not None else None,
            strategy=BANDIT,
            propensity=choice.propensity,
            ai_influenced=True,
            reasons=reasons,
            bandit=choice.trace,
        )

    def _personal(self, name: str) -> bool:
        return name in self.strategies and is_personal(self.strategies.get(name))

    def _trained(self, name: str) -> bool:
        return name in self.strategies and is_trained(self.strategies.get(name))

    def _run(
        self, name: str, ctx: StrategyContext, want: int, budget_ms: float
    ) -> tuple[list[ScoredItem], str | None]:
        """The strategy's candidates, or ``([], problem)`` when it is missing, raises, overruns
        its budget or returns something that is not a list."""
        try:
            strategy = self.strategies.get(name)
        except NotFound:
            return [], "not registered"
        start = self._timer()
        try:
            result = strategy.recommend(ctx, want)
        except Exception as exc:
            return [], explain.describe_error(exc)
        elapsed_ms = (self._timer() - start) * 1000.0
        if elapsed_ms > budget_ms:
            return [], f"took {elapsed_ms:.0f} ms, over its {budget_ms:g} ms budget"
        if not isinstance(result, list):
            return [], f"returned {type(result).__name__}, not a list"
        return result, None

    def _fill(
        self, chosen: list[_Pick], slot: Slot, ctx: StrategyContext, n: int
    ) -> tuple[list[_Pick], list[str]]:
        """Top up from the slot's static fallback, then popular items. Returns the sources used."""
        sources: list[str] = []
        taken = {pick.item_id for pick in chosen}
        if len(chosen) < n:
            for item_id in slot.fallback_items:
                if item_id not in taken and ctx.eligible(item_id):
                    chosen.append(_Pick(item_id, 0.0, 1.0, "static fallback", "static"))
                    taken.add(item_id)
                    if "static" not in sources:
                        sources.append("static")
                    if len(chosen) >= n:
                        break
        if len(chosen) < n:
            extra = popular_items(ctx, n - len(chosen), skip=taken)
            chosen += [_Pick(s.item_id, s.score, 1.0, s.reason, "popular") for s in extra]
            if extra:
                sources.append("popular")
        return chosen, sources

    def _item(self, pick: _Pick) -> DecidedItem:
        item = self.catalog[pick.item_id]
        public = self._public
        if public is None:
            attributes = public_attributes(item)
        else:  # shared by every decision that shows the item: nothing changes it afterwards
            found = public.get(item.id)
            if found is None:
                found = public[item.id] = public_attributes(item)
            attributes = found
        values = {
            "id": item.id,
            "title": item.title,
            "url": item.url,
            "image": item.image,
            "score": float(pick.score),
            "propensity": float(pick.propensity),
            "attributes": dict(attributes),
        }
        return built(DecidedItem, values)


def _strategy_for(
    slot: Slot, action: RuleAction | None, override: SlotOverride | None = None
) -> tuple[str, dict[str, Any]]:
    """The strategy name and params: an experiment arm's strategy with its params, else the
    rule's strategy with its params, else the slot's default with the rule's ``strategy_params``
    merged over the slot's."""
    if override is not None and override.strategy is not None:
        return override.strategy, dict(override.strategy_params or {})
    if action is not None and action.strategy is not None:
        return action.strategy, dict(action.strategy_params)
    params = dict(slot.strategy_params)
    if action is not None:
        params.update(action.strategy_params)
    return slot.default_strategy, params


def _rule_reasons(
    rule: Rule | None, segments: Sequence[str], segment_names: Mapping[str, str]
) -> list[Reason]:
    if rule is None:
        return []
    member_of = set(segments)
    segment = next((key for key in rule.segments if key in member_of), None)
    name = segment_names.get(segment) if segment is not None else None
    reasons = [explain.rule_matched(rule.id, rule.description, segment, name)]
    if segment is not None:
        reasons.append(explain.in_segment(segment, name))
    return reasons


def _block(
    key: str,
    slot: Slot,
    rule: Rule | None,
    reasons: list[Reason],
    override: SlotOverride | None = None,
) -> SlotDecision:
    chosen = None
    by_rule = None
    if override is not None and override.variant is not None:
        chosen = slot.variant(override.variant)
    elif rule is not None and rule.then.variant is not None:
        chosen = slot.variant(rule.then.variant)
        by_rule = rule.id if chosen is not None else None
    variant = chosen or slot.default_variant_model()
    if override is not None and chosen is not None:
        reasons.append(explain.variant_by_experiment(variant.id))
    else:
        reasons.append(explain.variant_chosen(variant.id, by_rule))
    return SlotDecision(
        slot=key,
        kind="block",
        variant=DecidedVariant(id=variant.id, content=variant.content),
        rule=rule.id if rule is not None else None,
        reasons=reasons,
    )


def _clean(candidates: Sequence[ScoredItem], ctx: StrategyContext) -> list[ScoredItem]:
    """Drop what a (possibly third-party) strategy should not have returned: unknown, filtered,
    excluded or repeated items; clamp propensities to (0, 1]."""
    seen: set[str] = set()
    out = []
    for candidate in candidates:
        if not isinstance(candidate, ScoredItem) or candidate.item_id in seen:
            continue
        if not ctx.eligible(candidate.item_id):
            continue
        seen.add(candidate.item_id)
        propensity = candidate.propensity
        if not 0.0 < propensity <= 1.0:
            candidate = replace(candidate, propensity=min(1.0, max(propensity, 1e-9)))
        out.append(candidate)
    return out


def _shape(picks: list[_Pick], action: RuleAction | None) -> list[_Pick]:
    """Boost (rank score 1/(1+rank) times boost_factor, so any score scale works) and bury."""
    if action is None:
        return picks
    if action.boost:
        boosted = set(action.boost)
        factor = action.boost_factor
        order = sorted(
            range(len(picks)),
            key=lambda i: -(factor if picks[i].item_id in boosted else 1.0) / (1 + i),
        )
        picks = [picks[i] for i in order]
    if action.bury:
        buried = set(action.bury)
        picks = [p for p in picks if p.item_id not in buried] + [
            p for p in picks if p.item_id in buried
        ]
    return picks


def _pins(action: RuleAction | None, ctx: StrategyContext, n: int) -> list[_Pick]:
    """Pinned items that exist and pass the filters (a pin never shows a sold-out item)."""
    if action is None:
        return []
    pins: list[_Pick] = []
    for item_id in dict.fromkeys(action.pin):
        if ctx.eligible(item_id):
            pins.append(_Pick(item_id, 0.0, 1.0, "pinned", "pin"))
            if len(pins) >= n:
                break
    return pins


def _reserve(
    chosen: list[_Pick],
    diversity: Diversity,
    ctx: StrategyContext,
    reasons: list[Reason],
    catalog: Mapping[str, Item],
) -> list[_Pick]:
    """The list with its last ``explore_positions`` non-pinned positions given to exploration:
    a ``serendipity`` share (rounded) to popular items from categories new to the person, the
    rest to uniformly random eligible items; each with the propensity of its draw."""
    positions = [i for i, pick in enumerate(chosen) if pick.source != "pin"]
    positions = positions[len(positions) - min(diversity.explore_positions, len(positions)) :]
    if not positions:
        return chosen
    keep = [pick.item_id for i, pick in enumerate(chosen) if i not in positions]
    n_serendipity = round(diversity.serendipity * len(positions))
    unfamiliar, pool_size = unfamiliar_items(ctx, n_serendipity, skip=keep)
    out = list(chosen)
    taken = set(keep) | set(unfamiliar)
    picks: list[_Pick] = []
    for item_id in unfamiliar:
        share = len(unfamiliar) / max(pool_size, 1)
        picks.append(_Pick(item_id, 0.0, share, "serendipity", "explore"))
        reasons.append(explain.serendipity(catalog[item_id].title, item_id))
    rest = len(positions) - len(picks)
    pool = [i for i in ctx.catalog if i not in taken and ctx.eligible(i)] if rest else []
    for item_id in ctx.rng.sample(pool, min(rest, len(pool))):
        picks.append(_Pick(item_id, 0.0, rest / len(pool), "exploration", "explore"))
        reasons.append(explain.explored(catalog[item_id].title, item_id, 1.0))
    for position, pick in zip(positions, picks, strict=False):
        out[position] = pick
    return out


def _explore(
    chosen: list[_Pick], epsilon: float, ctx: StrategyContext
) -> tuple[list[_Pick], _Pick | None]:
    """Epsilon-greedy: with probability epsilon one non-pinned position shows a uniformly random
    eligible item (propensity epsilon / pool size); the greedy items carry 1 - epsilon."""
    if epsilon <= 0 or not chosen:
        return chosen, None
    positions = [i for i, pick in enumerate(chosen) if pick.source != "pin"]
    greedy = [
        pick if pick.source == "pin" else replace(pick, propensity=pick.propensity * (1 - epsilon))
        for pick in chosen
    ]
    if not positions or ctx.rng.random() >= epsilon:
        return greedy, None
    taken = {pick.item_id for pick in chosen}
    pool = [i for i in ctx.catalog if i not in taken and ctx.eligible(i)]
    if not pool:
        return greedy, None
    position = ctx.rng.choice(positions)
    explored = _Pick(ctx.rng.choice(pool), 0.0, epsilon / len(pool), "exploration", "explore")
    greedy[position] = explored
    return greedy, explored


def _strategy_reasons(name: str, chosen: Sequence[_Pick]) -> list[Reason]:
    texts = list(
        dict.fromkeys(
            (p.reason, p.reason_kind) for p in chosen if p.source == "strategy" and p.reason
        )
    )
    return [explain.strategy_used(name, text, kind) for text, kind in texts[:MAX_STRATEGY_REASONS]]


def _source_names(sources: Sequence[str]) -> list[str]:
    names = {"static": "the static fallback", "popular": "popular items"}
    return [names[source] for source in sources]
