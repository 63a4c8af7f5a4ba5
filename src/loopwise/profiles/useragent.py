"""User-agent string -> device type, OS and browser, for ``device.*`` attributes.

Parsing uses ``ua-parser`` (the regex backend when installed). A site sees few distinct user
agents, so results are memoised in a bounded cache; each call returns a fresh dict so callers may
change it without poisoning the cache.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ua_parser import parse

DEVICE_TYPES: tuple[str, ...] = ("desktop", "mobile", "tablet", "bot", "other")
MAX_UA_LENGTH = 1024  # longer strings are cut before parsing: bounds cache memory and regex work
CACHE_SIZE = 4096

# Automated clients the parser does not flag as a "Spider" device. Not a bare "bot": phone brands
# such as CUBOT contain it; crawlers almost always write "...bot/1.0" or "...bot;".
_BOT_TOKENS = re.compile(
    r"bot/|bot;|bot\)|crawler|spider|slurp|curl/|wget/|python-requests|python-urllib|aiohttp|"
    r"go-http-client|libwww-perl|java/|scrapy|headlesschrome|httpclient|facebookexternalhit|"
    r"lighthouse|pingdom|uptimerobot",
)
_MOBILE_OS = frozenset({"iOS", "Windows Phone", "BlackBerry OS", "KaiOS", "Symbian OS", "Tizen"})
_DESKTOP_OS = frozenset(
    {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "FreeBSD", "Debian"}
)
_DESKTOP_TOKENS = ("windows nt", "macintosh", "x11", "cros")


def _family(value: str | None) -> str | None:
    return value if value and value != "Other" else None


@lru_cache(maxsize=CACHE_SIZE)
def _parse(ua: str) -> tuple[str, str | None, str | None]:
    result = parse(ua)
    os_name = _family(result.os.family) if result.os else None
    browser = _family(result.user_agent.family) if result.user_agent else None
    device = result.device
    device_family = device.family if device else ""
    device_brand = (device.brand or "") if device else ""
    return _device_type(ua.lower(), os_name, device_family, device_brand), os_name, browser


def _device_type(ua: str, os_name: str | None, device_family: str, device_brand: str) -> str:
    if device_family == "Spider" or _BOT_TOKENS.search(ua):
        return "bot"
    if (
        device_family == "iPad"
        or device_brand == "Generic_Android_Tablet"
        or "tablet" in ua
        or "kindle" in ua
        or "silk/" in ua
        or ("android" in ua and "mobile" not in ua)
    ):
        return "tablet"
    if device_family in ("iPhone", "iPod") or os_name in _MOBILE_OS or "mobi" in ua:
        return "mobile"
    if os_name in _DESKTOP_OS or any(token in ua for token in _DESKTOP_TOKENS):
        return "desktop"
    return "other"


def parse_device(ua: str | None) -> dict[str, str | None]:
    """``{"type": desktop|mobile|tablet|bot|other, "os": ..., "browser": ...}``; os and browser are
    the parser's family names ("Mac OS X", "Mobile Safari") or None when unknown."""
    if not isinstance(ua, str) or not ua.strip():
        return {"type": "other", "os": None, "browser": None}
    device_type, os_name, browser = _parse(ua.strip()[:MAX_UA_LENGTH])
    return {"type": device_type, "os": os_name, "browser": browser}
