"""CatalogStore contract: item records by id; damaged rows are reported, not raised."""

from __future__ import annotations

from typing import Any

from tests.storage.conftest import Raw


def test_an_empty_catalog(storage: Any) -> None:
    assert storage.catalog.all() == []
    assert storage.catalog.damaged() == []


def test_upsert_replaces_by_id_and_all_is_by_id(storage: Any) -> None:
    storage.write(lambda uow: uow.catalog.upsert([{"id": "b", "title": "B"}, {"id": "a"}]))
    storage.write(lambda uow: uow.catalog.upsert([{"id": "a", "title": "A2", "tags": ["x"]}]))
    assert storage.catalog.all() == [
        {"id": "a", "title": "A2", "tags": ["x"]},
        {"id": "b", "title": "B"},
    ]


def test_the_last_copy_of_an_id_in_one_upsert_wins(storage: Any) -> None:
    storage.write(lambda uow: uow.catalog.upsert([{"id": "a", "v": 1}, {"id": "a", "v": 2}]))
    assert storage.catalog.all() == [{"id": "a", "v": 2}]


def test_delete_counts_what_existed(storage: Any) -> None:
    storage.write(lambda uow: uow.catalog.upsert([{"id": "a"}, {"id": "b"}]))
    assert storage.write(lambda uow: uow.catalog.delete(["a", "zzz"])) == 1
    assert storage.write(lambda uow: uow.catalog.delete(["zzz"])) == 0
    assert storage.catalog.all() == [{"id": "b"}]


def test_a_large_catalog(storage: Any) -> None:
    items = [{"id": f"i{n:05d}", "price": n / 4} for n in range(3000)]
    storage.write(lambda uow: uow.catalog.upsert(items))
    assert storage.catalog.all() == items


def test_reads_inside_a_unit_of_work_see_its_own_writes(storage: Any) -> None:
    def job(uow: Any) -> list[Any]:
        uow.catalog.upsert([{"id": "a"}, {"id": "b"}])
        uow.catalog.delete(["a"])
        return list(uow.catalog.all())

    assert storage.write(job) == [{"id": "b"}]


def test_a_damaged_item_is_left_out_and_reported(storage: Any, raw: Raw) -> None:
    storage.write(lambda uow: uow.catalog.upsert([{"id": "a"}, {"id": "b"}]))
    raw.corrupt("items", "a")
    assert storage.catalog.all() == [{"id": "b"}]
    [damaged] = storage.catalog.damaged()
    assert (damaged.table, damaged.key) == ("items", "a") and damaged.problem and damaged.raw
    assert storage.write(lambda uow: uow.catalog.delete(["a"])) == 1
    assert storage.catalog.damaged() == []
