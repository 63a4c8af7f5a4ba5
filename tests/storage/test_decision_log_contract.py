"""DecisionLog contract: decisions with their outcomes, per profile and over time."""

from __future__ import annotations

from typing import Any

import pytest

from loopwise.clock import isoformat
from loopwise.errors import Conflict
from tests.storage.conftest import T0, at


def decision(decision_id: str, pid: str, minutes: float, **extra: Any) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "profile_id": pid,
        "created_at": isoformat(at(minutes)),
        **extra,
    }


def seed(storage: Any) -> None:
    def job(uow: Any) -> None:
        uow.decisions.insert(decision("d1", "p1", 0, slots={"hero": ["i1", "i2"]}))
        uow.decisions.insert(decision("d2", "p1", 10))
        uow.decisions.insert(decision("d3", "p2", 20))
        uow.decisions.add_outcome("d1", {"kind": "impression"})
        uow.decisions.add_outcome("d1", {"kind": "click", "item": "i1"})

    storage.write(job)


def test_an_empty_log(storage: Any) -> None:
    assert storage.decisions.get("d1") is None
    assert storage.decisions.exists(["d1"]) == set()
    assert storage.decisions.last_for("p1", T0) is None
    assert storage.decisions.for_profile("p1") == []
    assert list(storage.decisions.iter()) == []
    assert storage.decisions.count() == 0


def test_a_decision_comes_back_with_its_outcomes_oldest_first(storage: Any) -> None:
    seed(storage)
    assert storage.decisions.get("d1") == {
        **decision("d1", "p1", 0, slots={"hero": ["i1", "i2"]}),
        "outcomes": [{"kind": "impression"}, {"kind": "click", "item": "i1"}],
    }
    assert storage.decisions.get("d2") == {**decision("d2", "p1", 10), "outcomes": []}
    assert storage.decisions.get("nope") is None
    assert storage.decisions.exists(["d1", "d3", "nope", "d1"]) == {"d1", "d3"}
    assert storage.decisions.count() == 3


def test_last_for_is_the_newest_at_or_after_since(storage: Any) -> None:
    seed(storage)
    assert storage.decisions.last_for("p1", T0) == ("d2", at(10))
    assert storage.decisions.last_for("p1", at(10)) == ("d2", at(10))  # inclusive
    assert storage.decisions.last_for("p1", at(11)) is None
    assert storage.decisions.last_for("p3", T0) is None
    storage.write(lambda uow: uow.decisions.insert(decision("d4", "p1", 10)))
    assert storage.decisions.last_for("p1", T0) == ("d4", at(10))  # a tie: the later insert


def test_for_profile_and_iter_are_oldest_first(storage: Any) -> None:
    seed(storage)
    mine = storage.decisions.for_profile("p1")
    assert [d["decision_id"] for d in mine] == ["d1", "d2"]
    assert len(mine[0]["outcomes"]) == 2 and mine[1]["outcomes"] == []
    assert [d["decision_id"] for d in storage.decisions.iter()] == ["d1", "d2", "d3"]
    assert [d["decision_id"] for d in storage.decisions.iter(at(10))] == ["d2", "d3"]
    assert next(storage.decisions.iter())["outcomes"][1]["kind"] == "click"


