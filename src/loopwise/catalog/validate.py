"""Catalog input (API bodies, JSONL/CSV rows) -> :class:`~loopwise.catalog.items.Item`.

Feeds come in many shapes, so the parser is lenient where intent is clear (numeric ids, a single
category string, ``description`` for ``text``, unknown keys kept as attributes) and strict where
the decide filters depend on the value (``price``/``margin`` numbers >= 0, ``in_stock`` a bool).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from loopwise.catalog.items import Item
from loopwise.clock import parse_timestamp
from loopwise.errors import ValidationFailed
from loopwise.events.limits import depth_error, too_deep

MAX_ID_CHARS = 256
# Item fields; every other top-level key (``price``, ``margin``, ``in_stock``, ``brand``, ...) is
# folded into ``attributes``, where the decide filters read it.
_FIELDS = frozenset(
    {"id", "type", "title", "text", "description", "url", "image", "categories", "tags"}
    | {"attributes", "created_at", "updated_at"}
)


def parse_item(raw: Any, *, field_prefix: str = "", now: datetime | None = None) -> Item:
    """Validate one item; errors carry ``field`` as ``<field_prefix><key>`` (``items[4].price``)."""
    p = field_prefix
    if not isinstance(raw, dict):
        raise ValidationFailed(
            f"Each item must be a JSON object with at least an id, not {_json_type(raw)}.",
            field=p.rstrip(".") or "item",
        )
    deep = too_deep(raw)
    if deep is not None:
        raise depth_error(deep, p)
    attributes, sources = _attributes(raw, p)
    for key in ("price", "margin"):
        if attributes.get(key) is not None:
            _check_amount(attributes[key], sources[key])
    if attributes.get("in_stock") is not None and not isinstance(attributes["in_stock"], bool):
        raise ValidationFailed(
            "in_stock must be true or false (leave it out when the item is in stock).",
            field=sources["in_stock"],
        )
    return Item(
        id=_item_id(raw, p),
        type=_type(raw, p),
        title=_text(raw, "title", p) or "",
        text=_text(raw, "text", p) or _text(raw, "description", p) or "",
        url=_text(raw, "url", p),
        image=_text(raw, "image", p),
        categories=_labels(raw, "categories", p),
        tags=_labels(raw, "tags", p),
        attributes=attributes,
        created_at=_time(raw, "created_at", p) or now,
        updated_at=_time(raw, "updated_at", p) or now,
    )


def _attributes(raw: Mapping[str, Any], p: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``attributes`` plus folded top-level keys (which win), and where each value came from."""
    given = raw.get("attributes")
    if given is not None and not isinstance(given, dict):
        raise ValidationFailed(
            f"attributes must be a JSON object of extra fields; got {_json_type(given)}.",
            field=p + "attributes",
        )
    attributes = dict(given or {})
    sources = {key: f"{p}attributes.{key}" for key in attributes}
    for key, value in raw.items():
        if key not in _FIELDS and value is not None:
            attributes[key] = value
            sources[key] = p + key
    return attributes, sources


def _check_amount(value: Any, field: str) -> None:
    name = field.rsplit(".", 1)[-1]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValidationFailed(
            f"{name} must be a number >= 0 such as 19.99 (got {value!r}); leave it out if unknown.",
            field=field,
        )


def _item_id(raw: Mapping[str, Any], p: str) -> str:
    value = raw.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationFailed(
            "Send an id for every item: a string (or an integer) unique in the catalog.",
            field=p + "id",
        )
    text = str(value)
    if not text.strip() or len(text) > MAX_ID_CHARS:
        raise ValidationFailed(
            f"id must be 1 to {MAX_ID_CHARS} characters (got {len(text)}).", field=p + "id"
        )
    return text


def _type(raw: Mapping[str, Any], p: str) -> str:
    value = raw.get("type")
    if value is None:
        return "product"
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(
            'type must be a non-empty string such as "product" or "article".', field=p + "type"
        )
    return value.strip()


def _text(raw: Mapping[str, Any], key: str, p: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{key} must be a string; got {_json_type(value)}.", field=p + key)
    return value


def _labels(raw: Mapping[str, Any], key: str, p: str) -> tuple[str, ...]:
    """A list of strings, or one string (kept whole: "Shoes > Running" is one category)."""
    value = raw.get(key)
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        raise ValidationFailed(
            f'{key} must be a list of strings such as ["shoes", "running"]; '
            f"got {_json_type(value)}.",
            field=p + key,
        )
    labels: list[str] = []
    for index, label in enumerate(values):
        if not isinstance(label, str):
            raise ValidationFailed(
                f"Each entry of {key} must be a string; got {_json_type(label)}.",
                field=f"{p}{key}[{index}]",
            )
        label = label.strip()
        if label and label not in labels:
            labels.append(label)
    return tuple(labels)


def _time(raw: Mapping[str, Any], key: str, p: str) -> datetime | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    try:
        parsed = parse_timestamp(value) if isinstance(value, str) else None
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before the first UTC date
        parsed = None
    if parsed is None:
        raise ValidationFailed(
            f"{key} must be an ISO 8601 time such as 2024-05-01T12:00:00Z (got {value!r}).",
            field=p + key,
        )
    return parsed


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
