"""What an event means to personalization, in one place.

Segment's e-commerce spec names ("Product Viewed", "Product Added", "Order Completed", ...) and
a few Loopwise feedback names map to an :class:`EventKind`. Every stage (profiles, item statistics,
attribution) classifies with :func:`classify` so they agree.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from loopwise.events.amounts import finite
from loopwise.events.schema import Event


class EventKind(StrEnum):
    PAGE = "page"  # page / screen call
    ITEM_VIEW = "item_view"  # looked at a catalog item
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"  # order completed: a conversion
    IMPRESSION = "impression"  # personalized content was shown (carries decision_id)
    CLICK = "click"  # personalized content / an item was clicked
    IDENTIFY = "identify"
    ALIAS = "alias"
    GROUP = "group"
    OTHER = "other"


# Lower-cased track event names -> kind. Anything else is OTHER (still counted per name).
TRACK_NAMES: dict[str, EventKind] = {
    "product viewed": EventKind.ITEM_VIEW,
    "item viewed": EventKind.ITEM_VIEW,
    "product added": EventKind.ADD_TO_CART,
    "add to cart": EventKind.ADD_TO_CART,
    "product removed": EventKind.REMOVE_FROM_CART,
    "order completed": EventKind.PURCHASE,
    "purchase": EventKind.PURCHASE,
    "conversion": EventKind.PURCHASE,
    "content viewed": EventKind.IMPRESSION,
    "content impression": EventKind.IMPRESSION,
    "impression": EventKind.IMPRESSION,
    "product list viewed": EventKind.IMPRESSION,
    "product clicked": EventKind.CLICK,
    "content clicked": EventKind.CLICK,
    "click": EventKind.CLICK,
    # Segment's email spec: a campaign's content (decide-batch, docs/channels.md) was seen/used
    "email opened": EventKind.IMPRESSION,
    "email link clicked": EventKind.CLICK,
}


def classify(event: Event) -> EventKind:
    if event.type == "track":
        return TRACK_NAMES.get((event.event or "").strip().lower(), EventKind.OTHER)
    if event.type in ("page", "screen"):
        return EventKind.PAGE
    if event.type == "identify":
        return EventKind.IDENTIFY
    if event.type == "alias":
        return EventKind.ALIAS
    return EventKind.GROUP


def _item_id(props: dict[str, Any]) -> str | None:
    for key in ("product_id", "item_id", "sku", "id"):
        value = props.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value) != "":
            return str(value)
    return None


def item_ids(event: Event) -> list[str]:
    """Catalog item ids an event is about: ``product_id``/``item_id``/``sku``/``id`` in
    properties, and every entry of ``properties.products`` (orders, carts, lists). Order kept,
    duplicates dropped.
    """
    props = event.properties
    ids: list[str] = []
    first = _item_id(props)
    if first is not None:
        ids.append(first)
    products = props.get("products")
    if isinstance(products, list):
        for product in products:
            if isinstance(product, dict):
                pid = _item_id(product)
                if pid is not None and pid not in ids:
                    ids.append(pid)
    return ids


def order_revenue(event: Event) -> float:
    """Revenue of a purchase: ``revenue``, else ``total``, else ``value``, else sum of products
    ``price * quantity``. Non-numbers count as 0."""
    props = event.properties
    for key in ("revenue", "total", "value"):
        value = props.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return finite(float(value))
    total = 0.0
    products = props.get("products")
    if isinstance(products, list):
        for product in products:
            if isinstance(product, dict):
                price = product.get("price", 0)
                quantity = product.get("quantity", 1)
                if isinstance(price, int | float) and isinstance(quantity, int | float):
                    total = finite(total + finite(float(price) * float(quantity)))
    return total
