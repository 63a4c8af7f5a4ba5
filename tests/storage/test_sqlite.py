"""SQLite-only behaviour: durability, pragmas, group commit, threads, writer failure paths."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from loopwise.clock import isoformat
from loopwise.errors import StorageUnavailable
from loopwise.storage.sqlite import SqliteStorage, SqliteTransaction
from loopwise.storage.writer import GroupCommitWriter
from tests.storage.conftest import T0, make_event


@contextmanager
def writer_held(storage: SqliteStorage | GroupCommitWriter[Any]) -> Iterator[None]:
    """Keep the writer busy inside a job so that what is submitted meanwhile queues up."""
    started, release = threading.Event(), threading.Event()

    def gate(tx: object) -> None:
        started.set()
        release.wait(timeout=10)

    future = storage.submit(gate)
    assert started.wait(timeout=10)
    try:
        yield
    finally:
        release.set()
        future.result(timeout=10)


def insert_one(message_id: str) -> Callable[[SqliteTransaction], list[bool]]:
    return lambda tx: tx.insert_events([make_event(message_id)], ["p1"])


def put_meta(key: str) -> Callable[[SqliteTransaction], None]:
    return lambda tx: tx.put_meta(key, "v")


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "data" / "loopwise.db"
    storage = SqliteStorage(path)

    def job(tx: SqliteTransaction) -> None:
        tx.insert_events([make_event("m1", "u1"), make_event("m2", "u2")], ["p1", "p2"])
        tx.upsert_profiles([{"id": "p1", "events": 1}])
        tx.link_identity("u1", "p1")
        tx.insert_decision({"decision_id": "d1", "profile_id": "p1", "created_at": isoformat(T0)})
        tx.record_outcome("d1", {"kind": "click"})
        tx.put_config("workspace", {"slots": ["hero"]})

    storage.write(job)
    storage.close()

    reopened = SqliteStorage(path)
    try:
        assert [e.message_id for e in reopened.iter_events()] == ["m1", "m2"]
        assert reopened.get_profile("p1") == {"id": "p1", "events": 1}
        assert reopened.identities() == {"u1": "p1"}
        decision = reopened.get_decision("d1")
        assert decision is not None and decision["outcomes"] == [{"kind": "click"}]
        assert reopened.get_config("workspace") == {"slots": ["hero"]}
        assert reopened.get_meta("schema_version") == "1"
        retry = reopened.write(lambda tx: tx.insert_events([make_event("m2")], ["p2"]))
        assert retry == [False]
    finally:
        reopened.close()


def test_writer_runs_in_wal_mode_with_full_sync(sqlite_storage: SqliteStorage) -> None:
    pragmas = sqlite_storage.writer_pragmas()
    assert pragmas["journal_mode"] == "wal"
    assert pragmas["synchronous"] == 2  # FULL
    assert pragmas["foreign_keys"] == 0
    assert pragmas["busy_timeout"] > 0
    assert pragmas["secure_delete"] == 1  # erased rows are overwritten, not left in free pages
    with sqlite3.connect(sqlite_storage.path) as conn:  # WAL is a property of the file
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_submitters_share_commits(sqlite_storage: SqliteStorage) -> None:
    barrier = threading.Barrier(8)

    def submitter(worker: int) -> list[Future[list[bool]]]:
        barrier.wait()
        return [sqlite_storage.submit(insert_one(f"w{worker}-{n}")) for n in range(25)]

    commits_before = sqlite_storage.commits
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [f for batch in pool.map(submitter, range(8)) for f in batch]
    assert [f.result(timeout=30) for f in futures] == [[True]] * 200
    assert sqlite_storage.count_events() == 200
    assert sqlite_storage.commits - commits_before < 200


def test_queued_jobs_commit_together_up_to_max_batch(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "loopwise.db", max_batch=10)
    try:
        with writer_held(storage):
            commits_before = storage.commits
            futures = [storage.submit(put_meta(f"k{n}")) for n in range(35)]
        for future in futures:
            future.result(timeout=10)
        # the held job's own transaction, then 35 queued jobs in groups of at most 10
        assert storage.commits - commits_before == 1 + 4
        assert storage.get_meta("k34") == "v"
    finally:
        storage.close()


def test_a_failing_job_in_a_group_leaves_nothing_and_spares_the_others(
    sqlite_storage: SqliteStorage,
) -> None:
    def bad(tx: SqliteTransaction) -> None:
        tx.insert_events([make_event("bad")], ["p1"])
        tx.upsert_profiles([{"id": "p-bad"}])
        raise KeyError("missing")

    with writer_held(sqlite_storage):
        commits_before = sqlite_storage.commits
        good1 = sqlite_storage.submit(lambda tx: tx.insert_events([make_event("g1")], ["p1"]))
        failing = sqlite_storage.submit(bad)
        good2 = sqlite_storage.submit(lambda tx: tx.upsert_profiles([{"id": "p-good"}]))
    assert good1.result(timeout=10) == [True]
    assert good2.result(timeout=10) is None
    with pytest.raises(KeyError):
        failing.result(timeout=10)
    assert sqlite_storage.commits - commits_before == 2  # held job, then one group of three
    assert [e.message_id for e in sqlite_storage.iter_events()] == ["g1"]
    assert sqlite_storage.get_profile("p-bad") is None
    assert sqlite_storage.get_profile("p-good") == {"id": "p-good"}


def test_close_runs_queued_jobs_then_refuses_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "loopwise.db"
    storage = SqliteStorage(path)
    with writer_held(storage):
        futures = [storage.submit(insert_one(f"q{n}")) for n in range(20)]
        closer = threading.Thread(target=storage.close)
        closer.start()
    closer.join(timeout=10)
    assert not closer.is_alive()
    assert [f.result(timeout=10) for f in futures] == [[True]] * 20
    with pytest.raises(StorageUnavailable, match="closed"):
        storage.submit(lambda tx: None)
    assert not storage.healthy()
    reopened = SqliteStorage(path)
    assert reopened.count_events() == 20
    reopened.close()


def test_reads_from_other_threads_see_committed_data(sqlite_storage: SqliteStorage) -> None:
    with ThreadPoolExecutor(max_workers=1) as reader:
        assert reader.submit(sqlite_storage.get_profile, "p1").result() is None
        sqlite_storage.write(lambda tx: tx.upsert_profiles([{"id": "p1", "n": 1}]))
        # the same reader thread (and its connection) sees the new commit
        assert reader.submit(sqlite_storage.get_profile, "p1").result() == {"id": "p1", "n": 1}
        sqlite_storage.write(lambda tx: tx.upsert_profiles([{"id": "p1", "n": 2}]))
        assert reader.submit(sqlite_storage.get_profile, "p1").result() == {"id": "p1", "n": 2}
    assert sqlite_storage.healthy()


def test_reads_are_not_blocked_by_a_running_write(sqlite_storage: SqliteStorage) -> None:
    sqlite_storage.write(lambda tx: tx.put_meta("k", "old"))
    with writer_held(sqlite_storage):
        pending = sqlite_storage.submit(lambda tx: tx.put_meta("k", "new"))
        assert sqlite_storage.get_meta("k") == "old"
    pending.result(timeout=10)
    assert sqlite_storage.get_meta("k") == "new"


def test_iterators_stream_past_one_fetch_batch(sqlite_storage: SqliteStorage) -> None:
    events = [make_event(f"m{n:04d}", minutes=n) for n in range(1200)]
    sqlite_storage.write(lambda tx: tx.insert_events(events, ["p1", "p2"] * 600))

    def decisions(tx: SqliteTransaction) -> None:
        for n in range(1100):
            created = isoformat(T0 + timedelta(seconds=n))
            tx.insert_decision({"decision_id": f"d{n}", "profile_id": "p", "created_at": created})
            tx.record_outcome(f"d{n}", {"n": n})

    sqlite_storage.write(decisions)
    assert [e.message_id for e in sqlite_storage.iter_events()] == [e.message_id for e in events]
    assert len(list(sqlite_storage.iter_events("p2"))) == 600
    streamed = list(sqlite_storage.iter_decisions())
    assert [d["decision_id"] for d in streamed] == [f"d{n}" for n in range(1100)]
    assert all(d["outcomes"] == [{"n": n}] for n, d in enumerate(streamed))


def test_opening_a_file_that_is_not_a_database_is_storage_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(StorageUnavailable) as caught:
        SqliteStorage(path)
    assert "check that the path" in caught.value.detail


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loopwise.db"
    storage = SqliteStorage(path)
    storage.write(lambda tx: tx.put_meta("schema_version", "99"))
    storage.close()
    with pytest.raises(StorageUnavailable) as caught:
        SqliteStorage(path)
    assert "schema version 99" in caught.value.detail
    assert "upgrade Loopwise" in caught.value.detail


# -- the writer's failure paths, with a session that fails on demand ---------------------------


class FakeSession:
    """Logs what the writer asks for; ``failing_commit`` and ``run`` inject database failures."""

    def __init__(self, failing_commit: int = 0) -> None:
        self.log: list[str] = []
        self.active = False
        self.commit_calls = 0
        self.failing_commit = failing_commit
        self.transaction = self

    @property
    def in_transaction(self) -> bool:
        return self.active

    def begin(self) -> None:
        self.active = True
        self.log.append("begin")

    def savepoint(self) -> None:
        self.log.append("savepoint")

    def release_savepoint(self) -> None:
        self.log.append("release")

    def rollback_savepoint(self) -> None:
        self.log.append("rollback_to")

    def commit(self) -> None:
        self.commit_calls += 1
        if self.commit_calls == self.failing_commit:
            raise sqlite3.OperationalError("disk I/O error")
        self.active = False
        self.log.append("commit")

    def rollback(self) -> None:
        self.active = False
        self.log.append("rollback")

    def close(self) -> None:
        self.log.append("close")

    def run(self, name: str) -> str:
        """A job body: ``bad*`` raises; ``lost*`` also makes the database drop the transaction."""
        if name.startswith("lost"):
            self.active = False
            raise sqlite3.OperationalError("database or disk is full")
        if name.startswith("bad"):
            raise ValueError(name)
        return name


def job(name: str) -> Callable[[FakeSession], str]:
    return lambda tx: tx.run(name)


GATE = ["begin", "savepoint", "release", "commit"]


def test_a_failed_commit_fails_every_job_in_its_group() -> None:
    session = FakeSession(failing_commit=2)  # commit 1 is the held job's
    writer: GroupCommitWriter[FakeSession] = GroupCommitWriter(lambda: session, name="test")
    try:
        with writer_held(writer):
            futures = [writer.submit(job(name)) for name in ("a", "bad", "c")]
        errors = [future.exception(timeout=10) for future in futures]
        assert isinstance(errors[0], StorageUnavailable)
        assert isinstance(errors[0].__cause__, sqlite3.OperationalError)
        assert isinstance(errors[1], ValueError)  # a failed job keeps its own error
        assert isinstance(errors[2], StorageUnavailable)
        assert "not committed" in errors[2].detail
        assert writer.commits == 1
        assert session.log == [
            *GATE,
            *["begin", "savepoint", "release", "savepoint", "rollback_to", "savepoint"],
            *["release", "rollback"],
        ]
        assert writer.submit(job("d")).result(timeout=10) == "d"  # the writer carries on
        assert writer.commits == 2
    finally:
        writer.close()
    assert session.log[-1] == "close"


def test_a_job_that_loses_the_transaction_fails_its_group_and_the_rest_run_anew() -> None:
    session = FakeSession()
    writer: GroupCommitWriter[FakeSession] = GroupCommitWriter(lambda: session, name="test")
    try:
        with writer_held(writer):
            futures = [writer.submit(job(name)) for name in ("a", "lost", "c")]
        first, lost = (future.exception(timeout=10) for future in futures[:2])
        assert isinstance(first, StorageUnavailable)  # committed nothing: its work was dropped
        assert isinstance(lost, StorageUnavailable)
        assert isinstance(lost.__cause__, sqlite3.OperationalError)
        assert futures[2].result(timeout=10) == "c"
        assert session.log == [
            *GATE,
            *["begin", "savepoint", "release", "savepoint"],
            *["begin", "savepoint", "release", "commit"],
        ]
    finally:
        writer.close()


def test_a_cancelled_job_never_runs() -> None:
    session = FakeSession()
    writer: GroupCommitWriter[FakeSession] = GroupCommitWriter(lambda: session, name="test")
    ran: list[str] = []
    try:
        with writer_held(writer):
            cancelled = writer.submit(lambda tx: ran.append("cancelled"))
            kept = writer.submit(lambda tx: ran.append("kept"))
            assert cancelled.cancel()
        kept.result(timeout=10)
        assert ran == ["kept"]
    finally:
        writer.close()


def test_a_write_job_cannot_wait_for_another(sqlite_storage: SqliteStorage) -> None:
    with pytest.raises(RuntimeError, match="deadlock"):
        sqlite_storage.write(lambda tx: sqlite_storage.write(lambda inner: None))
    assert sqlite_storage.write(lambda tx: "still writing") == "still writing"
