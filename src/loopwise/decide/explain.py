"""The wording of every reason Loopwise gives, in one place.

Reasons are the user-facing disclosure of why content was chosen (which rule, segment, strategy,
fallback or exploration). Keeping the texts here keeps them consistent and easy to review.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from loopwise.decide.filters import ItemFilters
from loopwise.decide.request import Reason, ReasonKind

# -- item-level texts used by the built-in strategies -------------------------------------------

POPULAR = "popular right now"
CATALOG_ORDER = "no activity recorded yet, showing a mix from every category"
TRENDING = "trending: interest is rising fast"
RECENTLY_VIEWED = "you viewed this recently"
TOGETHER = "often viewed or bought together with items you looked at"
BOUGHT_WITH_CART = "often bought together with what is in your cart"
NEW_ARRIVAL = "new arrival"
RANDOM = "random pick, to discover what you like"


def popular_in_segment(segment: str) -> str:
    return f"popular with people like you (segment {segment})"


def complements_category(category: str) -> str:
    return f"goes with what is in your cart: popular in {category}"


def popular_in_category(category: str) -> str:
    return f'popular in your top category "{category}"'


# -- item-level texts of trained models (loopwise.models.serving) -------------------------------

MODEL_NEW_ITEM = "new item: similar to items you interacted with (content-based, cold start)"
MODEL_NO_MORE_EVIDENCE = "the model relates no more items to yours"


def model_personal(model: str, version: str, n_items: int) -> str:
    """A trained model scored the user's current items (folded in at decide time)."""
    items = "item" if n_items == 1 else "items"
    return f"trained model {model} ({version}) from your {n_items} {items} so far"


def with_category_popularity(text: str, categories: list[str], share: float) -> str:
    """A model's reason when its scores were blended with popularity in the person's top
    categories (``category_popularity``)."""
    names = ", ".join(categories)
    return f"{text}, {share:.0%} weighed by what is popular in your top categories ({names})"


def model_few_events(n_items: int, threshold: int) -> str:
    """Cold start for users with a little history: content-based + item-kNN."""
    items = "item" if n_items == 1 else "items"
    return (
        f"cold start: only {n_items} {items} so far (fewer than {threshold}), similar items by "
        "content and by co-occurrence (item-kNN)"
    )


def model_new_visitor(segment: str | None, known_items: bool = True) -> str:
    """Cold start for users without interactions the model knows."""
    who = "new visitor" if known_items else "no items the model knows yet"
    if segment:
        return f"cold start ({who}): popular with people like you (segment {segment})"
    return f"cold start ({who}): popular right now"


def model_not_trained(model: str) -> str:
    return f"model {model} is not trained yet (run `loopwise train`)"


def instead_popular(why: str) -> str:
    """A strategy that had nothing of its own and showed popular items instead."""
    return f"{why}, showing popular items"


# -- slot-level reasons -------------------------------------------------------------------------
# The reasons of fixed texts (same arguments, same words) are built once and shared by every
# decision that gives them (``_shared``): a campaign gives the same few to each person, and a
# validated ``Reason`` costs microseconds. Nothing changes a reason once made (the pre-render
# cache already shares its decisions' reasons across replies).
_shared = lru_cache(maxsize=1024)


@_shared
def rule_matched(
    rule_id: str, description: str, segment_key: str | None, segment_name: str | None
) -> Reason:
    if segment_key is not None:
        because = f"you are in segment {segment_name or segment_key}"
    elif description:
        because = description
    else:
        because = "its conditions hold for this visit"
    return Reason(kind="rule", text=f'Rule "{rule_id}" matched: {because}', ref=rule_id)


@_shared
def in_segment(segment_key: str, segment_name: str | None) -> Reason:
    return Reason(
        kind="segment",
        text=f"You are in segment {segment_name or segment_key}",
        ref=segment_key,
    )


@_shared
def variant_chosen(variant_id: str, rule_id: str | None) -> Reason:
    if rule_id is not None:
        text = f'Variant "{variant_id}" chosen by rule "{rule_id}"'
    else:
        text = f'Variant "{variant_id}": the slot\'s default content'
    return Reason(kind="variant", text=text, ref=variant_id)


@_shared
def strategy_used(strategy: str, detail: str, kind: ReasonKind = "strategy") -> Reason:
    return Reason(kind=kind, text=f"Strategy {strategy}: {detail}", ref=strategy)


@_shared
def cold_start(showing: str) -> Reason:
    return Reason(kind="cold_start", text=f"Cold start: no history yet, showing {showing}")


@_shared
def not_consented(category: str = "personalization") -> Reason:
    return Reason(
        kind="consent",
        text=f"{category.capitalize()} not consented: chosen from this visit's context only, "
        "not from your profile",
        ref=category,
    )


