"""EventLog contract: positions, dedupe by message id, per-profile history, erasure, retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from loopwise.storage.records import LoggedEvent
from tests.storage.conftest import Raw, at, make_event


def append(storage: Any, events: list[Any], profile_ids: list[str]) -> list[int | None]:
    return storage.write(lambda uow: uow.events.append(events, profile_ids))


def ids(logged: Any) -> list[str]:
    return [entry.event.message_id for entry in logged]


def test_an_empty_log(storage: Any) -> None:
    assert storage.events.count() == 0
    assert storage.events.last_seq() == 0
    assert list(storage.events.iter()) == []
    assert storage.events.known(["a", "b"]) == set()
    assert storage.events.damaged() == []


def test_append_hands_out_increasing_positions_and_events_round_trip(storage: Any) -> None:
    events = [
        make_event("e1", "u1", minutes=30, context={"locale": "de-DE", "ip": "10.0.0.0"}),
        make_event("e2", "u2", minutes=10, traits={"plan": "pro", "n": 1.5}),
        make_event("e3", "u1", minutes=20, anonymous_id="anon-1", properties={}),
    ]
    seqs = append(storage, events, ["p1", "p2", "p1"])
    assert all(isinstance(seq, int) for seq in seqs)
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    [later] = append(storage, [make_event("e4", "u2")], ["p2"])
    assert later is not None and later > max(s for s in seqs if s is not None)
    stored = list(storage.events.iter())
    assert stored == [
        LoggedEvent(seqs[0], "p1", events[0]),  # type: ignore[arg-type]
        LoggedEvent(seqs[1], "p2", events[1]),  # type: ignore[arg-type]
        LoggedEvent(seqs[2], "p1", events[2]),  # type: ignore[arg-type]
        LoggedEvent(later, "p2", make_event("e4", "u2")),
    ]
    assert storage.events.count() == 4
    assert storage.events.last_seq() == later


def test_append_dedupes_across_calls_and_within_one_call(storage: Any) -> None:
    first = append(storage, [make_event("a"), make_event("b")], ["p1", "p1"])
    again = append(storage, [make_event("b"), make_event("c")], ["p1", "p1"])
    assert first[0] is not None and first[1] is not None
    assert again[0] is None and again[1] is not None
    batch = [make_event("d"), make_event("d", minutes=5), make_event("e"), make_event("d")]
    within = append(storage, batch, ["p1"] * 4)
    assert [seq is None for seq in within] == [False, True, False, True]
    assert ids(storage.events.iter()) == ["a", "b", "c", "d", "e"]
    first_copy = next(e for e in storage.events.iter() if e.event.message_id == "d")
    assert first_copy.event.timestamp == at(0)  # the first copy wins
    assert storage.events.known(["a", "zz", "e", "a"]) == {"a", "e"}


def test_a_large_batch_reports_each_event(storage: Any) -> None:
    append(storage, [make_event(f"m{n}") for n in range(0, 100, 2)], ["p"] * 50)
    seqs = append(storage, [make_event(f"m{n}") for n in range(100)], ["p"] * 100)
    assert [seq is not None for seq in seqs] == [n % 2 == 1 for n in range(100)]
    new = [seq for seq in seqs if seq is not None]
    assert new == sorted(new)
    assert storage.events.count() == 100
    assert len(storage.events.known([f"m{n}" for n in range(100)])) == 100


def test_append_needs_one_profile_id_per_event(storage: Any) -> None:
    with pytest.raises(ValueError, match="one profile id per event"):
        append(storage, [make_event("a"), make_event("b")], ["p1"])
    assert storage.events.count() == 0
    assert append(storage, [], []) == []


def test_iter_filters_by_profile_and_position(storage: Any) -> None:
    seqs = append(
        storage,
        [make_event(f"e{n}", minutes=n) for n in range(6)],
        ["p1", "p2", "p1", "p2", "p1", "p3"],
    )
    assert ids(storage.events.iter("p1")) == ["e0", "e2", "e4"]
    assert ids(storage.events.iter("p2")) == ["e1", "e3"]
    assert ids(storage.events.iter(after=seqs[2])) == ["e3", "e4", "e5"]  # type: ignore[arg-type]
    assert ids(storage.events.iter("p1", after=seqs[2])) == ["e4"]  # type: ignore[arg-type]
    assert list(storage.events.iter("nobody")) == []
    assert list(storage.events.iter(after=storage.events.last_seq())) == []
    assert {e.profile_id for e in storage.events.iter("p3")} == {"p3"}


def test_iter_streams_past_one_fetch_batch(storage: Any) -> None:
    events = [make_event(f"m{n:04d}", minutes=n) for n in range(2500)]
    append(storage, events, ["p1", "p2"] * 1250)
    assert ids(storage.events.iter()) == [e.message_id for e in events]
    assert ids(storage.events.iter("p2")) == [e.message_id for e in events[1::2]]
    assert storage.events.count() == 2500


def test_reassign_moves_one_profiles_history_and_keeps_order(storage: Any) -> None:
    events = [make_event("a"), make_event("b"), make_event("c"), make_event("d")]
    append(storage, events, ["px", "py", "px", "pz"])
    assert storage.write(lambda uow: uow.events.reassign("px", "py")) == 2
    assert list(storage.events.iter("px")) == []
    assert ids(storage.events.iter("py")) == ["a", "b", "c"]
    assert ids(storage.events.iter()) == ["a", "b", "c", "d"]
    assert storage.write(lambda uow: uow.events.reassign("nobody", "py")) == 0
    assert storage.events.count() == 4


def test_delete_profile_erases_its_events_and_forgets_their_message_ids(storage: Any) -> None:
    append(storage, [make_event("a"), make_event("b"), make_event("c")], ["p1", "p2", "p1"])
    assert storage.write(lambda uow: uow.events.delete_profile("p1")) == 2
    assert ids(storage.events.iter()) == ["b"]
    assert storage.events.known(["a", "b", "c"]) == {"b"}
    assert storage.write(lambda uow: uow.events.delete_profile("p1")) == 0
    # an erased event sent again is a new event, not a retry
    assert append(storage, [make_event("a")], ["p9"])[0] is not None


def test_positions_are_never_reused(storage: Any) -> None:
    seqs = append(storage, [make_event("a"), make_event("b")], ["p1", "p2"])
    storage.write(lambda uow: uow.events.delete_profile("p2"))  # the newest event
    assert storage.events.last_seq() == seqs[0]
    [seq] = append(storage, [make_event("c")], ["p3"])
    assert seq is not None and seq > seqs[1]  # type: ignore[operator]


def test_purge_before_deletes_by_event_time_not_receipt(storage: Any) -> None:
    late = make_event("late-arrival", minutes=0, received_at=at(600))
    events = [late, make_event("edge", minutes=60), make_event("new", minutes=120)]
    append(storage, events, ["p1", "p1", "p2"])
    assert storage.write(lambda uow: uow.events.purge_before(at(60))) == 1
    assert ids(storage.events.iter()) == ["edge", "new"]  # the cutoff itself is kept
    assert storage.events.known(["late-arrival"]) == set()
    assert storage.write(lambda uow: uow.events.purge_before(at(60))) == 0
    assert storage.write(lambda uow: uow.events.purge_before(at(60) + timedelta(days=1))) == 2
    assert storage.events.count() == 0


def test_reads_inside_a_unit_of_work_see_its_own_appends(storage: Any) -> None:
    append(storage, [make_event("old")], ["p1"])

    def job(uow: Any) -> tuple[Any, ...]:
        [seq] = uow.events.append([make_event("new")], ["p1"])
        retry = uow.events.append([make_event("new"), make_event("old")], ["p1", "p1"])
        return (
            seq,
            retry,
            uow.events.known(["new", "old", "x"]),
            uow.events.count(),
            uow.events.last_seq(),
            ids(uow.events.iter("p1")),
        )

    seq, retry, known, count, last, history = storage.write(job)
    assert retry == [None, None]
    assert known == {"new", "old"}
    assert (count, last, history) == (2, seq, ["old", "new"])


def test_damaged_rows_are_listed_and_skipped_by_iter(storage: Any, raw: Raw) -> None:
    seqs = append(storage, [make_event(f"e{n}") for n in range(3)], ["p1"] * 3)
    raw.corrupt("events", seqs[1])  # type: ignore[arg-type]
    assert ids(storage.events.iter()) == ["e0", "e2"]
    [damaged] = storage.events.damaged()
    assert (damaged.table, damaged.key) == ("events", str(seqs[1]))
    assert damaged.problem and damaged.raw
    assert storage.events.count() == 3  # still stored: erasure and retention reach it
    assert storage.write(lambda uow: uow.events.delete_profile("p1")) == 3
