"""ItemStatsStore contract: an observation tail beyond a checkpoint of derived state."""

from __future__ import annotations

from typing import Any

from loopwise.storage.records import Checkpoint, Observation
from tests.storage.conftest import Raw, at


def observation(n: int, **kw: Any) -> Observation:
    """``seq`` is assigned by the store; 0 here."""
    return Observation(0, "view", (f"i{n}",), at(n), **kw)


def observe(storage: Any, *items: Observation) -> None:
    storage.write(lambda uow: uow.item_stats.observe(list(items)))


def test_an_empty_store(storage: Any) -> None:
    assert storage.item_stats.checkpoint() is None
    assert list(storage.item_stats.observations()) == []


def test_observations_get_increasing_positions_and_round_trip(storage: Any) -> None:
    rich = Observation(
        0, "purchase", ("i1", "i2"), at(1), segments=("buyers",), recent_items=("i9", "i8")
    )
    observe(storage, observation(0), rich)
    observe(storage, observation(2))
    stored = list(storage.item_stats.observations())
    seqs = [o.seq for o in stored]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3 and seqs[0] > 0
    assert stored[1] == Observation(
        seqs[1], "purchase", ("i1", "i2"), at(1), ("buyers",), ("i9", "i8")
    )
    assert [o.item_ids for o in storage.item_stats.observations(after=seqs[0])] == [
        ("i1", "i2"),
        ("i2",),
    ]


def test_a_checkpoint_replaces_the_last_and_drops_what_it_covers(storage: Any) -> None:
    observe(storage, *(observation(n) for n in range(5)))
    seqs = [o.seq for o in storage.item_stats.observations()]
    first = Checkpoint(seqs[1], b"\x00state-1\xff", at(10))
    storage.write(lambda uow: uow.item_stats.save_checkpoint(first))
    assert storage.item_stats.checkpoint() == first
    assert [o.seq for o in storage.item_stats.observations()] == seqs[2:]
    second = Checkpoint(seqs[3], b"state-2", at(20))
    storage.write(lambda uow: uow.item_stats.save_checkpoint(second))
    assert storage.item_stats.checkpoint() == second
    assert [o.seq for o in storage.item_stats.observations(after=second.position)] == seqs[4:]
    observe(storage, observation(9))  # the tail goes on past the checkpoint
    assert [o.item_ids for o in storage.item_stats.observations(second.position)] == [
        ("i4",),
        ("i9",),
    ]
    assert storage.item_stats.observations().__next__().seq > second.position


def test_observations_stream_past_one_fetch_batch(storage: Any) -> None:
    observe(storage, *(observation(n) for n in range(1600)))
    assert [o.item_ids[0] for o in storage.item_stats.observations()] == [
        f"i{n}" for n in range(1600)
    ]


def test_reads_inside_a_unit_of_work_see_its_own_writes(storage: Any) -> None:
    def job(uow: Any) -> tuple[Any, ...]:
        uow.item_stats.observe([observation(1), observation(2)])
        seqs = [o.seq for o in uow.item_stats.observations()]
        uow.item_stats.save_checkpoint(Checkpoint(seqs[0], b"s", at(5)))
        return uow.item_stats.checkpoint(), [o.seq for o in uow.item_stats.observations()], seqs

    checkpoint, tail, seqs = storage.write(job)
    assert checkpoint == Checkpoint(seqs[0], b"s", at(5)) and tail == seqs[1:]


def test_a_damaged_observation_is_skipped(storage: Any, raw: Raw) -> None:
    observe(storage, *(observation(n) for n in range(3)))
    seqs = [o.seq for o in storage.item_stats.observations()]
    raw.corrupt("item_observations", seqs[1])
    assert [o.seq for o in storage.item_stats.observations()] == [seqs[0], seqs[2]]


def test_observe_returns_the_positions_it_gave(storage: Any) -> None:
    positions = storage.write(lambda uow: uow.item_stats.observe([observation(0), observation(1)]))
    assert positions == [o.seq for o in storage.item_stats.observations()]


def test_checkpoints_keep_anonymous_observations_and_retention_drops_old_ones(
    storage: Any,
) -> None:
    """An anonymous observation (an event stored nowhere) cannot be re-derived from the log:
    a checkpoint never drops it; only retention does."""
    anonymous = Observation(0, "view", ("a1",), at(1), anonymous=True)
    observe(storage, observation(0), anonymous, observation(2))
    last = max(o.seq for o in storage.item_stats.observations())
    storage.write(lambda uow: uow.item_stats.save_checkpoint(Checkpoint(last, b"s", at(5))))
    assert [o.item_ids for o in storage.item_stats.observations()] == [("a1",)]
    assert [o.item_ids for o in storage.item_stats.anonymous_observations()] == [("a1",)]
    removed = storage.write(lambda uow: uow.item_stats.purge_before(at(2)))
    assert removed == 1 and list(storage.item_stats.anonymous_observations()) == []
