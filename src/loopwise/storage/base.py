"""The storage seam: what the engine needs from a backend, nothing more.

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
        decisions and their outcomes, the profile. Returns the count removed per table."""
        ...

    def put_config(self, key: str, value: dict[str, Any]) -> None: ...

    def put_meta(self, key: str, value: str) -> None: ...


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

    def get_meta(self, key: str) -> str | None: ...

    def close(self) -> None: ...
