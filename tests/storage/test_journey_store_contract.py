"""JourneyStore and Outbox contracts: per-person journey state and the durable outbox."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from loopwise.storage.journey_records import (
    DEAD,
    DELIVERED,
    DROPPED,
    PENDING,
    Delivery,
    JourneyRecord,
)
from tests.storage.conftest import at


def state(journey: str, pid: str, due: float | None, step: int = 0) -> JourneyRecord:
    return JourneyRecord(journey, pid, None if due is None else at(due), {"step": step})


def delivery(key: str, pid: str = "p1", minutes: float = 0) -> Delivery:
    return Delivery(
        id=0, key=key, profile_id=pid, kind="webhook", status=PENDING, attempts=0,
        next_attempt_at=at(minutes), created_at=at(0), payload={"body": {"k": key}},
    )  # fmt: skip


def test_states_round_trip_and_are_found_by_profile(storage: Any) -> None:
    storage.write(
        lambda uow: uow.journeys.put(
            [state("cart", "p1", 60), state("welcome", "p1", None, 2), state("cart", "p2", 30)]
        )
    )
    assert storage.journeys.get("cart", "p1") == state("cart", "p1", 60)
    assert storage.journeys.get("cart", "nobody") is None
    assert [r.journey for r in storage.journeys.for_profiles(["p1"])] == ["cart", "welcome"]
    assert storage.journeys.count() == 3 and storage.journeys.count("cart") == 2
    assert [r.profile_id for r in storage.journeys.iter("cart")] == ["p1", "p2"]
    assert len(list(storage.journeys.iter())) == 3


def test_due_states_soonest_first_and_replaced_on_put(storage: Any) -> None:
    storage.write(
        lambda uow: uow.journeys.put(
            [state("cart", "p1", 60), state("cart", "p2", 30), state("cart", "p3", None)]
        )
    )
    assert [r.profile_id for r in storage.journeys.due(at(60), 10)] == ["p2", "p1"]
    assert [r.profile_id for r in storage.journeys.due(at(45), 10)] == ["p2"]
    assert [r.profile_id for r in storage.journeys.due(at(60), 1)] == ["p2"]
    assert storage.journeys.next_due() == at(30)
    storage.write(lambda uow: uow.journeys.put([state("cart", "p2", None, 1)]))
    assert storage.journeys.get("cart", "p2") == state("cart", "p2", None, 1)
    assert storage.journeys.next_due() == at(60)


def test_states_are_erased_per_profile(storage: Any) -> None:
    storage.write(lambda uow: uow.journeys.put([state("a", "p1", 1), state("b", "p1", 2)]))
    storage.write(lambda uow: uow.journeys.put([state("a", "p2", 1)]))
    assert storage.write(lambda uow: uow.journeys.delete_profile("p1")) == 2
    storage.write(lambda uow: uow.journeys.delete("a", "p2"))
    assert storage.journeys.count() == 0 and storage.journeys.next_due() is None


def test_a_job_that_fails_leaves_no_state(storage: Any) -> None:
    def job(uow: Any) -> None:
        uow.journeys.put([state("a", "p1", 1)])
        uow.outbox.add([delivery("k1")])
        raise RuntimeError("boom")

    with contextlib.suppress(RuntimeError):
        storage.write(job)
    assert storage.journeys.count() == 0 and storage.outbox.counts() == {}


def test_outbox_keeps_each_key_once_and_lists_due_by_id(storage: Any) -> None:
    ids = storage.write(lambda uow: uow.outbox.add([delivery("k1"), delivery("k2", minutes=10)]))
    assert ids[0] > 0 and ids[1] > ids[0]
    assert storage.write(lambda uow: uow.outbox.add([delivery("k1")])) == [0]
    assert [d.key for d in storage.outbox.due(at(5), 10)] == ["k1"]
    assert [d.key for d in storage.outbox.due(at(10), 10)] == ["k1", "k2"]
    found = storage.outbox.get(ids[0])
    assert found is not None and found.payload == {"body": {"k": "k1"}} and found.id == ids[0]
    assert storage.outbox.counts() == {PENDING: 2}


def test_outbox_updates_statuses_and_dead_letters(storage: Any) -> None:
    ids = storage.write(lambda uow: uow.outbox.add([delivery("k1"), delivery("k2")]))
    first = storage.outbox.get(ids[0])
    done = replace(first, status=DELIVERED, attempts=2, done_at=at(3))
    storage.write(lambda uow: uow.outbox.update(done))
    second = storage.outbox.get(ids[1])
    dead = replace(second, status=DEAD, attempts=8, last_error="HTTP 500")
    storage.write(lambda uow: uow.outbox.update(dead))
    assert storage.outbox.get(ids[0]) == done
    assert storage.outbox.list(DEAD) == [dead]
    assert storage.outbox.counts() == {DELIVERED: 1, DEAD: 1}
    assert storage.outbox.due(at(100), 10) == []


def test_pending_sends_are_dropped_and_erased_per_profile(storage: Any) -> None:
    storage.write(
        lambda uow: uow.outbox.add([delivery("k1"), delivery("k2"), delivery("k3", pid="p2")])
    )
    assert storage.write(lambda uow: uow.outbox.drop_pending("p1", "consent withdrawn")) == 2
    assert {d.status for d in storage.outbox.for_profile("p1")} == {DROPPED}
    assert [d.key for d in storage.outbox.due(at(0), 10)] == ["k3"]
    assert storage.write(lambda uow: uow.outbox.delete_profile("p1")) == 2
    assert storage.outbox.for_profile("p1") == []


def test_deliveries_follow_a_merge(storage: Any) -> None:
    storage.write(lambda uow: uow.outbox.add([delivery("k1", pid="anon"), delivery("k2")]))
    assert storage.write(lambda uow: uow.outbox.reassign("anon", "p1")) == 1
    assert [d.key for d in storage.outbox.for_profile("p1")] == ["k1", "k2"]
    assert storage.outbox.for_profile("anon") == []
