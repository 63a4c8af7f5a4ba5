"""The stores, split by access pattern (as Feast splits online and offline stores).

Each store is a pair of small Protocols: ``<Store>Reader`` (what serving and reports read) and
``<Store>`` (the reader plus the writes a unit of work may make). ``Storage.<store>`` is a reader
on its own connection; ``UnitOfWork.<store>`` is the writer bound to one transaction, whose reads
see that transaction's own writes. One contract suite per store (``tests/storage/``) runs on every
backend (memory, SQLite, PostgreSQL), so a backend is done when the suite passes.

Domain rules stay out of backends: which exposure wins a merge, what retention purges, how
consent merges — the services decide and call these primitives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any, Protocol, TypeVar

from loopwise.events.schema import Event
from loopwise.storage.journey_records import Delivery, JourneyRecord
from loopwise.storage.records import (
    Checkpoint,
    Damaged,
    Exposure,
    JsonDict,
    LoggedEvent,
    Observation,
    ProfileRecord,
    SegmentChange,
    SessionRecord,
    UserRecord,
    WorkspaceChange,
)

T = TypeVar("T")

# (profile id, segments entered, segments left, when)
SegmentChanges = tuple[str, Sequence[str], Sequence[str], datetime]


# -- event log -----------------------------------------------------------------------------------
class EventLogReader(Protocol):
    def iter(self, profile_id: str | None = None, *, after: int = 0) -> Iterator[LoggedEvent]:
        """Stored events in log order (``seq`` > ``after``), optionally one profile's. A row that
        cannot be decoded is skipped (``damaged`` lists it)."""
        ...

    def count(self) -> int: ...

    def last_seq(self) -> int:
        """The newest position (0 for an empty log)."""
        ...

    def known(self, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` are already stored (retries)."""
        ...

    def damaged(self, limit: int = 100) -> list[Damaged]: ...


class EventLog(EventLogReader, Protocol):
    def append(self, events: Sequence[Event], profile_ids: Sequence[str]) -> list[int | None]:
        """Append events deduplicated by ``message_id``; ``profile_ids[i]`` is the profile the
        i-th event is applied to. Returns each event's ``seq``, or None for a retry."""
        ...

    def reassign(self, from_profile_id: str, to_profile_id: str) -> int:
        """After a merge every event of ``from_profile_id`` belongs to ``to_profile_id``."""
        ...

    def delete_profile(self, profile_id: str) -> int: ...

    def purge_before(self, cutoff: datetime) -> int:
        """Delete events whose event time is before ``cutoff``; returns how many."""
        ...


# -- profiles ------------------------------------------------------------------------------------
class ProfileStoreReader(Protocol):
    def get(self, profile_id: str) -> ProfileRecord | None: ...

    def get_many(self, profile_ids: Sequence[str]) -> dict[str, ProfileRecord]: ...

    def iter(self) -> Iterator[ProfileRecord]:
        """Every profile, by id."""
        ...

    def count(self) -> int: ...

    def last_seen_before(self, cutoff: datetime) -> list[str]:
        """Ids of profiles last seen before ``cutoff`` (retention)."""
        ...


class ProfileStore(ProfileStoreReader, Protocol):
    def upsert(self, records: Sequence[ProfileRecord]) -> None: ...

    def delete(self, profile_ids: Sequence[str]) -> int: ...


# -- identities ----------------------------------------------------------------------------------
class IdentityStoreReader(Protocol):
    def resolve(self, identifiers: Iterable[str]) -> dict[str, str]:
        """``identifier -> profile id`` for those of ``identifiers`` that are linked."""
        ...

    def members(self, profile_ids: Iterable[str]) -> dict[str, set[str]]:
        """``profile id -> its identifiers`` (profiles without any are left out)."""
        ...

    def count(self) -> int: ...

    def iter(self) -> Iterator[tuple[str, str]]:
        """Every ``(identifier, profile id)`` link."""
        ...


