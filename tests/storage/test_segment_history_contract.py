"""SegmentHistory contract: entries and exits per profile, oldest first."""

from __future__ import annotations

from typing import Any

from loopwise.storage.records import SegmentChange
from tests.storage.conftest import T0, at


def record(storage: Any, pid: str, entered: list[str], left: list[str], minutes: float) -> None:
    storage.write(lambda uow: uow.segment_history.record(pid, entered, left, at(minutes)))


def test_an_empty_history(storage: Any) -> None:
    assert storage.segment_history.for_profile("p1") == []
    assert list(storage.segment_history.iter()) == []


def test_for_profile_is_oldest_first_entries_before_exits(storage: Any) -> None:
    record(storage, "p1", ["buyer", "mobile"], ["browser"], 0)
    record(storage, "p1", [], ["mobile"], 60)
    record(storage, "p2", ["desktop"], [], 60)
    assert storage.segment_history.for_profile("p1") == [
        SegmentChange("buyer", "entered", T0),
        SegmentChange("mobile", "entered", T0),
        SegmentChange("browser", "left", T0),
        SegmentChange("mobile", "left", at(60)),
    ]
    assert storage.segment_history.for_profile("nobody") == []


def test_iter_is_by_time_then_recording_order_and_since_is_inclusive(storage: Any) -> None:
    record(storage, "p2", ["late"], [], 30)
    record(storage, "p1", ["early"], [], 0)
    record(storage, "p3", ["tie"], [], 30)
    assert [(pid, c.segment) for pid, c in storage.segment_history.iter()] == [
        ("p1", "early"),
        ("p2", "late"),
        ("p3", "tie"),
    ]
    assert [c.segment for _, c in storage.segment_history.iter(at(30))] == ["late", "tie"]


def test_iter_streams_past_one_fetch_batch(storage: Any) -> None:
    storage.write(
        lambda uow: [
            uow.segment_history.record(f"p{n}", [f"s{n}"], [], at(n // 7)) for n in range(1300)
        ]
    )
    assert [c.segment for _, c in storage.segment_history.iter()] == [f"s{n}" for n in range(1300)]


def test_delete_profile_and_purge_before_count_rows(storage: Any) -> None:
    record(storage, "p1", ["a", "b"], ["c"], 0)
    record(storage, "p2", ["a"], [], 0)
    record(storage, "p2", [], ["a"], 30)
    assert storage.write(lambda uow: uow.segment_history.delete_profile("p1")) == 3
    assert storage.write(lambda uow: uow.segment_history.delete_profile("p1")) == 0
    assert storage.write(lambda uow: uow.segment_history.purge_before(at(30))) == 1  # strict
    assert storage.segment_history.for_profile("p2") == [SegmentChange("a", "left", at(30))]


def test_reads_inside_a_unit_of_work_see_its_own_writes(storage: Any) -> None:
    def job(uow: Any) -> list[SegmentChange]:
        uow.segment_history.record("p1", ["a"], [], T0)
        return list(uow.segment_history.for_profile("p1"))

    assert storage.write(job) == [SegmentChange("a", "entered", T0)]


def test_record_many_keeps_order_across_profiles(storage: Any) -> None:
    changes = [
        ("p1", ["buyer"], [], at(1)),
        ("p2", ["mobile", "buyer"], ["desktop"], at(2)),
        ("p1", [], ["buyer"], at(3)),
    ]
    storage.write(lambda uow: uow.segment_history.record_many(changes))
    assert [(c.segment, c.change) for c in storage.segment_history.for_profile("p1")] == [
        ("buyer", "entered"),
        ("buyer", "left"),
    ]
    assert [(c.segment, c.change) for c in storage.segment_history.for_profile("p2")] == [
        ("mobile", "entered"),
        ("buyer", "entered"),
        ("desktop", "left"),
    ]
