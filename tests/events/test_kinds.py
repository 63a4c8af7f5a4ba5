from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from loopwise.events.kinds import TRACK_NAMES, EventKind, classify, item_ids, order_revenue
from loopwise.events.schema import Event

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def make(type_: str = "track", event: str | None = None, **properties: Any) -> Event:
    return Event(
        message_id="m",
        type=type_,
        timestamp=NOW,
        received_at=NOW,
        user_id="u",
        event=event,
        properties=properties,
    )


@pytest.mark.parametrize(
    ("type_", "kind"),
    [
        ("page", EventKind.PAGE),
        ("screen", EventKind.PAGE),
        ("identify", EventKind.IDENTIFY),
        ("alias", EventKind.ALIAS),
        ("group", EventKind.GROUP),
        ("track", EventKind.OTHER),  # a track call without a known name
    ],
)
def test_classify_by_type(type_: str, kind: EventKind) -> None:
    assert classify(make(type_, event="Signed Up" if type_ == "track" else None)) is kind


@pytest.mark.parametrize(("name", "kind"), sorted(TRACK_NAMES.items()))
def test_classify_every_known_track_name(name: str, kind: EventKind) -> None:
    assert classify(make(event=name)) is kind
    assert classify(make(event=f"  {name.title()} ")) is kind  # case and spacing do not matter


def test_known_names_cover_the_ecommerce_spec() -> None:
    assert classify(make(event="Product Viewed")) is EventKind.ITEM_VIEW
    assert classify(make(event="Product Added")) is EventKind.ADD_TO_CART
    assert classify(make(event="Product Removed")) is EventKind.REMOVE_FROM_CART
    assert classify(make(event="Order Completed")) is EventKind.PURCHASE
    assert classify(make(event="Product Clicked")) is EventKind.CLICK
    assert classify(make(event="Product List Viewed")) is EventKind.IMPRESSION


@pytest.mark.parametrize("name", [None, "", "Checkout Started", "Product Viewed!"])
def test_unknown_or_missing_track_names_are_other(name: str | None) -> None:
    assert classify(make(event=name)) is EventKind.OTHER


def test_name_only_matters_for_track_calls() -> None:
    assert classify(make("page", event="Order Completed")) is EventKind.PAGE


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"product_id": "p1"}, ["p1"]),
        ({"item_id": 7}, ["7"]),
        ({"sku": "S-1"}, ["S-1"]),
        ({"id": 0}, ["0"]),
        ({"product_id": "p1", "item_id": "i1", "sku": "s1"}, ["p1"]),  # first key wins
        ({"product_id": "", "sku": "s1"}, ["s1"]),  # empty ids are skipped
        ({"product_id": True, "sku": "s1"}, ["s1"]),  # booleans are not ids
        ({"product_id": 1.5}, []),  # floats are not ids
        ({}, []),
    ],
)
def test_item_ids_from_properties(properties: dict[str, Any], expected: list[str]) -> None:
    assert item_ids(make(event="Product Viewed", **properties)) == expected


def test_item_ids_from_products_list_keep_order_and_drop_duplicates() -> None:
    event = make(
        event="Order Completed",
        product_id="p2",
        products=[
            {"product_id": "p1"},
            {"sku": 42},
            {"product_id": "p2"},
            "not a product",
            {"name": "no id"},
            {"id": "p1"},
            {"item_id": "p3"},
        ],
    )
    assert item_ids(event) == ["p2", "p1", "42", "p3"]


def test_item_ids_ignores_products_that_is_not_a_list() -> None:
    assert item_ids(make(event="Order Completed", products={"product_id": "p1"})) == []


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"revenue": 30, "total": 40, "value": 50}, 30.0),
        ({"total": 40.5, "value": 50}, 40.5),
        ({"value": 50}, 50.0),
        ({"revenue": "30", "total": 12}, 12.0),  # a string revenue is skipped
        ({"revenue": True, "value": 9}, 9.0),  # so is a boolean
        ({"revenue": 0, "value": 9}, 0.0),  # zero is a real revenue
        (
            {"products": [{"price": 10, "quantity": 3}, {"price": 2.5}, {"price": "x"}, "bad"]},
            32.5,
        ),
        ({"products": [{"quantity": 4}]}, 0.0),
        ({"products": "nope"}, 0.0),
        ({}, 0.0),
    ],
)
def test_order_revenue_fallbacks(properties: dict[str, Any], expected: float) -> None:
    revenue = order_revenue(make(event="Order Completed", **properties))
    assert revenue == expected
    assert isinstance(revenue, float)
