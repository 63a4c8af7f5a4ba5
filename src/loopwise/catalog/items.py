"""Catalog items: what list slots choose from.

``Item`` is the in-memory, read-only form the decide path uses. Input (API bodies, JSONL/CSV
imports) is validated by :func:`loopwise.catalog.validate.parse_item` into an ``Item``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopwise.clock import isoformat, parse_timestamp


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    type: str = "product"
    title: str = ""
    text: str = ""
    url: str | None = None
    image: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    # Free-form attributes; the decide filters read ``price`` (number), ``margin`` (number)
    # and ``in_stock`` (bool, missing means in stock).
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def price(self) -> float | None:
        value = self.attributes.get("price")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return None

    @property
    def in_stock(self) -> bool:
        return self.attributes.get("in_stock", True) is not False

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "text": self.text,
            "url": self.url,
            "image": self.image,
            "categories": list(self.categories),
            "tags": list(self.tags),
            "attributes": self.attributes,
            "created_at": isoformat(self.created_at) if self.created_at else None,
            "updated_at": isoformat(self.updated_at) if self.updated_at else None,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Item:
        return cls(
            id=str(record["id"]),
            type=record.get("type") or "product",
            title=record.get("title") or "",
            text=record.get("text") or "",
            url=record.get("url"),
            image=record.get("image"),
            categories=tuple(record.get("categories") or ()),
            tags=tuple(record.get("tags") or ()),
            attributes=dict(record.get("attributes") or {}),
            created_at=parse_timestamp(record.get("created_at")),
            updated_at=parse_timestamp(record.get("updated_at")),
        )
