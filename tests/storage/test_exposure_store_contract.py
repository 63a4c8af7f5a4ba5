"""ExposureStore contract: one exposure per (experiment, person); the first insert wins."""

from __future__ import annotations

from typing import Any

from loopwise.storage.records import Exposure
from tests.storage.conftest import at


def exposure(experiment: str, pid: str, minutes: float = 0, arm: str = "a", **kw: Any) -> Exposure:
    return Exposure(experiment, pid, arm, at(minutes), **kw)


def insert(storage: Any, item: Exposure) -> bool:
    return bool(storage.write(lambda uow: uow.exposures.insert(item)))


def test_an_empty_store(storage: Any) -> None:
    assert storage.exposures.get("exp", "p1") is None
    assert storage.exposures.for_profiles(["p1"]) == []
    assert list(storage.exposures.iter()) == []
    assert storage.exposures.count("exp") == 0
    assert storage.exposures.experiments() == {}


def test_an_exposure_round_trips_whole(storage: Any) -> None:
    full = exposure(
        "exp",
        "p1",
        5,
        arm="b",
        slot="hero",
        decision_id="d1",
        segments=("buyers", "mobile"),
        before={"Order Completed": (2.0, 59.5)},
        after={"Order Completed": (1.0, 10.25), "Product Viewed": (7.0, 0.0)},
    )
    assert insert(storage, full)
    assert storage.exposures.get("exp", "p1") == full
    assert storage.exposures.get("exp", "p2") is None
    assert storage.exposures.get("other", "p1") is None


def test_the_first_exposure_wins_on_insert(storage: Any) -> None:
    assert insert(storage, exposure("exp", "p1", 10, arm="a"))
    assert not insert(storage, exposure("exp", "p1", 0, arm="b"))
    stored = storage.exposures.get("exp", "p1")
    assert stored is not None and (stored.arm, stored.exposed_at) == ("a", at(10))
    assert insert(storage, exposure("other", "p1", 0, arm="b"))  # another experiment
    assert storage.exposures.count("exp") == 1


def test_put_replaces_and_delete_removes(storage: Any) -> None:
    insert(storage, exposure("exp", "p1", 0))
    moved = exposure("exp", "p1", 0, after={"Order Completed": (1.0, 5.0)})
    storage.write(lambda uow: uow.exposures.put(moved))
    assert storage.exposures.get("exp", "p1") == moved
    storage.write(lambda uow: uow.exposures.put(exposure("exp", "p2", 3)))  # put also inserts
    storage.write(lambda uow: uow.exposures.delete("exp", "p1"))
    storage.write(lambda uow: uow.exposures.delete("exp", "nobody"))
    assert [e.profile_id for e in storage.exposures.iter("exp")] == ["p2"]


def test_iter_for_profiles_count_and_experiments(storage: Any) -> None:
    rows = [
        exposure("exp-a", "p1", 30),
        exposure("exp-b", "p1", 10),
        exposure("exp-a", "p2", 20),
        exposure("exp-a", "p3", 20),  # same time as p2: insertion order breaks the tie
        exposure("exp-b", "p4", 0),
    ]
    for row in rows:
        insert(storage, row)
    assert list(storage.exposures.iter()) == [rows[4], rows[1], rows[2], rows[3], rows[0]]
    assert list(storage.exposures.iter("exp-a")) == [rows[2], rows[3], rows[0]]
    assert list(storage.exposures.iter("none")) == []
    assert storage.exposures.for_profiles(["p1", "p4", "p9"]) == [rows[4], rows[1], rows[0]]
    assert storage.exposures.count("exp-a") == 3 and storage.exposures.count("exp-b") == 2
    assert storage.exposures.experiments() == {"exp-a": 3, "exp-b": 2}


def test_iter_streams_past_one_fetch_batch(storage: Any) -> None:
    rows = [exposure("exp", f"p{n:04d}", n // 3) for n in range(1500)]  # ties on exposed_at
    storage.write(lambda uow: [uow.exposures.insert(row) for row in rows])
    assert list(storage.exposures.iter("exp")) == rows
    assert len(storage.exposures.for_profiles([r.profile_id for r in rows])) == 1500


def test_delete_profile_and_purge_before_count_rows(storage: Any) -> None:
    for row in (
        exposure("exp-a", "p1", 0),
        exposure("exp-b", "p1", 50),
        exposure("exp-a", "p2", 10),
        exposure("exp-b", "p2", 20),
    ):
        insert(storage, row)
    assert storage.write(lambda uow: uow.exposures.delete_profile("p1")) == 2
    assert storage.write(lambda uow: uow.exposures.delete_profile("p1")) == 0
    assert storage.write(lambda uow: uow.exposures.purge_before(at(20))) == 1  # strict
    assert [(e.experiment, e.profile_id) for e in storage.exposures.iter()] == [("exp-b", "p2")]


def test_reads_inside_a_unit_of_work_see_its_own_writes(storage: Any) -> None:
    def job(uow: Any) -> tuple[Any, ...]:
        first = uow.exposures.insert(exposure("exp", "p1", 0, arm="a"))
        second = uow.exposures.insert(exposure("exp", "p1", 1, arm="b"))
        return first, second, uow.exposures.get("exp", "p1"), uow.exposures.experiments()

    first, second, stored, experiments = storage.write(job)
    assert (first, second) == (True, False)
    assert stored == exposure("exp", "p1", 0, arm="a") and experiments == {"exp": 1}
