"""The retention job: old behavioural data goes, consent and the audit trail stay."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.privacy import audit
from loopwise.privacy.retention import Cutoffs, DailyRetention, months_before
from loopwise.privacy.settings import PrivacySettings
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.sqlite import SqliteStorage
from loopwise.storage.stores import Storage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
WORKSPACE = load_workspace_file(SAMPLE_WORKSPACE)


def test_months_before_is_calendar_months_never_later() -> None:
    assert months_before(T0, 24) == datetime(2024, 11, 2, 9, 0, tzinfo=UTC)
    assert months_before(datetime(2026, 3, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 13) == datetime(
        2024, 12, 15, tzinfo=UTC
    )


def test_cutoffs_follow_the_settings() -> None:
    cutoffs = Cutoffs.at(T0, PrivacySettings(retention_days=30, audit_retention_months=36))
    assert cutoffs.behaviour == T0 - timedelta(days=30)
    assert cutoffs.audit == datetime(2023, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    backend: Storage = (
        MemoryStorage() if request.param == "memory" else SqliteStorage(tmp_path / "lw.db")
    )
    yield backend
    backend.close()


def send(engine: Engine, clock: FixedClock, **message: Any) -> None:
    clock.advance(10)
    message.setdefault("messageId", str(uuid.uuid4()))
    message.setdefault("timestamp", clock().isoformat())
    engine.ingest(parse_request(message, kind="track", received_at=clock()))


def activity(engine: Engine, clock: FixedClock, user: str) -> str:
    items, _ = engine.list_items(0, 3)
    for item in items:
        send(engine, clock, userId=user, event="Product Viewed", properties={"product_id": item.id})
    request = DecideRequest.model_validate({"user": {"user_id": user}, "slots": [{"slot": "hero"}]})
    decision = engine.decide(request)
    send(
        engine, clock, userId=user, event="Product Clicked",
        properties={"product_id": items[0].id, "decision_id": decision.decision_id},
    )  # fmt: skip
    return decision.decision_id


def test_retention_purges_old_behaviour_and_keeps_consent(storage: Storage) -> None:
    from loopwise.catalog.importer import read_items

    clock = FixedClock(T0 - timedelta(days=500))  # > 395 days, < 24 months
    engine = Engine(WORKSPACE, storage, clock=clock)
    engine.put_items(list(read_items(SAMPLE_WORKSPACE.parent / str(WORKSPACE.items))))
    engine.put_consent("old", {"categories": {"marketing": True}, "source": "banner"})
    old_decision = activity(engine, clock, "old")
    clock.advance(timedelta(days=500 - 10).total_seconds())
    new_decision = activity(engine, clock, "new")
    engine.put_consent("new", {"categories": {"marketing": False}})
    engine.storage.write(lambda uow: None)  # decision logs are written behind the reply
    events_before = storage.events.count()

    dry = engine.run_retention(dry_run=True)
    assert dry["dry_run"] and storage.events.count() == events_before
    report = engine.run_retention()
    assert report["removed"] == dry["removed"]
    removed = report["removed"]
    assert removed["events"] == 4 and removed["profiles"] == 1 and removed["decisions"] == 1
    assert removed["outcomes"] == 1 and removed["identities"] == 1
    assert removed["audit"] == 0  # consent records are kept at least 24 months
    assert engine.profile_view("old") is None
    assert engine.profile_view("new") is not None
    assert storage.decisions.get(old_decision) is None
    assert storage.decisions.get(new_decision) is not None
    assert storage.events.count() == 4
    # consent and its audit records stay
    assert engine.get_consent("old")["categories"]["marketing"] is True
    pseudonyms = [engine.pseudonymous_id(u) for u in ("old", "new")]
    assert [r["user"] for r in storage.audit.iter()] == pseudonyms


def test_audit_records_go_only_after_audit_retention_months_and_the_chain_still_verifies(
    storage: Storage,
) -> None:
    clock = FixedClock(T0 - timedelta(days=3 * 365))
    engine = Engine(WORKSPACE, storage, clock=clock)
    for i in range(3):
        engine.put_consent(f"u{i}", {"categories": {"analytics": True}})
        clock.advance(86400)
    clock.advance(timedelta(days=3 * 365 - 3).total_seconds())
    engine.put_consent("recent", {"categories": {"analytics": False}})
    report = engine.run_retention()
    assert report["removed"]["audit"] == 3
    records = list(storage.audit.iter())
    assert [r["user"] for r in records] == [engine.pseudonymous_id("recent")]
    anchor = storage.config.meta(audit.ANCHOR_META_KEY)
    assert anchor is not None and audit.verify_chain(records, anchor).ok
    engine.put_consent("after", {"categories": {"analytics": True}})
    assert audit.verify_chain(list(storage.audit.iter()), anchor).ok


def test_the_newest_audit_record_is_never_dropped(storage: Storage) -> None:
    clock = FixedClock(T0 - timedelta(days=3 * 365))
    engine = Engine(WORKSPACE, storage, clock=clock)
    engine.put_consent("only", {"categories": {"analytics": True}})
    clock.advance(timedelta(days=3 * 365).total_seconds())
    assert engine.run_retention()["removed"]["audit"] == 0
    engine.put_consent("next", {"categories": {"analytics": True}})
    assert audit.verify_chain(list(storage.audit.iter())).ok


def test_daily_retention_runs_the_job_until_stopped() -> None:
    ran = threading.Event()

    def job() -> dict[str, Any]:
        ran.set()
        return {"removed": {"events": 0}}

    scheduler = DailyRetention(job, interval_seconds=3600, first_delay_seconds=0).start()
    try:
        assert ran.wait(timeout=10)
    finally:
        scheduler.stop()
    assert scheduler.runs >= 1


def test_purged_exposures_are_forgotten_in_memory_too(storage: Storage) -> None:
    # the exposure log is behavioural data: once purged, the engine must not keep treating the
    # visitor as exposed (no new exposure would ever be logged until a restart re-read storage)
    clock = FixedClock(T0 - timedelta(days=500))
    engine = Engine(WORKSPACE, storage, clock=clock)
    request = DecideRequest.model_validate(
        {"user": {"anonymous_id": "visitor-1"}, "slots": [{"slot": "recommended"}]}
    )
    engine.decide(request)
    engine.storage.write(lambda uow: None)
    assert engine.list_experiments()[0]["exposed_users"] == 1
    clock.advance(timedelta(days=500).total_seconds())
    assert engine.run_retention(dry_run=True)["removed"]["exposures"] == 1
    assert engine.list_experiments()[0]["exposed_users"] == 1  # a dry run changes nothing
    assert engine.run_retention()["removed"]["exposures"] == 1
    assert engine.list_experiments()[0]["exposed_users"] == 0
    engine.decide(request)  # as after a restart: the visit is a first exposure again
    engine.storage.write(lambda uow: None)
    key = engine.list_experiments()[0]["key"]
    assert [e.exposed_at.isoformat()[:10] for e in storage.exposures.iter(key)] == ["2026-11-02"]
