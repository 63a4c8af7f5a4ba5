"""Projection partitions on PostgreSQL: who may fold a profile's events right now.

Every profile id hashes into one of :data:`PARTITIONS` partitions, each a row of
``projection_partitions``. A write job that reads or writes profiles (ingest's fold, an erasure)
first claims the partitions of every profile it touches with ``SELECT ... FOR UPDATE SKIP
LOCKED`` inside its own transaction. The row locks last until that transaction commits, so two
workers never fold the same profile at once, and the second one folds on top of what the first
committed: one profile's events are applied in commit order, and (the message-id dedupe running
in the same transaction) exactly once.

Waiting is safe only for a job that holds no lock: the first job of its transaction (a group
commit) waits for busy partitions, in partition order, up to :data:`WAIT_FIRST_MS`. Every later
job of the transaction uses ``SKIP LOCKED``: a busy partition makes it fail with
:class:`PartitionBusy` (rolled back to its savepoint, the rest of the group commit goes on) and
the caller submits it again a moment later (:func:`retrying`), when it is likely the first job
of the next transaction. A later job that waited would hold its transaction's earlier claims
(and the log-position lock) while waiting for a worker that may be waiting for it: a deadlock.
Since only lock-free jobs ever wait, no cycle can form. Row locks taken after a savepoint are
released when the job is rolled back to it, so a failed claim leaves nothing held.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import psycopg

from loopwise.errors import StorageUnavailable
from loopwise.profiles.identity import profile_id_for
from loopwise.storage.postgres.base import MIGRATION_LOCK, Connection
from loopwise.storage.postgres.migrate import connect
from loopwise.storage.stores import Storage, UnitOfWork

T = TypeVar("T")
log = logging.getLogger(__name__)

PARTITIONS = 65_536  # every worker of a deployment must use the same number
WAIT_FIRST_MS = 2000
RETRY_FOR_SECONDS = 10.0  # a job whose partitions stay busy this long fails with a 503
_FIRST_BACKOFF_S = 0.002
_MAX_BACKOFF_S = 0.05


class PartitionBusy(Exception):
    """Another worker's open transaction holds a partition this job needs; run it again."""

    def __init__(self, partitions: Iterable[int]) -> None:
        self.partitions = sorted(partitions)
        super().__init__(f"projection partitions {self.partitions[:8]} are held by another worker")


def partition_of(profile_id: str) -> int:
    """The partition of a profile id (stable across processes and versions: CRC-32)."""
    return zlib.crc32(profile_id.encode("utf-8")) % PARTITIONS


def ensure_table(url: str, schema: str | None) -> None:
    """Create ``projection_partitions`` (once; safe when several workers start at once: the
    migration lock serialises them)."""
    with connect(url, schema, name="loopwise-partitions") as conn, conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", [MIGRATION_LOCK]
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS projection_partitions ("
            "part integer PRIMARY KEY, claims bigint NOT NULL DEFAULT 0)"
        )
        row = conn.execute("SELECT count(*) FROM projection_partitions").fetchone()
        if row is None or int(row[0]) < PARTITIONS:
            conn.execute(
                "INSERT INTO projection_partitions (part) SELECT generate_series(0, %s) "
                "ON CONFLICT DO NOTHING",
                [PARTITIONS - 1],
            )


def _connection(uow: UnitOfWork) -> Connection:
    conn = getattr(uow, "connection", None)
    if conn is None:
        raise TypeError("projection claims need a PostgreSQL unit of work")
    return conn


