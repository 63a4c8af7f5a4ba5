"""Journeys driven by the simulator on the event-time clock: days of simulated shoppers through
an in-process engine, then every rule checked against the simulated event log itself.

- cart abandoners get exactly one reminder, the configured wait after their first add to cart,
  unless they bought first; nobody without marketing consent gets one;
- nobody gets one in quiet hours (their own time zone); the held-out share gets none, and the
  journey's report (an experiment of the experiments engine) has both arms;
- frequency caps hold across journeys.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loopwise.clock import EventTimeClock, parse_timestamp
from loopwise.config import Workspace
from loopwise.engine import Engine
from loopwise.sim.behaviour import DEFAULT_PARAMS
from loopwise.sim.demo import HOME_PAGE, DemoConfig, EnginePolicy, InProcessClient, demo_workspace
from loopwise.sim.runner import SimConfig, Simulation
from loopwise.storage.memory import MemoryStorage
from tests.journeys.conftest import ENDPOINT

WAIT = timedelta(hours=1)
USERS, DAYS = 400, 4
# keener shoppers than the simulator's realistic default (about 3% of visits order): enough
# carts and orders in 400 people over 4 days to exercise the journey's every branch
SHOPPERS = replace(DEFAULT_PARAMS, cart_bias=-5.5, order_bias=-0.8)


def run(journeys: list[dict[str, Any]]) -> tuple[Engine, list[dict[str, Any]], Simulation]:
    sim = Simulation(
        SimConfig(seed=11, n_users=USERS, days=DAYS, slots=HOME_PAGE, behaviour=SHOPPERS)
    )
    document = demo_workspace(DemoConfig(days=DAYS, users=USERS), sim.config.start)
    document.pop("items")
    document["journeys"] = journeys
    document["webhooks"] = {"endpoints": [ENDPOINT]}
    engine = Engine(
        Workspace.model_validate(document), MemoryStorage(), clock=EventTimeClock(), seed=3
    )
    engine.put_items(list(sim.catalog.items))
    messages: list[dict[str, Any]] = []

    class Recording(EnginePolicy):
        def observe(self, batch: list[dict[str, Any]]) -> None:
            messages.extend(batch)
            super().observe(batch)

    sim.run(Recording(InProcessClient(engine)), keep_messages=False)
    return engine, messages, sim


def cart(**extra: Any) -> dict[str, Any]:
    return {
        "key": "cart",
        "trigger": {"event": "Product Added"},
        "steps": [{"id": "wait", "wait": "1h"},
                  {"id": "reminder", "action": "webhook", "endpoint": "crm"}],
        "exit": [{"event": "Order Completed"}],
        **extra,
    }  # fmt: skip


def by_person(engine: Engine, messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    people: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in messages:
        pid = engine.resolve(m["anonymousId"])
        if pid is not None:  # without analytics consent nothing about the person is stored
            people[pid].append(m)
    for events in people.values():
        events.sort(key=lambda m: m["timestamp"])
    return people


def step_sends(engine: Engine, journey: str | None = None) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = defaultdict(list)
    for record in engine.storage.journeys.iter(journey):
        for d in engine.storage.outbox.for_profile(record.profile_id):
            if d.payload.get("type") == "journey.step" and d.payload["journey"] == record.journey:
                found[record.profile_id].append(d)
    return found


def at(m: dict[str, Any]) -> datetime:
    found = parse_timestamp(m["timestamp"])
    assert found is not None
    return found


@pytest.fixture(scope="module")
def plain() -> Iterator[tuple[Engine, list[dict[str, Any]], Simulation]]:
    engine, messages, sim = run([cart()])
    yield engine, messages, sim
    engine.close()


@pytest.mark.timeout(600)  # real processes / days of simulation: slow on a busy machine
def test_cart_abandoners_get_exactly_one_reminder_unless_they_buy_first(plain: Any) -> None:
    engine, messages, _ = plain
    end = max(at(m) for m in messages)
    sends = step_sends(engine, "cart")
    expected = 0
    for pid, events in by_person(engine, messages).items():
        consented = events[0]["context"]["consent"]["categoryPreferences"]["marketing"]
        adds = [at(m) for m in events if m.get("event") == "Product Added"]
        got = sends.get(pid, [])
        if not adds or not consented:
            assert got == [], f"{pid} got a reminder without adding to cart or consenting"
            continue
        first = adds[0]
        bought = any(
            m.get("event") == "Order Completed" and first <= at(m) < first + WAIT for m in events
        )
        if bought or first + WAIT > end:
            assert got == [], f"{pid} bought within the wait (or it has not ended): no reminder"
        else:
            expected += 1
            assert [d.created_at for d in got] == [first + WAIT], pid
    assert expected > 10, "the simulation should produce cart abandoners"
    journey = engine.journey("cart")
    assert {s["id"]: s["sent"] for s in journey["steps"]}["reminder"] == expected


@pytest.mark.timeout(600)  # real processes / days of simulation: slow on a busy machine
def test_quiet_hours_holdout_and_the_journeys_lift_report() -> None:
    journey = cart(quiet_hours={"start": "20:00", "end": "09:00"}, holdout_percent=30)
    engine, messages, _ = run([journey])
    try:
        people = by_person(engine, messages)
        sends = step_sends(engine, "cart")
        assert sum(len(v) for v in sends.values()) > 5
        for pid, got in sends.items():
            zone = ZoneInfo(people[pid][0]["context"].get("timezone") or "UTC")
            for d in got:
                local = d.created_at.astimezone(zone)
                assert 9 <= local.hour < 20, f"a send at {local} falls in quiet hours"
        held = {
            r.profile_id
            for r in engine.storage.journeys.iter("cart")
            if r.data.get("arm") == "holdout"
        }
        assert held, "some people are held out"
        assert not (held & set(sends)), "the holdout gets nothing"
        report = engine.experiment_results("journey-cart")
        arms = {a["key"]: a for a in report["arms"]}
        assert arms["holdout"]["users"] == len(held)
        assert arms["journey"]["users"] > arms["holdout"]["users"]
        metric = next(m for m in report["metrics"] if m["key"] == "converted")
        assert "lift" in str(metric)
        listed = {e["key"]: e for e in engine.list_experiments()}
        assert (
            listed["journey-cart"]["exposed_users"]
            == arms["holdout"]["users"] + arms["journey"]["users"]
        )
        by_segment = engine.experiment_results("journey-cart", segment="mobile")
        assert by_segment["segment"] == "mobile"
    finally:
        engine.close()


@pytest.mark.timeout(600)  # real processes / days of simulation: slow on a busy machine
def test_frequency_caps_hold_across_journeys() -> None:
    browse = {
        "key": "browse",
        "trigger": {"event": "Product Viewed"},
        "steps": [{"id": "wait", "wait": "30m"},
                  {"id": "nudge", "action": "webhook", "endpoint": "crm"}],
        "reentry": {"allowed": True, "after": "1h"},
        "caps": {"all_journeys_per_day": 1},
    }  # fmt: skip
    engine, _, _ = run([cart(reentry={"allowed": True, "after": "2h"},
                             caps={"all_journeys_per_day": 1}), browse])  # fmt: skip
    try:
        sends: dict[str, list[datetime]] = defaultdict(list)
        for journey in ("cart", "browse"):
            for pid, got in step_sends(engine, journey).items():
                sends[pid] += [d.created_at for d in got]
        assert sum(len(v) for v in sends.values()) > 10
        capped = sum(s["capped"] for j in ("cart", "browse") for s in engine.journey(j)["steps"])
        assert capped > 0, "the cap should have stopped some sends"
        for pid, times in sends.items():
            times.sort()
            for a, b in itertools.pairwise(times):
                assert b - a >= timedelta(days=1), f"{pid} got two sends within a day"
    finally:
        engine.close()