class IdentityStore(IdentityStoreReader, Protocol):
    def link(self, links: Mapping[str, str]) -> None:
        """Link (or move) each identifier to its profile id."""
        ...

    def delete_profile(self, profile_id: str) -> int:
        """Remove every link to ``profile_id``."""
        ...


# -- consent and its audit trail -----------------------------------------------------------------
class ConsentStoreReader(Protocol):
    def get(self, keys: Iterable[str]) -> dict[str, JsonDict]:
        """Stored ``ConsentState.to_record()`` per key, for the keys that have one."""
        ...

    def count(self) -> int: ...

    def iter(self) -> Iterator[tuple[str, JsonDict]]: ...


class ConsentStore(ConsentStoreReader, Protocol):
    def put(self, key: str, record: JsonDict) -> None: ...

    def delete(self, keys: Iterable[str]) -> int:
        """Delete the states of ``keys``; returns how many existed."""
        ...


class AuditLogReader(Protocol):
    def iter(self, subjects: Sequence[str] | None = None) -> Iterator[JsonDict]:
        """Audit records oldest first (optionally only those about ``subjects``)."""
        ...

    def head(self) -> JsonDict | None:
        """The newest record."""
        ...


class AuditLog(AuditLogReader, Protocol):
    def append(self, record: JsonDict) -> None:
        """Append a record (it has ``seq``, ``subject``, ``at``); records are never updated."""
        ...

    def purge_before(self, cutoff: datetime) -> tuple[int, JsonDict | None]:
        """Drop records older than ``cutoff`` except the newest; returns how many were dropped
        and the first record kept (whose ``prev_hash`` anchors the chain)."""
        ...


# -- experiment exposures --------------------------------------------------------------------------
class ExposureStoreReader(Protocol):
    def get(self, experiment: str, profile_id: str) -> Exposure | None: ...

    def for_profiles(self, profile_ids: Iterable[str]) -> list[Exposure]:
        """Every exposure of these profiles (any experiment)."""
        ...

    def iter(self, experiment: str | None = None) -> Iterator[Exposure]:
        """Exposures oldest first (all, or one experiment's)."""
        ...

    def count(self, experiment: str) -> int: ...

    def experiments(self) -> dict[str, int]:
        """``experiment -> exposed people`` for every experiment with exposures."""
        ...


class ExposureStore(ExposureStoreReader, Protocol):
    def insert(self, exposure: Exposure) -> bool:
        """Store a first exposure; False (nothing changed) when the person already has one for
        the experiment."""
        ...

    def put(self, exposure: Exposure) -> None:
        """Insert or replace the exposure of ``(experiment, profile_id)``."""
        ...

    def delete(self, experiment: str, profile_id: str) -> None: ...

    def delete_profile(self, profile_id: str) -> int: ...

    def purge_before(self, cutoff: datetime) -> int: ...


# -- decision log and outcomes ---------------------------------------------------------------------
class DecisionLogReader(Protocol):
    def get(self, decision_id: str) -> JsonDict | None:
        """The decision document with an added ``outcomes`` list (oldest first)."""
        ...

    def exists(self, decision_ids: Iterable[str]) -> set[str]:
        """Which of ``decision_ids`` are logged."""
        ...

    def last_for(self, profile_id: str, since: datetime) -> tuple[str, datetime] | None:
        """The newest decision of the profile made at or after ``since``: (id, created_at)."""
        ...

    def for_profile(self, profile_id: str) -> list[JsonDict]:
        """Every decision of one profile with its outcomes, oldest first."""
        ...

    def iter(self, since: datetime | None = None) -> Iterator[JsonDict]: ...

    def count(self) -> int: ...


