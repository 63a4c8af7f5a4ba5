"""ProfileStore contract: encoded profiles by id, last seen for retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loopwise.storage.records import ProfileRecord
from tests.storage.conftest import T0, at


def profile(pid: str, minutes: float = 0, data: bytes | None = None) -> ProfileRecord:
    return ProfileRecord(pid, at(minutes), data if data is not None else f"<{pid}>".encode())


def upsert(storage: Any, *records: ProfileRecord) -> None:
    storage.write(lambda uow: uow.profiles.upsert(list(records)))


def test_an_empty_store(storage: Any) -> None:
    assert storage.profiles.get("p1") is None
    assert storage.profiles.get_many(["p1"]) == {}
    assert list(storage.profiles.iter()) == []
    assert storage.profiles.count() == 0
    assert storage.profiles.last_seen_before(T0) == []


def test_upsert_stores_and_replaces_by_id(storage: Any) -> None:
    binary = bytes(range(256))  # the encoded profile is opaque bytes, not text
    upsert(storage, profile("p2", 1), profile("p1", 2, binary))
    upsert(storage, profile("p2", 3, b"second"))
    assert storage.profiles.get("p1") == ProfileRecord("p1", at(2), binary)
    assert storage.profiles.get("p2") == ProfileRecord("p2", at(3), b"second")
    assert [r.id for r in storage.profiles.iter()] == ["p1", "p2"]
    assert storage.profiles.count() == 2


def test_the_last_copy_of_an_id_in_one_upsert_wins(storage: Any) -> None:
    upsert(storage, profile("p1", 1, b"first"), profile("p1", 2, b"last"))
    assert storage.profiles.get("p1") == ProfileRecord("p1", at(2), b"last")
    assert storage.profiles.count() == 1


def test_last_seen_keeps_millisecond_precision(storage: Any) -> None:
    precise = T0 + timedelta(microseconds=123_456)
    upsert(storage, ProfileRecord("p1", precise, b"x"))
    stored = storage.profiles.get("p1")
    assert stored is not None
    assert stored.last_seen == T0 + timedelta(milliseconds=123)
    assert stored.last_seen.utcoffset() == timedelta(0)


def test_get_many_returns_the_stored_ones(storage: Any) -> None:
    upsert(storage, *(profile(f"p{n}", n) for n in range(700)))
    wanted = [f"p{n}" for n in range(0, 1400, 2)]  # half of them exist; more than one IN list
    found = storage.profiles.get_many([*wanted, "p0"])
    assert set(found) == {f"p{n}" for n in range(0, 700, 2)}
    assert found["p10"] == profile("p10", 10)


def test_iter_is_by_id_past_one_fetch_batch(storage: Any) -> None:
    upsert(storage, *(profile(f"p{n:04d}") for n in reversed(range(1300))))
    assert [r.id for r in storage.profiles.iter()] == [f"p{n:04d}" for n in range(1300)]


def test_last_seen_before_is_strict_and_by_id(storage: Any) -> None:
    upsert(storage, profile("c", 0), profile("a", 10), profile("b", 30), profile("d", 60))
    assert storage.profiles.last_seen_before(at(30)) == ["a", "c"]
    assert storage.profiles.last_seen_before(at(61)) == ["a", "b", "c", "d"]
    assert storage.profiles.last_seen_before(at(0)) == []


def test_delete_counts_what_existed(storage: Any) -> None:
    upsert(storage, profile("p1"), profile("p2"), profile("p3"))
    assert storage.write(lambda uow: uow.profiles.delete(["p1", "missing", "p3"])) == 2
    assert storage.write(lambda uow: uow.profiles.delete(["p1"])) == 0
    assert [r.id for r in storage.profiles.iter()] == ["p2"]
    assert storage.profiles.get("p1") is None


def test_reads_inside_a_unit_of_work_see_its_own_writes(storage: Any) -> None:
    upsert(storage, profile("p1", 0, b"old"))

    def job(uow: Any) -> tuple[Any, ...]:
        uow.profiles.upsert([profile("p1", 5, b"new"), profile("p2", 5)])
        uow.profiles.delete(["p2"])
        return (
            uow.profiles.get("p1"),
            uow.profiles.get_many(["p1", "p2"]),
            uow.profiles.count(),
            uow.profiles.last_seen_before(at(1)),
        )

    mine, many, count, stale = storage.write(job)
    assert mine == profile("p1", 5, b"new") and set(many) == {"p1"}
    assert (count, stale) == (1, [])


def test_ids_sort_by_code_point_whatever_the_locale(storage: Any) -> None:
    names = ["ab", "a-b", "B", "a", "é", "Z9", "z"]
    upsert(storage, *(profile(name) for name in names))
    assert [r.id for r in storage.profiles.iter()] == sorted(names)  # B Z9 a a-b ab z é
