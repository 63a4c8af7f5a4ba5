"""The ``context.*`` attribute namespace, read from a Segment-style ``context`` object.

Used at decide time (the request's context) and by the reducer (an event's context becomes the
profile's "last context"). Clients send all sorts of things, so every reader tolerates junk: a
field of the wrong type counts as missing. Missing values are left out (not null) so conditions
can tell "unknown" apart with ``$exists``. The IP address is never copied into attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from loopwise.profiles.settings import ProfileSettings
from loopwise.profiles.traffic import campaign_from, classify_source, host_of
from loopwise.profiles.useragent import DEVICE_TYPES, parse_device

MAX_TEXT = 2048  # longer strings are cut: attributes stay small whatever a client sends


def as_dict(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # the common case, without the ABC check
        return value
    return value if isinstance(value, Mapping) else {}


def as_text(value: Any) -> str | None:
    """A non-empty stripped string (cut to ``MAX_TEXT``), else None."""
    if isinstance(value, str):
        text = value.strip()[:MAX_TEXT]
        return text or None
    return None


def device_from_context(context: Mapping[str, Any]) -> dict[str, str | None]:
    """``type/os/browser`` from ``userAgent``; a valid ``device.type`` overrides the type and
    ``os.name`` fills a missing OS (mobile SDKs send those instead of a user agent)."""
    ua = as_text(context.get("userAgent"))
    device: dict[str, str | None] = (
        parse_device(ua) if ua else {"type": None, "os": None, "browser": None}
    )
    declared = as_text(as_dict(context.get("device")).get("type"))
    if declared is not None and declared.lower() in DEVICE_TYPES:
        device["type"] = declared.lower()
    if device["os"] is None:
        device["os"] = as_text(as_dict(context.get("os")).get("name"))
    return device


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted:
            return as_text(value)
    return None


def country_from_context(
    context: Mapping[str, Any],
    country_header: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> str | None:
    """Upper-cased ``location.country``, else the ``country_header`` request header."""
    country = as_text(as_dict(context.get("location")).get("country"))
    if country is None and country_header:
        country = header(headers, country_header)
    return country.upper() if country else None


def page_from_context(context: Mapping[str, Any]) -> dict[str, str]:
    """``url/path/host/referrer/title/search``; path, host and search are derived from the URL
    when not given."""
    page = as_dict(context.get("page"))
    url = as_text(page.get("url"))
    parts = None
    if url is not None:
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
    path = as_text(page.get("path")) or (parts.path or None if parts else None)
    search = as_text(page.get("search")) or ("?" + parts.query if parts and parts.query else None)
    values = {
        "url": url,
        "path": path,
        "host": host_of(url),
        "referrer": as_text(page.get("referrer")),
        "title": as_text(page.get("title")),
        "search": search,
    }
    return {key: value for key, value in values.items() if value is not None}


def traffic_source_from_context(context: Mapping[str, Any]) -> str | None:
    """The visit's source, or None when the context has neither a page nor a campaign (a
    server-side call says nothing about where the visitor came from)."""
    page = as_dict(context.get("page"))
    if not page and not as_dict(context.get("campaign")):
        return None
    return classify_source(
        as_text(page.get("referrer")), as_text(page.get("url")), as_dict(context.get("campaign"))
    )


def _drop_missing(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None and value != {}}


def request_context_attributes(
    context: Mapping[str, Any] | None,
    settings: ProfileSettings,
    now: datetime,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``context.*`` namespace (docs/internals.md) for one request or event."""
    ctx = as_dict(context)
    page = page_from_context(ctx)
    at = now.astimezone(UTC)
    return _drop_missing(
        {
            "page": page,
            "device": _drop_missing(device_from_context(ctx)),
            "country": country_from_context(ctx, settings.country_header, headers),
            "region": as_text(as_dict(ctx.get("location")).get("region")),
            "city": as_text(as_dict(ctx.get("location")).get("city")),
            "locale": as_text(ctx.get("locale")),
            "timezone": as_text(ctx.get("timezone")),
            "traffic_source": traffic_source_from_context(ctx),
            "campaign": campaign_from(page.get("url"), as_dict(ctx.get("campaign"))),
            "time": {"hour": at.hour, "weekday": at.weekday()},
        }
    )
