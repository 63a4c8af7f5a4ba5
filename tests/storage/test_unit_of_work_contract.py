"""Units of work, on every backend: group commit, a savepoint per job, ``on_commit`` after the
commit and before the future resolves, nothing of a failed job or a failed commit survives."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from loopwise.clock import isoformat
from loopwise.errors import StorageUnavailable
from loopwise.storage.records import Checkpoint, Exposure, Observation, ProfileRecord
from tests.storage.conftest import T0, Raw, at, make_event, writer_held


class Boom(Exception):
    """Raised by jobs that must be rolled back."""


def boom() -> None:
    raise Boom("this job fails")


def test_write_returns_the_job_result_and_raises_its_error(storage: Any) -> None:
    assert storage.submit(lambda uow: 41 + 1).result(timeout=30) == 42
    assert storage.write(lambda uow: "x") == "x"
    with pytest.raises(Boom):
        storage.write(lambda uow: boom())
    assert storage.write(lambda uow: "still writing") == "still writing"


def test_a_fresh_storage_is_healthy(storage: Any) -> None:
    health = storage.health()
    assert (health["ok"], health["write"], health["read"]) == (True, "ok", "ok")
    assert health["backend"] == storage.kind


def test_on_commit_runs_after_the_commit_and_before_the_future_resolves(storage: Any) -> None:
    seen: list[Any] = []

    def job(uow: Any) -> str:
        uow.config.put_meta("k", "v")
        # a read outside the transaction sees the write only once it is committed
        uow.on_commit(lambda: seen.append(("first", storage.config.meta("k"))))
        uow.on_commit(lambda: seen.append(("second", storage.config.meta("k"))))
        return "result"

    with writer_held(storage):
        future = storage.submit(job)
        future.add_done_callback(lambda f: seen.append(("resolved", f.result())))
        assert seen == []
    assert future.result(timeout=30) == "result"
    assert seen == [("first", "v"), ("second", "v"), ("resolved", "result")]


def test_callbacks_of_a_group_run_in_job_order(storage: Any) -> None:
    order: list[int] = []

    def job(n: int) -> Callable[[Any], None]:
        def run(uow: Any) -> None:
            uow.config.put_meta(f"k{n}", "v")
            uow.on_commit(lambda: order.append(n))

        return run

    with writer_held(storage):
        futures = [storage.submit(job(n)) for n in range(5)]
    for future in futures:
        future.result(timeout=30)
    assert order == [0, 1, 2, 3, 4]


def test_a_failing_callback_does_not_fail_the_job_or_the_others(
    storage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def job(uow: Any) -> str:
        uow.on_commit(boom)
        uow.on_commit(lambda: ran.append("after"))
        uow.config.put_meta("k", "v")
        return "committed"

    assert storage.write(job) == "committed"
    assert ran == ["after"] and storage.config.meta("k") == "v"
    assert "failed to apply a committed change" in caplog.text


def seed(storage: Any) -> None:
    """A row in every store, so the failing job below has something to change and delete."""

    def job(uow: Any) -> None:
        uow.events.append([make_event("seed-1"), make_event("seed-2")], ["p0", "p5"])
        uow.profiles.upsert([ProfileRecord("p0", T0, b"p0"), ProfileRecord("p5", T0, b"p5")])
        uow.identities.link({"anon-0": "p0", "anon-5": "p5"})
        uow.consent.put("p0", {"choices": {"ads": True}})
        uow.audit.append({"seq": 1, "subject": "p0", "at": isoformat(T0), "hash": "h1"})
        uow.exposures.insert(Exposure("exp", "p0", "a", T0))
        uow.decisions.insert({"decision_id": "d0", "profile_id": "p0", "created_at": isoformat(T0)})
        uow.decisions.add_outcome("d0", {"kind": "impression"})
        uow.segment_history.record("p0", ["buyer"], [], T0)
        uow.item_stats.observe([Observation(0, "view", ("i1",), T0)])
        uow.catalog.upsert([{"id": "i1", "title": "Kept"}])
        uow.config.put("workspace", {"slots": ["hero"]})
        uow.config.put_meta("model", "v1")
        uow.config.bump("catalog")

    storage.write(job)


def touch_everything(uow: Any) -> None:
    """Add, change and delete in every store."""
    uow.events.append([make_event("bad-1")], ["p9"])
    uow.events.reassign("p0", "p9")
    uow.events.delete_profile("p5")
    uow.events.purge_before(at(1000))
    uow.profiles.upsert([ProfileRecord("p9", T0, b"p9"), ProfileRecord("p0", T0, b"changed")])
    uow.profiles.delete(["p5"])
    uow.identities.link({"anon-0": "p9", "anon-9": "p9"})
    uow.identities.delete_profile("p5")
    uow.consent.put("p0", {"choices": {}})
    uow.consent.put("p9", {"choices": {}})
    uow.consent.delete(["p0"])
    uow.audit.append({"seq": 2, "subject": "p9", "at": isoformat(T0), "hash": "h2"})
    uow.audit.purge_before(at(1000))
    uow.exposures.put(Exposure("exp", "p0", "b", T0))
    uow.exposures.insert(Exposure("exp", "p9", "a", T0))
    uow.exposures.delete_profile("p0")
    uow.decisions.insert({"decision_id": "d9", "profile_id": "p9", "created_at": isoformat(T0)})
    uow.decisions.add_outcome("d0", {"kind": "click"})
    uow.decisions.delete_profile("p0")
    uow.segment_history.record("p0", [], ["buyer"], at(1))
    uow.segment_history.delete_profile("p0")
    uow.item_stats.observe([Observation(0, "view", ("i2",), T0)])
    uow.item_stats.save_checkpoint(Checkpoint(10, b"state", T0))
    uow.catalog.upsert([{"id": "i2"}, {"id": "i1", "title": "Changed"}])
    uow.catalog.delete(["i1"])
    uow.config.put("workspace", {"slots": []})
    uow.config.put_meta("model", "v9")
    uow.config.bump("catalog")


def everything(storage: Any) -> dict[str, Any]:
    """What the read handles can see, for before/after comparisons."""
    return {
        "events": list(storage.events.iter()),
        "known": storage.events.known(["seed-1", "seed-2", "bad-1"]),
        "last_seq": storage.events.last_seq(),
        "profiles": list(storage.profiles.iter()),
        "identities": list(storage.identities.iter()),
        "consent": list(storage.consent.iter()),
        "audit": list(storage.audit.iter()),
        "exposures": list(storage.exposures.iter()),
        "decisions": list(storage.decisions.iter()),
        "history": list(storage.segment_history.iter()),
        "observations": list(storage.item_stats.observations()),
        "checkpoint": storage.item_stats.checkpoint(),
        "catalog": storage.catalog.all(),
        "config": storage.config.get("workspace"),
        "meta": storage.config.meta("model"),
        "revisions": storage.config.revisions(),
    }


def test_a_failing_job_is_rolled_back_alone_while_its_group_commits(storage: Any) -> None:
    seed(storage)
    before = everything(storage)
    ran: list[str] = []

    def bad(uow: Any) -> None:
        touch_everything(uow)
        uow.on_commit(lambda: ran.append("bad"))
        boom()

    def good(n: int) -> Callable[[Any], list[int | None]]:
        def job(uow: Any) -> list[int | None]:
            uow.on_commit(lambda: ran.append(f"good-{n}"))
            uow.config.put_meta(f"good-{n}", "yes")
            return list(uow.events.append([make_event(f"good-{n}")], [f"g{n}"]))

        return job

    commits = storage.commits
    with writer_held(storage):
        futures = [storage.submit(job) for job in (good(0), bad, good(1))]
    with pytest.raises(Boom):
        futures[1].result(timeout=30)
    assert all(futures[i].result(timeout=30)[0] is not None for i in (0, 2))
    assert storage.commits - commits == 2  # the held job, then one group of three
    assert ran == ["good-0", "good-1"]
    after = everything(storage)
    assert [e.event.message_id for e in after["events"]] == ["seed-1", "seed-2", "good-0", "good-1"]
    assert {storage.config.meta("good-0"), storage.config.meta("good-1")} == {"yes"}
    after["events"] = after["events"][:2]
    after["last_seq"] = before["last_seq"]
    assert after == before
    # what the failed job appended is unknown: sending it again stores it
    assert storage.write(lambda uow: uow.events.append([make_event("bad-1")], ["p9"]))[0]


def test_a_failed_commit_drops_the_whole_group_and_reports_unavailable(
    storage: Any, raw: Raw
) -> None:
    storage.write(lambda uow: uow.config.put_meta("k", "old"))
    ran: list[str] = []

    def job(n: int) -> Callable[[Any], None]:
        def run(uow: Any) -> None:
            uow.config.put_meta("k", f"new-{n}")
            uow.events.append([make_event(f"lost-{n}")], ["p1"])
            uow.on_commit(lambda: ran.append(f"job-{n}"))

        return run

    with raw.failing_commit(skip=1):
        with writer_held(storage):
            futures = [storage.submit(job(n)) for n in range(3)]
        errors = [future.exception(timeout=30) for future in futures]
        health = storage.health()
    assert all(isinstance(error, StorageUnavailable) for error in errors)
    assert "not committed" in errors[0].detail  # type: ignore[union-attr]
    assert ran == []
    assert storage.config.meta("k") == "old"
    assert storage.events.count() == 0 and storage.events.known(["lost-0"]) == set()
    assert not health["ok"] and health["write"].startswith("failing")
    # the writer carries on, and write health recovers with the next commit
    storage.write(job(9))
    assert storage.config.meta("k") == "new-9" and ran == ["job-9"]
    assert storage.health()["ok"]


def test_reads_outside_see_only_committed_data_and_do_not_wait(storage: Any) -> None:
    storage.write(lambda uow: uow.profiles.upsert([ProfileRecord("p1", T0, b"old")]))
    inside, release = threading.Event(), threading.Event()

    def slow(uow: Any) -> None:
        uow.profiles.upsert([ProfileRecord("p1", T0, b"new")])
        uow.config.put_meta("k", "v")
        inside.set()
        release.wait(timeout=30)

    future = storage.submit(slow)
    try:
        assert inside.wait(timeout=30)
        with ThreadPoolExecutor(max_workers=1) as reader:
            record = reader.submit(storage.profiles.get, "p1").result(timeout=10)
            meta = reader.submit(storage.config.meta, "k").result(timeout=10)
        assert record is not None and record.data == b"old"
        assert meta is None
    finally:
        release.set()
    future.result(timeout=30)
    record = storage.profiles.get("p1")
    assert record is not None and record.data == b"new"


def submit_from_threads(storage: Any, jobs: list[Callable[[Any], Any]]) -> list[Future[Any]]:
    """Submit jobs from 8 threads released at once."""
    barrier = threading.Barrier(8)
    share = [jobs[n::8] for n in range(8)]

    def submit(mine: list[Callable[[Any], Any]]) -> list[Future[Any]]:
        barrier.wait()
        return [storage.submit(job) for job in mine]

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [future for batch in pool.map(submit, share) for future in batch]


def test_concurrent_submits_from_many_threads_group_commit(storage: Any) -> None:
    applied: list[str] = []
    lock = threading.Lock()

    def job(n: int) -> Callable[[Any], list[int | None]]:
        def run(uow: Any) -> list[int | None]:
            def note() -> None:
                with lock:
                    applied.append(f"m{n}")

            uow.on_commit(note)
            return list(uow.events.append([make_event(f"m{n}")], [f"p{n % 10}"]))

        return run

    commits = storage.commits
    with writer_held(storage):  # the first submits queue up behind a held job
        futures = submit_from_threads(storage, [job(n) for n in range(200)])
    seqs = [future.result(timeout=60)[0] for future in futures]
    assert None not in seqs and len(set(seqs)) == 200
    assert sorted(applied) == sorted(f"m{n}" for n in range(200))
    assert storage.events.count() == 200
    assert storage.commits - commits < 100


def test_a_write_job_cannot_wait_for_another(storage: Any) -> None:
    with pytest.raises(RuntimeError, match="deadlock"):
        storage.write(lambda uow: storage.write(lambda inner: None))
    assert storage.write(lambda uow: "still writing") == "still writing"


def test_close_runs_queued_jobs_then_refuses_writes_and_reads(storage: Any) -> None:
    with writer_held(storage):
        futures = [
            storage.submit(lambda uow, n=n: uow.config.put_meta(f"q{n}", "v")) for n in range(20)
        ]
        closer = threading.Thread(target=storage.close)
        closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive()
    for future in futures:
        future.result(timeout=30)
    with pytest.raises(StorageUnavailable, match="closed"):
        storage.submit(lambda uow: None)
    with pytest.raises(StorageUnavailable):
        storage.config.meta("q0")
    assert not storage.health()["ok"]
    storage.close()  # closing twice is harmless


def test_checkpoint_after_an_erasure_changes_nothing_visible(storage: Any) -> None:
    storage.write(lambda uow: uow.events.append([make_event("a"), make_event("b")], ["p1", "p2"]))
    storage.write(lambda uow: uow.events.delete_profile("p1"))
    storage.checkpoint()
    assert [e.event.message_id for e in storage.events.iter()] == ["b"]
