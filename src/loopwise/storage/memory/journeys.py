"""Journey states and the outbox in memory (rows as the SQLite tables hold them)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from loopwise.clock import isoformat
from loopwise.storage.journey_records import (
    DROPPED,
    PENDING,
    Delivery,
    JourneyRecord,
    decode_delivery,
    decode_state,
    encode_delivery_body,
    encode_state,
    iso_or_empty,
    time_or_none,
)
from loopwise.storage.memory.base import Store


def _state(row: Any) -> JourneyRecord:
    journey, pid, due, blob = row
    return JourneyRecord(journey, pid, time_or_none(due), decode_state(blob))


class MemoryJourneyStore(Store):
    def get(self, journey: str, profile_id: str) -> JourneyRecord | None:
        with self._db.read() as tables:
            row = tables["journey_states"].get((journey, profile_id))
        return None if row is None else _state(row)

    def for_profiles(self, profile_ids: Iterable[str]) -> list[JourneyRecord]:
        with self._db.read() as tables:
            table = tables["journey_states"]
            rows = [
                table.rows[key]
                for pid in dict.fromkeys(profile_ids)
                for key in table.keys_where("profile_id", pid)
            ]
        return sorted((_state(row) for row in rows), key=lambda r: (r.journey, r.profile_id))

    def due(self, at: datetime, limit: int) -> list[JourneyRecord]:
        stamp = isoformat(at)
        with self._db.read() as tables:
            rows = [r for r in tables["journey_states"].rows.values() if r[2] and r[2] <= stamp]
        rows.sort(key=lambda r: (r[2], r[0], r[1]))
        return [_state(row) for row in rows[:limit]]

    def next_due(self) -> datetime | None:
        with self._db.read() as tables:
            dues = [r[2] for r in tables["journey_states"].rows.values() if r[2]]
        return time_or_none(min(dues)) if dues else None

    def iter(self, journey: str | None = None) -> Iterator[JourneyRecord]:
        with self._db.read() as tables:
            table = tables["journey_states"]
            keys = table.keys_where("journey", journey) if journey else list(table.rows)
            rows = [table.rows[key] for key in sorted(keys)]
        return (_state(row) for row in rows)

    def count(self, journey: str | None = None) -> int:
        with self._db.read() as tables:
            table = tables["journey_states"]
            return len(table.keys_where("journey", journey)) if journey else len(table.rows)

    def put(self, records: Sequence[JourneyRecord]) -> None:
        for r in records:
            row = (r.journey, r.profile_id, iso_or_empty(r.due_at), encode_state(r.data))
            self._db.put("journey_states", (r.journey, r.profile_id), row)

    def delete(self, journey: str, profile_id: str) -> None:
        self._db.pop("journey_states", (journey, profile_id))

    def delete_profile(self, profile_id: str) -> int:
        with self._db.read() as tables:
            keys = tables["journey_states"].keys_where("profile_id", profile_id)
        for key in keys:
            self._db.pop("journey_states", key)
        return len(keys)


def _delivery(id_: int, row: Any) -> Delivery:
    key, pid, status, next_at, created, attempts, done, blob = row
    return decode_delivery(id_, key, pid, status, attempts, next_at, created, done, blob)


def _row(d: Delivery) -> tuple[Any, ...]:
    return (
        d.key,
        d.profile_id,
        d.status,
        isoformat(d.next_attempt_at),
        isoformat(d.created_at),
        d.attempts,
        iso_or_empty(d.done_at),
        encode_delivery_body(d),
    )


class MemoryOutbox(Store):
    def get(self, delivery_id: int) -> Delivery | None:
        with self._db.read() as tables:
            row = tables["outbox"].get(delivery_id)
        return None if row is None else _delivery(delivery_id, row)

    def due(self, at: datetime, limit: int) -> list[Delivery]:
        stamp = isoformat(at)
        with self._db.read() as tables:
            table = tables["outbox"]
            ids = sorted(
                k for k in table.keys_where("status", PENDING) if table.rows[k][3] <= stamp
            )
            rows = [(k, table.rows[k]) for k in ids[:limit]]
        return [_delivery(k, row) for k, row in rows]

    def for_profile(self, profile_id: str) -> list[Delivery]:
        with self._db.read() as tables:
            table = tables["outbox"]
            rows = [(k, table.rows[k]) for k in sorted(table.keys_where("profile_id", profile_id))]
        return [_delivery(k, row) for k, row in rows]

    def counts(self) -> dict[str, int]:
        with self._db.read() as tables:
            table = tables["outbox"]
            return {s: len(table.keys_where("status", s)) for s in list(table.values_of("status"))}

    def add(self, deliveries: Sequence[Delivery]) -> list[int]:
        ids: list[int] = []
        for d in deliveries:
            with self._db.read() as tables:
                exists = tables["outbox"].has("key", d.key)
            if exists:
                ids.append(0)
                continue
            new_id = self._db.next_id("outbox")
            self._db.put("outbox", new_id, _row(d))
            ids.append(new_id)
        return ids

    def update(self, delivery: Delivery) -> None:
        with self._db.read() as tables:
            exists = tables["outbox"].get(delivery.id) is not None
        if exists:
            self._db.put("outbox", delivery.id, _row(delivery))

    def drop_pending(self, profile_id: str, reason: str) -> int:
        pending = [d for d in self.for_profile(profile_id) if d.status == PENDING]
        for d in pending:
            self.update(replace(d, status=DROPPED, last_error=reason))
        return len(pending)

    def reassign(self, from_profile_id: str, to_profile_id: str) -> int:
        moving = self.for_profile(from_profile_id)
        for d in moving:
            self._db.put("outbox", d.id, _row(replace(d, profile_id=to_profile_id)))
        return len(moving)

    def delete_profile(self, profile_id: str) -> int:
        with self._db.read() as tables:
            keys = tables["outbox"].keys_where("profile_id", profile_id)
        for key in keys:
            self._db.pop("outbox", key)
        return len(keys)

    def list(self, status: str, limit: int = 100) -> list[Delivery]:
        with self._db.read() as tables:
            table = tables["outbox"]
            ids = sorted(table.keys_where("status", status), reverse=True)[:limit]
            rows = [(k, table.rows[k]) for k in ids]
        return [_delivery(k, row) for k, row in rows]
