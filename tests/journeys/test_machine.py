"""The pure state machine: entries, waits, wait-until with a timeout, branches, exits, re-entry,
quiet hours, caps, holdout and consent — inputs in, state, actions and counts out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from loopwise.journeys.compiled import compile_journey
from loopwise.journeys.machine import Context, EventInput, Tick, quiet_until, step
from loopwise.journeys.spec import JourneyConfig, QuietHours
from loopwise.journeys.state import ACTIVE, DONE, JourneyState

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def journey(**fields: Any) -> Any:
    document = {
        "key": "j",
        "trigger": {"event": "Product Added"},
        "steps": [{"id": "wait", "wait": "1h"}, {"id": "send", "action": "webhook",
                                                 "endpoint": "crm"}],
        **fields,
    }  # fmt: skip
    return compile_journey(JourneyConfig.model_validate(document))


def ctx(**fields: Any) -> Context:
    values: dict[str, Any] = {"attributes": {"profile": {}, "segments": []}, "consented": True,
                              "arm": "journey"}  # fmt: skip
    values.update(fields)
    return Context(**values)


def added(at: datetime) -> EventInput:
    return EventInput(at, "track", "Product Added")


def test_enter_wait_then_send_once() -> None:
    j = journey()
    first = step(None, added(T0), j, ctx(), "p1")
    assert first.state is not None and first.state.status == ACTIVE
    assert (
        first.state.due_at == T0 + timedelta(hours=1) and first.actions[0].kind == "journey.entered"
    )
    early = step(first.state, Tick(T0 + timedelta(minutes=30)), j, ctx(), "p1")
    assert not early.changed
    due = step(first.state, Tick(T0 + timedelta(hours=1)), j, ctx(), "p1")
    assert [a.kind for a in due.actions] == ["webhook", "journey.exited"]
    assert due.state is not None and due.state.status == DONE
    assert ("send", "sent", 1) in due.counts and ("wait", "waiting", -1) in due.counts
    again = step(due.state, added(T0 + timedelta(hours=2)), j, ctx(), "p1")
    assert not again.changed  # re-entry not allowed


def test_reentry_after_a_while_and_exit_on_event() -> None:
    j = journey(reentry={"allowed": True, "after": "1d"}, exit=[{"event": "Order Completed"}])
    s = step(None, added(T0), j, ctx(), "p1").state
    bought = step(
        s, EventInput(T0 + timedelta(minutes=5), "track", "Order Completed"), j, ctx(), "p1"
    )
    assert bought.state is not None and bought.state.exit_reason == "event:Order Completed"
    assert bought.state.converted
    soon = step(bought.state, added(T0 + timedelta(hours=2)), j, ctx(), "p1")
    assert not soon.changed
    later = step(bought.state, added(T0 + timedelta(days=2)), j, ctx(), "p1")
    assert later.state is not None and later.state.entries == 2


def test_wait_until_an_event_or_time_out_to_another_step() -> None:
    steps = [
        {"id": "until", "wait_until": {"event": "Order Completed", "at_most": "2h",
                                       "timeout_goto": "nudge"}},
        {"id": "thanks", "action": "webhook", "endpoint": "crm"},
        {"id": "done", "branch": {"if": {}, "then": "end"}},
        {"id": "nudge", "action": "webhook", "endpoint": "crm"},
    ]  # fmt: skip
    j = journey(steps=steps)
    s = step(None, added(T0), j, ctx(), "p1").state
    bought = step(s, EventInput(T0 + timedelta(hours=1), "track", "Order Completed"), j, ctx(), "p")
    assert [a.step for a in bought.actions if a.kind == "webhook"] == ["thanks"]
    timed_out = step(s, Tick(T0 + timedelta(hours=2)), j, ctx(), "p1")
    assert [a.step for a in timed_out.actions if a.kind == "webhook"] == ["nudge"]


def test_branch_on_a_condition() -> None:
    steps = [
        {"id": "big", "branch": {"if": {"profile.cart.value": {"$gte": 100}}, "else": "small"}},
        {"id": "vip", "action": "webhook", "endpoint": "crm"},
        {"id": "stop", "branch": {"if": {}, "then": "end"}},
        {"id": "small", "action": "webhook", "endpoint": "crm"},
    ]
    j = journey(steps=steps)
    rich = ctx(attributes={"profile": {"cart": {"value": 150}}, "segments": []})
    poor = ctx(attributes={"profile": {"cart": {"value": 10}}, "segments": []})
    assert [a.step for a in step(None, added(T0), j, rich, "p").actions if a.kind == "webhook"] == [
        "vip"
    ]
    assert [a.step for a in step(None, added(T0), j, poor, "p").actions if a.kind == "webhook"] == [
        "small"
    ]


def test_no_consent_no_entry_and_holdout_gets_nothing() -> None:
    j = journey(holdout_percent=10)
    assert step(None, added(T0), j, ctx(consented=False), "p").state is None
    held = step(None, added(T0), j, ctx(arm="holdout"), "p")
    assert held.state is not None and held.state.exit_reason == "holdout"
    assert [a.kind for a in held.actions] == ["journey.entered"]


def test_quiet_hours_hold_a_send_until_they_end() -> None:
    quiet = QuietHours(start="21:00", end="08:00")
    assert quiet_until(datetime(2026, 11, 2, 22, 30, tzinfo=UTC), quiet, "UTC") == datetime(
        2026, 11, 3, 8, 0, tzinfo=UTC
    )
    assert quiet_until(datetime(2026, 11, 2, 7, 0, tzinfo=UTC), quiet, "UTC") == datetime(
        2026, 11, 2, 8, 0, tzinfo=UTC
    )
    assert quiet_until(datetime(2026, 11, 2, 12, 0, tzinfo=UTC), quiet, "UTC") is None
    # 12:00 UTC is 21:00 in Tokyo: quiet there until 08:00 Tokyo (23:00 UTC)
    assert quiet_until(T0, quiet, "Asia/Tokyo") == datetime(2026, 11, 2, 23, 0, tzinfo=UTC)
    j = journey(quiet_hours={"start": "21:00", "end": "08:00"})
    s = step(None, added(T0), j, ctx(timezone="Asia/Tokyo"), "p").state
    held = step(s, Tick(T0 + timedelta(hours=1)), j, ctx(timezone="Asia/Tokyo"), "p")
    assert not [a for a in held.actions if a.kind == "webhook"]
    assert (
        held.state is not None
        and held.state.quiet
        and held.state.due_at == datetime(2026, 11, 2, 23, 0, tzinfo=UTC)
    )
    sent = step(held.state, Tick(held.state.due_at), j, ctx(timezone="Asia/Tokyo"), "p")
    assert sent.actions[0].kind == "webhook"


def test_caps_skip_sends() -> None:
    j = journey(caps={"all_journeys_per_day": 1})
    s = step(None, added(T0), j, ctx(), "p").state
    capped = step(s, Tick(T0 + timedelta(hours=1)), j, ctx(sends_day=1), "p")
    assert not [a for a in capped.actions if a.kind == "webhook"]
    assert ("send", "capped", 1) in capped.counts


def test_inactivity_watches_then_enters() -> None:
    j = journey(trigger={"inactive_for": "30d"},
                steps=[{"id": "send", "action": "webhook", "endpoint": "crm"}])  # fmt: skip
    watched = step(None, EventInput(T0, "page"), j, ctx(), "p")
    assert watched.state is not None and watched.state.due_at == T0 + timedelta(days=30)
    moved = step(watched.state, EventInput(T0 + timedelta(days=10), "page"), j, ctx(), "p")
    assert moved.state is not None and moved.state.due_at == T0 + timedelta(days=40)
    entered = step(moved.state, Tick(T0 + timedelta(days=40)), j, ctx(), "p")
    assert [a.kind for a in entered.actions][:2] == ["journey.entered", "webhook"]


def test_state_round_trips() -> None:
    s = step(None, added(T0), journey(), ctx(), "p").state
    assert s is not None
    assert JourneyState.from_record(s.to_record()).to_data() == s.to_data()
