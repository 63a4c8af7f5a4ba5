"""Profiles on PostgreSQL: ``profiles`` (id, last_seen, encoded profile)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from loopwise.storage.postgres.base import Table, first_column, ms, utc
from loopwise.storage.records import ProfileRecord

_COLUMNS = "SELECT id, last_seen, record FROM profiles"


def _record(row: Any) -> ProfileRecord:
    return ProfileRecord(row[0], utc(row[1]), bytes(row[2]))


class PostgresProfileStore(Table):
    def get(self, profile_id: str) -> ProfileRecord | None:
        row = self._row(f"{_COLUMNS} WHERE id = %s", [profile_id])
        return None if row is None else _record(row)

    def get_many(self, profile_ids: Sequence[str]) -> dict[str, ProfileRecord]:
        rows = self._all(f"{_COLUMNS} WHERE id = ANY(%b)", [list(profile_ids)])
        return {row[0]: _record(row) for row in rows}

    def iter(self) -> Iterator[ProfileRecord]:
        rows = self._paged(
            f"{_COLUMNS} WHERE id > %s ORDER BY id LIMIT %s",
            [],
            first_column,
            first=f"{_COLUMNS} ORDER BY id LIMIT %s",
        )
        return (_record(row) for row in rows)

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM profiles"))

    def last_seen_before(self, cutoff: datetime) -> list[str]:
        rows = self._all("SELECT id FROM profiles WHERE last_seen < %s ORDER BY id", [ms(cutoff)])
        return [row[0] for row in rows]

    def upsert(self, records: Sequence[ProfileRecord]) -> None:
        latest = {record.id: record for record in records}  # one row per id: the last copy wins
        if not latest:
            return
        self._exec(
            "INSERT INTO profiles (id, last_seen, record) "
            "SELECT * FROM unnest(%b::text[], %b::timestamptz[], %b::bytea[]) "
            "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, "
            "record = excluded.record",
            [
                list(latest),
                [ms(r.last_seen) for r in latest.values()],
                [bytes(r.data) for r in latest.values()],
            ],
        )

    def delete(self, profile_ids: Sequence[str]) -> int:
        return self._exec("DELETE FROM profiles WHERE id = ANY(%b)", [list(profile_ids)])
