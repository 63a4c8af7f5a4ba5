"""The default, embedded backend: one SQLite file in WAL mode.

Writes follow Datasette's pattern: one writer thread owns the only write connection and runs queued
jobs many-per-transaction (:mod:`loopwise.storage.writer`); group commit pays one fsync for many
requests. Reads use per-thread read-only connections, which WAL lets run beside the writer.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from loopwise.errors import StorageUnavailable
from loopwise.storage.health import report
from loopwise.storage.sqlite.base import Connect, read_error
from loopwise.storage.sqlite.catalog import SqliteCatalogStore
from loopwise.storage.sqlite.config import SqliteConfigStore
from loopwise.storage.sqlite.consent import SqliteAuditLog, SqliteConsentStore
from loopwise.storage.sqlite.decisions import SqliteDecisionLog
from loopwise.storage.sqlite.events import SqliteEventLog
from loopwise.storage.sqlite.exposures import SqliteExposureStore
from loopwise.storage.sqlite.identities import SqliteIdentityStore
from loopwise.storage.sqlite.item_stats import SqliteItemStatsStore
from loopwise.storage.sqlite.journeys import SqliteJourneyStore, SqliteOutbox
from loopwise.storage.sqlite.profiles import SqliteProfileStore
from loopwise.storage.sqlite.schema import BUSY_TIMEOUT_MS, configure_writer
from loopwise.storage.sqlite.segment_history import SqliteSegmentHistory
from loopwise.storage.sqlite.sessions import SqliteSessionStore
from loopwise.storage.sqlite.users import SqliteUserStore
from loopwise.storage.sqlite.workspace_history import SqliteWorkspaceHistory
from loopwise.storage.writer import CommitCallbacks, GroupCommitWriter

T = TypeVar("T")
log = logging.getLogger(__name__)


class _Stores:
    """Every store bound to one connection getter."""

    def __init__(self, connect: Connect) -> None:
        self.events = SqliteEventLog(connect)
        self.profiles = SqliteProfileStore(connect)
        self.identities = SqliteIdentityStore(connect)
        self.consent = SqliteConsentStore(connect)
        self.audit = SqliteAuditLog(connect)
        self.exposures = SqliteExposureStore(connect)
        self.decisions = SqliteDecisionLog(connect)
        self.segment_history = SqliteSegmentHistory(connect)
        self.item_stats = SqliteItemStatsStore(connect)
        self.catalog = SqliteCatalogStore(connect)
        self.config = SqliteConfigStore(connect)
        self.users = SqliteUserStore(connect)
        self.sessions = SqliteSessionStore(connect)
        self.workspace_history = SqliteWorkspaceHistory(connect)
        self.journeys = SqliteJourneyStore(connect)
        self.outbox = SqliteOutbox(connect)


class SqliteUnitOfWork(CommitCallbacks, _Stores):
    """One job's stores on the writer connection (valid only while the job runs)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        CommitCallbacks.__init__(self)
        _Stores.__init__(self, lambda: conn)
        self._conn = conn

    def pragma(self, name: str) -> Any:
        """The writer connection's setting ``name`` (diagnostics)."""
        if not name.split("=")[0].strip().isidentifier():
            raise ValueError(f"not a pragma: {name!r}")
        row = self._conn.execute(f"PRAGMA {name}").fetchone()
        return row[0] if row else None


class _Session:
    """The writer's connection, opened on the writer thread."""

    def __init__(self, path: Path, warnings: list[str], max_page_count: int | None) -> None:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
        try:
            warnings.extend(configure_writer(conn, path))
            if max_page_count is not None:  # fault tests: a "disk" that fills up
                conn.execute(f"PRAGMA max_page_count = {int(max_page_count)}")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def unit_of_work(self) -> SqliteUnitOfWork:
        return SqliteUnitOfWork(self._conn)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def savepoint(self) -> None:
        self._conn.execute("SAVEPOINT job")

    def release_savepoint(self) -> None:
        self._conn.execute("RELEASE job")

    def rollback_savepoint(self) -> None:
        self._conn.execute("ROLLBACK TO job")
        self._conn.execute("RELEASE job")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        self._conn.execute("ROLLBACK")

    def close(self) -> None:
        try:  # a clean shutdown leaves the data in the database file, not in the -wal beside it
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("checkpoint at shutdown failed: %s", exc)
        self._conn.close()


