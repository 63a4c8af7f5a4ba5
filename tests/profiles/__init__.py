"""Tests of loopwise.profiles; ``ev`` builds normalised events for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from loopwise.events.schema import Event

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


def ev(
    type: str = "track",
    event: str | None = None,
    at: datetime | float = 0.0,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = "anon-1",
    properties: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    previous_id: str | None = None,
) -> Event:
    """An event ``at`` minutes after ``T0`` (or at a datetime)."""
    when = at if isinstance(at, datetime) else T0 + timedelta(minutes=at)
    return Event(
        message_id=f"m-{type}-{event}-{when.isoformat()}",
        type=type,
        timestamp=when,
        received_at=when,
        user_id=user_id,
        anonymous_id=anonymous_id,
        event=event,
        properties=properties or {},
        traits=traits or {},
        context=context or {},
        previous_id=previous_id,
    )
