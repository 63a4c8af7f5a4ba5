"""Journey states and the outbox on SQLite."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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
from loopwise.storage.sqlite.base import Table

_STATE = "journey, profile_id, due_at, record"
_DELIVERY = "id, key, profile_id, status, attempts, next_attempt_at, created_at, done_at, record"


def _state(row: Any) -> JourneyRecord:
    journey, pid, due, blob = row
    return JourneyRecord(str(journey), str(pid), time_or_none(due), decode_state(blob))


def _delivery(row: Any) -> Delivery:
    return decode_delivery(*row)


class SqliteJourneyStore(Table):
    def get(self, journey: str, profile_id: str) -> JourneyRecord | None:
        row = self._row(
            f"SELECT {_STATE} FROM journey_states WHERE journey = ? AND profile_id = ?",
            (journey, profile_id),
        )
        return None if row is None else _state(row)

    def for_profiles(self, profile_ids: Iterable[str]) -> list[JourneyRecord]:
        rows = self._in(
            f"SELECT {_STATE} FROM journey_states WHERE profile_id IN ({{}})", list(profile_ids)
        )
        return sorted((_state(row) for row in rows), key=lambda r: (r.journey, r.profile_id))

    def due(self, at: datetime, limit: int) -> list[JourneyRecord]:
        rows = self._all(
            f"SELECT {_STATE} FROM journey_states WHERE due_at IS NOT NULL AND due_at <= ? "
            "ORDER BY due_at, journey, profile_id LIMIT ?",
            (isoformat(at), limit),
        )
        return [_state(row) for row in rows]

    def next_due(self) -> datetime | None:
        return time_or_none(
            self._one("SELECT min(due_at) FROM journey_states WHERE due_at IS NOT NULL")
        )

    def iter(self, journey: str | None = None) -> Iterator[JourneyRecord]:
        if journey is None:
            rows = self._stream(f"SELECT {_STATE} FROM journey_states ORDER BY journey, profile_id")
        else:
            rows = self._stream(
                f"SELECT {_STATE} FROM journey_states WHERE journey = ? ORDER BY profile_id",
                (journey,),
            )
        return (_state(row) for row in rows)

    def count(self, journey: str | None = None) -> int:
        if journey is None:
            return int(self._one("SELECT count(*) FROM journey_states"))
        return int(self._one("SELECT count(*) FROM journey_states WHERE journey = ?", (journey,)))

    def put(self, records: Sequence[JourneyRecord]) -> None:
        self._many(
            f"INSERT OR REPLACE INTO journey_states ({_STATE}) VALUES (?, ?, ?, ?)",
            [
                (r.journey, r.profile_id, iso_or_empty(r.due_at) or None, encode_state(r.data))
                for r in records
            ],
        )

    def delete(self, journey: str, profile_id: str) -> None:
        self._exec(
            "DELETE FROM journey_states WHERE journey = ? AND profile_id = ?", (journey, profile_id)
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._exec("DELETE FROM journey_states WHERE profile_id = ?", (profile_id,))


class SqliteOutbox(Table):
    def get(self, delivery_id: int) -> Delivery | None:
        row = self._row(f"SELECT {_DELIVERY} FROM outbox WHERE id = ?", (delivery_id,))
        return None if row is None else _delivery(row)

    def due(self, at: datetime, limit: int) -> list[Delivery]:
        rows = self._all(
            f"SELECT {_DELIVERY} FROM outbox WHERE status = ? AND next_attempt_at <= ? "
            "ORDER BY id LIMIT ?",
            (PENDING, isoformat(at), limit),
        )
        return [_delivery(row) for row in rows]

    def for_profile(self, profile_id: str) -> list[Delivery]:
        rows = self._all(
            f"SELECT {_DELIVERY} FROM outbox WHERE profile_id = ? ORDER BY id", (profile_id,)
        )
        return [_delivery(row) for row in rows]

    def counts(self) -> dict[str, int]:
        rows = self._all("SELECT status, count(*) FROM outbox GROUP BY status")
        return {str(status): int(n) for status, n in rows}

    def add(self, deliveries: Sequence[Delivery]) -> list[int]:
        ids = []
        conn = self._connect()
        for d in deliveries:
            cursor = conn.execute(
                "INSERT INTO outbox (key, profile_id, status, attempts, next_attempt_at, "
                "created_at, done_at, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (
                    d.key, d.profile_id, d.status, d.attempts, isoformat(d.next_attempt_at),
                    isoformat(d.created_at), iso_or_empty(d.done_at) or None,
                    encode_delivery_body(d),
                ),
            )  # fmt: skip
            ids.append(int(cursor.lastrowid or 0) if cursor.rowcount > 0 else 0)
        return ids

    def update(self, delivery: Delivery) -> None:
        d = delivery
        self._exec(
            "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, done_at = ?, "
            "record = ? WHERE id = ?",
            (
                d.status, d.attempts, isoformat(d.next_attempt_at),
                iso_or_empty(d.done_at) or None, encode_delivery_body(d), d.id,
            ),
        )  # fmt: skip

    def drop_pending(self, profile_id: str, reason: str) -> int:
        pending = [d for d in self.for_profile(profile_id) if d.status == PENDING]
        from dataclasses import replace

        for d in pending:
            self.update(replace(d, status=DROPPED, last_error=reason))
        return len(pending)

    def reassign(self, from_profile_id: str, to_profile_id: str) -> int:
        return self._exec(
            "UPDATE outbox SET profile_id = ? WHERE profile_id = ?",
            (to_profile_id, from_profile_id),
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._exec("DELETE FROM outbox WHERE profile_id = ?", (profile_id,))

    def list(self, status: str, limit: int = 100) -> list[Delivery]:
        rows = self._all(
            f"SELECT {_DELIVERY} FROM outbox WHERE status = ? ORDER BY id DESC LIMIT ?",
            (status, limit),
        )
        return [_delivery(row) for row in rows]
