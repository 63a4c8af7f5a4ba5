"""One worker among several on PostgreSQL + Redis: what :func:`loopwise.composition.build`
swaps in when it is given a :class:`ScaleOut`.

- ingest claims the projection partitions of everyone in a batch before folding it
  (:class:`PartitionedIngest`), and builds on the profiles as PostgreSQL has them, not as this
  worker's cache remembers them; an erasure claims the person's partitions the same way
  (:class:`PartitionedPrivacy`), so no fold on another worker resurrects what it deletes;
- the views note what they publish on the :class:`~loopwise.distributed.bus.ChangeBus` and drop
  what other workers changed; item statistics follow the shared observation log;
- only one worker (the holder of a PostgreSQL advisory lock) saves item-statistics checkpoints;
- a workspace or catalog change is announced on the bus, and every worker re-reads the
  revisions at once (the change watcher's one-second poll stays as the fallback).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar, cast

import psycopg

from loopwise.bandits.shared import SharedBandits
from loopwise.clock import Clock
from loopwise.decide.item_stats import ItemStats
from loopwise.distributed.bus import ChangeBus, Changes, namespace_of
from loopwise.distributed.claims import (
    RETRY_FOR_SECONDS,
    ClaimingWriter,
    PartitionBusy,
    PartitionClaims,
    ensure_table,
    identifiers_of,
    retrying,
)
from loopwise.distributed.views import (
    ItemStatsFollower,
    SharedConsentView,
    SharedExposureView,
    SharedIdentityView,
    SharedItemStatsView,
    SharedProfileView,
    drop,
    shared_views,
)
from loopwise.errors import StorageUnavailable, ValidationFailed
from loopwise.events.schema import Event
from loopwise.privacy.service import PrivacyService
from loopwise.privacy.settings import PrivacySettings
from loopwise.profiles.identity import profile_id_for
from loopwise.projection.ingest import IngestResult, IngestService
from loopwise.projection.projector import Projector
from loopwise.storage.postgres.migrate import connect
from loopwise.storage.records import Checkpoint
from loopwise.storage.stores import Storage, UnitOfWork
from loopwise.views import Views

if TYPE_CHECKING:
    from loopwise.composition import Services

T = TypeVar("T")
log = logging.getLogger(__name__)

CHECKPOINT_LOCK = 0x6C6F6732  # "log2": the worker that saves item-statistics checkpoints
LEADER_RETRY_S = 5.0

_erasing: contextvars.ContextVar[str | None] = contextvars.ContextVar("erasing", default=None)


class PartitionedIngest(IngestService):
    """Ingest on a worker among several (see the module docstring)."""

    claims: PartitionClaims
    bus: ChangeBus

    def submit(self, events: Sequence[Event]) -> Future[IngestResult]:
        ids = list(dict.fromkeys(e.message_id for e in events))
        if ids and len(self.bus.known(ids)) == len(ids):  # a retry of an acknowledged batch
            done: Future[IngestResult] = Future()
            done.set_result(IngestResult(duplicates=len(events)))
            return done
        future = retrying(lambda: IngestService.submit(self, events))

        def acknowledged(result: Future[IngestResult]) -> None:
            if result.exception() is None:
                self.bus.remember(ids)

        future.add_done_callback(acknowledged)
        return future

    def _job(self, uow: UnitOfWork, events: Sequence[Event]) -> IngestResult:
        pids = self.claims.claim_people(uow, identifiers_of(events))
        views = self._views
        # the fold builds on what PostgreSQL holds: another worker may have changed these
        # profiles since this one cached them, and nobody can change them while we hold them
        cast(SharedProfileView, views.profiles).invalidate(pids)
        cast(SharedExposureView, views.exposures).invalidate(pids)
        consent = cast(SharedConsentView, views.consent)
        if not consent.anyone_chose() and uow.consent.count() > 0:
            consent.someone_chose()  # another worker stored the first choice
        return super()._job(uow, events)


class _ClaimingWrites:
    """The storage, with a write made during :meth:`PartitionedPrivacy.erase` claiming the
    person's partitions first."""

    def __init__(self, storage: Storage, claims: PartitionClaims) -> None:
        self._storage = storage
        self._claims = claims

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def _wrap(self, job: Callable[[UnitOfWork], T]) -> Callable[[UnitOfWork], T]:
        identifier = _erasing.get()
        if identifier is None:
            return job
        claims = self._claims

        def claimed(uow: UnitOfWork) -> T:
            claims.claim_people(uow, [identifier])
            return job(uow)

        return claimed

    def write(self, job: Callable[[UnitOfWork], T]) -> T:
        return self._storage.write(self._wrap(job))

    def submit(self, job: Callable[[UnitOfWork], T]) -> Future[T]:
        return self._storage.submit(self._wrap(job))


class PartitionedPrivacy(PrivacyService):
    def erase(self, identifier: str) -> dict[str, Any]:
        token = _erasing.set(identifier)
        try:
            return _retry_busy(lambda: PrivacyService.erase(self, identifier))
        finally:
            _erasing.reset(token)


def _retry_busy(call: Callable[[], T]) -> T:
    started, backoff = time.monotonic(), 0.002
    while True:
        try:
            return call()
        except PartitionBusy:
            if time.monotonic() - started > RETRY_FOR_SECONDS:
                raise StorageUnavailable(
                    "The person was being updated by another worker for "
                    f"{RETRY_FOR_SECONDS:g} s; retry the request."
                ) from None
            time.sleep(backoff)
            backoff = min(backoff * 2, 0.05)


