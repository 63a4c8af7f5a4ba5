"""The profile reducer ``(profile, event) -> profile`` and the identity merge.

Both are pure: they work on a copy and return it, so the engine can stage a new profile and drop
it on failure, and a replay of the event log rebuilds exactly what live processing built.
Events may arrive out of order (mobile clients flush late): an older event still counts, but
never starts a session, moves the "last" context, or overrides newer traits or cart state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from copy import deepcopy
from datetime import datetime, timedelta
from sys import intern
from typing import Any

from loopwise.catalog.items import Item
from loopwise.events.amounts import finite
from loopwise.events.kinds import EventKind, classify, item_ids, order_revenue
from loopwise.events.schema import Event
from loopwise.profiles.context import (
    as_dict,
    as_text,
    country_from_context,
    device_from_context,
    page_from_context,
    traffic_source_from_context,
)
from loopwise.profiles.model import (
    AFFINITY_TABLES,
    CONTEXT_FIELDS,
    DAILY_WINDOW_DAYS,
    Profile,
    day_number,
    decay_factor,
    to_ms,
)
from loopwise.profiles.settings import ProfileSettings
from loopwise.profiles.traffic import campaign_from

# How much one event adds to the affinity of its items and of their categories and tags.
ITEM_VIEW_WEIGHT = 1.0
ADD_TO_CART_WEIGHT = 2.0
PURCHASE_WEIGHT = 3.0
AFFINITY_WEIGHTS: dict[EventKind, float] = {
    EventKind.ITEM_VIEW: ITEM_VIEW_WEIGHT,
    EventKind.ADD_TO_CART: ADD_TO_CART_WEIGHT,
    EventKind.PURCHASE: PURCHASE_WEIGHT,
}
MIN_AFFINITY = 1e-6  # decayed below this a score is dropped (shows as 0 at 6 decimals anyway)
ANONYMOUS_IDS_LIMIT = 50  # the oldest ids are forgotten first
EVENT_NAMES_LIMIT = 100  # distinct names with per-day counts; later new names count in `events`
PAGE_NAMES_LIMIT = 50  # distinct page names counted per day (pages_30d); later new ones are not
PAGE_PATHS_LIMIT = 100  # distinct page paths counted per day (page_paths_30d)
CAMPAIGNS_LIMIT = 10  # campaign names kept, newest first
MAX_LABEL_LENGTH = 200  # categories, tags and event names are cut to this


def reduce(
    profile: Profile, event: Event, settings: ProfileSettings, items: Mapping[str, Item]
) -> Profile:
    """The profile after ``event``. ``items`` (the catalog) adds categories and tags to the
    affinities of the items the event is about."""
    p = profile.copy()
    at = to_ms(event.timestamp)
    first = p.events == 0
    latest = first or at >= p.last_seen
    previous_day = day_number(p.last_seen)
    context = as_dict(event.context)
    new_session = first or at - p.last_seen > timedelta(minutes=settings.session_timeout_minutes)
    if new_session:
        p.sessions += 1
        p.session_started_at = at
        # a session opened by a server-side call (no page, no campaign) counts as direct
        p.traffic_source = traffic_source_from_context(context) or "direct"
    p.events += 1
    p.first_seen = at if first else min(p.first_seen, at)
    p.last_seen = at if first else max(p.last_seen, at)
    if first or day_number(p.last_seen) != previous_day:
        newest = day_number(p.last_seen)
        p.daily_counts = _prune_days(p.daily_counts, newest)
        p.page_daily = _prune_days(p.page_daily, newest)
        p.path_daily = _prune_days(p.path_daily, newest)
    _count_daily(p, _count_name(event), at)
    if new_session or (latest and not p.session_campaign):
        _apply_campaign(p, context, new_session)
    _apply_identity(p, event, latest)
    if latest:
        _apply_context(p, context)
    kind = classify(event)
    ids = item_ids(event)
    if kind == EventKind.PAGE:
        p.page_views += 1
        _count_page(p, event, context, at)
    elif kind == EventKind.ITEM_VIEW:
        p.item_views += 1
        for item_id in ids:
            _remember_view(p, item_id, at, settings.recently_viewed_limit)
    elif kind == EventKind.ADD_TO_CART:
        _add_to_cart(p, ids, _event_value(event, ids, items), at)
    elif kind == EventKind.REMOVE_FROM_CART:
        _remove_from_cart(p, ids, _event_value(event, ids, items), at)
    elif kind == EventKind.PURCHASE:
        _purchase(p, ids, order_revenue(event), at, settings.purchased_items_limit)
    weight = AFFINITY_WEIGHTS.get(kind)
    if weight is not None:
        categories, tags = _labels(event, ids, items)
        _add_affinity(
            p, {"items": ids, "categories": categories, "tags": tags}, weight, at, settings
        )
    return p


# -- counters ------------------------------------------------------------------------------------
def _count_name(event: Event) -> str:
    """Per-day count key: the track name, ``page`` for page and screen calls, else the type."""
    if event.type == "track":
        name = (event.event or "").strip()[:MAX_LABEL_LENGTH]
        return name or "track"
    if event.type in ("page", "screen"):
        return "page"
    return event.type


def _count_daily(p: Profile, name: str, at: datetime) -> None:
    _count_on_day(p.daily_counts, name, at, day_number(p.last_seen), EVENT_NAMES_LIMIT)


def _count_on_day(
    counts: dict[str, dict[int, int]], name: str, at: datetime, newest_day: int, limit: int
) -> None:
    day = day_number(at)
    if day <= newest_day - DAILY_WINDOW_DAYS:
        return  # older than any window
    if name not in counts and len(counts) >= limit:
        return
    days = counts.setdefault(intern(name), {})
    days[day] = days.get(day, 0) + 1


def _count_page(p: Profile, event: Event, context: Mapping[str, Any], at: datetime) -> None:
    """A page (or screen) view counted under its name and its path (``pages_30d`` and
    ``page_paths_30d``): "visited the pricing page twice in 30 days" is then a condition."""
    newest = day_number(p.last_seen)
    name = as_text(event.name)
    if name is not None:
        key = _attribute_key(name)
        _count_on_day(p.page_daily, key, at, newest, PAGE_NAMES_LIMIT)
    properties = event.properties
    path = as_text(properties.get("path")) or page_from_context(context).get("path")
    if path is None:
        path = page_from_context({"page": {"url": properties.get("url")}}).get("path")
    if path is not None:
        _count_on_day(p.path_daily, _attribute_key(path), at, newest, PAGE_PATHS_LIMIT)


def _attribute_key(label: str) -> str:
    """A page name or path as a key conditions can reach: a dot separates the parts of an
    attribute path (``profile.page_paths_30d./pricing``), so dots become underscores
    (``/pricing.html`` is counted as ``/pricing_html``)."""
    return label.strip()[:MAX_LABEL_LENGTH].replace(".", "_")


def _apply_campaign(p: Profile, context: Mapping[str, Any], new_session: bool) -> None:
    """The session's UTM parameters (``context.campaign``, else the page URL's ``utm_*``): set
    when it starts, or by its first event that has them."""
    page = as_dict(context.get("page"))
    campaign = {
        key: value[:MAX_LABEL_LENGTH]
        for key, value in campaign_from(page.get("url"), as_dict(context.get("campaign"))).items()
    }
    if new_session or campaign:
        p.session_campaign = campaign
    name = campaign.get("name")
    if name is not None:
        p.campaigns = [intern(name), *(c for c in p.campaigns if c != name)][:CAMPAIGNS_LIMIT]


def _prune_days(counts: dict[str, dict[int, int]], newest_day: int) -> dict[str, dict[int, int]]:
    cutoff = newest_day - DAILY_WINDOW_DAYS
    pruned = {name: {d: c for d, c in days.items() if d > cutoff} for name, days in counts.items()}
    return {name: days for name, days in pruned.items() if days}


# -- identity, traits, context -------------------------------------------------------------------
def _add_unique_bounded(ids: list[str], new: str, limit: int) -> None:
    if new not in ids:
        ids.append(new)
        del ids[:-limit]


def _apply_identity(p: Profile, event: Event, latest: bool) -> None:
    if event.anonymous_id:
        _add_unique_bounded(p.anonymous_ids, event.anonymous_id, ANONYMOUS_IDS_LIMIT)
    if event.type == "alias" and event.previous_id and event.previous_id != event.user_id:
        _add_unique_bounded(p.anonymous_ids, event.previous_id, ANONYMOUS_IDS_LIMIT)
    if event.user_id and (p.user_id is None or latest):
        p.user_id = event.user_id
    if event.type != "group":  # group traits describe the group (company), not the user
        for key, value in event.traits.items():
            if latest or key not in p.traits:
                p.traits[str(key)] = deepcopy(value)


def _apply_context(p: Profile, context: Mapping[str, Any]) -> None:
    """Known values of this context replace the last ones; missing ones keep them."""
    device = device_from_context(context)
    if device["type"] is not None:
        p.device_type, p.device_os, p.device_browser = (
            device["type"],
            device["os"],
            device["browser"],
        )
    elif device["os"] is not None:
        p.device_os = device["os"]
    location = as_dict(context.get("location"))
    updates = {
        "country": country_from_context(context),
        "region": as_text(location.get("region")),
        "city": as_text(location.get("city")),
        "locale": as_text(context.get("locale")),
        "timezone": as_text(context.get("timezone")),
    }
    for name, value in updates.items():
        if value is not None:
            setattr(p, name, value)


# -- items, cart, orders -------------------------------------------------------------------------
def _remember_view(p: Profile, item_id: str, at: datetime, limit: int) -> None:
    """Keep ``recently_viewed`` newest first and unique, placing late events by their time."""
    if item_id in p.recently_viewed:
        index = p.recently_viewed.index(item_id)
        if p.recently_viewed_at[index] > at:
            return  # a newer view of the same item is already there
        del p.recently_viewed[index], p.recently_viewed_at[index]
    index = 0
    while index < len(p.recently_viewed_at) and p.recently_viewed_at[index] > at:
        index += 1
    p.recently_viewed.insert(index, intern(item_id))  # shared across profiles
    p.recently_viewed_at.insert(index, at)
    del p.recently_viewed[limit:], p.recently_viewed_at[limit:]


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _event_value(event: Event, ids: list[str], items: Mapping[str, Item]) -> float:
    """Money an add/remove moves: ``price * quantity`` from the properties, else the products'
    prices, else the catalog prices. Never negative."""
    props = event.properties
    quantity = _number(props.get("quantity")) or 1.0
    price = _number(props.get("price"))
    if price is not None:
        return finite(max(price * quantity, 0.0))
    products = props.get("products")
    if isinstance(products, list):
        lines = [
            (_number(line.get("price")), _number(line.get("quantity")) or 1.0)
            for line in products
            if isinstance(line, dict)
        ]
        if any(line_price is not None for line_price, _ in lines):
            return finite(max(sum(finite((pr or 0.0) * q) for pr, q in lines), 0.0))
    catalog = [items[i].price for i in ids if i in items]
    return finite(max(sum(pr or 0.0 for pr in catalog) * quantity, 0.0))


def _add_to_cart(p: Profile, ids: list[str], value: float, at: datetime) -> None:
    if not ids or (p.last_purchase_at is not None and at < p.last_purchase_at):
        return  # added before the last order: that order already settled the cart
    for item_id in ids:
        if item_id not in p.cart_items:
            p.cart_items.append(intern(item_id))
    p.cart_value = finite(p.cart_value + value)
    p.cart_changed_at = at if p.cart_changed_at is None else max(p.cart_changed_at, at)


def _remove_from_cart(p: Profile, ids: list[str], value: float, at: datetime) -> None:
    removed = [item_id for item_id in ids if item_id in p.cart_items]
    if not removed:
        return
    p.cart_items = [item_id for item_id in p.cart_items if item_id not in removed]
    p.cart_value = finite(max(p.cart_value - value, 0.0)) if p.cart_items else 0.0
    p.cart_changed_at = at if p.cart_changed_at is None else max(p.cart_changed_at, at)


def _purchase(p: Profile, ids: list[str], revenue: float, at: datetime, limit: int) -> None:
    p.purchases += 1
    p.revenue = finite(p.revenue + finite(revenue))
    bought = list(dict.fromkeys(intern(i) for i in ids))
    p.purchased_items = [*bought, *(i for i in p.purchased_items if i not in bought)][:limit]
    if p.cart_changed_at is None or at >= p.cart_changed_at:
        p.cart_items, p.cart_value = [], 0.0
    else:  # an older order: only what it contained leaves the newer cart
        p.cart_items = [item_id for item_id in p.cart_items if item_id not in bought]
        if not p.cart_items:
            p.cart_value = 0.0
    p.last_purchase_at = at if p.last_purchase_at is None else max(p.last_purchase_at, at)


# -- affinities ----------------------------------------------------------------------------------
def _extend_labels(labels: list[str], value: Any) -> None:
    values = value if isinstance(value, list | tuple) else [value]
    for entry in values:
        text = as_text(entry)
        if text is not None and text[:MAX_LABEL_LENGTH] not in labels:
            labels.append(text[:MAX_LABEL_LENGTH])


def _labels(event: Event, ids: list[str], items: Mapping[str, Item]) -> tuple[list[str], list[str]]:
    """Categories and tags of the event's items: from the properties (``category``,
    ``categories``, ``tags``, also inside ``products``) and from the catalog."""
    categories: list[str] = []
    tags: list[str] = []
    products = event.properties.get("products")
    lines = (
        [line for line in products if isinstance(line, dict)] if isinstance(products, list) else []
    )
    for entry in [event.properties, *lines]:
        _extend_labels(categories, entry.get("category"))
        _extend_labels(categories, entry.get("categories"))
        _extend_labels(tags, entry.get("tags"))
    for item_id in ids:
        item = items.get(item_id)
        if item is not None:
            _extend_labels(categories, list(item.categories))
            _extend_labels(tags, list(item.tags))
    return categories, tags


def _decay_to(p: Profile, at: datetime, half_life_days: float) -> None:
    """Re-value every score at ``at`` (later than the current as-of time)."""
    if p.affinity_as_of is not None:
        factor = decay_factor(p.affinity_as_of, at, half_life_days)
        for table in AFFINITY_TABLES:
            scores = p.affinity(table)
            decayed = {k: v * factor for k, v in scores.items() if v * factor >= MIN_AFFINITY}
            scores.clear()
            scores.update(decayed)
    p.affinity_as_of = at


def _keep_top(scores: dict[str, float], limit: int) -> None:
    if len(scores) > limit:
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        scores.clear()
        scores.update(ranked[:limit])


def _add_affinity(
    p: Profile,
    keys: Mapping[str, Iterable[str]],
    weight: float,
    at: datetime,
    settings: ProfileSettings,
) -> None:
    half_life = settings.affinity_half_life_days
    if p.affinity_as_of is None or at > p.affinity_as_of:
        _decay_to(p, at, half_life)
    assert p.affinity_as_of is not None
    value = weight * decay_factor(at, p.affinity_as_of, half_life)
    if value < MIN_AFFINITY:
        return
    for table, table_keys in keys.items():
        scores = p.affinity(table)
        for key in table_keys:
            scores[intern(key)] = scores.get(key, 0.0) + value
        _keep_top(scores, settings.affinity_limit)


# -- identity merge ------------------------------------------------------------------------------
def merge(primary: Profile, secondary: Profile, settings: ProfileSettings) -> Profile:
    """One profile holding both histories, keeping ``primary.id``: counters added, ids united,
    first/last seen widened, affinities decayed to the later as-of time and added, recent views
    interleaved by time, carts united, traits combined (primary wins), last context from the
    profile seen last."""
    m = primary.copy()
    s = secondary
    for anonymous_id in s.anonymous_ids:
        _add_unique_bounded(m.anonymous_ids, anonymous_id, ANONYMOUS_IDS_LIMIT)
    m.user_id = m.user_id or s.user_id
    m.traits = {**s.traits, **m.traits}
    if not s.events:
        return m
    secondary_is_newer = not primary.events or s.last_seen > primary.last_seen
    newer, older = (s, primary) if secondary_is_newer else (primary, s)
    m.first_seen = s.first_seen if not primary.events else min(m.first_seen, s.first_seen)
    m.last_seen = s.last_seen if not primary.events else max(m.last_seen, s.last_seen)
    m.events += s.events
    m.sessions += s.sessions
    m.page_views += s.page_views
    m.item_views += s.item_views
    m.purchases += s.purchases
    m.revenue = finite(m.revenue + s.revenue)
    for name in ("session_started_at", *CONTEXT_FIELDS):
        value = getattr(newer, name)
        setattr(m, name, value if value is not None else getattr(older, name))
    _merge_daily(m, s)
    m.page_daily = _merged_days(m.page_daily, s.page_daily, m, PAGE_NAMES_LIMIT)
    m.path_daily = _merged_days(m.path_daily, s.path_daily, m, PAGE_PATHS_LIMIT)
    m.session_campaign = dict(newer.session_campaign)
    m.campaigns = list(dict.fromkeys([*newer.campaigns, *older.campaigns]))[:CAMPAIGNS_LIMIT]
    _merge_recent(m, s, settings.recently_viewed_limit)
    _merge_affinity(m, s, settings)
    extra = [i for i in s.purchased_items if i not in m.purchased_items]
    m.purchased_items = [*m.purchased_items, *extra][: settings.purchased_items_limit]
    m.cart_items = [*m.cart_items, *(i for i in s.cart_items if i not in m.cart_items)]
    m.cart_value = finite(m.cart_value + s.cart_value)
    m.cart_changed_at = _latest(m.cart_changed_at, s.cart_changed_at)
    m.last_purchase_at = _latest(m.last_purchase_at, s.last_purchase_at)
    return m


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a if b is None else b
    return max(a, b)


def _merge_daily(m: Profile, s: Profile) -> None:
    m.daily_counts = _merged_days(m.daily_counts, s.daily_counts, m, EVENT_NAMES_LIMIT)


def _merged_days(
    mine: dict[str, dict[int, int]], theirs: dict[str, dict[int, int]], m: Profile, limit: int
) -> dict[str, dict[int, int]]:
    for name, days in theirs.items():
        if name not in mine and len(mine) >= limit:
            continue
        merged = mine.setdefault(name, {})
        for day, count in days.items():
            merged[day] = merged.get(day, 0) + count
    return _prune_days(mine, day_number(m.last_seen))


def _merge_recent(m: Profile, s: Profile, limit: int) -> None:
    views = sorted(
        [
            *zip(m.recently_viewed_at, m.recently_viewed, strict=True),
            *zip(s.recently_viewed_at, s.recently_viewed, strict=True),
        ],
        key=lambda view: view[0],
        reverse=True,
    )
    seen: dict[str, datetime] = {}
    for at, item_id in views:
        seen.setdefault(item_id, at)
    kept = list(seen.items())[:limit]
    m.recently_viewed = [item_id for item_id, _ in kept]
    m.recently_viewed_at = [at for _, at in kept]


def _merge_affinity(m: Profile, s: Profile, settings: ProfileSettings) -> None:
    if s.affinity_as_of is None:
        return
    half_life = settings.affinity_half_life_days
    if m.affinity_as_of is None or s.affinity_as_of > m.affinity_as_of:
        _decay_to(m, s.affinity_as_of, half_life)
    assert m.affinity_as_of is not None
    factor = decay_factor(s.affinity_as_of, m.affinity_as_of, half_life)
    for table in AFFINITY_TABLES:
        scores = m.affinity(table)
        for key, score in s.affinity(table).items():
            if score * factor >= MIN_AFFINITY:
                scores[key] = scores.get(key, 0.0) + score * factor
        _keep_top(scores, settings.affinity_limit)