class DecisionLog(DecisionLogReader, Protocol):
    def insert(self, decision: JsonDict) -> None:
        """``decision`` has ``decision_id``, ``profile_id`` and ``created_at`` (ISO string).
        A second insert of the same id is a ``Conflict``."""
        ...

    def insert_many(self, decisions: Sequence[JsonDict]) -> None:
        """:meth:`insert` of each, in order, in few statements (a campaign's chunk, a group
        commit of page decisions); an id logged before or repeated is a ``Conflict``."""
        ...

    def add_outcome(self, decision_id: str, outcome: JsonDict) -> None: ...

    def delete_profile(self, profile_id: str) -> tuple[int, int]:
        """Erase one profile's decisions and their outcomes: ``(decisions, outcomes)``."""
        ...

    def purge_before(self, cutoff: datetime) -> tuple[int, int]: ...


# -- segment history -------------------------------------------------------------------------------
class SegmentHistoryReader(Protocol):
    def for_profile(self, profile_id: str) -> list[SegmentChange]:
        """Oldest first."""
        ...

    def iter(self, since: datetime | None = None) -> Iterator[tuple[str, SegmentChange]]:
        """Every ``(profile id, change)`` oldest first (segment sizes over time)."""
        ...


class SegmentHistory(SegmentHistoryReader, Protocol):
    def record(
        self, profile_id: str, entered: Sequence[str], left: Sequence[str], at: datetime
    ) -> None: ...

    def record_many(self, changes: Sequence[SegmentChanges]) -> None:
        """Many profiles' entries and exits in one write (a batch's), in order."""
        ...

    def delete_profile(self, profile_id: str) -> int: ...

    def purge_before(self, cutoff: datetime) -> int: ...


# -- item statistics -----------------------------------------------------------------------------
class ItemStatsStoreReader(Protocol):
    def checkpoint(self) -> Checkpoint | None: ...

    def observations(self, after: int = 0) -> Iterator[Observation]:
        """Observations with ``seq`` > ``after`` in order (the tail beyond the checkpoint)."""
        ...

    def anonymous_observations(self) -> Iterator[Observation]:
        """Every stored anonymous observation (a replay adds them to what the log gives)."""
        ...


class ItemStatsStore(ItemStatsStoreReader, Protocol):
    def observe(self, observations: Sequence[Observation]) -> list[int]:
        """Append observations (their ``seq`` is ignored); returns the positions given."""
        ...

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint and drop the non-anonymous observations it covers."""
        ...

    def purge_before(self, cutoff: datetime) -> int:
        """Retention: drop observations of events before ``cutoff``."""
        ...


# -- catalog ---------------------------------------------------------------------------------------
class CatalogStoreReader(Protocol):
    def all(self) -> list[JsonDict]:
        """Every item record (``Item.to_record()``), by id; damaged rows are left out."""
        ...

    def damaged(self) -> list[Damaged]: ...


class CatalogStore(CatalogStoreReader, Protocol):
    def upsert(self, items: Sequence[JsonDict]) -> None: ...

    def delete(self, item_ids: Sequence[str]) -> int:
        """Returns how many existed."""
        ...


# -- configuration, metadata and change notices --------------------------------------------------
class ConfigStoreReader(Protocol):
    def get(self, key: str) -> JsonDict | None:
        """A stored document; raises ``Damaged``-carrying ``ValidationFailed`` when unreadable."""
        ...

    def meta(self, key: str) -> str | None: ...

    def revisions(self) -> dict[str, int]:
        """Change counters (``catalog``, ``workspace``, ``clusters``, ``models``): a server polls
        them to pick up changes another process made."""
        ...


class ConfigStore(ConfigStoreReader, Protocol):
    def put(self, key: str, value: JsonDict) -> None: ...

    def put_meta(self, key: str, value: str) -> None: ...

    def bump(self, name: str) -> int:
        """Advance the change counter ``name``; returns its new value."""
        ...


# -- console people and sessions -------------------------------------------------------------------
class UserStoreReader(Protocol):
    def get(self, email: str) -> UserRecord | None:
        """The user with this (lower-cased) email."""
        ...

    def list(self) -> list[UserRecord]:
        """Every user, by email."""
        ...

    def count(self) -> int: ...


class UserStore(UserStoreReader, Protocol):
    def put(self, user: UserRecord) -> None:
        """Insert or replace the user ``user.email``."""
        ...

    def delete(self, email: str) -> bool:
        """False when there was no such user."""
        ...


class SessionStoreReader(Protocol):
    def get(self, token_hash: str) -> SessionRecord | None: ...

    def for_user(self, email: str) -> list[SessionRecord]:
        """The user's sessions, newest first (revoked and expired ones too)."""
        ...


