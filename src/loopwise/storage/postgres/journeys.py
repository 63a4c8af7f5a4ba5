"""Journey states and the outbox on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from loopwise.storage.journey_records import (
    DROPPED,
    PENDING,
    Delivery,
    JourneyRecord,
    decode_delivery,
    decode_state,
    encode_delivery_body,
    encode_state,
)
from loopwise.storage.postgres.base import Table, ms, utc

_STATE = "journey, profile_id, due_at, record"
_DELIVERY = "id, key, profile_id, status, attempts, next_attempt_at, created_at, done_at, record"


def _state(row: Any) -> JourneyRecord:
    journey, pid, due, blob = row
    return JourneyRecord(journey, pid, None if due is None else utc(due), decode_state(blob))


def _delivery(row: Any) -> Delivery:
    return decode_delivery(*row)


def _order(row: Any) -> list[Any]:
    return [row[0], row[1]]


class PostgresJourneyStore(Table):
    def get(self, journey: str, profile_id: str) -> JourneyRecord | None:
        row = self._row(
            f"SELECT {_STATE} FROM journey_states WHERE journey = %s AND profile_id = %s",
            [journey, profile_id],
        )
        return None if row is None else _state(row)

    def for_profiles(self, profile_ids: Iterable[str]) -> list[JourneyRecord]:
        rows = self._all(
            f"SELECT {_STATE} FROM journey_states WHERE profile_id = ANY(%s) "
            "ORDER BY journey, profile_id",
            [list(dict.fromkeys(profile_ids))],
        )
        return [_state(row) for row in rows]

    def due(self, at: datetime, limit: int) -> list[JourneyRecord]:
        rows = self._all(
            f"SELECT {_STATE} FROM journey_states WHERE due_at IS NOT NULL AND due_at <= %s "
            "ORDER BY due_at, journey, profile_id LIMIT %s",
            [ms(at), limit],
        )
        return [_state(row) for row in rows]

    def next_due(self) -> datetime | None:
        value = self._one("SELECT min(due_at) FROM journey_states WHERE due_at IS NOT NULL")
        return None if value is None else utc(value)

    def iter(self, journey: str | None = None) -> Iterator[JourneyRecord]:
        if journey is None:
            rows = self._paged(
                f"SELECT {_STATE} FROM journey_states WHERE (journey, profile_id) > (%s, %s) "
                "ORDER BY journey, profile_id LIMIT %s",
                [],
                _order,
                start=["", ""],
            )
        else:
            rows = self._paged(
                f"SELECT {_STATE} FROM journey_states WHERE journey = %s AND "
                "(journey, profile_id) > (%s, %s) ORDER BY journey, profile_id LIMIT %s",
                [journey],
                _order,
                start=["", ""],
            )
        return (_state(row) for row in rows)

    def count(self, journey: str | None = None) -> int:
        if journey is None:
            return int(self._one("SELECT count(*) FROM journey_states"))
        return int(self._one("SELECT count(*) FROM journey_states WHERE journey = %s", [journey]))

    def put(self, records: Sequence[JourneyRecord]) -> None:
        if not records:
            return
        with self._connect() as conn, conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO journey_states ({_STATE}) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (journey, profile_id) DO UPDATE SET due_at = excluded.due_at, "
                "record = excluded.record",
                [
                    (
                        r.journey, r.profile_id, None if r.due_at is None else ms(r.due_at),
                        encode_state(r.data),
                    )
                    for r in records
                ],
            )  # fmt: skip

    def delete(self, journey: str, profile_id: str) -> None:
        self._exec(
            "DELETE FROM journey_states WHERE journey = %s AND profile_id = %s",
            [journey, profile_id],
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._exec("DELETE FROM journey_states WHERE profile_id = %s", [profile_id])


class PostgresOutbox(Table):
    def get(self, delivery_id: int) -> Delivery | None:
        row = self._row(f"SELECT {_DELIVERY} FROM outbox WHERE id = %s", [delivery_id])
        return None if row is None else _delivery(row)

    def due(self, at: datetime, limit: int) -> list[Delivery]:
        rows = self._all(
            f"SELECT {_DELIVERY} FROM outbox WHERE status = %s AND next_attempt_at <= %s "
            "ORDER BY id LIMIT %s",
            [PENDING, ms(at), limit],
        )
        return [_delivery(row) for row in rows]

    def for_profile(self, profile_id: str) -> list[Delivery]:
        rows = self._all(
            f"SELECT {_DELIVERY} FROM outbox WHERE profile_id = %s ORDER BY id", [profile_id]
        )
        return [_delivery(row) for row in rows]

    def counts(self) -> dict[str, int]:
        rows = self._all("SELECT status, count(*) FROM outbox GROUP BY status")
        return {str(status): int(n) for status, n in rows}

    def add(self, deliveries: Sequence[Delivery]) -> list[int]:
        ids = []
        for d in deliveries:
            rows = self._returning(
                "INSERT INTO outbox (key, profile_id, status, attempts, next_attempt_at, "
                "created_at, done_at, record) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (key) DO NOTHING RETURNING id",
                [
                    d.key, d.profile_id, d.status, d.attempts, ms(d.next_attempt_at),
                    ms(d.created_at), None if d.done_at is None else ms(d.done_at),
                    encode_delivery_body(d),
                ],
            )  # fmt: skip
            ids.append(int(rows[0][0]) if rows else 0)
        return ids

    def update(self, delivery: Delivery) -> None:
        d = delivery
        self._exec(
            "UPDATE outbox SET status = %s, attempts = %s, next_attempt_at = %s, done_at = %s, "
            "record = %s WHERE id = %s",
            [
                d.status, d.attempts, ms(d.next_attempt_at),
                None if d.done_at is None else ms(d.done_at), encode_delivery_body(d), d.id,
            ],
        )  # fmt: skip

    def drop_pending(self, profile_id: str, reason: str) -> int:
        pending = [d for d in self.for_profile(profile_id) if d.status == PENDING]
        for d in pending:
            self.update(replace(d, status=DROPPED, last_error=reason))
        return len(pending)

    def reassign(self, from_profile_id: str, to_profile_id: str) -> int:
        return self._exec(
            "UPDATE outbox SET profile_id = %s WHERE profile_id = %s",
            [to_profile_id, from_profile_id],
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._exec("DELETE FROM outbox WHERE profile_id = %s", [profile_id])

    def list(self, status: str, limit: int = 100) -> list[Delivery]:
        rows = self._all(
            f"SELECT {_DELIVERY} FROM outbox WHERE status = %s ORDER BY id DESC LIMIT %s",
            [status, limit],
        )
        return [_delivery(row) for row in rows]