class PartitionClaims:
    """Claims partitions inside write jobs; counts what it did (for /metrics and tests)."""

    def __init__(self) -> None:
        self.busy = 0  # claims that found a partition held elsewhere
        self.claimed = 0  # jobs that claimed what they needed

    def claim(self, uow: UnitOfWork, partitions: Iterable[int]) -> None:
        wanted = sorted(set(partitions))
        if not wanted:
            return
        conn = _connection(uow)
        if getattr(uow, "first_in_transaction", False):
            got = self._wait_for(conn, wanted)
        else:
            rows = conn.execute(
                "SELECT part FROM projection_partitions WHERE part = ANY(%s) "
                "ORDER BY part FOR UPDATE SKIP LOCKED",
                [wanted],
            ).fetchall()
            got = {int(row[0]) for row in rows}
        if len(got) != len(wanted):
            self.busy += 1
            raise PartitionBusy(set(wanted) - got)

    def _wait_for(self, conn: Connection, wanted: list[int]) -> set[int]:
        """The first job of a transaction holds no lock, so it can wait for the partitions
        without closing a cycle (every job that waits holds nothing): it waits, up to
        :data:`WAIT_FIRST_MS`, in partition order. Jobs after it skip instead."""
        try:
            with conn.pipeline():
                conn.execute("SELECT set_config('lock_timeout', %s, true)", [f"{WAIT_FIRST_MS}ms"])
                cursor = conn.execute(
                    "SELECT part FROM projection_partitions WHERE part = ANY(%s) "
                    "ORDER BY part FOR UPDATE",
                    [wanted],
                )
                conn.execute("SELECT set_config('lock_timeout', '0', true)")
            return {int(row[0]) for row in cursor.fetchall()}
        except psycopg.errors.LockNotAvailable:
            return set()  # the job's savepoint is rolled back; it is submitted again

    def claim_people(self, uow: UnitOfWork, identifiers: Sequence[str]) -> set[str]:
        """Claim the partitions of every profile ``identifiers`` resolve to (or would start),
        resolving again after each claim until nothing new turns up (a merge committed by
        another worker just before our claim moves an identifier to a profile elsewhere).
        Returns the profile ids, now held."""
        claimed: set[int] = set()
        while True:
            linked = uow.identities.resolve(list(identifiers)) if identifiers else {}
            pids = set(linked.values()) | {profile_id_for(i) for i in identifiers}
            members = uow.identities.members(set(linked.values())) if linked else {}
            pids |= {profile_id_for(i) for ids in members.values() for i in ids}
            missing = {partition_of(pid) for pid in pids} - claimed
            if not missing:
                self.claimed += 1
                return pids
            self.claim(uow, missing)
            claimed |= missing


class ClaimingWriter:
    """Write jobs run under the claim of the people they touch, submitted again while the
    partitions are busy (:func:`retrying`): how a worker stores a decision's first exposure
    (``DecideService.claimed_writes``) without racing another worker's fold or merge."""

    def __init__(self, storage: Storage, claims: PartitionClaims) -> None:
        self._storage = storage
        self._claims = claims

    def submit(
        self,
        identifiers: Sequence[str],
        profile_ids: Sequence[str],
        job: Callable[[UnitOfWork], T],
    ) -> Future[T]:
        claims = self._claims

        def claimed(uow: UnitOfWork) -> T:
            held = claims.claim_people(uow, identifiers) if identifiers else set()
            wanted = {partition_of(p) for p in profile_ids} - {partition_of(p) for p in held}
            claims.claim(uow, wanted)
            return job(uow)

        return retrying(lambda: self._storage.submit(claimed))


def identifiers_of(events: Iterable[Any]) -> list[str]:
    """Every identifier a batch of events names (user, anonymous and previous ids)."""
    return list(
        dict.fromkeys(i for e in events for i in (e.user_id, e.anonymous_id, e.previous_id) if i)
    )


def retrying(
    submit: Callable[[], Future[T]], *, deadline_s: float = RETRY_FOR_SECONDS
) -> Future[T]:
    """``submit()``'s result, submitting again (with a short growing pause) while it fails with
    :class:`PartitionBusy`; a 503 after ``deadline_s``. The pause runs on a timer thread, never
    on the writer thread."""
    outer: Future[T] = Future()
    started = time.monotonic()

    def attempt(backoff: float) -> None:
        try:
            inner = submit()
        except BaseException as exc:  # closed storage, ...
            outer.set_exception(exc)
            return
        inner.add_done_callback(lambda done: settle(done, backoff))

    def settle(done: Future[T], backoff: float) -> None:
        error = done.exception()
        if error is None:
            outer.set_result(done.result())
            return
        if not isinstance(error, PartitionBusy):
            outer.set_exception(error)
            return
        if time.monotonic() - started > deadline_s:
            outer.set_exception(
                StorageUnavailable(
                    f"The people in this request were being updated by another worker for "
                    f"{deadline_s:g} s; retry the request."
                )
            )
            return
        timer = threading.Timer(backoff, attempt, [min(backoff * 2, _MAX_BACKOFF_S)])
        timer.daemon = True
        timer.start()

    attempt(_FIRST_BACKOFF_S)
    return outer
