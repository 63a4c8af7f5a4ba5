"""Segment's HTTP Tracking API wire format -> :class:`~loopwise.events.schema.Event`.

Existing analytics clients (analytics.js, segment-analytics-python, RudderStack SDKs) send to
Loopwise unchanged, so this module accepts Segment's camelCase messages, validates everything
before anything is stored, corrects client clock skew the way Segment does, and keeps no raw IP.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from loopwise.clock import isoformat, parse_timestamp
from loopwise.errors import LimitExceeded, ValidationFailed
from loopwise.events.amounts import check_amounts
from loopwise.events.geolocation import Location
from loopwise.events.limits import (
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    MAX_ID_CHARS,
    depth_error,
    too_deep,
)
from loopwise.events.schema import EVENT_TYPES, Event

ROUTE_KINDS: tuple[str, ...] = (*EVENT_TYPES, "batch")
Locate = Callable[[str], Location | None]
MAX_EVENT_NAME_CHARS = 200
# An event's time (after clock-skew correction) must fall in this window. Earlier times are a
# zeroed or default date (1970-01-01, 0001-01-01), later ones a wrong clock or unit; either would
# corrupt recency, sessions and decayed scores for good.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW = timedelta(hours=24)


def write_key_from_body(body: Any) -> str | None:
    """The ``writeKey`` some clients put in the body instead of the Authorization header."""
    if isinstance(body, dict):
        key = body.get("writeKey")
        if isinstance(key, str) and key:
            return key
    return None


def parse_request(
    body: Any,
    *,
    kind: str,
    received_at: datetime,
    truncate_ip: bool = True,
    locate: Locate | None = None,
    client_ip: str | None = None,
) -> list[Event]:
    """All events of one request, or an error for the first bad one (nothing half-applied).
    ``context.ip`` is stored truncated (IPv4 /24, IPv6 /48) unless ``truncate_ip`` is False.
    ``locate`` (geolocation) fills ``context.location`` from ``context.ip``, else from
    ``client_ip`` (the browser's address), before the address is truncated."""
    if kind not in ROUTE_KINDS:
        raise ValidationFailed(
            f"Unknown call {kind!r}; use one of {', '.join(ROUTE_KINDS)}.", field="type"
        )
    if not isinstance(body, dict):
        raise ValidationFailed(
            f"The body must be a JSON object, not {_json_type(body)}.", field="body"
        )
    where = (locate, client_ip)
    if kind != "batch":
        return [
            parse_message(
                body, kind=kind, received_at=received_at, truncate_ip=truncate_ip, where=where
            )
        ]
    batch = body.get("batch")
    if not isinstance(batch, list) or not batch:
        raise ValidationFailed(
            'Send "batch": a non-empty list of messages, each with its own "type".', field="batch"
        )
    if len(batch) > MAX_BATCH_EVENTS:
        raise LimitExceeded(
            f"A batch holds at most {MAX_BATCH_EVENTS} events (this one has {len(batch)}); "
            "split it into several requests.",
            field="batch",
            limit=MAX_BATCH_EVENTS,
        )
    deep = too_deep(body.get("context"))
    if deep is not None:
        raise depth_error(("context", *deep))
    batch_context = _object(body, "context", "")
    batch_sent_at = _time(body, "sentAt", "")
    events: list[Event] = []
    for index, item in enumerate(batch):
        prefix = f"batch[{index}]."
        if not isinstance(item, dict):
            raise ValidationFailed(
                f"Each batch entry must be a JSON object, not {_json_type(item)}.",
                field=f"batch[{index}]",
            )
        item_kind = item.get("type")
        if not isinstance(item_kind, str) or item_kind not in EVENT_TYPES:
            raise ValidationFailed(
                f"Send a type for each batch entry: one of {', '.join(EVENT_TYPES)}.",
                field=prefix + "type",
            )
        events.append(
            parse_message(
                item,
                kind=item_kind,
                received_at=received_at,
                field_prefix=prefix,
                batch_context=batch_context,
                batch_sent_at=batch_sent_at,
                truncate_ip=truncate_ip,
                where=where,
            )
        )
    return events


def parse_message(
    raw: Any,
    *,
    kind: str,
    received_at: datetime,
    field_prefix: str = "",
    batch_context: Mapping[str, Any] | None = None,
    batch_sent_at: datetime | None = None,
    truncate_ip: bool = True,
    where: tuple[Locate | None, str | None] = (None, None),
) -> Event:
    """One Segment message -> Event. ``field_prefix`` (e.g. ``batch[3].``) starts error paths;
    ``where`` is the geolocation lookup and the client's address (see :func:`parse_request`)."""
    p = field_prefix
    if kind not in EVENT_TYPES:
        raise ValidationFailed(f"Unknown type {kind!r}; use one of {', '.join(EVENT_TYPES)}.")
    if not isinstance(raw, dict):
        raise ValidationFailed(
            f"A message must be a JSON object, not {_json_type(raw)}.", field=_own(p)
        )
    deep = too_deep(raw)
    if deep is not None:
        raise depth_error(deep, p)
    _check_size(raw, p)
    declared = raw.get("type")
    if declared is not None and declared != kind:
        raise ValidationFailed(
            f"type is {declared!r} but this is the {kind} call; "
            f"send type {kind!r} or leave it out.",
            field=p + "type",
        )
    user_id = _id(raw, "userId", p)
    anonymous_id = _id(raw, "anonymousId", p)
    if user_id is None and anonymous_id is None:
        raise ValidationFailed(
            "Send a userId or an anonymousId (a non-empty string) so the event can be tied to "
            "a profile.",
            field=p + "userId",
        )
    merged = _deep_merge(batch_context or {}, _object(raw, "context", p))
    if batch_context:  # the stored event carries the batch's context too
        _check_size({**raw, "context": merged}, p)
    context_traits = _object(merged, "traits", p + "context.")
    properties = _object(raw, "properties", p)
    check_amounts(properties, p)
    event = name = previous_id = group_id = None
    traits: dict[str, Any] = {}
    if kind == "track":
        event = _event_name(raw, p)
    elif kind in ("page", "screen"):
        name = _text(raw, "name", p)
        category = _text(raw, "category", p)
        if category is not None:
            properties.setdefault("category", category)
    elif kind == "alias":
        previous_id = _required_id(raw, "previousId", p, "the id the user had before")
        if user_id is None:
            raise ValidationFailed(
                "An alias call links previousId to a userId; send the userId.", field=p + "userId"
            )
    elif kind == "group":
        group_id = _required_id(raw, "groupId", p, "the id of the account or company")
    if kind == "identify":
        traits = {**context_traits, **_object(raw, "traits", p)}
    elif kind == "group":
        traits = _object(raw, "traits", p)
    else:
        traits = context_traits
    timestamp, original, sent_at = _times(raw, p, _utc(received_at), batch_sent_at)
    locate, client_ip = where
    if locate is not None:
        add_location(merged, locate, client_ip)
    return Event(
        message_id=_id(raw, "messageId", p) or _auto_message_id(),
        type=kind,
        timestamp=timestamp,
        received_at=_utc(received_at),
        user_id=user_id,
        anonymous_id=anonymous_id,
        event=event,
        name=name,
        properties=_without_write_key(properties),
        traits=traits,
        context=_stored_context(merged, truncate_ip),
        previous_id=previous_id,
        group_id=group_id,
        sent_at=sent_at,
        original_timestamp=original,
    )


def truncate_ip(value: str) -> str | None:
    """Coarse IP for geo/analytics without the person: IPv4 /24, IPv6 /48; invalid -> None."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network.network_address)


# --- time -------------------------------------------------------------------------------------


def _times(
    raw: dict[str, Any], p: str, received_at: datetime, batch_sent_at: datetime | None
) -> tuple[datetime, datetime | None, datetime | None]:
    """(timestamp, original_timestamp, sent_at) with Segment's clock-skew correction:
    ``timestamp = receivedAt - (sentAt - originalTimestamp)``."""
    sent_at = _time(raw, "sentAt", p) or batch_sent_at
    given = _time(raw, "timestamp", p)
    original = _time(raw, "originalTimestamp", p) or given
    if original is None:
        return received_at, None, sent_at
    key = "originalTimestamp" if raw.get("originalTimestamp") is not None else "timestamp"
    if sent_at is None:
        _check_event_time(original, received_at, p + key, key)
        return original, original, sent_at
    try:
        corrected = received_at - (sent_at - original)
    except OverflowError:
        corrected = None
    if corrected is None or not _in_window(corrected, received_at):
        _check_event_time(original, received_at, p + key, key)
        # the time itself is plausible, so sentAt made the correction absurd
        sent_key = p + "sentAt" if raw.get("sentAt") is not None else "sentAt"
        raise ValidationFailed(
            f"sentAt and {key} are too far apart to correct the client's clock "
            f"(sentAt {isoformat(sent_at)}, {key} {isoformat(original)}); send "
            "sentAt as the time the request left the client, or leave it out.",
            field=sent_key,
        )
    return corrected, original, sent_at


def _in_window(at: datetime, received_at: datetime) -> bool:
    return EARLIEST_EVENT_TIME <= at <= received_at + MAX_FUTURE_SKEW


def _check_event_time(at: datetime, received_at: datetime, field: str, key: str) -> None:
    if at < EARLIEST_EVENT_TIME:
        raise ValidationFailed(
            f"{key} {isoformat(at)} is before 2000-01-01, which is almost always a zero "
            "or default date; send the time the event happened, or leave it out and the time "
            "of receipt is used.",
            field=field,
        )
    if at > received_at + MAX_FUTURE_SKEW:
        raise ValidationFailed(
            f"{key} {isoformat(at)} is more than 24 hours after the server received the "
            "event; check the client's clock and time zone, send sentAt so the clock is "
            "corrected, or leave it out and the time of receipt is used.",
            field=field,
        )


def _time(raw: Mapping[str, Any], key: str, p: str) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    try:
        parsed = parse_timestamp(value) if isinstance(value, str) else None
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before the first UTC date
        parsed = None
    if parsed is None:
        raise ValidationFailed(
            f"{key} must be an ISO 8601 time such as 2024-05-01T12:00:00.000Z "
            f"(got {_preview(value)}).",
            field=p + key,
        )
    return parsed


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- fields -----------------------------------------------------------------------------------


def _id(raw: Mapping[str, Any], key: str, p: str) -> str | None:
    """An id: a string, or a number (Segment accepts those); null or "" means absent."""
    value = raw.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValidationFailed(
            f"{key} must be a string (or a number); got {_json_type(value)}.", field=p + key
        )
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_ID_CHARS:
        raise ValidationFailed(
            f"{key} is {len(text)} characters; ids may have at most {MAX_ID_CHARS}. Send a "
            "short stable id (a database key or UUID), not the data itself.",
            field=p + key,
        )
    return text


def _required_id(raw: Mapping[str, Any], key: str, p: str, meaning: str) -> str:
    value = _id(raw, key, p)
    if value is None:
        raise ValidationFailed(f"Send {key}: {meaning} (a non-empty string).", field=p + key)
    return value


def _event_name(raw: Mapping[str, Any], p: str) -> str:
    value = raw.get("event")
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(
            'A track call needs "event": the name of the action, e.g. "Product Viewed".',
            field=p + "event",
        )
    if len(value) > MAX_EVENT_NAME_CHARS:
        raise ValidationFailed(
            f"event is {len(value)} characters; keep event names to {MAX_EVENT_NAME_CHARS} "
            "and put details in properties.",
            field=p + "event",
        )
    return value


def _text(raw: Mapping[str, Any], key: str, p: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{key} must be a string; got {_json_type(value)}.", field=p + key)
    return value


def _object(raw: Mapping[str, Any], key: str, p: str) -> dict[str, Any]:
    """A JSON object field; missing or null -> {} (a shallow copy, so the input is not changed)."""
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed(
            f"{key} must be a JSON object; got {_json_type(value)}.", field=p + key
        )
    return dict(value)


# --- context and ids --------------------------------------------------------------------------


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` wins; nested objects merge. Every dict level is copied (no shared state)."""
    merged: dict[str, Any] = {
        k: _deep_merge(v, {}) if isinstance(v, dict) else v for k, v in base.items()
    }
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, dict):
            merged[key] = _deep_merge(current if isinstance(current, dict) else {}, value)
        else:
            merged[key] = value
    return merged