class Leader:
    """Holds a session advisory lock while it can: one worker at a time holds it."""

    def __init__(self, url: str, schema: str | None, key: int) -> None:
        self._url, self._schema, self._key = url, schema, key
        self._conn: psycopg.Connection[Any] | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loopwise-leader", daemon=True)

    @property
    def held(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.closed and not conn.broken

    def start(self) -> Leader:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                if self._conn is None:
                    conn = connect(self._url, self._schema, name="loopwise-leader")
                    row = conn.execute(
                        "SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))", [self._key]
                    ).fetchone()
                    if row is not None and row[0]:
                        self._conn = conn
                    else:
                        conn.close()
                else:
                    self._conn.execute("SELECT 1")  # still ours? (a lost session loses it)
            except psycopg.Error:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
            self._stopped.wait(LEADER_RETRY_S)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class ScaleOut:
    """The pieces a worker among several needs, built once per process."""

    # experiment results: other workers move exposure totals too, so a worker's running
    # aggregates are rebuilt from the exposure store when older than this
    results_max_age_s = 5.0

    def __init__(self, redis_url: str, storage: Storage) -> None:
        url = getattr(storage, "url", None)
        if getattr(storage, "kind", "") != "postgres" or url is None:
            raise ValidationFailed(
                "Several workers share state through PostgreSQL: give --database-url "
                "postgresql://... with --redis-url.",
                field="database_url",
            )
        schema = getattr(storage, "schema", None)
        ensure_table(url, schema)
        self.storage = storage
        self.claims = PartitionClaims()
        self.bus = ChangeBus(redis_url, namespace_of(getattr(storage, "where", url), schema))
        from loopwise.distributed.ratelimit import RedisTokenBuckets  # imports the API

        # rate limits hold across workers, not per process (docs/scale.md)
        self.rate_buckets = RedisTokenBuckets(redis_url, self.bus.namespace)
        self.leader = Leader(url, schema, CHECKPOINT_LOCK)
        self.follower: ItemStatsFollower | None = None
        self.bandits: SharedBandits | None = None
        self._views: Views | None = None

    # -- what composition builds with ----------------------------------------------------------
    def views(self, storage: Storage, limit: int, item_stats: ItemStats) -> Views:
        self._views = shared_views(storage, limit, item_stats, self.bus)
        return self._views

    def ingest(
        self,
        storage: Storage,
        views: Views,
        projector: Projector,
        privacy: PrivacyService,
        settings: Callable[[], PrivacySettings],
        clock: Clock,
    ) -> IngestService:
        ingest = PartitionedIngest(storage, views, projector, privacy, settings, clock)
        ingest.claims, ingest.bus = self.claims, self.bus
        return ingest

    def privacy(
        self,
        storage: Storage,
        views: Views,
        settings: Callable[[], PrivacySettings],
        clock: Clock,
    ) -> PrivacyService:
        claiming = cast(Storage, _ClaimingWrites(storage, self.claims))
        return PartitionedPrivacy(claiming, views, settings, clock)

    def checkpoint_saver(self, save: Callable[[Checkpoint], None]) -> Callable[[Checkpoint], None]:
        def save_if_leader(checkpoint: Checkpoint) -> None:
            if self.leader.held:
                save(checkpoint)

        return save_if_leader

    def start(self, services: Services, new_stats: Callable[[], ItemStats]) -> None:
        views = services.views
        stats_view = cast(SharedItemStatsView, views.item_stats)
        self.follower = ItemStatsFollower(stats_view, self.storage.item_stats, new_stats)
        stats_view.follower = self.follower
        self.bus.apply = lambda changes: drop(views, changes)
        self.bus.config_changed = services.watcher.check

        def config_changed(*_: object) -> None:
            self.bus.note(Changes(config=True))

        services.workspace.listeners.append(config_changed)
        services.catalog.listeners.append(config_changed)
        self.bandits = SharedBandits(services.bandits, self.bus).start()
        # a first exposure is stored under the person's claim (docs/scale.md)
        services.decide.claimed_writes = ClaimingWriter(services.storage, self.claims)
        self.bus.start()
        self.follower.start()
        self.leader.start()

    def stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        self.leader.stop()
        if self.bandits is not None:
            self.bandits.stop()
        self.bus.stop()
        self.rate_buckets.close()

    # -- read-your-writes ------------------------------------------------------------------------
    def forget_person(self, *identifiers: str | None) -> None:
        """Drop one person's cached state here, so the next read of it (a decide with
        ``wait=applied``) comes from PostgreSQL: everything acknowledged before is there."""
        views = self._views
        if views is None:
            return
        ids = [i for i in identifiers if i]
        if not ids:
            return
        linked = self.storage.identities.resolve(ids)
        members = self.storage.identities.members(set(linked.values()))
        every = {*ids, *(i for found in members.values() for i in found)}
        pids = set(linked.values()) | {profile_id_for(i) for i in every}
        cast(SharedIdentityView, views.identities).invalidate(every, pids)
        cast(SharedProfileView, views.profiles).invalidate(pids)
        cast(SharedExposureView, views.exposures).invalidate(pids)
        cast(SharedConsentView, views.consent).invalidate(pids, someone_chose=False)

    def health(self) -> dict[str, Any]:
        return {
            "redis": "ok" if self.bus.connected else "reconnecting (reads from PostgreSQL)",
            "checkpoint_leader": self.leader.held,
            "partition_busy_retries": self.claims.busy,
        }
