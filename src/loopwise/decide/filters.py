"""Business filters for list slots: which catalog items may be shown to this user.

``ItemFilters`` is part of the workspace schema (slot defaults, rule overrides, request overrides;
re-exported from :mod:`loopwise.decide.slots`). :func:`build_filter` turns one merged
``ItemFilters`` plus the user's profile into a fast predicate and an exclusion set, so strategies
never return an item the business does not want shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loopwise.catalog.items import Item

# Lists that combine (union) rather than override when filters are merged: an exclusion added by
# a request must not re-admit an item the slot itself hides.
_UNION_FIELDS = frozenset({"exclude_items"})


class ItemFilters(BaseModel):
    """Which items a list slot may show. Unset fields keep the slot's (or the default) value."""

    model_config = ConfigDict(extra="forbid")

    in_stock: bool | None = Field(
        default=True,
        description="true: only items in stock (missing in_stock counts as in stock); "
        "false: only out-of-stock items; null: stock does not matter.",
    )
    categories: list[str] = Field(
        default_factory=list, description="Only items in ANY of these categories (empty: all)."
    )
    exclude_categories: list[str] = Field(
        default_factory=list, description="Never items in any of these categories."
    )
    tags: list[str] = Field(
        default_factory=list, description="Only items with ANY of these tags (empty: all)."
    )
    price_min: float | None = Field(
        default=None,
        ge=0,
        description="Lowest price (inclusive); items without a price are dropped.",
    )
    price_max: float | None = Field(
        default=None,
        ge=0,
        description="Highest price (inclusive); items without a price are dropped.",
    )
    item_types: list[str] = Field(
        default_factory=list, description="Only these item types, e.g. product, article."
    )
    exclude_purchased: bool = Field(
        default=True, description="Hide items the user already bought (profile.purchased_items)."
    )
    exclude_seen: bool = Field(
        default=False, description="Hide items the user recently viewed (profile.recently_viewed)."
    )
    exclude_items: list[str] = Field(
        default_factory=list,
        description="Item ids never to show. Merging adds to, never replaces, this list.",
    )

    @model_validator(mode="after")
    def _price_range(self) -> Self:
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            raise ValueError(
                f"price_min ({self.price_min}) is above price_max ({self.price_max}); "
                "swap them or drop one"
            )
        return self

    def merged(self, other: ItemFilters | None) -> ItemFilters:
        """These filters overridden by the fields ``other`` sets explicitly.

        Slot defaults ← rule filters ← request filters: a later level only changes what it names,
        so a request asking for ``categories`` keeps the slot's ``in_stock``. ``exclude_items``
        is the union of both levels.
        """
        if other is None:
            return self
        values: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        for name in other.model_fields_set:
            value = getattr(other, name)
            if name in _UNION_FIELDS and name in values:
                value = list(dict.fromkeys([*values[name], *value]))
            values[name] = value
        return ItemFilters.model_validate(values)


#: Distinct filter settings whose accepted ids are kept per catalog (request filters can vary).
ACCEPTED_CACHE_LIMIT = 256


class AcceptedIds:
    """The ids of one catalog that a filter's ``accept`` takes, per filter setting: an
    eligibility check becomes a set lookup instead of a predicate call per item. A setting is
    worked out on its second use (a one-off request filter does not pay a catalog walk)."""

    def __init__(self, catalog: Mapping[str, Item]) -> None:
        self._catalog = catalog
        self._sets: dict[tuple[Any, ...], frozenset[str]] = {}
        self._uses: dict[tuple[Any, ...], int] = {}
        # the last filters object asked about and its key (the decider asks with the same
        # merged filters object request after request): the key is not rebuilt each time
        self._last: tuple[ItemFilters, tuple[Any, ...]] | None = None

    def of(self, filters: ItemFilters, accept: Callable[[Item], bool]) -> frozenset[str] | None:
        last = self._last
        if last is not None and last[0] is filters:
            key = last[1]
        else:
            key = accept_key(filters)
            self._last = (filters, key)
        found = self._sets.get(key)
        if found is not None or len(self._sets) >= ACCEPTED_CACHE_LIMIT:
            return found
        uses = self._uses.get(key, 0) + 1
        if uses < 2:
            if len(self._uses) < 16 * ACCEPTED_CACHE_LIMIT:
                self._uses[key] = uses
            return None
        found = frozenset(i for i, item in self._catalog.items() if accept(item))
        self._sets[key] = found
        return found


def accept_key(filters: ItemFilters) -> tuple[Any, ...]:
    """What ``accept`` of :func:`build_filter` reads of the filters (not the per-person part)."""
    return (
        filters.in_stock,
        tuple(filters.categories),
        tuple(filters.exclude_categories),
        tuple(filters.tags),
        filters.price_min,
        filters.price_max,
        tuple(filters.item_types),
    )


def _profile_list(profile: Mapping[str, Any], key: str) -> list[str]:
    value = profile.get(key)
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


def build_filter(
    filters: ItemFilters, profile: Mapping[str, Any]
) -> tuple[Callable[[Item], bool], set[str]]:
    """The item predicate and the excluded ids for one user.

    ``accept`` checks item properties (stock, categories, tags, price, type); ``exclude`` holds the
    ids hidden for this user (bought, seen, explicitly excluded). Both are needed: strategies
    return only accepted, non-excluded items.
    """
    in_stock = filters.in_stock
    categories = frozenset(filters.categories)
    banned_categories = frozenset(filters.exclude_categories)
    tags = frozenset(filters.tags)
    types = frozenset(filters.item_types)
    low, high = filters.price_min, filters.price_max

    def accept(item: Item) -> bool:
        if in_stock is not None and item.in_stock is not in_stock:
            return False
        if types and item.type not in types:
            return False
        if categories and categories.isdisjoint(item.categories):
            return False
        if banned_categories and not banned_categories.isdisjoint(item.categories):
            return False
        if tags and tags.isdisjoint(item.tags):
            return False
        if low is not None or high is not None:
            price = item.price
            if price is None:
                return False
            if low is not None and price < low:
                return False
            if high is not None and price > high:
                return False
        return True

    exclude = set(filters.exclude_items)
    if filters.exclude_purchased:
        exclude.update(_profile_list(profile, "purchased_items"))
    if filters.exclude_seen:
        exclude.update(_profile_list(profile, "recently_viewed"))
    return accept, exclude