def test_iter_streams_past_one_fetch_batch_with_ties(storage: Any) -> None:
    def job(uow: Any) -> None:
        for n in range(1300):
            uow.decisions.insert(decision(f"d{n:04d}", f"p{n % 3}", n // 10))
            uow.decisions.add_outcome(f"d{n:04d}", {"n": n})

    storage.write(job)
    streamed = list(storage.decisions.iter())
    assert [d["decision_id"] for d in streamed] == [f"d{n:04d}" for n in range(1300)]
    assert all(d["outcomes"] == [{"n": n}] for n, d in enumerate(streamed))
    assert len(storage.decisions.for_profile("p1")) == 433


def test_a_duplicate_id_conflicts_and_keeps_the_first(storage: Any) -> None:
    storage.write(lambda uow: uow.decisions.insert(decision("d1", "p1", 0)))
    with pytest.raises(Conflict) as caught:
        storage.write(lambda uow: uow.decisions.insert(decision("d1", "p2", 5)))
    assert caught.value.field == "decision_id" and "new id" in caught.value.detail
    kept = storage.decisions.get("d1")
    assert kept is not None and kept["profile_id"] == "p1"


def test_a_job_that_handles_a_conflict_goes_on_writing(storage: Any) -> None:
    storage.write(lambda uow: uow.decisions.insert(decision("d1", "p1", 0)))

    def job(uow: Any) -> str:
        try:
            uow.decisions.insert(decision("d1", "p1", 1))
        except Conflict:
            uow.decisions.insert(decision("d2", "p1", 1))
            uow.decisions.add_outcome("d2", {"kind": "impression"})
        return "done"

    assert storage.write(job) == "done"
    assert storage.decisions.exists(["d1", "d2"]) == {"d1", "d2"}
    assert storage.decisions.get("d2")["outcomes"] == [{"kind": "impression"}]


def test_a_decision_needs_its_id_profile_and_time(storage: Any) -> None:
    with pytest.raises(ValueError, match="decision_id, profile_id and created_at"):
        storage.write(lambda uow: uow.decisions.insert({"decision_id": "d1", "profile_id": "p"}))
    assert storage.decisions.count() == 0


def test_delete_profile_erases_decisions_and_their_outcomes(storage: Any) -> None:
    seed(storage)
    storage.write(lambda uow: uow.decisions.add_outcome("d3", {"kind": "impression"}))
    assert storage.write(lambda uow: uow.decisions.delete_profile("p1")) == (2, 2)
    assert storage.decisions.for_profile("p1") == [] and storage.decisions.get("d1") is None
    assert storage.decisions.get("d3")["outcomes"] == [{"kind": "impression"}]
    assert storage.write(lambda uow: uow.decisions.delete_profile("p1")) == (0, 0)


def test_purge_before_drops_old_decisions_with_their_outcomes(storage: Any) -> None:
    seed(storage)
    assert storage.write(lambda uow: uow.decisions.purge_before(at(10))) == (1, 2)  # strict
    assert [d["decision_id"] for d in storage.decisions.iter()] == ["d2", "d3"]
    assert storage.write(lambda uow: uow.decisions.purge_before(at(10))) == (0, 0)


def test_reads_inside_a_unit_of_work_see_its_own_writes(storage: Any) -> None:
    def job(uow: Any) -> tuple[Any, ...]:
        uow.decisions.insert(decision("d1", "p1", 0))
        uow.decisions.add_outcome("d1", {"kind": "click"})
        return (
            uow.decisions.exists(["d1"]),
            uow.decisions.get("d1")["outcomes"],
            uow.decisions.last_for("p1", T0),
        )

    assert storage.write(job) == ({"d1"}, [{"kind": "click"}], ("d1", T0))


def test_insert_many_keeps_the_order_of_a_large_batch(storage: Any) -> None:
    batch = [decision(f"m{n:04d}", f"p{n % 7}", n // 100) for n in range(450)]
    storage.write(lambda uow: uow.decisions.insert_many(batch))
    storage.write(lambda uow: uow.decisions.insert_many([]))
    assert [d["decision_id"] for d in storage.decisions.iter()] == [d["decision_id"] for d in batch]
    assert storage.decisions.get("m0449") == {**batch[-1], "outcomes": []}
    assert storage.decisions.last_for("p0", at(4)) == ("m0448", at(4))  # a tie: the later one


@pytest.mark.parametrize("clash", ["logged", "repeated"])
def test_insert_many_with_a_taken_id_writes_none_of_the_batch(storage: Any, clash: str) -> None:
    storage.write(lambda uow: uow.decisions.insert(decision("d1", "p1", 0)))
    batch = [decision(f"n{n}", "p2", 1) for n in range(300)]
    batch.insert(250, decision("d1" if clash == "logged" else "n3", "p3", 2))

    def job(uow: Any) -> str:
        try:
            uow.decisions.insert_many(batch)
        except Conflict as exc:
            assert exc.field == "decision_id" and "new id" in exc.detail
            return "handled"
        return "written"

    assert storage.write(job) == "handled"
    assert storage.decisions.count() == 1
    kept = storage.decisions.get("d1")
    assert kept is not None and kept["profile_id"] == "p1"
