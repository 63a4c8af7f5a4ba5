"""Time source. The engine takes a clock so tests and replays control time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class FixedClock:
    """A clock for tests: returns a set time until moved."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(seconds=seconds)


class EventTimeClock:
    """For simulations and backtests of past traffic: "now" is the newest event time ingested so
    far (it never moves back), or ``start`` before the first event. Never for live traffic: a
    client could move the engine's time with its event timestamps."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start

    def __call__(self) -> datetime:
        return self._now if self._now is not None else system_clock()

    def observe(self, at: datetime) -> None:
        if self._now is None or at > self._now:
            self._now = at


def parse_timestamp(value: object) -> datetime | None:
    """ISO 8601 string (with or without zone; 'Z' allowed) or datetime -> aware UTC datetime.

    Returns None when the value cannot be read as a time.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str) and value:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


_ISO_TEXT: dict[datetime, str] = {}
_ISO_TEXT_LIMIT = 4096  # a batch's received_at and timestamps are formatted several times each


def isoformat(dt: datetime) -> str:
    """UTC ISO 8601 with millisecond precision and a 'Z' suffix, as on the wire."""
    text = _ISO_TEXT.get(dt)
    if text is None:
        text = dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if len(_ISO_TEXT) >= _ISO_TEXT_LIMIT:
            _ISO_TEXT.clear()
        _ISO_TEXT[dt] = text
    return text