@_shared
def in_holdout(experiment: str = "holdout") -> Reason:
    return Reason(
        kind="holdout",
        text="In the holdout group that measures personalization: everyone here sees the same "
        "non-personalized content",
        ref=experiment,
    )


def experiment_arm(experiment: str, arm: str, serves: str) -> Reason:
    return Reason(
        kind="experiment",
        text=f'Experiment "{experiment}": you are in arm "{arm}", which shows {serves}',
        ref=f"{experiment}:{arm}",
    )


@_shared
def variant_by_experiment(variant_id: str) -> Reason:
    return Reason(
        kind="variant", text=f'Variant "{variant_id}" chosen by an experiment', ref=variant_id
    )


@_shared
def impersonal_instead(strategy: str, instead: str) -> Reason:
    return Reason(
        kind="strategy",
        text=f"Strategy {instead} used instead of {strategy}, which needs your profile",
        ref=instead,
    )


@_shared
def ai_influenced(strategy: str, trained: bool) -> Reason:
    """The disclosure on every slot whose content a trained model or the person's data chose."""
    how = (
        "a model trained on visitors' behaviour ranked these items for you"
        if trained
        else "chosen automatically from your own activity on this site"
    )
    return Reason(kind="model", text=f"AI-influenced: {how}", ref=strategy)


def strategy_failed(strategy: str, problem: str, sources: Sequence[str]) -> Reason:
    showing = " and ".join(sources) if sources else "nothing (no eligible items)"
    return Reason(
        kind="fallback",
        text=f"Fallback: strategy {strategy} failed ({problem}), showing {showing}",
        ref=strategy,
    )


def filled_up(strategy: str, found: int, wanted: int, sources: Sequence[str]) -> Reason:
    return Reason(
        kind="fallback",
        text=f"Fallback: strategy {strategy} found {found} of {wanted} items, "
        f"filled up with {' and '.join(sources)}",
        ref=strategy,
    )


def pinned(rule_id: str, item_ids: Sequence[str]) -> Reason:
    return Reason(
        kind="rule",
        text=f'Rule "{rule_id}" pinned {", ".join(item_ids)} to the top',
        ref=rule_id,
    )


def explored(title: str, item_id: str, epsilon: float) -> Reason:
    return Reason(
        kind="exploration",
        text=f'Exploration: "{title or item_id}" is a random pick (chance {epsilon:.0%}) '
        "to learn what works",
        ref=item_id,
    )


def serendipity(title: str, item_id: str) -> Reason:
    return Reason(
        kind="exploration",
        text=f'Serendipity: "{title or item_id}" is from a category you have not explored yet',
        ref=item_id,
    )


@_shared
def diversified(mmr_lambda: float) -> Reason:
    return Reason(
        kind="strategy",
        text=f"Diversified: items reordered so the list is not all alike (MMR, relevance "
        f"weight {mmr_lambda:.0%})",
    )


def filters_applied(filters: ItemFilters) -> Reason | None:
    """A summary of the filters that differ from the defaults, or None when none do."""
    parts: list[str] = []
    if filters.in_stock is False:
        parts.append("out of stock only")
    elif filters.in_stock is None:
        parts.append("in or out of stock")
    if filters.categories:
        parts.append("categories " + ", ".join(filters.categories))
    if filters.exclude_categories:
        parts.append("not in " + ", ".join(filters.exclude_categories))
    if filters.tags:
        parts.append("tags " + ", ".join(filters.tags))
    if filters.price_min is not None:
        parts.append(f"price from {filters.price_min:g}")
    if filters.price_max is not None:
        parts.append(f"price up to {filters.price_max:g}")
    if filters.item_types:
        parts.append("types " + ", ".join(filters.item_types))
    if not filters.exclude_purchased:
        parts.append("including items you bought")
    if filters.exclude_seen:
        parts.append("hiding items you viewed recently")
    if filters.exclude_items:
        parts.append(f"{len(filters.exclude_items)} items excluded")
    if not parts:
        return None
    return Reason(kind="filter", text="Filters: " + "; ".join(parts))


def describe_error(exc: BaseException) -> str:
    """A short, log-safe description of a strategy failure."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(message) > 120:
        message = message[:117] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def score_influenced(
    key: str, label: str, value: float, factors: Sequence[tuple[str, float]]
) -> Reason:
    """A predictive score (``profile.scores.<key>``) made a rule fire: the disclosure, with the
    features that moved the person's score most (SHAP values; ``factors``: (words, value))."""
    named = ", ".join(
        f"{words} ({'raises' if contribution > 0 else 'lowers'} it)"
        for words, contribution in factors
    )
    because = f", mostly from: {named}" if named else ""
    return Reason(
        kind="model",
        text=f"AI-influenced: a model estimates your likelihood of {label} at {value:.0%} "
        f"(score {key}){because}",
        ref=f"scores.{key}",
    )
