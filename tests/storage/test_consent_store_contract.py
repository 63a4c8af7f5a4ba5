"""ConsentStore contract: one consent state per key, damaged states read as no choice."""

from __future__ import annotations

from typing import Any

from tests.storage.conftest import Raw

GRANTED = {"choices": {"personalization": True, "analytics": False}, "policy_version": "2"}


def test_an_empty_store(storage: Any) -> None:
    assert storage.consent.get(["k1"]) == {}
    assert storage.consent.count() == 0
    assert list(storage.consent.iter()) == []


def test_put_get_and_overwrite_by_key(storage: Any) -> None:
    storage.write(lambda uow: uow.consent.put("k2", GRANTED))
    storage.write(lambda uow: uow.consent.put("k1", {"choices": {}}))
    storage.write(lambda uow: uow.consent.put("k2", {"choices": {"ads": True}}))
    assert storage.consent.get(["k1", "k2", "k3", "k1"]) == {
        "k1": {"choices": {}},
        "k2": {"choices": {"ads": True}},
    }
    assert list(storage.consent.iter()) == [
        ("k1", {"choices": {}}),
        ("k2", {"choices": {"ads": True}}),
    ]
    assert storage.consent.count() == 2


def test_records_round_trip_as_json(storage: Any) -> None:
    record = {"n": 1, "f": 0.5, "none": None, "list": [1, "a"], "text": "ü\u2028\"'\\"}
    storage.write(lambda uow: uow.consent.put("k", record))
    assert storage.consent.get(["k"]) == {"k": record}


def test_delete_counts_the_states_that_existed(storage: Any) -> None:
    storage.write(lambda uow: [uow.consent.put(k, GRANTED) for k in ("a", "b", "c")])
    assert storage.write(lambda uow: uow.consent.delete(["a", "missing", "c"])) == 2
    assert storage.write(lambda uow: uow.consent.delete(["a"])) == 0
    assert storage.consent.get(["a", "b", "c"]) == {"b": GRANTED}


def test_reads_inside_a_unit_of_work_see_its_own_writes(storage: Any) -> None:
    storage.write(lambda uow: uow.consent.put("a", GRANTED))

    def job(uow: Any) -> tuple[Any, ...]:
        uow.consent.put("b", {"choices": {"ads": False}})
        uow.consent.delete(["a"])
        return uow.consent.get(["a", "b"]), uow.consent.count()

    assert storage.write(job) == ({"b": {"choices": {"ads": False}}}, 1)


def test_a_damaged_state_reads_as_no_choice(storage: Any, raw: Raw) -> None:
    storage.write(lambda uow: [uow.consent.put(k, GRANTED) for k in ("a", "b")])
    raw.corrupt("consent", "a")
    assert storage.consent.get(["a", "b"]) == {"b": GRANTED}
    assert list(storage.consent.iter()) == [("b", GRANTED)]
    assert storage.write(lambda uow: uow.consent.delete(["a"])) == 1  # erasure still reaches it
