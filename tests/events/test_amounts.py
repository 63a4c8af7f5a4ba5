"""Amounts are bounded at the edge and sums stay finite (one absurd price must not damage a
profile)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from loopwise.errors import ValidationFailed
from loopwise.events.amounts import MAX_TOTAL, check_amounts, finite
from loopwise.events.normalize import parse_request

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_an_amount_beyond_the_bound_is_a_400_naming_the_field() -> None:
    body = {
        "batch": [
            {"type": "track", "userId": "bystander", "event": "Product Viewed"},
            {
                "type": "track",
                "userId": "X",
                "event": "Product Added",
                "properties": {"product_id": "run-001", "price": 1e308, "quantity": 10},
            },
        ]
    }
    with pytest.raises(ValidationFailed) as info:
        parse_request(body, kind="batch", received_at=NOW)
    assert info.value.field == "batch[1].properties.price"
    assert "within" in info.value.detail


def test_product_lines_and_quantities_are_checked_too() -> None:
    with pytest.raises(ValidationFailed) as info:
        check_amounts({"products": [{"price": 3}, {"price": 2, "quantity": 1e9}]}, "")
    assert info.value.field == "properties.products[1].quantity"
    check_amounts({"revenue": 199.99, "products": [{"price": 99.5, "quantity": 2}]}, "")


def test_finite_clamps_and_drops_nan() -> None:
    assert finite(math.inf) == MAX_TOTAL and finite(-math.inf) == -MAX_TOTAL
    assert finite(math.nan) == 0.0 and finite(12.5) == 12.5
