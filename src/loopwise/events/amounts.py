"""Money and quantities in events: bounded on input, and kept finite wherever they are summed.

A profile keeps running sums (revenue, cart value) of the amounts its events carry. One absurd
amount (``price: 1e308`` times ``quantity: 10``) would overflow a sum to infinity, which JSON
cannot store — so amounts are checked at the edge (a 400 naming the field) and every sum the
reducer makes is clamped to a finite value as a second line (for events stored before the
check existed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from loopwise.errors import ValidationFailed

MAX_AMOUNT = 1e12  # per money field: a trillion in any currency is not a real order line
MAX_QUANTITY = 1e6
MAX_TOTAL = 1e18  # a sum the reducer keeps never goes beyond this (far below float's range)
MONEY_FIELDS = ("price", "revenue", "total", "value", "subtotal", "shipping", "tax", "discount")
QUANTITY_FIELDS = ("quantity",)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _check(values: Mapping[str, Any], where: str) -> None:
    for name in (*MONEY_FIELDS, *QUANTITY_FIELDS):
        number = _number(values.get(name))
        if number is None:
            continue
        bound = MAX_QUANTITY if name in QUANTITY_FIELDS else MAX_AMOUNT
        if not math.isfinite(number) or abs(number) > bound:
            raise ValidationFailed(
                f"{where}{name} is {values.get(name)!r}; amounts must be within ±{bound:g} "
                f"(quantities within {MAX_QUANTITY:g}). Send the real amount in the currency's "
                "main unit.",
                field=f"{where}{name}",
                limit=bound,
            )


def check_amounts(properties: Mapping[str, Any], prefix: str) -> None:
    """Raise ValidationFailed naming ``<prefix>properties.<field>`` (or a product line's) for
    an amount or quantity out of bounds."""
    where = f"{prefix}properties."
    _check(properties, where)
    products = properties.get("products")
    if isinstance(products, list):
        for index, line in enumerate(products):
            if isinstance(line, Mapping):
                _check(line, f"{where}products[{index}].")


def finite(value: float) -> float:
    """``value`` clamped into ±MAX_TOTAL (NaN becomes 0)."""
    if math.isnan(value):
        return 0.0
    return max(-MAX_TOTAL, min(MAX_TOTAL, value))
