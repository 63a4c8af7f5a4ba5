"""GroupCommitWriter's failure paths, with a session that fails on demand."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from loopwise.errors import StorageUnavailable
from loopwise.storage.writer import CommitCallbacks, GroupCommitWriter
from tests.storage.conftest import writer_held

GATE = ["begin", "savepoint", "release", "commit"]


class FakeUnit(CommitCallbacks):
    def __init__(self, session: FakeSession) -> None:
        super().__init__()
        self.session = session

    def run(self, name: str) -> str:
        """A job body: ``bad*`` raises; ``lost*`` also makes the database drop the transaction."""
        if name.startswith("lost"):
            self.session.active = False
            raise sqlite3.OperationalError("database or disk is full")
        if name.startswith("bad"):
            raise ValueError(name)
        self.on_commit(lambda: self.session.log.append(f"applied {name}"))
        return name


class FakeSession:
    """Logs what the writer asks for; ``failing_commit`` makes that commit fail."""

    def __init__(self, failing_commit: int = 0) -> None:
        self.log: list[str] = []
        self.active = False
        self.commit_calls = 0
        self.failing_commit = failing_commit

    def unit_of_work(self) -> FakeUnit:
        return FakeUnit(self)

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
            self.active = False
            raise sqlite3.OperationalError("disk I/O error")
        self.active = False
        self.log.append("commit")

    def rollback(self) -> None:
        self.active = False
        self.log.append("rollback")

    def close(self) -> None:
        self.log.append("close")


def job(name: str) -> Callable[[FakeUnit], str]:
    return lambda unit: unit.run(name)


def open_writer(session: FakeSession, **kw: Any) -> GroupCommitWriter[FakeUnit]:
    return GroupCommitWriter(lambda: session, name="test-writer", **kw)


def test_a_group_runs_each_job_in_a_savepoint_and_applies_callbacks_after_commit() -> None:
    session = FakeSession()
    writer = open_writer(session)
    try:
        with writer_held(writer):
            futures = [writer.submit(job(name)) for name in ("a", "bad", "c")]
        assert futures[0].result(timeout=10) == "a"
        with pytest.raises(ValueError, match="bad"):
            futures[1].result(timeout=10)
        assert futures[2].result(timeout=10) == "c"
        assert session.log == [
            *GATE,
            *["begin", "savepoint", "release", "savepoint", "rollback_to"],
            *["savepoint", "release", "commit", "applied a", "applied c"],
        ]
        assert writer.commits == 2 and writer.last_error is None
    finally:
        writer.close()
    assert session.log[-1] == "close"


def test_a_failed_commit_fails_every_job_in_its_group_and_drops_callbacks() -> None:
    session = FakeSession(failing_commit=2)  # commit 1 is the held job's
    writer = open_writer(session)
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
        assert writer.last_error is not None and "disk I/O error" in writer.last_error
        assert not any(line.startswith("applied") for line in session.log)
        assert writer.submit(job("d")).result(timeout=10) == "d"  # the writer carries on
        assert writer.commits == 2 and writer.last_error is None
        assert session.log[-1] == "applied d"
    finally:
        writer.close()


def test_a_job_that_loses_the_transaction_fails_its_group_and_the_rest_run_anew() -> None:
    session = FakeSession()
    writer = open_writer(session)
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
            *["begin", "savepoint", "release", "commit", "applied c"],
        ]
    finally:
        writer.close()


def test_queued_jobs_commit_together_up_to_max_batch() -> None:
    session = FakeSession()
    writer = open_writer(session, max_batch=10)
    try:
        with writer_held(writer):
            futures = [writer.submit(job(f"j{n}")) for n in range(35)]
        assert [f.result(timeout=10) for f in futures] == [f"j{n}" for n in range(35)]
        assert writer.commits == 1 + 4  # the held job, then 35 in groups of at most 10
    finally:
        writer.close()


def test_a_cancelled_job_never_runs() -> None:
    session = FakeSession()
    writer = open_writer(session)
    try:
        with writer_held(writer):
            cancelled = writer.submit(job("cancelled"))
            kept = writer.submit(job("kept"))
            assert cancelled.cancel()
        assert kept.result(timeout=10) == "kept"
        assert "applied cancelled" not in session.log
    finally:
        writer.close()


def test_a_session_that_cannot_open_is_storage_unavailable() -> None:
    def broken() -> FakeSession:
        raise sqlite3.OperationalError("unable to open database file")

    with pytest.raises(StorageUnavailable, match="Cannot open the database"):
        GroupCommitWriter(broken, name="test-writer")


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        open_writer(FakeSession(), max_batch=0)
