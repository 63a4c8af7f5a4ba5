"""IdentityStore contract: identifier -> profile links that move on relink."""

from __future__ import annotations

from typing import Any


def link(storage: Any, links: dict[str, str]) -> None:
    storage.write(lambda uow: uow.identities.link(links))


def test_an_empty_store(storage: Any) -> None:
    assert storage.identities.resolve(["anon-1"]) == {}
    assert storage.identities.members(["p1"]) == {}
    assert storage.identities.count() == 0
    assert list(storage.identities.iter()) == []


def test_link_resolve_and_members(storage: Any) -> None:
    link(storage, {"anon-1": "p1", "user-1": "p1", "anon-2": "p2"})
    assert storage.identities.resolve(["anon-1", "anon-2", "unknown", "anon-1"]) == {
        "anon-1": "p1",
        "anon-2": "p2",
    }
    assert storage.identities.members(["p1", "p2", "p3"]) == {
        "p1": {"anon-1", "user-1"},
        "p2": {"anon-2"},
    }
    assert storage.identities.count() == 3
    assert list(storage.identities.iter()) == [
        ("anon-1", "p1"),
        ("anon-2", "p2"),
        ("user-1", "p1"),
    ]


def test_relinking_an_identifier_moves_it(storage: Any) -> None:
    link(storage, {"anon-1": "p1", "anon-2": "p2"})
    link(storage, {"anon-2": "p1"})
    assert storage.identities.resolve(["anon-2"]) == {"anon-2": "p1"}
    assert storage.identities.members(["p1", "p2"]) == {"p1": {"anon-1", "anon-2"}}
    assert storage.identities.count() == 2


def test_many_links_in_one_call_and_lookups_past_one_in_list(storage: Any) -> None:
    link(storage, {f"id-{n}": f"p{n % 7}" for n in range(1500)})
    resolved = storage.identities.resolve([f"id-{n}" for n in range(1500)])
    assert len(resolved) == 1500 and resolved["id-1499"] == "p1"
    members = storage.identities.members([f"p{n}" for n in range(7)])
    assert sum(len(found) for found in members.values()) == 1500
    assert len(list(storage.identities.iter())) == 1500


def test_delete_profile_removes_every_link_to_it(storage: Any) -> None:
    link(storage, {"anon-1": "p1", "user-1": "p1", "anon-2": "p2"})
    assert storage.write(lambda uow: uow.identities.delete_profile("p1")) == 2
    assert storage.identities.resolve(["anon-1", "user-1", "anon-2"]) == {"anon-2": "p2"}
    assert storage.write(lambda uow: uow.identities.delete_profile("p1")) == 0


def test_reads_inside_a_unit_of_work_see_its_own_links(storage: Any) -> None:
    link(storage, {"anon-1": "p1"})

    def job(uow: Any) -> tuple[Any, ...]:
        uow.identities.link({"anon-1": "p2", "user-1": "p2"})
        return uow.identities.resolve(["anon-1"]), uow.identities.members(["p2"])

    assert storage.write(job) == ({"anon-1": "p2"}, {"p2": {"anon-1", "user-1"}})