class _Readers:
    """One read-only connection per thread, closed with the storage or when the thread is gone."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._closed = False

    def get(self) -> sqlite3.Connection:
        if self._closed:
            raise _closed_error()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise _closed_error()
            self._close_orphans()
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._open.append((weakref.ref(threading.current_thread()), conn))
        self._local.conn = conn
        return conn

    def _close_orphans(self) -> None:
        keep = []
        for thread_ref, conn in self._open:
            thread = thread_ref()
            if thread is None or not thread.is_alive():
                conn.close()
            else:
                keep.append((thread_ref, conn))
        self._open = keep

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _, conn in self._open:
                conn.close()
            self._open = []


def _closed_error() -> StorageUnavailable:
    return StorageUnavailable(
        "Storage is closed. Restart the server or open the storage again before using it."
    )


class SqliteStorage(_Stores):
    """``Storage`` on one SQLite file (created with its schema when missing)."""

    kind = "sqlite"

    def __init__(
        self, path: Path, *, max_batch: int = 1000, max_page_count: int | None = None
    ) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(
                f"Cannot create the directory for {self.path} ({exc}); choose a writable path."
            ) from exc
        self.warnings: list[str] = []  # what start-up found damaged or missing
        self._writer: GroupCommitWriter[SqliteUnitOfWork] = GroupCommitWriter(
            lambda: _Session(self.path, self.warnings, max_page_count),
            max_batch=max_batch,
            name="loopwise-sqlite-writer",
        )
        self._readers = _Readers(self.path)
        super().__init__(self._readers.get)
        for warning in self.warnings:
            log.warning("%s", warning)

    @property
    def commits(self) -> int:
        """Transactions committed so far (fewer than jobs when group commit batches them)."""
        return self._writer.commits

    def submit(self, job: Callable[[SqliteUnitOfWork], T]) -> Future[T]:
        return self._writer.submit(job)

    def write(self, job: Callable[[SqliteUnitOfWork], T]) -> T:
        return self._writer.write(job)

    def writer_pragmas(self) -> dict[str, Any]:
        """The durability settings the writer runs with, as SQLite reports them."""
        names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "secure_delete")
        return self.write(lambda uow: {name: uow.pragma(name) for name in names})

    def set_max_page_count(self, pages: int) -> None:
        """Fault tests: cap the database size, as a full disk would."""
        self.write(lambda uow: uow.pragma(f"max_page_count = {int(pages)}"))

    def health(self) -> dict[str, Any]:
        """Read and write health. A failed last commit makes ``write`` say why (disk full, I/O
        error) until a commit succeeds again; ``loopwise serve``'s /healthz reports it."""
        try:
            conn = self._readers.get()
            conn.execute("SELECT 1").fetchone()
            read = "ok"
        except (sqlite3.Error, StorageUnavailable) as exc:
            read = f"failing: {exc}"
        return report(self.kind, self._writer, read, warnings=list(self.warnings))

    def probe_write(self) -> None:
        """A tiny write, to learn whether a failing disk has recovered."""
        self.write(lambda uow: uow.config.put_meta("health_probe", "ok"))

    def checkpoint(self) -> None:
        """``wal_checkpoint(TRUNCATE)`` on a short-lived connection: copies the WAL into the
        database file and truncates it (readers mid-transaction may keep some frames until the
        next checkpoint; idle readers do not)."""
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            raise read_error(exc) from exc
        finally:
            conn.close()

    def backup(self, destination: Path) -> None:
        """A consistent copy of the database at ``destination`` while the server runs (SQLite's
        online backup API), then ``integrity_check`` on the copy."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(self.path, isolation_level=None)
        target = sqlite3.connect(destination, isolation_level=None)
        try:
            source.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            source.backup(target, pages=1024)
            ok = target.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                raise StorageUnavailable(f"The backup at {destination} failed its check: {ok}")
        finally:
            target.close()
            source.close()

    def close(self) -> None:
        """Run the queued writes, stop the writer (checkpointing the WAL) and close readers."""
        self._writer.close()
        self._readers.close()
