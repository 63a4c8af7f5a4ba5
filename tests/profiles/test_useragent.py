from __future__ import annotations

import pytest

from loopwise.profiles.useragent import MAX_UA_LENGTH, parse_device

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (CHROME_WINDOWS, {"type": "desktop", "os": "Windows", "browser": "Chrome"}),
        (SAFARI_IPHONE, {"type": "mobile", "os": "iOS", "browser": "Mobile Safari"}),
        (SAFARI_IPAD, {"type": "tablet", "os": "iOS", "browser": "Mobile Safari"}),
        (ANDROID_PHONE, {"type": "mobile", "os": "Android", "browser": "Chrome Mobile"}),
        (ANDROID_TABLET, {"type": "tablet", "os": "Android", "browser": "Chrome"}),
        (GOOGLEBOT, {"type": "bot", "os": None, "browser": "Googlebot"}),
        ("curl/8.4.0", {"type": "bot", "os": None, "browser": "curl"}),
        (FIREFOX_LINUX, {"type": "desktop", "os": "Linux", "browser": "Firefox"}),
        (SAFARI_MAC, {"type": "desktop", "os": "Mac OS X", "browser": "Safari"}),
    ],
)
def test_real_user_agents(ua: str, expected: dict[str, str | None]) -> None:
    assert parse_device(ua) == expected


@pytest.mark.parametrize("ua", [None, "", "   ", "garbage"])
def test_missing_or_unknown_is_other(ua: str | None) -> None:
    assert parse_device(ua) == {"type": "other", "os": None, "browser": None}


def test_a_phone_brand_containing_bot_is_not_a_bot() -> None:
    ua = (
        "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36"
    )
    assert parse_device(ua)["type"] == "mobile"


def test_results_are_fresh_dicts_despite_the_cache() -> None:
    first = parse_device(CHROME_WINDOWS)
    first["type"] = "changed"
    assert parse_device(CHROME_WINDOWS)["type"] == "desktop"


def test_overlong_user_agent_is_cut_not_rejected() -> None:
    ua = CHROME_WINDOWS + " x" * MAX_UA_LENGTH
    assert parse_device(ua)["type"] == "desktop"
