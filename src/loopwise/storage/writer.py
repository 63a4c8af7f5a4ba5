"""One writer thread with group commit, shared by transactional backends.

Callers queue jobs; the thread takes the first one, drains whatever else is waiting (up to
``max_batch``), runs them all in one transaction with a savepoint per job and commits once. One
fsync then covers many callers, which is what makes "durable before the reply" affordable. A job
that raises is rolled back alone; futures resolve only after the commit, so a resolved future means
the data is on disk. The backend supplies a :class:`Session` (its connection), opened and closed on
the writer thread so the connection never crosses threads.

Each job gets its own unit of work from the session. Callbacks it registers with ``on_commit`` run
on the writer thread right after the commit and before the job's future resolves: in-memory views
learn of a change only once it is on disk, and a caller whose future resolved sees them updated.
A job that fails, or whose transaction fails, has its callbacks dropped.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, Protocol, TypeVar

from loopwise.errors import StorageUnavailable

T = TypeVar("T")
TxT = TypeVar("TxT", bound="CommitCallbacks")
TxT_co = TypeVar("TxT_co", covariant=True, bound="CommitCallbacks")

Job = tuple[Callable[[Any], Any], "Future[Any]"]

log = logging.getLogger(__name__)


class CommitCallbacks:
    """The ``on_commit`` part of a unit of work (backends' units of work extend it)."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []
        self.rollback_callbacks: list[Callable[[], None]] = []

    def on_commit(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Run when this job succeeded but its transaction was then lost (a later job took
        it down, or the commit failed): for state a job kept for the jobs after it."""
        self.rollback_callbacks.append(callback)


class Session(Protocol[TxT_co]):
    """The writer's connection. Primitives raise on database failure."""

    def unit_of_work(self) -> TxT_co:
        """A fresh object handed to one job (bound to the open transaction)."""
        ...

    @property
    def in_transaction(self) -> bool:
        """False when the database dropped the whole transaction (disk full, I/O error)."""
        ...

    def begin(self) -> None: ...

    def savepoint(self) -> None: ...

    def release_savepoint(self) -> None: ...

    def rollback_savepoint(self) -> None:
        """Undo the current job's changes and release its savepoint."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


class _TransactionLost(Exception):
    """A job failed and took the whole transaction with it."""


def _unavailable(cause: BaseException) -> StorageUnavailable:
    error = StorageUnavailable(
        f"The write was not committed ({type(cause).__name__}: {cause}). Check that the database "
        "disk has free space and is writable, then retry the request."
    )
    error.__cause__ = cause
    return error


class GroupCommitWriter(Generic[TxT]):
    """Runs queued jobs on one thread, many per transaction."""

    def __init__(
        self, open_session: Callable[[], Session[TxT]], *, max_batch: int = 1000, name: str
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        self.commits = 0  # committed transactions; tests use it to see grouping
        # write health for /healthz: the last failure (None once a commit succeeds again)
        self.last_error: str | None = None
        self.last_error_at: float | None = None  # time.monotonic() of the last failure
        self.last_commit_at: float | None = None
        self._open_session = open_session
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        try:
            self._ready.result()
        except Exception as exc:
            self._closed = True
            self._thread.join()
            if isinstance(exc, StorageUnavailable):
                raise
            raise StorageUnavailable(
                f"Cannot open the database ({type(exc).__name__}: {exc}); check that the path "
                "exists, is writable and is not locked by another program."
            ) from exc

    def _failed(self, cause: BaseException) -> None:
        self.last_error = f"{type(cause).__name__}: {cause}"
        self.last_error_at = time.monotonic()

    @property
    def alive(self) -> bool:
        return not self._closed and self._thread.is_alive()

    def submit(self, job: Callable[[TxT], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:  # orders every put before the stop marker close() puts
            if self._closed:
                raise StorageUnavailable(
                    "Storage is closed; no more writes are accepted. Restart the server or open "
                    "the storage again."
                )
            self._queue.put((job, future))
        return future

    def write(self, job: Callable[[TxT], T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a write job cannot wait for another write job (it would deadlock)")
        return self.submit(job).result()

    def close(self) -> None:
        """Run what is queued, then stop the thread and close the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    # -- writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            session = self._open_session()
        except Exception as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        try:
            stopping = False
            while not stopping:
                batch, stopping = self._take_batch()
                try:
                    self._run_batch(session, batch)
                except Exception as exc:  # a bug here must not strand waiting callers
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(_unavailable(exc))
        finally:
            session.close()

    def _take_batch(self) -> tuple[list[Job], bool]:
        """Block for one job, then take whatever else is already queued."""
        batch: list[Job] = []
        item = self._queue.get()
        while item is not None:  # None is the stop marker
            batch.append(item)
            if len(batch) >= self.max_batch:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _run_batch(self, session: Session[TxT], batch: list[Job]) -> None:
        pending = [job for job in batch if job[1].set_running_or_notify_cancel()]
        while pending:
            pending = self._run_group(session, pending)

    def _run_group(self, session: Session[TxT], pending: list[Job]) -> list[Job]:
        """Run jobs in one transaction; returns the jobs still to run if it had to stop early."""
        try:
            session.begin()
        except Exception as exc:
            self._failed(exc)
            for _, future in pending:
                future.set_exception(_unavailable(exc))
            return []
        settled: list[_Settled] = []
        for index, (job, future) in enumerate(pending):
            try:
                value, error, unit = self._run_job(session, job)
            except Exception as exc:
                cause = exc.__cause__ if isinstance(exc, _TransactionLost) else exc
                assert cause is not None
                future.set_exception(_unavailable(cause))
                self._abort(session, settled, cause)
                return pending[index + 1 :]
            settled.append((future, value, error, unit))
        try:
            session.commit()
        except Exception as exc:
            self._abort(session, settled, exc)
            return []
        self.commits += 1
        self.last_error = None
        self.last_commit_at = time.monotonic()
        for future, value, failure, unit in settled:
            if failure is None:
                _run_callbacks(unit.callbacks if unit is not None else [])
                future.set_result(value)
            else:
                future.set_exception(failure)
        return []

    @staticmethod
    def _run_job(
        session: Session[TxT], job: Callable[[TxT], Any]
    ) -> tuple[Any, Exception | None, CommitCallbacks | None]:
        session.savepoint()
        unit = session.unit_of_work()
        try:
            value = job(unit)
        except Exception as exc:
            if not session.in_transaction:
                raise _TransactionLost() from exc
            session.rollback_savepoint()
            return None, exc, None
        session.release_savepoint()
        return value, None, unit

    def _abort(self, session: Session[TxT], settled: list[_Settled], cause: BaseException) -> None:
        """Nothing in this transaction survives: every job in it fails."""
        self._failed(cause)
        with contextlib.suppress(Exception):  # the original cause is what callers need to see
            if session.in_transaction:
                session.rollback()
        for future, _, error, unit in settled:
            if unit is not None:
                _run_callbacks(unit.rollback_callbacks)
            future.set_exception(error if error is not None else _unavailable(cause))


_Settled = tuple["Future[Any]", Any, "Exception | None", "CommitCallbacks | None"]


def _run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    """Views catch up with a committed change. The data is on disk whatever happens here; a
    callback that fails is a bug in a view, logged without the data it carried."""
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("a view failed to apply a committed change")
