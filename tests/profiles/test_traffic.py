from __future__ import annotations

from typing import Any

import pytest

from loopwise.profiles.traffic import TRAFFIC_SOURCES, campaign_from, classify_source

SHOP = "https://shop.example.com/shoes"


@pytest.mark.parametrize(
    ("referrer", "url", "campaign", "expected"),
    [
        (None, SHOP, None, "direct"),
        (None, None, None, "direct"),
        ("https://shop.example.com/", SHOP, None, "direct"),
        ("https://www.shop.example.com/", SHOP, None, "direct"),
        ("https://www.google.com/", SHOP, None, "organic_search"),
        ("https://www.google.co.uk/search?q=shoes", SHOP, None, "organic_search"),
        ("https://duckduckgo.com/", SHOP, None, "organic_search"),
        ("https://www.bing.com/", SHOP, None, "organic_search"),
        (None, SHOP + "?utm_medium=organic", None, "organic_search"),
        ("https://www.google.com/", SHOP + "?gclid=abc", None, "paid"),
        (None, SHOP + "?utm_source=google&utm_medium=cpc", None, "paid"),
        (None, SHOP + "?fbclid=x", None, "paid"),
        (None, SHOP + "?MSCLKID=x", None, "paid"),
        (None, SHOP, {"medium": "Display"}, "paid"),
        ("https://l.facebook.com/", SHOP + "?utm_medium=paid_social", None, "paid"),
        (None, SHOP + "?utm_medium=email", None, "email"),
        ("https://mail.example.org/", SHOP, {"medium": "newsletter"}, "email"),
        ("https://t.co/abc", SHOP, None, "social"),
        ("https://x.com/someone", SHOP, None, "social"),
        ("https://m.facebook.com/", SHOP, None, "social"),
        ("https://www.linkedin.com/feed", SHOP, None, "social"),
        ("https://www.reddit.com/r/shoes", SHOP, None, "social"),
        ("https://youtu.be/xyz", SHOP, None, "social"),
        (None, SHOP + "?utm_medium=social", None, "social"),
        ("https://blog.example.org/post", SHOP, None, "referral"),
        ("https://blog.example.org/post", None, None, "referral"),
        (None, SHOP + "?utm_medium=affiliate", None, "referral"),
    ],
)
def test_rules(referrer: str | None, url: str | None, campaign: Any, expected: str) -> None:
    assert classify_source(referrer, url, campaign) == expected


def test_campaign_object_wins_over_url_tags() -> None:
    url = SHOP + "?utm_medium=email"
    assert classify_source(None, url, {"medium": "cpc"}) == "paid"
    assert campaign_from(url + "&utm_campaign=spring&utm_source=nl", {"source": "ads"}) == {
        "source": "ads",
        "medium": "email",
        "name": "spring",
    }


@pytest.mark.parametrize(
    ("referrer", "url", "campaign"),
    [(5, 7, "x"), ("not a url", "::::", []), ("http://[bad", "http://[bad", {"medium": 3})],
)
def test_junk_never_raises(referrer: Any, url: Any, campaign: Any) -> None:
    assert classify_source(referrer, url, campaign) in TRAFFIC_SOURCES
