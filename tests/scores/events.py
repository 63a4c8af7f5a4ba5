"""Small event builders for the score tests."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from loopwise.events.schema import Event
from loopwise.storage.records import LoggedEvent

_ids = itertools.count(1)


def event(
    kind: str,
    at: datetime,
    anonymous_id: str | None = "a1",
    user_id: str | None = None,
    **properties: Any,
) -> Event:
    """``kind``: ``page``, ``identify`` or a track event name."""
    common: dict[str, Any] = {
        "message_id": f"m{next(_ids)}",
        "timestamp": at,
        "received_at": at,
        "anonymous_id": anonymous_id,
        "user_id": user_id,
    }
    if kind == "page":
        return Event(type="page", name="Home", properties=properties, **common)
    if kind == "identify":
        return Event(type="identify", traits=properties, **common)
    return Event(type="track", event=kind, properties=properties, **common)


def logged(events: list[Event]) -> list[LoggedEvent]:
    """As a log would hold them (the person: their user id, else their anonymous id)."""
    return [LoggedEvent(i + 1, e.user_id or e.anonymous_id or "", e) for i, e in enumerate(events)]
