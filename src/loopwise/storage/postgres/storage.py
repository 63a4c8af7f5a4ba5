"""The PostgreSQL backend: the system of record when one process is not enough.

Writes follow the same pattern as SQLite's: one writer connection per process, on one thread,
running queued jobs many-per-transaction with a savepoint per job
(:mod:`loopwise.storage.writer`), so units of work behave identically on every backend and one
commit (one WAL flush) serves many callers. Reads use a small pool of read-only connections
(psycopg_pool) and never wait for the writer. A dropped writer connection fails the jobs of its
transaction with ``StorageUnavailable`` and is opened again by the next transaction, so the
storage recovers by itself once the server is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import nullcontext
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

from loopwise.errors import StorageUnavailable
from loopwise.storage.health import report
from loopwise.storage.postgres.base import Connect, Connection
from loopwise.storage.postgres.catalog import PostgresCatalogStore
from loopwise.storage.postgres.config import PostgresConfigStore
from loopwise.storage.postgres.consent import PostgresAuditLog, PostgresConsentStore
from loopwise.storage.postgres.decisions import PostgresDecisionLog
from loopwise.storage.postgres.events import PostgresEventLog
from loopwise.storage.postgres.exposures import PostgresExposureStore
from loopwise.storage.postgres.identities import PostgresIdentityStore
from loopwise.storage.postgres.item_stats import PostgresItemStatsStore
from loopwise.storage.postgres.journeys import PostgresJourneyStore, PostgresOutbox
from loopwise.storage.postgres.migrate import (
    CONNECT_TIMEOUT_S,
    application_name,
    configure,
    connect,
    current_version,
    describe,
    migrate,
    migrations,
    unreachable,
)
from loopwise.storage.postgres.partitions import Partitions
from loopwise.storage.postgres.profiles import PostgresProfileStore
from loopwise.storage.postgres.segment_history import PostgresSegmentHistory
from loopwise.storage.postgres.sessions import PostgresSessionStore
from loopwise.storage.postgres.users import PostgresUserStore
from loopwise.storage.postgres.workspace_history import PostgresWorkspaceHistory
from loopwise.storage.writer import CommitCallbacks, GroupCommitWriter

T = TypeVar("T")
log = logging.getLogger(__name__)

# the tables erasure deletes from: what checkpoint() vacuums
PERSONAL_TABLES = (
    "events",
    "event_ids",
    "profiles",
    "identities",
    "consent",
    "audit",
    "exposures",
    "decisions",
    "outcomes",
    "segment_history",
    "journey_states",
    "outbox",
)
WRITER_NAME = "loopwise-writer"  # application_name, as pg_stat_activity shows it
READER_NAME = "loopwise-read"
_OPEN = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR, pq.TransactionStatus.ACTIVE)


class _Stores:
    """Every store bound to one connection getter."""

    def __init__(self, connect: Connect, *, pooled: bool, partitions: Partitions | None) -> None:
        self.events = PostgresEventLog(connect, pooled=pooled, partitions=partitions)
        self.profiles = PostgresProfileStore(connect, pooled=pooled)
        self.identities = PostgresIdentityStore(connect, pooled=pooled)
        self.consent = PostgresConsentStore(connect, pooled=pooled)
        self.audit = PostgresAuditLog(connect, pooled=pooled)
        self.exposures = PostgresExposureStore(connect, pooled=pooled)
        self.decisions = PostgresDecisionLog(connect, pooled=pooled)
        self.segment_history = PostgresSegmentHistory(connect, pooled=pooled)
        self.item_stats = PostgresItemStatsStore(connect, pooled=pooled)
        self.catalog = PostgresCatalogStore(connect, pooled=pooled)
        self.config = PostgresConfigStore(connect, pooled=pooled)
        self.users = PostgresUserStore(connect, pooled=pooled)
        self.sessions = PostgresSessionStore(connect, pooled=pooled)
        self.workspace_history = PostgresWorkspaceHistory(connect, pooled=pooled)
        self.journeys = PostgresJourneyStore(connect, pooled=pooled)
        self.outbox = PostgresOutbox(connect, pooled=pooled)


class PostgresUnitOfWork(CommitCallbacks, _Stores):
    """One job's stores on the writer connection (valid only while the job runs)."""

    def __init__(self, conn: Connection, partitions: Partitions) -> None:
        CommitCallbacks.__init__(self)
        _Stores.__init__(self, lambda: nullcontext(conn), pooled=False, partitions=partitions)
        # the open transaction's connection, for work no store covers (projection claims)
        self.connection = conn
        # the transaction's first job: it holds no lock yet (projection claims may wait then)
        self.first_in_transaction = False


