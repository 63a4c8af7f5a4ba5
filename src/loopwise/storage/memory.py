"""In-process backend with the SQLite backend's semantics, for tests and benchmarks.

Jobs run synchronously under a lock. Each change a job makes logs how to undo it, so a job that
raises is rolled back alone, as a savepoint would be. Records are kept as orjson bytes: readers get
fresh copies, and anything that would not survive the SQLite backend's JSON round trip fails here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import orjson

from loopwise.clock import isoformat
from loopwise.errors import Conflict, StorageUnavailable
from loopwise.events.schema import Event

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_MISSING: Any = object()


class _StoredEvent(NamedTuple):
    message_id: str
    profile_id: str
    record: bytes


class _StoredDecision(NamedTuple):
    seq: int
    profile_id: str
    created_at: str
    record: bytes


@dataclass
class _State:
    events: list[_StoredEvent] = field(default_factory=list)
    message_ids: set[str] = field(default_factory=set)
    profiles: dict[str, bytes] = field(default_factory=dict)
    identities: dict[str, str] = field(default_factory=dict)
    segment_history: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    items: dict[str, bytes] = field(default_factory=dict)
    decisions: dict[str, _StoredDecision] = field(default_factory=dict)
    decisions_by_profile: dict[str, list[str]] = field(default_factory=dict)
    outcomes: dict[str, list[bytes]] = field(default_factory=dict)
    config: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    # (experiment, profile_id) -> (exposed_at, insertion seq, record)
    exposures: dict[tuple[str, str], tuple[str, int, bytes]] = field(default_factory=dict)
    decision_seq: int = 0
    consent: dict[str, bytes] = field(default_factory=dict)
    audit: list[bytes] = field(default_factory=list)


def _drop_last(rows: list[Any]) -> None:
    rows.pop()


def _restore(table: dict[K, V], key: K, old: V) -> None:
    if old is _MISSING:
        table.pop(key, None)
    else:
        table[key] = old


class MemoryTransaction:
    """``WriteTransaction`` over the in-memory state, with an undo log for rollback."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._undo: list[Callable[[], None]] = []

    def rollback(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def _set(self, table: dict[K, V], key: K, value: V) -> None:
        old = table.get(key, _MISSING)
        table[key] = value
        self._undo.append(lambda: _restore(table, key, old))

    def _pop(self, table: dict[K, V], key: K) -> bool:
        if key not in table:
            return False
        old = table.pop(key)
        self._undo.append(lambda: _restore(table, key, old))
        return True

    def _append(self, table: dict[K, list[V]], key: K, value: V) -> None:
        if key not in table:
            self._set(table, key, [])
        rows = table[key]
        rows.append(value)
        self._undo.append(lambda: _drop_last(rows))

    def _replace_events(self, events: list[_StoredEvent]) -> None:
        old = self._state.events
        self._state.events = events
        self._undo.append(lambda: setattr(self._state, "events", old))

    # -- WriteTransaction ----------------------------------------------------------------------
    def insert_events(self, events: Sequence[Event], profile_ids: Sequence[str]) -> list[bool]:
        if len(events) != len(profile_ids):
            raise ValueError("insert_events needs exactly one profile id per event")
        state = self._state
        new: list[bool] = []
        for event, profile_id in zip(events, profile_ids, strict=True):
            if event.message_id in state.message_ids:
                new.append(False)
                continue
            record = orjson.dumps(event.to_record())
            state.events.append(_StoredEvent(event.message_id, profile_id, record))
            state.message_ids.add(event.message_id)
            self._undo.append(lambda: state.message_ids.discard(state.events.pop().message_id))
            new.append(True)
        return new

    def upsert_profiles(self, profiles: Sequence[dict[str, Any]]) -> None:
        for profile in profiles:
            self._set(self._state.profiles, str(profile["id"]), orjson.dumps(profile))

    def delete_profiles(self, profile_ids: Sequence[str]) -> None:
        for profile_id in profile_ids:
            self._pop(self._state.profiles, profile_id)

    def link_identity(self, identifier: str, profile_id: str) -> None:
        self._set(self._state.identities, identifier, profile_id)

    def reassign_events(self, from_profile_id: str, to_profile_id: str) -> None:
        if any(event.profile_id == from_profile_id for event in self._state.events):
            self._replace_events(
                [
                    event._replace(profile_id=to_profile_id)
                    if event.profile_id == from_profile_id
                    else event
                    for event in self._state.events
                ]
            )

    def record_segment_changes(
        self, profile_id: str, entered: Sequence[str], left: Sequence[str], at: datetime
    ) -> None:
        stamp = isoformat(at)
        for change, keys in (("entered", entered), ("left", left)):
            for key in keys:
                self._append(self._state.segment_history, profile_id, (key, change, stamp))

    def upsert_items(self, items: Sequence[dict[str, Any]]) -> None:
        for item in items:
            self._set(self._state.items, str(item["id"]), orjson.dumps(item))

    def delete_items(self, item_ids: Sequence[str]) -> int:
        return sum(self._pop(self._state.items, item_id) for item_id in item_ids)

    def insert_decision(self, decision: dict[str, Any]) -> None:
        try:
            decision_id = str(decision["decision_id"])
            profile_id = str(decision["profile_id"])
            created_at = decision["created_at"]
        except KeyError as exc:
            raise ValueError(
                f"a decision needs decision_id, profile_id and created_at: {exc}"
            ) from exc
        if isinstance(created_at, datetime):
            created_at = isoformat(created_at)
        if decision_id in self._state.decisions:
            raise Conflict(
                f"Decision {decision_id!r} is already logged; give each decision a new id.",
                field="decision_id",
            )
        record = orjson.dumps(decision)
        self._state.decision_seq += 1
        stored = _StoredDecision(self._state.decision_seq, profile_id, str(created_at), record)
        self._set(self._state.decisions, decision_id, stored)
        self._append(self._state.decisions_by_profile, profile_id, decision_id)

    def record_outcome(self, decision_id: str, outcome: dict[str, Any]) -> None:
        self._append(self._state.outcomes, decision_id, orjson.dumps(outcome))

    def put_config(self, key: str, value: dict[str, Any]) -> None:
        self._set(self._state.config, key, orjson.dumps(value))

    def put_meta(self, key: str, value: str) -> None:
        self._set(self._state.meta, key, value)

    def delete_profile_data(self, profile_id: str) -> dict[str, int]:
        """Erase everything stored about one profile; returns rows removed per table."""
        state = self._state
        decision_ids = list(state.decisions_by_profile.get(profile_id, ()))
        outcomes = sum(len(state.outcomes.get(decision_id, ())) for decision_id in decision_ids)
        for decision_id in decision_ids:
            self._pop(state.outcomes, decision_id)
            self._pop(state.decisions, decision_id)
        self._pop(state.decisions_by_profile, profile_id)
        kept = [event for event in state.events if event.profile_id != profile_id]
        events = len(state.events) - len(kept)
        if events:
            erased = {event.message_id for event in state.events if event.profile_id == profile_id}
            state.message_ids.difference_update(erased)
            self._undo.append(lambda: state.message_ids.update(erased))
            self._replace_events(kept)
        linked = [key for key, value in state.identities.items() if value == profile_id]
        for identifier in linked:
            self._pop(state.identities, identifier)
        history = len(state.segment_history.get(profile_id, ()))
        self._pop(state.segment_history, profile_id)
        exposed = [key for key in state.exposures if key[1] == profile_id]
        for key in exposed:
            self._pop(state.exposures, key)
        return {
            "outcomes": outcomes,
            "decisions": len(decision_ids),
            "events": events,
            "identities": len(linked),
            "segment_history": history,
            "exposures": len(exposed),
            "profiles": int(self._pop(state.profiles, profile_id)),
        }

    # -- privacy: consent, audit, retention ---------------------------------------------------
    def put_consent(self, key: str, record: dict[str, Any]) -> None:
        self._set(self._state.consent, key, orjson.dumps(record))

    def delete_consent(self, key: str) -> None:
        self._pop(self._state.consent, key)

    def audit_head(self) -> dict[str, Any] | None:
        audit = self._state.audit
        return orjson.loads(audit[-1]) if audit else None

    def append_audit(self, record: dict[str, Any]) -> None:
        audit = self._state.audit
        audit.append(orjson.dumps(record))
        self._undo.append(lambda: _drop_last(audit))

    def read_meta(self, key: str) -> str | None:
        return self._state.meta.get(key)

    def purge_before(self, cutoff: datetime) -> tuple[dict[str, int], list[str]]:
        """As :meth:`SqliteTransaction.purge_before`."""
        stamp = isoformat(cutoff)
        state = self._state
        stale = sorted(
            pid
            for pid, blob in state.profiles.items()
            if str(orjson.loads(blob).get("last_seen", "")) < stamp
        )
        counts = {"events": 0, "decisions": 0, "outcomes": 0, "segment_history": 0}
        counts |= {"profiles": 0, "identities": 0, "exposures": 0}
        for pid in stale:
            for table, removed in self.delete_profile_data(pid).items():
                counts[table] = counts.get(table, 0) + removed
        old = [key for key, stored in state.decisions.items() if stored.created_at < stamp]
        for decision_id in old:
            counts["outcomes"] += len(state.outcomes.get(decision_id, ()))
            self._pop(state.outcomes, decision_id)
            stored = state.decisions[decision_id]
            self._pop(state.decisions, decision_id)
            ids = state.decisions_by_profile.get(stored.profile_id, [])
            self._set(
                state.decisions_by_profile,
                stored.profile_id,
                [key for key in ids if key != decision_id],
            )
        counts["decisions"] += len(old)
        kept = [e for e in state.events if str(orjson.loads(e.record).get("timestamp")) >= stamp]
        if len(kept) < len(state.events):
            gone = {e.message_id for e in state.events} - {e.message_id for e in kept}
            counts["events"] += len(gone)
            state.message_ids.difference_update(gone)
            self._undo.append(lambda: state.message_ids.update(gone))
            self._replace_events(kept)
        for key, (exposed_at, _, _) in list(state.exposures.items()):
            if exposed_at < stamp:
                self._pop(state.exposures, key)
                counts["exposures"] += 1
        for pid, rows in list(state.segment_history.items()):
            recent = [row for row in rows if row[2] >= stamp]
            if len(recent) < len(rows):
                counts["segment_history"] += len(rows) - len(recent)
                self._set(state.segment_history, pid, recent)
        return counts, stale

    def purge_audit_before(self, cutoff: datetime, anchor_key: str) -> int:
        """As :meth:`SqliteTransaction.purge_audit_before`."""
        stamp = isoformat(cutoff)
        old = self._state.audit
        records = [orjson.loads(blob) for blob in old]
        kept = [
            blob
            for blob, record in zip(old, records, strict=True)
            if record["at"] >= stamp or blob is old[-1]
        ]
        removed = len(old) - len(kept)
        if removed:
            self._state.audit = kept
            self._undo.append(lambda: setattr(self._state, "audit", old))
            self.put_meta(anchor_key, str(orjson.loads(kept[0])["prev_hash"]))
        return removed

    def record_exposure(self, exposure: dict[str, Any]) -> bool:
        key = (str(exposure["experiment"]), str(exposure["profile_id"]))
        if key in self._state.exposures:
            return False
        self._state.decision_seq += 1
        stored = (str(exposure["exposed_at"]), self._state.decision_seq, orjson.dumps(exposure))
        self._set(self._state.exposures, key, stored)
        return True

    def reassign_exposures(self, from_profile_id: str, to_profile_id: str) -> None:
        table = self._state.exposures
        for experiment, pid in [key for key in table if key[1] == from_profile_id]:
            exposed_at, seq, record = table[(experiment, pid)]
            self._pop(table, (experiment, pid))
            kept = table.get((experiment, to_profile_id))
            if kept is not None and kept[0] <= exposed_at:
                continue
            moved = orjson.dumps({**orjson.loads(record), "profile_id": to_profile_id})
            self._set(table, (experiment, to_profile_id), (exposed_at, seq, moved))


class MemoryStorage:
    """``Storage`` in dicts and lists; ``submit`` runs the job before returning."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.RLock()
        self._in_job = False
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageUnavailable(
                "Storage is closed. Restart the server or open the storage again before using it."
            )

    # -- writes --------------------------------------------------------------------------------
    def submit(self, job: Callable[[MemoryTransaction], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            self._check_open()
            if self._in_job:
                raise RuntimeError(
                    "a write job cannot wait for another write job (it would deadlock)"
                )
            transaction = MemoryTransaction(self._state)
            self._in_job = True
            try:
                value = job(transaction)
            except Exception as exc:
                transaction.rollback()
                future.set_exception(exc)
            else:
                future.set_result(value)
            finally:
                self._in_job = False
        return future

    def write(self, job: Callable[[MemoryTransaction], T]) -> T:
        return self.submit(job).result()

    # -- reads ---------------------------------------------------------------------------------
    def healthy(self) -> bool:
        return not self._closed

    def get_profile(self, profile_id: str) -> dict[str, Any] | None:
        with self._lock:
            self._check_open()
            blob = self._state.profiles.get(profile_id)
        return None if blob is None else orjson.loads(blob)

    def iter_profiles(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            self._check_open()
            blobs = [blob for _, blob in sorted(self._state.profiles.items())]
        return (orjson.loads(blob) for blob in blobs)

    def count_profiles(self) -> int:
        with self._lock:
            self._check_open()
            return len(self._state.profiles)

    def identities(self) -> dict[str, str]:
        with self._lock:
            self._check_open()
            return dict(self._state.identities)

    def iter_events(self, profile_id: str | None = None) -> Iterator[Event]:
        with self._lock:
            self._check_open()
            events = list(self._state.events)
        return (
            Event.from_record(orjson.loads(event.record))
            for event in events
            if profile_id is None or event.profile_id == profile_id
        )

    def count_events(self) -> int:
        with self._lock:
            self._check_open()
            return len(self._state.events)

    def get_items(self) -> list[dict[str, Any]]:
        with self._lock:
            self._check_open()
            return [orjson.loads(blob) for _, blob in sorted(self._state.items.items())]

    def _decision(self, decision_id: str) -> dict[str, Any]:
        record: dict[str, Any] = orjson.loads(self._state.decisions[decision_id].record)
        outcomes = self._state.outcomes.get(decision_id, ())
        record["outcomes"] = [orjson.loads(blob) for blob in outcomes]
        return record

    def get_decision(self, decision_id: str) -> dict[str, Any] | None:
        with self._lock:
            self._check_open()
            if decision_id not in self._state.decisions:
                return None
            return self._decision(decision_id)

    def last_decision(self, profile_id: str, since: datetime) -> dict[str, Any] | None:
        cutoff = isoformat(since)
        with self._lock:
            self._check_open()
            stored = [
                (self._state.decisions[decision_id], decision_id)
                for decision_id in self._state.decisions_by_profile.get(profile_id, ())
            ]
            recent = [(d.created_at, d.seq, key) for d, key in stored if d.created_at >= cutoff]
            return self._decision(max(recent)[2]) if recent else None

    def iter_decisions(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        cutoff = "" if since is None else isoformat(since)
        with self._lock:
            self._check_open()
            ordered = sorted(
                (stored.created_at, stored.seq, key)
                for key, stored in self._state.decisions.items()
                if stored.created_at >= cutoff
            )
            decisions = [self._decision(key) for _, _, key in ordered]
        return iter(decisions)

    def segment_history(self, profile_id: str) -> list[dict[str, Any]]:
        with self._lock:
            self._check_open()
            rows = list(self._state.segment_history.get(profile_id, ()))
        return [{"segment": segment, "change": change, "at": at} for segment, change, at in rows]

    def decisions_for(self, profile_id: str) -> list[dict[str, Any]]:
        with self._lock:
            self._check_open()
            ids = self._state.decisions_by_profile.get(profile_id, ())
            ordered = sorted((self._state.decisions[key].created_at, key) for key in ids)
            return [self._decision(key) for _, key in ordered]

    def checkpoint(self) -> None:
        """Nothing to do: memory has no write-ahead log."""
        self._check_open()

    def get_config(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            self._check_open()
            blob = self._state.config.get(key)
        return None if blob is None else orjson.loads(blob)

    def iter_exposures(self, experiment: str | None = None) -> Iterator[dict[str, Any]]:
        with self._lock:
            self._check_open()
            rows = sorted(
                (exposed_at, seq, record)
                for (name, _), (exposed_at, seq, record) in self._state.exposures.items()
                if experiment is None or name == experiment
            )
        return (orjson.loads(record) for _, _, record in rows)

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            self._check_open()
            return self._state.meta.get(key)

    def iter_consent(self) -> Iterator[tuple[str, dict[str, Any]]]:
        with self._lock:
            self._check_open()
            rows = sorted(self._state.consent.items())
        return ((key, orjson.loads(blob)) for key, blob in rows)

    def iter_audit(self, subjects: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        with self._lock:
            self._check_open()
            records = [orjson.loads(blob) for blob in self._state.audit]
        wanted = None if subjects is None else set(subjects)
        return (r for r in records if wanted is None or r["subject"] in wanted)

    def close(self) -> None:
        with self._lock:
            self._closed = True
