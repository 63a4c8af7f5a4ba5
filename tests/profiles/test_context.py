from __future__ import annotations

from typing import Any

import pytest

from loopwise.profiles.context import request_context_attributes
from loopwise.profiles.settings import ProfileSettings

from . import T0
from .test_useragent import SAFARI_IPHONE

SETTINGS = ProfileSettings()

FULL: dict[str, Any] = {
    "ip": "203.0.113.9",
    "userAgent": SAFARI_IPHONE,
    "page": {
        "url": "https://shop.example.com/shoes?utm_source=nl&utm_medium=email&utm_campaign=spring",
        "referrer": "https://mail.example.org/",
        "title": "Shoes",
    },
    "locale": "en-GB",
    "timezone": "Europe/London",
    "location": {"country": "gb", "region": "England"},
}


def test_full_context_gives_the_documented_namespace() -> None:
    attrs = request_context_attributes(FULL, SETTINGS, T0)
    assert attrs == {
        "page": {
            "url": FULL["page"]["url"],
            "path": "/shoes",
            "host": "shop.example.com",
            "referrer": "https://mail.example.org/",
            "title": "Shoes",
            "search": "?utm_source=nl&utm_medium=email&utm_campaign=spring",
        },
        "device": {"type": "mobile", "os": "iOS", "browser": "Mobile Safari"},
        "country": "GB",
        "region": "England",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "traffic_source": "email",
        "campaign": {"source": "nl", "medium": "email", "name": "spring"},
        "time": {"hour": 12, "weekday": 0},
    }


def test_the_ip_never_appears() -> None:
    attrs = request_context_attributes(FULL, SETTINGS, T0)
    assert "203.0.113.9" not in repr(attrs)


def test_country_header_is_used_case_insensitively_when_location_is_missing() -> None:
    settings = ProfileSettings(country_header="CF-IPCountry")
    attrs = request_context_attributes({}, settings, T0, headers={"cf-ipcountry": "de"})
    assert attrs["country"] == "DE"
    with_location = {"location": {"country": "us"}}
    attrs = request_context_attributes(with_location, settings, T0, {"CF-IPCountry": "DE"})
    assert attrs["country"] == "US"


def test_header_is_ignored_unless_configured() -> None:
    attrs = request_context_attributes({}, SETTINGS, T0, headers={"CF-IPCountry": "DE"})
    assert "country" not in attrs


def test_unknown_values_are_absent_not_null() -> None:
    assert request_context_attributes({}, SETTINGS, T0) == {"time": {"hour": 12, "weekday": 0}}


def test_declared_device_type_overrides_and_os_name_fills_in() -> None:
    context = {"device": {"type": "Tablet"}, "os": {"name": "Android"}}
    attrs = request_context_attributes(context, SETTINGS, T0)
    assert attrs["device"] == {"type": "tablet", "os": "Android"}
    # SDK vocabulary ("ios") is not a device type: ignored
    assert "device" not in request_context_attributes({"device": {"type": "ios"}}, SETTINGS, T0)


def test_page_without_referrer_is_direct_and_campaign_alone_classifies() -> None:
    page = {"page": {"url": "https://shop.example.com/"}}
    assert request_context_attributes(page, SETTINGS, T0)["traffic_source"] == "direct"
    campaign = {"campaign": {"medium": "cpc", "source": "google"}}
    attrs = request_context_attributes(campaign, SETTINGS, T0)
    assert attrs["traffic_source"] == "paid"
    assert attrs["campaign"] == {"medium": "cpc", "source": "google"}


@pytest.mark.parametrize(
    "context",
    [
        None,
        [],
        "junk",
        {"page": 5, "location": "gb", "device": [], "campaign": 1, "userAgent": 3},
        {"page": {"url": 7, "referrer": {}, "title": None}, "locale": 3, "timezone": []},
        {"page": {"url": "http://[broken"}, "location": {"country": 44}},
    ],
)
def test_junk_types_never_raise(context: Any) -> None:
    settings = ProfileSettings(country_header="X-Country")
    attrs = request_context_attributes(context, settings, T0, headers={"x-country": "fr"})
    assert attrs["country"] == "FR"
    assert attrs["time"] == {"hour": 12, "weekday": 0}