def add_location(context: dict[str, Any], locate: Locate, client_ip: str | None) -> None:
    """Fill what ``context.location`` lacks from the address (never against the country the
    client states)."""
    ip = context.get("ip")
    ip = ip if isinstance(ip, str) and ip.strip() else client_ip
    location = context.get("location")
    location = dict(location) if isinstance(location, dict) else {}
    if not ip or all(location.get(k) for k in ("country", "region", "city")):
        return
    found = locate(ip)
    if found is None:
        return
    stated = location.get("country")
    if isinstance(stated, str) and stated.strip() and stated.strip().upper() != found.country:
        return
    for key, value in found.as_context().items():
        if not location.get(key):
            location[key] = value
    context["location"] = location


def _stored_context(context: dict[str, Any], truncate: bool = True) -> dict[str, Any]:
    stored = _without_write_key(context)
    ip = stored.pop("ip", None)
    if not truncate:  # the workspace chose to keep full addresses (still only valid ones)
        valid = isinstance(ip, str) and truncate_ip(ip) is not None
        return {**stored, "ip": ip.strip()} if valid and isinstance(ip, str) else stored
    truncated = truncate_ip(ip) if isinstance(ip, str) else None
    if truncated is not None:
        stored["ip"] = truncated
    return stored


def _without_write_key(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != "writeKey"}


def _auto_message_id() -> str:
    """A fresh id for a message sent without one (Segment's spec makes ``messageId``
    optional). Random, as Segment's own servers assign it: two identical events sent a second
    apart are two events. Retry-safety is for clients that send a ``messageId`` (every Segment
    and RudderStack SDK does)."""
    return "auto-" + uuid.uuid4().hex


def _check_size(raw: dict[str, Any], p: str) -> None:
    try:
        size = len(orjson.dumps(raw))
    except TypeError as exc:  # e.g. integers beyond 64 bits
        raise ValidationFailed(
            f"The message cannot be stored as JSON ({exc}); send numbers within 64 bits.",
            field=_own(p),
        ) from exc
    if size > MAX_EVENT_BYTES:
        raise LimitExceeded(
            f"An event may be at most 32 KB ({MAX_EVENT_BYTES} bytes) as JSON; this one is "
            f"{size} bytes. Move large data out of properties/context.",
            field=_own(p),
            limit=MAX_EVENT_BYTES,
        )


def _own(p: str) -> str:
    """The path of the message itself: ``batch[3]`` for prefix ``batch[3].``, else ``body``."""
    return p.rstrip(".") or "body"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
