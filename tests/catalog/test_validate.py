from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from loopwise.catalog.items import Item
from loopwise.catalog.validate import parse_item
from loopwise.errors import LimitExceeded, ValidationFailed

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_full_item() -> None:
    item = parse_item(
        {
            "id": "sku-1",
            "type": "product",
            "title": "Trail Runner 2",
            "text": "A light trail shoe.",
            "url": "https://shop.example/p/sku-1",
            "image": "https://cdn.example/sku-1.jpg",
            "categories": ["Shoes > Running", "Sale"],
            "tags": ["trail", "light"],
            "attributes": {"color": "blue", "price": 1},
            "price": 89.9,
            "margin": 0.3,
            "in_stock": False,
            "brand": "Acme",
            "rating": 4.5,
            "created_at": "2024-01-02T03:04:05Z",
            "updated_at": "2024-04-01T00:00:00+02:00",
        }
    )
    assert item == Item(
        id="sku-1",
        type="product",
        title="Trail Runner 2",
        text="A light trail shoe.",
        url="https://shop.example/p/sku-1",
        image="https://cdn.example/sku-1.jpg",
        categories=("Shoes > Running", "Sale"),
        tags=("trail", "light"),
        attributes={
            "color": "blue",
            "price": 89.9,  # the top-level value wins over attributes.price
            "margin": 0.3,
            "in_stock": False,
            "brand": "Acme",
            "rating": 4.5,  # unknown top-level keys are kept as attributes
        },
        created_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        updated_at=datetime(2024, 3, 31, 22, tzinfo=UTC),
    )
    assert item.price == 89.9 and item.in_stock is False


def test_minimal_item_defaults() -> None:
    item = parse_item({"id": 123})
    assert item == Item(id="123")
    assert item.type == "product" and item.in_stock is True and item.price is None


def test_now_fills_missing_times() -> None:
    item = parse_item({"id": "a", "created_at": "2024-01-01T00:00:00Z"}, now=NOW)
    assert item.created_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert item.updated_at == NOW
    assert parse_item({"id": "a"}, now=NOW).created_at == NOW


def test_description_is_text_when_text_missing() -> None:
    assert parse_item({"id": "a", "description": "D"}).text == "D"
    assert parse_item({"id": "a", "description": "D", "text": "T"}).text == "T"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Shoes > Running", ("Shoes > Running",)),  # one string is one category, not split
        (["a", " b ", "a", ""], ("a", "b")),  # trimmed, duplicates and blanks dropped
        ([], ()),
        (None, ()),
    ],
)
def test_categories(value: Any, expected: tuple[str, ...]) -> None:
    assert parse_item({"id": "a", "categories": value}).categories == expected


def test_null_top_level_values_are_absent() -> None:
    item = parse_item({"id": "a", "price": None, "title": None, "brand": None})
    assert item.attributes == {} and item.title == ""


def test_zero_price_and_integer_margin_are_fine() -> None:
    assert parse_item({"id": "a", "price": 0, "margin": 2}).attributes == {"price": 0, "margin": 2}


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        ("sku-1", "items[4]", "JSON object"),
        ({}, "items[4].id", "Send an id"),
        ({"id": None}, "items[4].id", "Send an id"),
        ({"id": True}, "items[4].id", "Send an id"),
        ({"id": 1.5}, "items[4].id", "Send an id"),
        ({"id": ""}, "items[4].id", "1 to 256"),
        ({"id": "x" * 257}, "items[4].id", "1 to 256"),
        ({"id": "a", "type": ""}, "items[4].type", "non-empty"),
        ({"id": "a", "title": 5}, "items[4].title", "string"),
        ({"id": "a", "description": []}, "items[4].description", "string"),
        ({"id": "a", "url": {"href": "x"}}, "items[4].url", "string"),
        ({"id": "a", "categories": {"a": 1}}, "items[4].categories", "list of strings"),
        ({"id": "a", "categories": ["a", 3]}, "items[4].categories[1]", "string"),
        ({"id": "a", "tags": [None]}, "items[4].tags[0]", "string"),
        ({"id": "a", "attributes": [1]}, "items[4].attributes", "JSON object"),
        ({"id": "a", "price": -1}, "items[4].price", ">= 0"),
        ({"id": "a", "price": "9.99"}, "items[4].price", "number"),
        ({"id": "a", "price": True}, "items[4].price", "number"),
        ({"id": "a", "price": float("inf")}, "items[4].price", "number"),
        ({"id": "a", "price": float("nan")}, "items[4].price", "number"),
        ({"id": "a", "margin": -0.1}, "items[4].margin", ">= 0"),
        ({"id": "a", "attributes": {"price": -3}}, "items[4].attributes.price", ">= 0"),
        ({"id": "a", "in_stock": "yes"}, "items[4].in_stock", "true or false"),
        ({"id": "a", "attributes": {"in_stock": 1}}, "items[4].attributes.in_stock", "true"),
        ({"id": "a", "created_at": "last week"}, "items[4].created_at", "ISO 8601"),
        ({"id": "a", "updated_at": 1714560000}, "items[4].updated_at", "ISO 8601"),
    ],
)
def test_errors_name_the_field(raw: Any, field: str, says: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_item(raw, field_prefix="items[4].")
    assert info.value.field == field
    assert says in info.value.detail


def test_errors_without_prefix() -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_item({"id": "a", "price": -1})
    assert info.value.field == "price"
    with pytest.raises(ValidationFailed) as info:
        parse_item([1])
    assert info.value.field == "item"


def test_record_roundtrip() -> None:
    item = parse_item({"id": "a", "categories": "C", "price": 3, "created_at": "2024-01-01T00:00Z"})
    assert Item.from_record(item.to_record()) == item


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_times_outside_utc_range_are_a_validation_error(value: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_item({"id": "x", "created_at": value}, field_prefix="items[2].", now=NOW)
    assert info.value.field == "items[2].created_at"


def test_deeply_nested_attributes_are_refused() -> None:
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    with pytest.raises(LimitExceeded) as info:
        parse_item({"id": "x", "attributes": deep}, field_prefix="items[0].", now=NOW)
    assert info.value.field is not None
    assert info.value.field.startswith("items[0].attributes.a")
