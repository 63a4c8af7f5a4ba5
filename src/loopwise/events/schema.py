"""The normalised event every later stage reads.

The wire format is Segment's tracking spec (camelCase); :mod:`loopwise.events.normalize` turns a
wire message into an :class:`Event`. Stored events are ``Event.to_record()`` dicts (JSON-safe) and
come back with ``Event.from_record``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from loopwise.clock import isoformat, parse_timestamp

EventType = Literal["track", "identify", "page", "screen", "group", "alias"]
EVENT_TYPES: tuple[str, ...] = ("track", "identify", "page", "screen", "group", "alias")


@dataclass(slots=True)
class Event:
    message_id: str
    type: str  # one of EVENT_TYPES
    timestamp: datetime  # when it happened, skew-corrected, aware UTC
    received_at: datetime  # when the server received it, aware UTC
    user_id: str | None = None
    anonymous_id: str | None = None
    event: str | None = None  # track: the event name ("Product Viewed")
    name: str | None = None  # page/screen: the page name
    properties: dict[str, Any] = field(default_factory=dict)
    # identify/group traits (identify includes context.traits)
    traits: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    previous_id: str | None = None  # alias: the id being linked to user_id
    group_id: str | None = None
    sent_at: datetime | None = None
    original_timestamp: datetime | None = None

    @property
    def decision_id(self) -> str | None:
        """The decision this event responds to (impression, click, conversion), if any."""
        value = self.properties.get("decision_id")
        return value if isinstance(value, str) and value else None

    @property
    def identity(self) -> str:
        """The id the event was sent under: userId when known, else anonymousId."""
        return self.user_id or self.anonymous_id or ""

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "message_id": self.message_id,
            "type": self.type,
            "timestamp": isoformat(self.timestamp),
            "received_at": isoformat(self.received_at),
            "user_id": self.user_id,
            "anonymous_id": self.anonymous_id,
            "event": self.event,
            "name": self.name,
            "properties": self.properties,
            "traits": self.traits,
            "context": self.context,
            "previous_id": self.previous_id,
            "group_id": self.group_id,
            "sent_at": isoformat(self.sent_at) if self.sent_at else None,
            "original_timestamp": (
                isoformat(self.original_timestamp) if self.original_timestamp else None
            ),
        }
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Event:
        timestamp = parse_timestamp(record["timestamp"])
        received_at = parse_timestamp(record["received_at"])
        assert timestamp is not None and received_at is not None
        return cls(
            message_id=record["message_id"],
            type=record["type"],
            timestamp=timestamp,
            received_at=received_at,
            user_id=record.get("user_id"),
            anonymous_id=record.get("anonymous_id"),
            event=record.get("event"),
            name=record.get("name"),
            properties=record.get("properties") or {},
            traits=record.get("traits") or {},
            context=record.get("context") or {},
            previous_id=record.get("previous_id"),
            group_id=record.get("group_id"),
            sent_at=parse_timestamp(record.get("sent_at")),
            original_timestamp=parse_timestamp(record.get("original_timestamp")),
        )