class SessionStore(SessionStoreReader, Protocol):
    def put(self, session: SessionRecord) -> None: ...

    def revoke(self, token_hash: str) -> bool:
        """Mark one session revoked; False when unknown or already revoked."""
        ...

    def revoke_user(self, email: str) -> int:
        """Revoke every live session of a user; returns how many."""
        ...

    def purge_expired(self, now: datetime) -> int:
        """Delete sessions that expired before ``now`` (and revoked ones)."""
        ...


# -- workspace history -----------------------------------------------------------------------------
class WorkspaceHistoryReader(Protocol):
    def latest(self) -> WorkspaceChange | None:
        """The newest revision (None before the first change is recorded)."""
        ...

    def get(self, revision: int) -> WorkspaceChange | None: ...

    def list(self, limit: int = 50, before: int | None = None) -> list[WorkspaceChange]:
        """Revisions newest first, at most ``limit``, those below ``before`` when given."""
        ...

    def count(self) -> int: ...


class WorkspaceHistory(WorkspaceHistoryReader, Protocol):
    def append(self, change: WorkspaceChange) -> None:
        """Record the next revision. ``change.revision`` must be one more than the latest's (or
        1 for the first): anything else is a ``Conflict`` (another writer got there first)."""
        ...


# -- journeys: per-person state and the outbox -------------------------------------------------
class JourneyStoreReader(Protocol):
    def get(self, journey: str, profile_id: str) -> JourneyRecord | None: ...

    def for_profiles(self, profile_ids: Iterable[str]) -> list[JourneyRecord]:
        """Every journey state of these profiles (any journey), by journey."""
        ...

    def due(self, at: datetime, limit: int) -> list[JourneyRecord]:
        """States with ``due_at <= at``, soonest first, at most ``limit``."""
        ...

    def next_due(self) -> datetime | None:
        """The soonest ``due_at`` of any state (None: nothing waits on time)."""
        ...

    def iter(self, journey: str | None = None) -> Iterator[JourneyRecord]:
        """Every state (of one journey), by journey and profile id."""
        ...

    def count(self, journey: str | None = None) -> int: ...


class JourneyStore(JourneyStoreReader, Protocol):
    def put(self, records: Sequence[JourneyRecord]) -> None:
        """Insert or replace each ``(journey, profile_id)`` state."""
        ...

    def delete(self, journey: str, profile_id: str) -> None: ...

    def delete_profile(self, profile_id: str) -> int: ...


