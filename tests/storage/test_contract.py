"""The Storage contract, run against every backend: what the engine relies on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from loopwise.clock import isoformat
from loopwise.errors import Conflict, StorageUnavailable
from loopwise.storage.base import Storage, WriteTransaction
from tests.storage.conftest import T0, make_event


class Boom(Exception):
    """Raised by jobs that must be rolled back."""


def submit_from_threads(
    storage: Storage, jobs: list[Callable[[WriteTransaction], Any]]
) -> list[Future[Any]]:
    """Submit every job from its own thread, all released at once."""
    barrier = threading.Barrier(len(jobs))

    def submit(job: Callable[[WriteTransaction], Any]) -> Future[Any]:
        barrier.wait()
        return storage.submit(job)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(submit, jobs))


def seed_profile(storage: Storage, profile_id: str, prefix: str, minutes: float = 0) -> None:
    """A profile with events, identities, segment history, a decision and an outcome."""

    def job(tx: WriteTransaction) -> None:
        events = [make_event(f"{prefix}-{n}", profile_id, minutes + n) for n in range(3)]
        tx.insert_events(events, [profile_id] * 3)
        tx.upsert_profiles([{"id": profile_id, "events": 3}])
        tx.link_identity(f"anon-{prefix}", profile_id)
        tx.link_identity(f"user-{prefix}", profile_id)
        tx.record_segment_changes(profile_id, ["buyer", "mobile"], [], T0)
        for n in range(2):
            decision_id = f"{prefix}-d{n}"
            at = isoformat(T0 + timedelta(minutes=minutes + n))
            tx.insert_decision(
                {"decision_id": decision_id, "profile_id": profile_id, "created_at": at}
            )
        tx.record_outcome(f"{prefix}-d0", {"kind": "impression"})
        tx.record_outcome(f"{prefix}-d0", {"kind": "click"})
        tx.record_outcome(f"{prefix}-d1", {"kind": "impression"})

    storage.write(job)


def snapshot(storage: Storage, profile_ids: list[str]) -> dict[str, Any]:
    """Everything the read API can see, for before/after comparisons."""
    return {
        "events": [(e.message_id, e.user_id) for e in storage.iter_events()],
        "per_profile": {p: [e.message_id for e in storage.iter_events(p)] for p in profile_ids},
        "profiles": list(storage.iter_profiles()),
        "identities": storage.identities(),
        "history": {p: storage.segment_history(p) for p in profile_ids},
        "items": storage.get_items(),
        "decisions": list(storage.iter_decisions()),
        "config": storage.get_config("workspace"),
        "meta": storage.get_meta("model"),
    }


def test_fresh_storage_is_empty_and_healthy(storage: Storage) -> None:
    assert storage.healthy()
    assert storage.count_events() == 0
    assert storage.count_profiles() == 0
    assert list(storage.iter_events()) == []
    assert storage.get_profile("p1") is None
    assert storage.identities() == {}
    assert storage.get_items() == []
    assert storage.get_decision("d1") is None
    assert storage.get_config("workspace") is None
    assert storage.get_meta("model") is None


def test_submit_resolves_with_the_job_result_and_write_returns_it(storage: Storage) -> None:
    future = storage.submit(lambda tx: tx.insert_events([make_event("m1")], ["p1"]))
    assert future.result(timeout=10) == [True]
    assert storage.write(lambda tx: 42) == 42
    with pytest.raises(Boom):
        storage.write(lambda tx: (_ for _ in ()).throw(Boom("no")))


def test_insert_events_dedupes_across_calls(storage: Storage) -> None:
    first = storage.write(
        lambda tx: tx.insert_events([make_event("a"), make_event("b")], ["p1"] * 2)
    )
    again = storage.write(
        lambda tx: tx.insert_events([make_event("b"), make_event("c")], ["p1"] * 2)
    )
    assert first == [True, True]
    assert again == [False, True]
    assert storage.count_events() == 3
    assert [e.message_id for e in storage.iter_events()] == ["a", "b", "c"]


def test_insert_events_dedupes_within_one_call(storage: Storage) -> None:
    events = [make_event("a"), make_event("a", minutes=5), make_event("b"), make_event("a")]
    assert storage.write(lambda tx: tx.insert_events(events, ["p1"] * 4)) == [
        True,
        False,
        True,
        False,
    ]
    stored = list(storage.iter_events())
    assert [e.message_id for e in stored] == ["a", "b"]
    assert stored[0].timestamp == T0  # the first copy wins


def test_insert_events_of_a_large_batch_reports_each_event(storage: Storage) -> None:
    storage.write(
        lambda tx: tx.insert_events([make_event(f"m{n}") for n in range(0, 100, 2)], ["p"] * 50)
    )
    batch = [make_event(f"m{n}") for n in range(100)]
    new = storage.write(lambda tx: tx.insert_events(batch, ["p"] * 100))
    assert new == [n % 2 == 1 for n in range(100)]
    assert storage.count_events() == 100


def test_insert_events_requires_one_profile_id_per_event(storage: Storage) -> None:
    with pytest.raises(ValueError, match="one profile id per event"):
        storage.write(lambda tx: tx.insert_events([make_event("a"), make_event("b")], ["p1"]))
    assert storage.count_events() == 0


def test_events_round_trip_in_arrival_order_with_profile_filter(storage: Storage) -> None:
    events = [
        make_event("e1", "u1", minutes=30, context={"locale": "de-DE"}),
        make_event("e2", "u2", minutes=10),
        make_event("e3", "u1", minutes=20),
    ]
    storage.write(lambda tx: tx.insert_events(events, ["p1", "p2", "p1"]))
    storage.write(lambda tx: tx.insert_events([make_event("e4", "u2", minutes=0)], ["p2"]))
    assert list(storage.iter_events()) == [*events, make_event("e4", "u2", minutes=0)]
    assert [e.message_id for e in storage.iter_events("p1")] == ["e1", "e3"]
    assert [e.message_id for e in storage.iter_events("p2")] == ["e2", "e4"]
    assert list(storage.iter_events("nobody")) == []


def test_failing_job_is_rolled_back_alone_while_concurrent_jobs_commit(storage: Storage) -> None:
    seed_profile(storage, "p0", "seed")
    seed_profile(storage, "p5", "five", minutes=30)
    storage.write(lambda tx: tx.upsert_items([{"id": "i1", "title": "Kept"}]))
    before = snapshot(storage, ["p0", "p5", "p9"])

    def bad(tx: WriteTransaction) -> None:
        tx.insert_events([make_event("bad-1", "u9")], ["p9"])
        tx.upsert_profiles([{"id": "p9"}, {"id": "p0", "events": 999}])
        tx.delete_profiles(["p0"])
        tx.link_identity("anon-seed", "p9")
        tx.reassign_events("p0", "p9")
        tx.record_segment_changes("p0", [], ["buyer"], T0)
        tx.upsert_items([{"id": "i2"}])
        tx.delete_items(["i1"])
        tx.insert_decision({"decision_id": "bad-d", "profile_id": "p9", "created_at": "2025"})
        tx.record_outcome("seed-d0", {"kind": "conversion"})
        tx.put_config("workspace", {"slots": []})
        tx.put_meta("model", "v9")
        tx.delete_profile_data("p5")  # type: ignore[attr-defined]
        raise Boom("this job fails after touching every table")

    def good(n: int) -> Callable[[WriteTransaction], list[bool]]:
        def job(tx: WriteTransaction) -> list[bool]:
            tx.upsert_profiles([{"id": f"g{n}"}])
            return tx.insert_events([make_event(f"good-{n}", f"g{n}")], [f"g{n}"])

        return job

    jobs: list[Callable[[WriteTransaction], Any]] = [good(0), good(1), bad, good(2), good(3)]
    futures = submit_from_threads(storage, jobs)

    with pytest.raises(Boom):
        futures[2].result(timeout=10)
    assert [futures[i].result(timeout=10) for i in (0, 1, 3, 4)] == [[True]] * 4
    assert {f"g{n}" for n in range(4)} <= {p["id"] for p in storage.iter_profiles()}
    assert storage.count_events() == 6 + 4
    stored = {e.message_id for e in storage.iter_events()}
    assert {f"good-{n}" for n in range(4)} <= stored
    after = snapshot(storage, ["p0", "p5", "p9"])
    after["events"] = [e for e in after["events"] if not e[0].startswith("good")]
    after["profiles"] = [p for p in after["profiles"] if not p["id"].startswith("g")]
    assert after == before
    retry = [make_event("bad-1"), make_event("five-0")]  # the undone erasure kept five-0
    assert storage.write(lambda tx: tx.insert_events(retry, ["p9", "p5"])) == [True, False]


def test_link_identity_moves_a_relinked_identifier(storage: Storage) -> None:
    def job(tx: WriteTransaction) -> None:
        tx.link_identity("anon-1", "p1")
        tx.link_identity("user-1", "p1")
        tx.link_identity("anon-2", "p2")

    storage.write(job)
    storage.write(lambda tx: tx.link_identity("anon-2", "p1"))
    assert storage.identities() == {"anon-1": "p1", "user-1": "p1", "anon-2": "p1"}


def test_reassign_events_moves_history_and_keeps_order(storage: Storage) -> None:
    events = [
        make_event("a", "x"),
        make_event("b", "y"),
        make_event("c", "x"),
        make_event("d", "z"),
    ]
    storage.write(lambda tx: tx.insert_events(events, ["px", "py", "px", "pz"]))
    storage.write(lambda tx: tx.reassign_events("px", "py"))
    assert list(storage.iter_events("px")) == []
    assert [e.message_id for e in storage.iter_events("py")] == ["a", "b", "c"]
    assert [e.message_id for e in storage.iter_events()] == ["a", "b", "c", "d"]
    storage.write(lambda tx: tx.reassign_events("nobody", "py"))
    assert storage.count_events() == 4


def test_profiles_upsert_iterate_count_and_delete(storage: Storage) -> None:
    storage.write(lambda tx: tx.upsert_profiles([{"id": "p2", "n": 1}, {"id": "p1", "n": 1}]))
    storage.write(lambda tx: tx.upsert_profiles([{"id": "p2", "n": 2, "tags": ["a"]}]))
    assert storage.get_profile("p2") == {"id": "p2", "n": 2, "tags": ["a"]}
    assert [p["id"] for p in storage.iter_profiles()] == ["p1", "p2"]
    assert storage.count_profiles() == 2
    storage.write(lambda tx: tx.delete_profiles(["p2", "missing"]))
    assert storage.get_profile("p2") is None
    assert storage.count_profiles() == 1


def test_reads_return_copies(storage: Storage) -> None:
    storage.write(lambda tx: tx.upsert_profiles([{"id": "p1", "traits": {"plan": "pro"}}]))
    profile = storage.get_profile("p1")
    assert profile is not None
    profile["traits"]["plan"] = "free"
    assert storage.get_profile("p1") == {"id": "p1", "traits": {"plan": "pro"}}


def test_decisions_with_outcomes_and_the_last_decision_window(storage: Storage) -> None:
    def at(minutes: int) -> str:
        return isoformat(T0 + timedelta(minutes=minutes))

    def job(tx: WriteTransaction) -> None:
        tx.insert_decision({"decision_id": "d1", "profile_id": "p1", "created_at": at(0), "x": 1})
        tx.insert_decision({"decision_id": "d2", "profile_id": "p1", "created_at": at(10)})
        tx.insert_decision({"decision_id": "d3", "profile_id": "p2", "created_at": at(20)})
        tx.record_outcome("d1", {"kind": "impression"})
        tx.record_outcome("d1", {"kind": "click", "item": "i1"})

    storage.write(job)
    d1 = storage.get_decision("d1")
    assert d1 == {
        "decision_id": "d1",
        "profile_id": "p1",
        "created_at": at(0),
        "x": 1,
        "outcomes": [{"kind": "impression"}, {"kind": "click", "item": "i1"}],
    }
    assert storage.get_decision("d2") == {
        "decision_id": "d2",
        "profile_id": "p1",
        "created_at": at(10),
        "outcomes": [],
    }
    assert storage.get_decision("nope") is None
    last = storage.last_decision("p1", T0)
    assert last is not None and last["decision_id"] == "d2"
    last = storage.last_decision("p1", T0 + timedelta(minutes=10))  # inclusive bound
    assert last is not None and last["decision_id"] == "d2"
    assert storage.last_decision("p1", T0 + timedelta(minutes=11)) is None
    assert storage.last_decision("p3", T0) is None
    assert [d["decision_id"] for d in storage.iter_decisions()] == ["d1", "d2", "d3"]
    since = T0 + timedelta(minutes=5)
    assert [d["decision_id"] for d in storage.iter_decisions(since)] == ["d2", "d3"]
    assert next(storage.iter_decisions())["outcomes"][1]["kind"] == "click"
    mine = storage.decisions_for("p1")  # a person's decisions, for export
    assert [d["decision_id"] for d in mine] == ["d1", "d2"] and len(mine[0]["outcomes"]) == 2
    assert storage.decisions_for("p3") == []


def test_a_duplicate_decision_id_conflicts_and_keeps_the_first(storage: Storage) -> None:
    decision = {"decision_id": "d1", "profile_id": "p1", "created_at": isoformat(T0)}
    storage.write(lambda tx: tx.insert_decision(decision))
    with pytest.raises(Conflict) as caught:
        storage.write(lambda tx: tx.insert_decision({**decision, "profile_id": "p2"}))
    assert caught.value.field == "decision_id"
    assert "new id" in caught.value.detail
    kept = storage.get_decision("d1")
    assert kept is not None and kept["profile_id"] == "p1"


def test_segment_history_is_oldest_first(storage: Storage) -> None:
    storage.write(lambda tx: tx.record_segment_changes("p1", ["buyer", "mobile"], ["browser"], T0))
    later = T0 + timedelta(hours=1)
    storage.write(lambda tx: tx.record_segment_changes("p1", [], ["mobile"], later))
    storage.write(lambda tx: tx.record_segment_changes("p2", ["desktop"], [], later))
    assert storage.segment_history("p1") == [
        {"segment": "buyer", "change": "entered", "at": "2025-03-01T12:00:00.000Z"},
        {"segment": "mobile", "change": "entered", "at": "2025-03-01T12:00:00.000Z"},
        {"segment": "browser", "change": "left", "at": "2025-03-01T12:00:00.000Z"},
        {"segment": "mobile", "change": "left", "at": "2025-03-01T13:00:00.000Z"},
    ]
    assert storage.segment_history("nobody") == []


def test_items_upsert_and_delete_count_what_existed(storage: Storage) -> None:
    storage.write(
        lambda tx: tx.upsert_items([{"id": "b", "title": "B"}, {"id": "a", "title": "A"}])
    )
    storage.write(lambda tx: tx.upsert_items([{"id": "a", "title": "A2", "tags": ["x"]}]))
    assert storage.get_items() == [
        {"id": "a", "title": "A2", "tags": ["x"]},
        {"id": "b", "title": "B"},
    ]
    assert storage.write(lambda tx: tx.delete_items(["a", "zzz", "a"])) == 1
    assert storage.write(lambda tx: tx.delete_items(["zzz"])) == 0
    assert storage.get_items() == [{"id": "b", "title": "B"}]


def test_config_and_meta_overwrite_by_key(storage: Storage) -> None:
    storage.write(lambda tx: tx.put_config("workspace", {"slots": [{"id": "hero"}]}))
    storage.write(lambda tx: tx.put_meta("model", "v1"))
    storage.write(lambda tx: tx.put_meta("model", "v2"))
    assert storage.get_config("workspace") == {"slots": [{"id": "hero"}]}
    assert storage.get_config("other") is None
    assert storage.get_meta("model") == "v2"
    storage.write(lambda tx: tx.put_config("workspace", {"slots": []}))
    assert storage.get_config("workspace") == {"slots": []}


def test_delete_profile_data_erases_one_profile_and_counts_rows(storage: Storage) -> None:
    seed_profile(storage, "p1", "one")
    seed_profile(storage, "p2", "two", minutes=60)
    other_before = snapshot(storage, ["p2"])["per_profile"], storage.segment_history("p2")

    counts = storage.write(lambda tx: tx.delete_profile_data("p1"))  # type: ignore[attr-defined]
    assert counts == {
        "outcomes": 3,
        "decisions": 2,
        "events": 3,
        "identities": 2,
        "segment_history": 2,
        "exposures": 0,
        "profiles": 1,
    }
    assert storage.get_profile("p1") is None
    assert list(storage.iter_events("p1")) == []
    assert storage.segment_history("p1") == []
    assert storage.get_decision("one-d0") is None
    assert storage.last_decision("p1", T0) is None
    assert storage.identities() == {"anon-two": "p2", "user-two": "p2"}
    assert (snapshot(storage, ["p2"])["per_profile"], storage.segment_history("p2")) == other_before
    two = storage.get_decision("two-d0")
    assert two is not None and len(two["outcomes"]) == 2
    assert storage.count_events() == 3 and storage.count_profiles() == 1
    again = storage.write(lambda tx: tx.delete_profile_data("p1"))  # type: ignore[attr-defined]
    assert set(again.values()) == {0}
    storage.checkpoint()  # after an erasure; changes nothing visible
    assert storage.count_events() == 3 and storage.decisions_for("p1") == []


def test_closed_storage_refuses_writes_and_reports_unhealthy(storage: Storage) -> None:
    storage.write(lambda tx: tx.put_meta("k", "v"))
    storage.close()
    assert not storage.healthy()
    with pytest.raises(StorageUnavailable) as caught:
        storage.submit(lambda tx: tx.put_meta("k", "w"))
    assert "closed" in caught.value.detail
    with pytest.raises(StorageUnavailable):
        storage.get_meta("k")
    storage.close()  # closing twice is harmless
