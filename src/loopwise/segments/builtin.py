"""Segments every workspace gets, written as ordinary conditions over ``profile.*``/``context.*``.

Device, country and traffic source prefer the request context and fall back to the profile's last
context when the request carries none. One segment per country cannot be listed statically: ship
``country_us``/``country_gb``/``country_de`` and build others with :func:`country_segment`, or
write the same condition in ``loopwise.yaml``.
"""

from __future__ import annotations

from typing import Any

from loopwise.segments.registry import SegmentDefinition

ITEM_VIEW_EVENTS = ("Product Viewed", "Item Viewed")
"""Track names counted as item views in ``profile.events_7d`` (Segment e-commerce spec)."""

NO_PURCHASE: dict[str, Any] = {"profile.purchases": {"$lt": 1}}
CART_NOT_EMPTY: dict[str, Any] = {"profile.cart.items": {"$size": {"$gt": 0}}}
VIEWED_3_ITEMS_7D: dict[str, Any] = {
    "$or": [{f"profile.events_7d.{name}": {"$gte": 3}} for name in ITEM_VIEW_EVENTS]
}


def context_or_profile(key: str, test: Any) -> dict[str, Any]:
    """``context.<key>`` matches ``test``, or the request has no ``<key>`` and the profile's last
    context does."""
    return {
        "$or": [
            {f"context.{key}": test},
            {"$and": [{f"context.{key}": {"$exists": False}}, {f"profile.{key}": test}]},
        ]
    }


def country_segment(code: str) -> SegmentDefinition:
    """``country_<code>``: the request (or, without one, the last visit) comes from ``code``
    (ISO 3166-1 alpha-2, any case)."""
    return SegmentDefinition(
        key=f"country_{code.lower()}",
        name=f"Country {code.upper()}",
        description=f"Visiting from {code.upper()} (request country, else the last one seen).",
        condition=context_or_profile("country", {"$ini": [code]}),
    )


def _segment(key: str, name: str, description: str, condition: dict[str, Any]) -> SegmentDefinition:
    return SegmentDefinition(key=key, name=name, description=description, condition=condition)


def _device(kind: str) -> SegmentDefinition:
    return _segment(
        kind,
        kind.capitalize(),
        f"On a {kind} device (request user agent, else the last one seen).",
        context_or_profile("device.type", kind),
    )


def _source(key: str, source: str, name: str) -> SegmentDefinition:
    return _segment(
        key,
        name,
        f"Traffic source {source} (this request, else the latest session).",
        context_or_profile("traffic_source", source),
    )


BUILTIN_SEGMENTS: list[SegmentDefinition] = [
    _segment(
        "first_time_visitor",
        "First-time visitor",
        "In their first session.",
        {"profile.sessions": {"$lte": 1}},
    ),
    _segment(
        "returning_visitor",
        "Returning visitor",
        "Has had more than one session.",
        {"profile.sessions": {"$gt": 1}},
    ),
    country_segment("US"),
    country_segment("GB"),
    country_segment("DE"),
    _device("mobile"),
    _device("desktop"),
    _device("tablet"),
    _source("from_organic_search", "organic_search", "From organic search"),
    _source("from_paid", "paid", "From paid campaigns"),
    _source("from_social", "social", "From social"),
    _source("from_email", "email", "From email"),
    _source("from_referral", "referral", "From referral"),
    _source("direct_traffic", "direct", "Direct traffic"),
    _segment("browser", "Browser", "Has not purchased yet.", NO_PURCHASE),
    _segment("buyer", "Buyer", "Has at least one order.", {"profile.purchases": {"$gte": 1}}),
    _segment(
        "power_user",
        "Power user",
        "Engagement of 70 or more, or 10 or more sessions.",
        {"$or": [{"profile.engagement": {"$gte": 70}}, {"profile.sessions": {"$gte": 10}}]},
    ),
    _segment(
        "prospect", "Prospect", "Lifecycle stage prospect.", {"profile.lifecycle": "prospect"}
    ),
    _segment(
        "customer",
        "Customer",
        "Lifecycle stage customer or repeat customer.",
        {"profile.lifecycle": {"$in": ["customer", "repeat_customer"]}},
    ),
    _segment("churned", "Churned", "Lifecycle stage churned.", {"profile.lifecycle": "churned"}),
    _segment(
        "high_purchase_intent",
        "High purchase intent",
        "Never purchased, and has items in the cart or viewed 3+ items in the last 7 days.",
        {"$and": [NO_PURCHASE, {"$or": [CART_NOT_EMPTY, VIEWED_3_ITEMS_7D]}]},
    ),
    _segment(
        "casual_browser",
        "Casual browser",
        "Never purchased, empty cart, fewer than 3 item views in 7 days and engagement below 30.",
        {
            "$and": [NO_PURCHASE, {"profile.engagement": {"$lt": 30}}],
            "$nor": [CART_NOT_EMPTY, VIEWED_3_ITEMS_7D],
        },
    ),
    _segment(
        "loyal_customer",
        "Loyal customer",
        "Three or more orders.",
        {"profile.purchases": {"$gte": 3}},
    ),
    _segment(
        "cart_abandoner",
        "Cart abandoner",
        "Left items in the cart without buying (profile.cart.abandoned).",
        {"profile.cart.abandoned": True},
    ),
]
