"""Round 1's storage seam, replaced by :mod:`loopwise.storage.stores`.

Kept only while ``engine.py``, ``privacy/retention.py`` and ``benchmarks/population.py`` still
import it; no backend implements it any more. Delete it with their rewrite.


Writes go through one writer (SQLite's one-writer rule made explicit, as Datasette does): a caller
submits a *job* — a function of a :class:`WriteTransaction` — and the writer runs many queued jobs
in one transaction and commits once (group commit). Each job runs inside its own savepoint, so a job
that raises is rolled back alone and its future carries the exception; the others still commit.
``submit(job).result()`` returns only after the commit is on disk: data that got a 2xx is durable.

Reads go to :class:`Storage` read methods, which never block the writer.

Records are plain JSON-safe dicts (``Event.to_record()``, ``Item.to_record()``, profile dicts
from ``Profile.to_record()``, decision dicts as built by the engine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any, Protocol, TypeVar

from loopwise.events.schema import Event

T = TypeVar("T")


class WriteTransaction(Protocol):
    """Handed to a write job; valid only while the job runs (on the writer thread)."""

    def insert_events(self, events: Sequence[Event], profile_ids: Sequence[str]) -> list[bool]:
        """Append events, deduplicated by ``message_id``. ``profile_ids[i]`` is the canonical
        profile the i-th event was applied to (stored so erasure and per-profile history can find
        it). Returns, per event, True when it was new (False: a retry already stored)."""
        ...

    def upsert_profiles(self, profiles: Sequence[dict[str, Any]]) -> None:
        """Store profiles (``Profile.to_record()``), keyed by ``record["id"]``."""
        ...

    def delete_profiles(self, profile_ids: Sequence[str]) -> None: ...

    def link_identity(self, identifier: str, profile_id: str) -> None:
        """Record that ``identifier`` (a userId or anonymousId) resolves to ``profile_id``.
        Re-linking an identifier moves it."""
        ...

    def reassign_events(self, from_profile_id: str, to_profile_id: str) -> None:
        """After a merge, every stored event of ``from_profile_id`` belongs to ``to_profile_id``."""
        ...

    def record_segment_changes(
        self, profile_id: str, entered: Sequence[str], left: Sequence[str], at: datetime
    ) -> None: ...

    def upsert_items(self, items: Sequence[dict[str, Any]]) -> None: ...

    def delete_items(self, item_ids: Sequence[str]) -> int:
        """Returns how many existed."""
        ...

    def insert_decision(self, decision: dict[str, Any]) -> None:
        """``decision`` has at least ``decision_id``, ``profile_id``, ``created_at`` (ISO str);
        it is stored whole as JSON."""
        ...

    def record_outcome(self, decision_id: str, outcome: dict[str, Any]) -> None:
        """Attach an outcome (impression, click, conversion) to a logged decision."""
        ...

    def delete_profile_data(self, profile_id: str) -> dict[str, int]:
        """Erase everything stored for one profile: events, identity links, segment history,
        decisions and their outcomes, experiment exposures, the profile. Returns the count
        removed per table."""
        ...

    def record_exposure(self, exposure: dict[str, Any]) -> bool:
        """Store a user's first exposure to an experiment: ``exposure`` has at least
        ``experiment``, ``profile_id``, ``arm`` and ``exposed_at`` (ISO str) and is stored whole.
        Ignored when ``(experiment, profile_id)`` already has one (the first exposure wins).
        Returns True when it was stored."""
        ...

    def reassign_exposures(self, from_profile_id: str, to_profile_id: str) -> None:
        """After a merge the exposures of ``from_profile_id`` belong to ``to_profile_id``; where
        both have one for the same experiment, the earlier exposure is kept."""
        ...

    def put_config(self, key: str, value: dict[str, Any]) -> None: ...

    def put_meta(self, key: str, value: str) -> None: ...

    # -- privacy (consent, audit trail, retention) ---------------------------------------------
    def put_consent(self, key: str, record: dict[str, Any]) -> None:
        """Store one person's consent state (``ConsentState.to_record()``) under ``key``."""
        ...

    def delete_consent(self, key: str) -> None: ...

    def audit_head(self) -> dict[str, Any] | None:
        """The newest audit record, including writes earlier in this transaction."""
        ...

    def append_audit(self, record: dict[str, Any]) -> None:
        """Append an audit record (it has ``seq``, ``subject``, ``at``); never updated after."""
        ...

    def read_meta(self, key: str) -> str | None:
        """``get_meta`` as this transaction sees it."""
        ...

    def purge_before(self, cutoff: datetime) -> tuple[dict[str, int], list[str]]:
        """Delete behavioural data older than ``cutoff`` (events by event time, decisions and
        outcomes, segment history, profiles last seen before it with their identity links); keep
        consent and the audit log. Returns rows removed per table and the removed profile ids."""
        ...

    def purge_audit_before(self, cutoff: datetime, anchor_key: str) -> int:
        """Drop audit records older than ``cutoff`` except the newest; store the first kept
        record's ``prev_hash`` in meta ``anchor_key``. Returns how many were dropped."""
        ...


class Storage(Protocol):
    # -- writes --------------------------------------------------------------------------------
    def submit(self, job: Callable[[WriteTransaction], T]) -> Future[T]:
        """Queue a write job; the future resolves after its transaction has committed."""
        ...

    def write(self, job: Callable[[WriteTransaction], T]) -> T:
        """``submit(job).result()``."""
        ...

    # -- reads ---------------------------------------------------------------------------------
    def healthy(self) -> bool: ...

    def get_profile(self, profile_id: str) -> dict[str, Any] | None: ...

    def iter_profiles(self) -> Iterator[dict[str, Any]]: ...

    def count_profiles(self) -> int: ...

    def identities(self) -> dict[str, str]:
        """Every identifier -> profile id link."""
        ...

    def iter_events(self, profile_id: str | None = None) -> Iterator[Event]:
        """Stored events in arrival order (optionally only one profile's)."""
        ...

    def count_events(self) -> int: ...

    def get_items(self) -> list[dict[str, Any]]: ...

    def get_decision(self, decision_id: str) -> dict[str, Any] | None:
        """The decision dict with an added ``outcomes`` list."""
        ...

    def last_decision(self, profile_id: str, since: datetime) -> dict[str, Any] | None:
        """The newest decision for the profile created at or after ``since``."""
        ...

    def iter_decisions(self, since: datetime | None = None) -> Iterator[dict[str, Any]]: ...

    def segment_history(self, profile_id: str) -> list[dict[str, Any]]:
        """``[{"segment", "change": "entered"|"left", "at"}]`` oldest first."""
        ...

    def decisions_for(self, profile_id: str) -> list[dict[str, Any]]:
        """Every logged decision of one profile (with ``outcomes``), oldest first."""
        ...

    def checkpoint(self) -> None:
        """Move committed writes out of any write-ahead log into the main store and empty the
        log (after an erasure, so no copy of erased rows stays behind in the log)."""
        ...

    def get_config(self, key: str) -> dict[str, Any] | None: ...

    def iter_exposures(self, experiment: str | None = None) -> Iterator[dict[str, Any]]:
        """Stored exposures (all, or one experiment's), oldest first."""
        ...

    def get_meta(self, key: str) -> str | None: ...

    def iter_consent(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every stored consent state as ``(key, record)``."""
        ...

    def iter_audit(self, subjects: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Audit records oldest first (optionally only those whose ``subject`` is listed)."""
        ...

    def close(self) -> None: ...
