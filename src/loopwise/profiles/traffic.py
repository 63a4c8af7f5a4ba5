"""Where a visit came from: one of ``TRAFFIC_SOURCES``, from the referrer, UTM tags and click ids.

Rules, first match wins (the usual analytics channel grouping, simplified):
paid (paid medium or an ad click id) > email > social (medium or referrer) > organic search
(search-engine referrer or ``organic`` medium) > referral (another host, or a referral/affiliate
medium) > direct (no referrer, or the site's own host).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TRAFFIC_SOURCES: tuple[str, ...] = (
    "direct",
    "organic_search",
    "paid",
    "social",
    "email",
    "referral",
)
PAID_MEDIUMS = frozenset({"cpc", "ppc", "paid", "paidsearch", "display", "cpm", "paid_social"})
EMAIL_MEDIUMS = frozenset({"email", "e-mail", "newsletter"})
REFERRAL_MEDIUMS = frozenset({"referral", "affiliate", "partner"})
CLICK_IDS = ("gclid", "fbclid", "msclkid")
# Matched as a whole dot-separated label, so any country domain counts (google.co.uk).
SEARCH_LABELS = frozenset({"google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia"})
SOCIAL_LABELS = frozenset(
    {"facebook", "instagram", "twitter", "linkedin", "pinterest", "reddit", "tiktok", "youtube"}
)
SOCIAL_HOSTS = frozenset({"t.co", "x.com", "fb.com", "lnkd.in", "youtu.be"})


def host_of(url: Any) -> str | None:
    """Lower-cased host of ``url`` without a leading ``www.``; None when there is none."""
    if not isinstance(url, str) or not url.strip():
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host


def query_params(url: Any) -> dict[str, str]:
    """Query parameters of ``url`` with lower-cased names (first value wins)."""
    if not isinstance(url, str) or "?" not in url:  # no query (the common case): no parsing
        return {}
    try:
        pairs = parse_qsl(urlsplit(url.strip()).query, keep_blank_values=True)
    except ValueError:
        return {}
    params: dict[str, str] = {}
    for key, value in pairs:
        params.setdefault(key.lower(), value)
    return params


def campaign_from(url: Any, campaign: Any) -> dict[str, str]:
    """``source/medium/name/term/content`` from ``campaign`` (the context object), else from the
    URL's ``utm_*`` parameters. Only non-empty strings are kept."""
    params = query_params(url)
    given = campaign if isinstance(campaign, Mapping) else {}
    result: dict[str, str] = {}
    for key in ("source", "medium", "name", "term", "content"):
        value = given.get(key)
        if not (isinstance(value, str) and value.strip()):
            value = params.get("utm_campaign" if key == "name" else f"utm_{key}")
        if isinstance(value, str) and value.strip():
            result[key] = value.strip()
    return result


def _is_search(host: str) -> bool:
    return any(label in SEARCH_LABELS for label in host.split(".")[:-1])


def _is_social(host: str) -> bool:
    if host in SOCIAL_HOSTS or any(host.endswith("." + h) for h in SOCIAL_HOSTS):
        return True
    return any(label in SOCIAL_LABELS for label in host.split(".")[:-1])


def classify_source(
    referrer: str | None, url: str | None, campaign: Mapping[str, Any] | None
) -> str:
    """Classify a visit; any argument may be None (junk types count as missing)."""
    medium = campaign_from(url, campaign).get("medium", "").lower()
    params = query_params(url)
    if medium in PAID_MEDIUMS or any(params.get(click_id) for click_id in CLICK_IDS):
        return "paid"
    if medium in EMAIL_MEDIUMS:
        return "email"
    ref_host = host_of(referrer)
    if medium == "social" or (ref_host is not None and _is_social(ref_host)):
        return "social"
    if (ref_host is not None and _is_search(ref_host)) or medium == "organic":
        return "organic_search"
    if medium in REFERRAL_MEDIUMS:
        return "referral"
    if ref_host is not None and ref_host != host_of(url):
        return "referral"
    return "direct"
