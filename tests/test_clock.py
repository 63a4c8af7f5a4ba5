from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from loopwise.clock import EventTimeClock, isoformat
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request


def track(anonymous_id: str, at: datetime) -> dict[str, str]:
    return {"anonymousId": anonymous_id, "event": "Viewed", "timestamp": isoformat(at)}


def test_event_time_clock_starts_at_start_and_never_moves_back() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = EventTimeClock(start)
    assert clock() == start
    clock.observe(start + timedelta(hours=2))
    clock.observe(start + timedelta(hours=1))
    assert clock() == start + timedelta(hours=2)


def test_engine_moves_an_event_time_clock_with_ingested_events(tmp_path: Path) -> None:
    clock = EventTimeClock(datetime(2026, 1, 1, tzinfo=UTC))
    engine, _ = Engine.open(tmp_path / "data", clock=clock, environ={})
    try:
        at = datetime(2026, 1, 5, 12, tzinfo=UTC)
        engine.ingest(parse_request(track("a1", at), kind="track", received_at=at))
        assert clock() == at
        earlier = at - timedelta(days=1)
        engine.ingest(parse_request(track("a2", earlier), kind="track", received_at=at))
        assert clock() == at
    finally:
        engine.close()


def test_a_restarted_engine_resumes_at_the_newest_stored_event_time(tmp_path: Path) -> None:
    """``serve --event-time-clock`` on a backtest's data: before any new event the clock must
    not fall back to the wall clock (the retention run 60 s after start would purge it all)."""
    at = datetime(2020, 3, 1, 12, tzinfo=UTC)
    engine, _ = Engine.open(tmp_path / "data", clock=EventTimeClock(), environ={})
    try:
        engine.ingest(parse_request(track("a1", at), kind="track", received_at=at))
    finally:
        engine.close()
    clock = EventTimeClock()
    engine, _ = Engine.open(tmp_path / "data", clock=clock, environ={})
    try:
        assert clock() == at
        assert engine.run_retention(dry_run=True)["removed"]["events"] == 0
    finally:
        engine.close()
