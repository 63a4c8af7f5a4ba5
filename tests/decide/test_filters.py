from __future__ import annotations

import pytest
from pydantic import ValidationError

from loopwise.catalog.items import Item
from loopwise.decide.filters import ItemFilters, build_filter

SHOE = Item("shoe", categories=("running", "shoes"), tags=("sale",), attributes={"price": 80})
SOLD_OUT = Item("sold-out", categories=("running",), attributes={"price": 50, "in_stock": False})
MAT = Item("mat", categories=("yoga",), tags=("new",), attributes={"price": 30})
NO_PRICE = Item("guide", type="article", categories=("running",))


def accepted(filters: ItemFilters, items: list[Item], profile: dict | None = None) -> list[str]:
    accept, exclude = build_filter(filters, profile or {})
    return [item.id for item in items if accept(item) and item.id not in exclude]


ALL = [SHOE, SOLD_OUT, MAT, NO_PRICE]


def test_defaults_hide_out_of_stock_only() -> None:
    assert accepted(ItemFilters(), ALL) == ["shoe", "mat", "guide"]


def test_in_stock_none_and_false() -> None:
    assert accepted(ItemFilters(in_stock=None), ALL) == ["shoe", "sold-out", "mat", "guide"]
    assert accepted(ItemFilters(in_stock=False), ALL) == ["sold-out"]


def test_categories_any_of_and_excluded_categories() -> None:
    assert accepted(ItemFilters(categories=["yoga", "shoes"]), ALL) == ["shoe", "mat"]
    assert accepted(ItemFilters(exclude_categories=["shoes"]), ALL) == ["mat", "guide"]


def test_tags_and_types() -> None:
    assert accepted(ItemFilters(tags=["new", "sale"]), ALL) == ["shoe", "mat"]
    assert accepted(ItemFilters(item_types=["article"]), ALL) == ["guide"]


def test_price_range_is_inclusive_and_drops_unpriced_items() -> None:
    assert accepted(ItemFilters(price_min=30, price_max=80), ALL) == ["shoe", "mat"]
    assert accepted(ItemFilters(price_max=30), ALL) == ["mat"]


def test_price_range_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="price_min"):
        ItemFilters(price_min=10, price_max=5)


def test_excludes_purchased_by_default_and_seen_on_request() -> None:
    profile = {"purchased_items": ["shoe"], "recently_viewed": ["mat"]}
    assert accepted(ItemFilters(), ALL, profile) == ["mat", "guide"]
    assert accepted(ItemFilters(exclude_purchased=False), ALL, profile) == ["shoe", "mat", "guide"]
    assert accepted(ItemFilters(exclude_seen=True), ALL, profile) == ["guide"]
    assert accepted(ItemFilters(exclude_items=["guide"]), ALL, profile) == ["mat"]


def test_merge_overrides_only_explicit_fields() -> None:
    slot = ItemFilters(categories=["running"], exclude_seen=True)
    merged = slot.merged(ItemFilters(in_stock=None))
    assert merged.categories == ["running"]
    assert merged.exclude_seen is True
    assert merged.in_stock is None
    # an explicit value equal to the default still overrides
    assert slot.merged(ItemFilters(exclude_seen=False)).exclude_seen is False
    assert slot.merged(None) is slot


def test_merge_chains_and_unions_exclusions() -> None:
    slot = ItemFilters(exclude_items=["a"], price_max=100)
    rule = ItemFilters(categories=["yoga"])
    request = ItemFilters(exclude_items=["b"], categories=["running"])
    merged = slot.merged(rule).merged(request)
    assert merged.exclude_items == ["a", "b"]
    assert merged.categories == ["running"]
    assert merged.price_max == 100
    assert merged.model_fields_set == {"exclude_items", "price_max", "categories"}


def test_unknown_filter_field_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        ItemFilters.model_validate({"in_stok": True})
    assert info.value.errors()[0]["loc"] == ("in_stok",)
