"""Features of a person at a moment: the profile's own ``profile.*`` attributes, as numbers.

There is no second feature pipeline. Training replays the event log through the one fold (the
reducer, identity merges and all) and serving reads the live profile; both call
:func:`scoring_attributes` (``Profile.attributes`` at the state's own last event, the moment a
score describes) and :meth:`FeatureSpec.vector` on it. Which event names and categories get a
column is decided once at training time from the examples and stored with the model, so the
served vector has the same columns in the same order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopwise.profiles.model import Profile
from loopwise.profiles.settings import ProfileSettings

#: the affinity tables features read: categories only (segment evaluation always decays it,
#: so the attributes a membership evaluation computes serve the scores too)
FEATURE_TABLES: tuple[str, ...] = ("categories",)
TOP_EVENT_NAMES = 12
TOP_CATEGORIES = 12
LIFECYCLES = ("prospect", "customer", "repeat_customer", "churned")
DEVICES = ("desktop", "mobile", "tablet")
SOURCES = ("direct", "organic_search", "paid", "social", "email", "referral")

Extract = Callable[[Mapping[str, Any]], float]


def scoring_attributes(profile: Profile, settings: ProfileSettings) -> dict[str, Any]:
    """The attributes a score reads: ``profile.*`` as of the profile's last event (what
    segment membership is evaluated at, so a score changes when the person does something)."""
    return profile.attributes(profile.last_seen, settings, FEATURE_TABLES)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return 0.0


def _get(path: str) -> Extract:
    first, _, rest = path.partition(".")
    if not rest:
        return lambda a: _number(a.get(first))
    second = rest

    def extract(a: Mapping[str, Any]) -> float:
        inner = a.get(first)
        return _number(inner.get(second)) if isinstance(inner, Mapping) else 0.0

    return extract


def _length(path: str) -> Extract:
    first, _, second = path.partition(".")

    def extract(a: Mapping[str, Any]) -> float:
        value = a.get(first)
        if second and isinstance(value, Mapping):
            value = value.get(second)
        return float(len(value)) if isinstance(value, list | dict) else 0.0

    return extract


def _total(name: str) -> Extract:
    def extract(a: Mapping[str, Any]) -> float:
        counts = a.get(name)
        return float(sum(counts.values())) if isinstance(counts, Mapping) else 0.0

    return extract


def _nested(table: str, key: str) -> Extract:
    def extract(a: Mapping[str, Any]) -> float:
        counts = a.get(table)
        return _number(counts.get(key)) if isinstance(counts, Mapping) else 0.0

    return extract


def _affinity(table: str, key: str | None) -> Extract:
    def extract(a: Mapping[str, Any]) -> float:
        scores = (a.get("affinity") or {}).get(table) or {}
        if key is None:  # the strongest interest, whatever it is
            return float(next(iter(scores.values()), 0.0))
        return _number(scores.get(key))

    return extract


def _equals(path: str, value: str) -> Extract:
    first, _, second = path.partition(".")

    def extract(a: Mapping[str, Any]) -> float:
        found = a.get(first)
        if second and isinstance(found, Mapping):
            found = found.get(second)
        return 1.0 if found == value else 0.0

    return extract


def _hour(a: Mapping[str, Any]) -> float:
    seen = a.get("last_seen")
    return float(seen[11:13]) if isinstance(seen, str) and len(seen) >= 13 else 0.0


# name -> (how to read it, what it is in words)
BASE: dict[str, tuple[Extract, str]] = {
    "days_since_first_seen": (_get("days_since_first_seen"), "days since your first visit"),
    "sessions": (_get("sessions"), "number of visits"),
    "page_views": (_get("page_views"), "pages viewed"),
    "events": (_get("events"), "actions recorded"),
    "item_views": (_get("item_views"), "products viewed"),
    "purchases": (_get("purchases"), "orders placed"),
    "revenue": (_get("revenue"), "total spent"),
    "average_order_value": (_get("average_order_value"), "average order value"),
    "engagement": (_get("engagement"), "engagement score"),
    "cart.value": (_get("cart.value"), "value of your cart"),
    "cart.items": (_length("cart.items"), "items in your cart"),
    "cart.abandoned": (_get("cart.abandoned"), "an abandoned cart"),
    "recently_viewed": (_length("recently_viewed"), "products viewed recently"),
    "purchased_items": (_length("purchased_items"), "different products bought"),
    "known": (_get("known"), "being signed in"),
    "campaigns": (_length("campaigns"), "campaigns you came from"),
    "events_7d": (_total("events_7d"), "actions in the last 7 days"),
    "events_30d": (_total("events_30d"), "actions in the last 30 days"),
    "affinity.categories": (_length("affinity.categories"), "categories you browsed"),
    "affinity.categories.top": (_affinity("categories", None), "your strongest interest"),
    "last_seen.hour": (_hour, "the hour of your last visit"),
    **{
        f"lifecycle={v}": (_equals("lifecycle", v), f"being a {v.replace('_', ' ')}")
        for v in LIFECYCLES
    },
    **{f"device.type={v}": (_equals("device.type", v), f"visiting on {v}") for v in DEVICES},
    **{
        f"traffic_source={v}": (_equals("traffic_source", v), f"coming from {v.replace('_', ' ')}")
        for v in SOURCES
    },
}


@dataclass(frozen=True)
class FeatureSpec:
    """The columns of a model: the base features, then per-event-name counts (7 and 30 days)
    and per-category affinities chosen from the training examples."""

    event_names: tuple[str, ...]
    categories: tuple[str, ...]

    def __post_init__(self) -> None:
        extractors: list[Extract] = [extract for extract, _ in BASE.values()]
        names = list(BASE)
        for name in self.event_names:
            for window in ("events_7d", "events_30d"):
                extractors.append(_nested(window, name))
                names.append(f"{window}.{name}")
        for category in self.categories:
            extractors.append(_affinity("categories", category))
            names.append(f"affinity.categories.{category}")
        object.__setattr__(self, "_extractors", tuple(extractors))
        object.__setattr__(self, "_names", tuple(names))

    @property
    def names(self) -> tuple[str, ...]:
        names: tuple[str, ...] = self._names  # type: ignore[attr-defined]
        return names

    def __len__(self) -> int:
        return len(self.names)

    def vector(self, attributes: Mapping[str, Any]) -> np.ndarray:
        """The features of one person (float64, never NaN): the columns of :data:`BASE`, then
        the event names' 7- and 30-day counts, then the categories' affinities."""
        a = attributes
        cart = a.get("cart") or {}
        affinity = (a.get("affinity") or {}).get("categories") or {}
        week = a.get("events_7d") or {}
        month = a.get("events_30d") or {}
        device = (a.get("device") or {}).get("type")
        lifecycle = a.get("lifecycle")
        source = a.get("traffic_source")
        seen = a.get("last_seen")
        row = [
            a.get("days_since_first_seen") or 0.0,
            a.get("sessions") or 0,
            a.get("page_views") or 0,
            a.get("events") or 0,
            a.get("item_views") or 0,
            a.get("purchases") or 0,
            a.get("revenue") or 0.0,
            a.get("average_order_value") or 0.0,
            a.get("engagement") or 0.0,
            cart.get("value") or 0.0,
            len(cart.get("items") or ()),
            bool(cart.get("abandoned")),
            len(a.get("recently_viewed") or ()),
            len(a.get("purchased_items") or ()),
            bool(a.get("known")),
            len(a.get("campaigns") or ()),
            sum(week.values()),
            sum(month.values()),
            len(affinity),
            next(iter(affinity.values()), 0.0),
            float(seen[11:13]) if isinstance(seen, str) and len(seen) >= 13 else 0.0,
            *[lifecycle == v for v in LIFECYCLES],
            *[device == v for v in DEVICES],
            *[source == v for v in SOURCES],
        ]
        for name in self.event_names:
            row.append(week.get(name, 0))
            row.append(month.get(name, 0))
        row.extend([affinity.get(c, 0.0) for c in self.categories])
        return np.array(row, dtype=np.float64)

    def vector_by_name(self, attributes: Mapping[str, Any]) -> np.ndarray:
        """:meth:`vector` through each column's own reader (:data:`BASE`): slower, the
        definition the fast path is tested against."""
        extractors: tuple[Extract, ...] = self._extractors  # type: ignore[attr-defined]
        return np.fromiter((f(attributes) for f in extractors), np.float64, len(extractors))

    def matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        out = np.zeros((len(rows), len(self)), dtype=np.float64)
        for i, attributes in enumerate(rows):
            out[i] = self.vector(attributes)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"event_names": list(self.event_names), "categories": list(self.categories)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSpec:
        return cls(
            tuple(str(n) for n in data.get("event_names", [])),
            tuple(str(c) for c in data.get("categories", [])),
        )


def fit_spec(rows: Iterable[Mapping[str, Any]]) -> FeatureSpec:
    """The most frequent event names (30-day counts) and categories (affinity) of the examples."""
    names: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for attributes in rows:
        names.update((attributes.get("events_30d") or {}).keys())
        categories.update(((attributes.get("affinity") or {}).get("categories") or {}).keys())
    return FeatureSpec(
        tuple(sorted(n for n, _ in names.most_common(TOP_EVENT_NAMES))),
        tuple(sorted(c for c, _ in categories.most_common(TOP_CATEGORIES))),
    )


def describe(feature: str) -> str:
    """A feature in words, for reasons and reports."""
    base = BASE.get(feature)
    if base is not None:
        return base[1]
    for window, days in (("events_7d.", 7), ("events_30d.", 30)):
        if feature.startswith(window):
            name = feature[len(window) :]
            what = "pages viewed" if name == "page" else f'"{name}" events'
            return f"{what} in the last {days} days"
    if feature.startswith("affinity.categories."):
        return f'your interest in "{feature[len("affinity.categories.") :]}"'
    return feature
