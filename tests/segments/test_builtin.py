from __future__ import annotations

from typing import Any

import pytest

from loopwise.segments.builtin import BUILTIN_SEGMENTS, country_segment
from loopwise.segments.registry import SegmentRegistry

REGISTRY = SegmentRegistry(BUILTIN_SEGMENTS)

DOCUMENTED = {
    "first_time_visitor", "returning_visitor", "country_us", "country_gb", "country_de",
    "mobile", "desktop", "tablet", "from_organic_search", "from_paid", "from_social",
    "from_email", "from_referral", "direct_traffic", "browser", "buyer", "power_user",
    "prospect", "customer", "churned", "high_purchase_intent", "casual_browser",
    "loyal_customer", "cart_abandoner",
}  # fmt: skip


def attrs(
    profile: dict[str, Any] | None = None, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": profile or {}}
    if context is not None:
        out["context"] = context
    return out


# key -> (member, non-member)
EXAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "first_time_visitor": (attrs({"sessions": 1}), attrs({"sessions": 2})),
    "returning_visitor": (attrs({"sessions": 4}), attrs({"sessions": 1})),
    "country_us": (attrs(context={"country": "US"}), attrs({"country": "US"}, {"country": "GB"})),
    "country_gb": (attrs({"country": "gb"}), attrs({"country": "DE"})),
    "country_de": (attrs({"country": "FR"}, {"country": "DE"}), attrs(context={"country": "US"})),
    "mobile": (
        attrs({"device": {"type": "desktop"}}, {"device": {"type": "mobile"}}),
        attrs({"device": {"type": "mobile"}}, {"device": {"type": "desktop"}}),
    ),
    "desktop": (attrs({"device": {"type": "desktop"}}, {}), attrs({"device": {"type": "bot"}})),
    "tablet": (attrs(context={"device": {"type": "tablet"}}), attrs()),
    "from_organic_search": (
        attrs(context={"traffic_source": "organic_search"}),
        attrs({"traffic_source": "organic_search"}, {"traffic_source": "paid"}),
    ),
    "from_paid": (attrs({"traffic_source": "paid"}), attrs({"traffic_source": "email"})),
    "from_social": (
        attrs(context={"traffic_source": "social"}),
        attrs(context={"traffic_source": "direct"}),
    ),
    "from_email": (
        attrs({"traffic_source": "email"}, {}),
        attrs(context={"traffic_source": "social"}),
    ),
    "from_referral": (attrs(context={"traffic_source": "referral"}), attrs()),
    "direct_traffic": (attrs({"traffic_source": "direct"}), attrs({"traffic_source": "referral"})),
    "browser": (attrs({"purchases": 0}), attrs({"purchases": 1})),
    "buyer": (attrs({"purchases": 1}), attrs({"purchases": 0})),
    "power_user": (
        attrs({"engagement": 72, "sessions": 2}),
        attrs({"engagement": 69, "sessions": 9}),
    ),
    "prospect": (attrs({"lifecycle": "prospect"}), attrs({"lifecycle": "customer"})),
    "customer": (attrs({"lifecycle": "repeat_customer"}), attrs({"lifecycle": "churned"})),
    "churned": (attrs({"lifecycle": "churned"}), attrs({"lifecycle": "prospect"})),
    "high_purchase_intent": (
        attrs({"purchases": 0, "events_7d": {"Product Viewed": 3}}),
        attrs({"purchases": 0, "events_7d": {"Product Viewed": 2}, "cart": {"items": []}}),
    ),
    "casual_browser": (
        attrs({"purchases": 0, "engagement": 12, "cart": {"items": []}, "events_7d": {"page": 5}}),
        attrs({"purchases": 0, "engagement": 12, "cart": {"items": ["sku-1"]}}),
    ),
    "loyal_customer": (attrs({"purchases": 3}), attrs({"purchases": 2})),
    "cart_abandoner": (attrs({"cart": {"abandoned": True}}), attrs({"cart": {"abandoned": False}})),
}


def test_every_documented_segment_ships_once() -> None:
    keys = [s.key for s in BUILTIN_SEGMENTS]
    assert sorted(keys) == sorted(DOCUMENTED)
    assert len(set(keys)) == len(keys)
    assert all(s.name and s.description for s in BUILTIN_SEGMENTS)


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_member_and_non_member(key: str) -> None:
    member, non_member = EXAMPLES[key]
    assert key in REGISTRY.evaluate(member)
    assert key not in REGISTRY.evaluate(non_member)


def test_request_context_segments_are_context_dependent() -> None:
    context_keys = set(REGISTRY.context_segment_keys)
    assert {"mobile", "country_us", "from_paid", "direct_traffic"} <= context_keys
    assert {"buyer", "first_time_visitor", "cart_abandoner"}.isdisjoint(context_keys)


def test_high_purchase_intent_variants() -> None:
    cart = attrs({"purchases": 0, "cart": {"items": ["sku-1"]}})
    item_views = attrs({"purchases": 0, "events_7d": {"Item Viewed": 5}})
    buyer_with_cart = attrs({"purchases": 1, "cart": {"items": ["sku-1"]}})
    assert "high_purchase_intent" in REGISTRY.evaluate(cart)
    assert "high_purchase_intent" in REGISTRY.evaluate(item_views)
    assert "high_purchase_intent" not in REGISTRY.evaluate(buyer_with_cart)
    assert "casual_browser" not in REGISTRY.evaluate(item_views)


def test_power_user_by_sessions_and_loyal_is_also_customer_and_buyer() -> None:
    assert "power_user" in REGISTRY.evaluate(attrs({"sessions": 10, "engagement": 5}))
    loyal = attrs({"purchases": 5, "lifecycle": "repeat_customer", "sessions": 6})
    assert {"loyal_customer", "customer", "buyer", "returning_visitor"} <= set(
        REGISTRY.evaluate(loyal)
    )


def test_typical_first_visit_profile() -> None:
    visitor = attrs(
        {
            "sessions": 1,
            "purchases": 0,
            "engagement": 3,
            "lifecycle": "prospect",
            "cart": {"items": []},
        },
        {"device": {"type": "mobile"}, "country": "DE", "traffic_source": "organic_search"},
    )
    assert REGISTRY.evaluate(visitor) == [
        "browser", "casual_browser", "country_de", "first_time_visitor", "from_organic_search",
        "mobile", "prospect",
    ]  # fmt: skip


def test_country_segment_pattern() -> None:
    france = country_segment("fr")
    assert france.key == "country_fr" and france.name == "Country FR"
    registry = SegmentRegistry([france])
    assert registry.evaluate(attrs(context={"country": "FR"})) == ["country_fr"]
    assert registry.evaluate(attrs({"country": "fr"})) == ["country_fr"]
    assert registry.evaluate(attrs({"country": "FR"}, {"country": "BE"})) == []