class OutboxReader(Protocol):
    def get(self, delivery_id: int) -> Delivery | None: ...

    def due(self, at: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries whose next attempt is at or before ``at``, oldest id first."""
        ...

    def for_profile(self, profile_id: str) -> list[Delivery]:
        """Every delivery of one profile, oldest first."""
        ...

    def counts(self) -> dict[str, int]:
        """``status -> deliveries`` (pending, delivered, dead, dropped)."""
        ...

    def list(self, status: str, limit: int = 100) -> list[Delivery]:
        """Deliveries in ``status``, newest id first (the dead-letter list: ``dead``)."""
        ...


class Outbox(OutboxReader, Protocol):
    def add(self, deliveries: Sequence[Delivery]) -> list[int]:
        """Store new deliveries (their ``id`` is ignored); a key already stored is kept as it
        is (0 is returned for it). Returns the ids given."""
        ...

    def update(self, delivery: Delivery) -> None:
        """Replace the stored delivery ``delivery.id`` (status, attempts, times, payload)."""
        ...

    def drop_pending(self, profile_id: str, reason: str) -> int:
        """Mark the profile's pending deliveries ``dropped`` (consent withdrawn); how many."""
        ...

    def reassign(self, from_profile_id: str, to_profile_id: str) -> int:
        """After a merge every delivery of ``from_profile_id`` belongs to ``to_profile_id``."""
        ...

    def delete_profile(self, profile_id: str) -> int: ...


# -- units of work ---------------------------------------------------------------------------------
class UnitOfWork(Protocol):
    """One job's view of a write transaction: every store's writer, plus ``on_commit``.

    The stores are read-only properties (here and in :class:`Storage`): a Protocol's plain
    attributes are checked invariantly, so a backend's own store classes would not conform."""

    @property
    def events(self) -> EventLog: ...

    @property
    def profiles(self) -> ProfileStore: ...

    @property
    def identities(self) -> IdentityStore: ...

    @property
    def consent(self) -> ConsentStore: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def exposures(self) -> ExposureStore: ...

    @property
    def decisions(self) -> DecisionLog: ...

    @property
    def segment_history(self) -> SegmentHistory: ...

    @property
    def item_stats(self) -> ItemStatsStore: ...

    @property
    def catalog(self) -> CatalogStore: ...

    @property
    def config(self) -> ConfigStore: ...

    @property
    def users(self) -> UserStore: ...

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def workspace_history(self) -> WorkspaceHistory: ...

    @property
    def journeys(self) -> JourneyStore: ...

    @property
    def outbox(self) -> Outbox: ...

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the transaction holding this job has committed (before the
        job's future resolves); never when the job or its transaction fails. This is where
        in-memory views learn of a change, so nothing in memory is ever ahead of disk."""
        ...

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Run when this job succeeded but its transaction was lost afterwards."""
        ...


class Storage(Protocol):
    """A backend: read handles on every store, and a writer that runs jobs in transactions."""

    @property
    def events(self) -> EventLogReader: ...

    @property
    def profiles(self) -> ProfileStoreReader: ...

    @property
    def identities(self) -> IdentityStoreReader: ...

    @property
    def consent(self) -> ConsentStoreReader: ...

    @property
    def audit(self) -> AuditLogReader: ...

    @property
    def exposures(self) -> ExposureStoreReader: ...

    @property
    def decisions(self) -> DecisionLogReader: ...

    @property
    def segment_history(self) -> SegmentHistoryReader: ...

    @property
    def item_stats(self) -> ItemStatsStoreReader: ...

    @property
    def catalog(self) -> CatalogStoreReader: ...

    @property
    def config(self) -> ConfigStoreReader: ...

    @property
    def users(self) -> UserStoreReader: ...

    @property
    def sessions(self) -> SessionStoreReader: ...

    @property
    def workspace_history(self) -> WorkspaceHistoryReader: ...

    @property
    def journeys(self) -> JourneyStoreReader: ...

    @property
    def outbox(self) -> OutboxReader: ...

    def submit(self, job: Callable[[UnitOfWork], T]) -> Future[T]:
        """Queue a write job; the future resolves after its transaction committed and its
        ``on_commit`` callbacks ran (or with the job's error; with ``StorageUnavailable`` when
        the commit failed)."""
        ...

    def write(self, job: Callable[[UnitOfWork], T]) -> T:
        """``submit(job).result()``."""
        ...

    def health(self) -> dict[str, Any]:
        """``{"ok": bool, "write": "ok" | problem, "read": "ok" | problem, ...}``."""
        ...

    def checkpoint(self) -> None:
        """Fold any write-ahead log into the main store and empty it (after an erasure, and at
        shutdown), so no copy of erased rows stays behind and the data is in one file."""
        ...

    def close(self) -> None: ...
