"""The in-memory backend, with the SQLite backend's semantics: for tests and benchmarks.

Jobs run on a writer thread through the same :class:`~loopwise.storage.writer.GroupCommitWriter`
as SQLite and PostgreSQL, not inline under a lock. That way grouping, the savepoint per job, the
order of ``on_commit`` callbacks, what a failed job or commit drops, and the deadlock check of a
job that waits for another job are one piece of code on every backend; and a job runs on another
thread than its caller, as it does in production, so code that only works when jobs run inline
fails in unit tests too. The cost is one thread hand-off per write (see benchmarks/RESULTS.md).

Savepoints are positions in an undo log (:mod:`loopwise.storage.memory.base`), and readers see
only committed rows, copied out under a short lock, never a running job's: as with SQLite's WAL,
a read neither sees uncommitted writes nor waits for the writer.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from loopwise.storage.health import report
from loopwise.storage.memory.base import Access, Committed, Transaction
from loopwise.storage.memory.catalog import MemoryCatalogStore
from loopwise.storage.memory.config import MemoryConfigStore
from loopwise.storage.memory.consent import MemoryAuditLog, MemoryConsentStore
from loopwise.storage.memory.decisions import MemoryDecisionLog
from loopwise.storage.memory.events import MemoryEventLog
from loopwise.storage.memory.exposures import MemoryExposureStore
from loopwise.storage.memory.identities import MemoryIdentityStore
from loopwise.storage.memory.item_stats import MemoryItemStatsStore
from loopwise.storage.memory.journeys import MemoryJourneyStore, MemoryOutbox
from loopwise.storage.memory.profiles import MemoryProfileStore
from loopwise.storage.memory.segment_history import MemorySegmentHistory
from loopwise.storage.memory.sessions import MemorySessionStore
from loopwise.storage.memory.users import MemoryUserStore
from loopwise.storage.memory.workspace_history import MemoryWorkspaceHistory
from loopwise.storage.writer import CommitCallbacks, GroupCommitWriter

T = TypeVar("T")


class _Stores:
    """Every store bound to one way of reaching the tables."""

    def __init__(self, db: Access) -> None:
        self.events = MemoryEventLog(db)
        self.profiles = MemoryProfileStore(db)
        self.identities = MemoryIdentityStore(db)
        self.consent = MemoryConsentStore(db)
        self.audit = MemoryAuditLog(db)
        self.exposures = MemoryExposureStore(db)
        self.decisions = MemoryDecisionLog(db)
        self.segment_history = MemorySegmentHistory(db)
        self.item_stats = MemoryItemStatsStore(db)
        self.catalog = MemoryCatalogStore(db)
        self.config = MemoryConfigStore(db)
        self.users = MemoryUserStore(db)
        self.sessions = MemorySessionStore(db)
        self.workspace_history = MemoryWorkspaceHistory(db)
        self.journeys = MemoryJourneyStore(db)
        self.outbox = MemoryOutbox(db)


class MemoryUnitOfWork(CommitCallbacks, _Stores):
    """One job's stores on the writer's working copy (valid only while the job runs)."""

    def __init__(self, transaction: Transaction) -> None:
        CommitCallbacks.__init__(self)
        _Stores.__init__(self, transaction)


class MemorySession:
    """The writer's side: a transaction is everything logged since ``begin``."""

    def __init__(self, committed: Committed) -> None:
        self._committed = committed
        self._transaction = Transaction()
        self._savepoints: list[int] = []
        self._active = False

    def unit_of_work(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self._transaction)

    @property
    def in_transaction(self) -> bool:
        return self._active

    def begin(self) -> None:
        self._active = True

    def savepoint(self) -> None:
        self._savepoints.append(len(self._transaction.undo))

    def release_savepoint(self) -> None:
        self._savepoints.pop()

    def rollback_savepoint(self) -> None:
        self._transaction.undo_to(self._savepoints.pop())

    def commit(self) -> None:
        self._committed.publish(self._transaction.tables, self._transaction.touched())
        self._end()

    def rollback(self) -> None:
        self._transaction.undo_to(0)
        self._end()

    def _end(self) -> None:
        self._transaction.undo.clear()
        self._savepoints.clear()
        self._active = False

    def close(self) -> None:
        self._committed.close()


class MemoryStorage(_Stores):
    """``Storage`` in dicts of encoded rows; gone when the process ends."""

    kind = "memory"

    def __init__(self, *, max_batch: int = 1000) -> None:
        self._committed = Committed()
        super().__init__(self._committed)
        self._writer: GroupCommitWriter[MemoryUnitOfWork] = GroupCommitWriter(
            lambda: MemorySession(self._committed),
            max_batch=max_batch,
            name="loopwise-memory-writer",
        )

    @property
    def commits(self) -> int:
        """Transactions committed so far (fewer than jobs when group commit batches them)."""
        return self._writer.commits

    def submit(self, job: Callable[[MemoryUnitOfWork], T]) -> Future[T]:
        return self._writer.submit(job)

    def write(self, job: Callable[[MemoryUnitOfWork], T]) -> T:
        return self._writer.write(job)

    def health(self) -> dict[str, Any]:
        read = "failing: storage is closed" if self._committed.closed else "ok"
        return report(self.kind, self._writer, read)

    def probe_write(self) -> None:
        """A tiny write, as the other backends offer (memory never runs out of disk)."""
        self.write(lambda uow: uow.config.put_meta("health_probe", "ok"))

    def checkpoint(self) -> None:
        """Nothing to fold: memory has no write-ahead log, and erased rows are gone."""

    def close(self) -> None:
        """Run the queued writes, then stop the writer; reads fail from then on."""
        self._writer.close()
        self._committed.close()
