"""The ingest service's consent gate when nobody has made a choice: each event gets its
region's default (from its context, else the person's profile)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.events.schema import Event
from loopwise.storage.sqlite import SqliteStorage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def views(user: str, country: str | None, n: int) -> list[Event]:
    context = {"location": {"country": country}} if country else {}
    batch = [
        {"type": "track", "anonymousId": user, "event": "Product Viewed",
         "messageId": f"{user}-{country}-{i}", "properties": {"product_id": "run-001"},
         "context": context}
        for i in range(n)
    ]  # fmt: skip
    return parse_request({"batch": batch}, kind="batch", received_at=T0)


def test_regional_defaults_without_any_choice(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "loopwise.db")
    engine = Engine(load_workspace_file(SAMPLE_WORKSPACE), storage, clock=FixedClock(T0))
    try:
        # an EU visitor (opt-in region): anonymised, nothing stored
        result = engine.ingest(views("eu", "DE", 2))
        assert (result.accepted, result.anonymised) == (0, 2)
        assert engine.profile_view("eu") is None
        # a US visitor: stored; their later events without a country use the profile's
        assert engine.ingest(views("us", "US", 1)).accepted == 1
        later = engine.ingest([*views("us", None, 2), *views("nowhere", None, 1)])
        assert (later.accepted, later.anonymised) == (3, 0)
        assert engine.profile_view("us")["profile"]["events"] == 3  # type: ignore[index]
        # an event from an opt-in country is anonymised and does not move the profile's country
        engine.ingest(views("moved", "US", 1))
        assert engine.ingest(views("moved", "FR", 1)).anonymised == 1
        assert engine.ingest(views("moved", None, 1)).accepted == 1
    finally:
        engine.close()