class _Session:
    """The writer's connection, opened on the writer thread and again after it is lost."""

    def __init__(self, url: str, schema: str | None) -> None:
        self._url = url
        self._schema = schema
        self._conn = connect(url, schema, name=WRITER_NAME)
        self.partitions = Partitions()
        self._jobs = 0  # jobs handed a unit of work in the open transaction

    def unit_of_work(self) -> PostgresUnitOfWork:
        self._jobs += 1
        unit = PostgresUnitOfWork(self._conn, self.partitions)
        unit.first_in_transaction = self._jobs == 1
        return unit

    @property
    def in_transaction(self) -> bool:
        return not self._conn.broken and self._conn.info.transaction_status in _OPEN

    def begin(self) -> None:
        self._jobs = 0
        if self._conn.broken or self._conn.closed:
            self._reconnect()
        try:
            self._conn.execute("BEGIN")
        except psycopg.OperationalError:
            if not self._conn.broken:
                raise
            # the server dropped the idle connection (restart, failover, idle timeout): nothing
            # of this transaction has run yet, so a fresh connection can begin it
            self._reconnect()
            self._conn.execute("BEGIN")

    def _reconnect(self) -> None:
        self._conn.close()
        self.partitions.forget()
        self._conn = connect(self._url, self._schema, name=WRITER_NAME)
        log.info("reconnected the PostgreSQL writer to %s", describe(self._url))

    def savepoint(self) -> None:
        self._conn.execute("SAVEPOINT job")

    def release_savepoint(self) -> None:
        self._conn.execute("RELEASE SAVEPOINT job")

    def rollback_savepoint(self) -> None:
        self.partitions.forget()  # a partition the job created is gone with it
        self._conn.execute("ROLLBACK TO SAVEPOINT job")
        self._conn.execute("RELEASE SAVEPOINT job")

    def commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            self.partitions.forget()
            raise

    def rollback(self) -> None:
        self.partitions.forget()
        self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()


class PostgresStorage(_Stores):
    """``Storage`` on a PostgreSQL database (in ``schema`` when given), migrated on open."""

    kind = "postgres"

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        max_batch: int = 1000,
        pool_size: int = 4,
        run_migrations: bool = True,
    ) -> None:
        self.schema = schema
        self.where = describe(url)
        if run_migrations:
            migrate(url, schema)
        self._url = url
        self.url = url  # libpq's URL (it may carry a password: never logged)
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": application_name(READER_NAME, schema),
            },
            configure=lambda conn: configure(conn, schema, read_only=True),
            timeout=CONNECT_TIMEOUT_S,
            name=READER_NAME,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            self._check_version()
            self._writer: GroupCommitWriter[PostgresUnitOfWork] = GroupCommitWriter(
                lambda: _Session(url, schema),
                max_batch=max_batch,
                name="loopwise-postgres-writer",
            )
        except BaseException as exc:
            self._pool.close()
            if isinstance(exc, psycopg.Error):
                raise unreachable(url, exc) from exc
            raise
        super().__init__(self._pool.connection, pooled=True, partitions=None)

    def _check_version(self) -> None:
        with self._pool.connection() as conn:
            version = current_version(conn)
        newest = migrations()[-1].version
        if version != newest:
            raise StorageUnavailable(
                f"The database at {self.where} is at storage schema version {version}, this "
                f"Loopwise needs {newest}; run `loopwise migrate --database-url ...` first."
            )

    @property
    def commits(self) -> int:
        """Transactions committed so far (fewer than jobs when group commit batches them)."""
        return self._writer.commits

    def submit(self, job: Callable[[PostgresUnitOfWork], T]) -> Future[T]:
        return self._writer.submit(job)

    def write(self, job: Callable[[PostgresUnitOfWork], T]) -> T:
        return self._writer.write(job)

    def health(self) -> dict[str, Any]:
        """Read and write health. A failed last commit makes ``write`` say why (server gone,
        disk full) until a commit succeeds again."""
        try:
            with self._pool.connection(timeout=5) as conn:
                conn.execute("SELECT 1")
            read = "ok"
        except psycopg.Error as exc:
            read = f"failing: {type(exc).__name__}: {exc}"
        details = {"database": self.where} | ({"schema": self.schema} if self.schema else {})
        return report(self.kind, self._writer, read, **details)

    def probe_write(self) -> None:
        """A tiny write, to learn whether a failing server has recovered."""
        self.write(lambda uow: uow.config.put_meta("health_probe", "ok"))

    def checkpoint(self) -> None:
        """VACUUM the tables erasure deletes from, so the erased rows' dead versions are pruned
        from heap pages and indexes now rather than whenever autovacuum comes by. PostgreSQL
        keeps its own write-ahead log; nothing else is needed at shutdown."""
        try:
            with connect(self._url, self.schema, name="loopwise-vacuum") as conn:
                conn.execute(f"VACUUM {', '.join(PERSONAL_TABLES)}")
        except psycopg.Error as exc:
            raise unreachable(self._url, exc) from exc

    def close(self) -> None:
        """Run the queued writes, stop the writer and close the pool."""
        self._writer.close()
        self._pool.close()
