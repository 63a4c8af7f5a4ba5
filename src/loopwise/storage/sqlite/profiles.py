"""Profiles on SQLite: ``profiles`` (id, last_seen, encoded profile)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.records import ProfileRecord
from loopwise.storage.sqlite.base import Table, as_bytes

_EPOCH = parse_timestamp("1970-01-01T00:00:00Z")


def _record(pid: str, last_seen: str | None, blob: bytes) -> ProfileRecord:
    # a row written before last_seen was a column (or damaged) sorts as the oldest
    return ProfileRecord(str(pid), parse_timestamp(last_seen) or _EPOCH, as_bytes(blob))  # type: ignore[arg-type]


class SqliteProfileStore(Table):
    def get(self, profile_id: str) -> ProfileRecord | None:
        row = self._row("SELECT id, last_seen, record FROM profiles WHERE id = ?", (profile_id,))
        return None if row is None else _record(*row)

    def get_many(self, profile_ids: Sequence[str]) -> dict[str, ProfileRecord]:
        rows = self._in("SELECT id, last_seen, record FROM profiles WHERE id IN ({})", profile_ids)
        return {str(row[0]): _record(*row) for row in rows}

    def iter(self) -> Iterator[ProfileRecord]:
        for row in self._stream("SELECT id, last_seen, record FROM profiles ORDER BY id"):
            yield _record(*row)

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM profiles"))

    def last_seen_before(self, cutoff: datetime) -> list[str]:
        rows = self._all(
            "SELECT id FROM profiles WHERE coalesce(last_seen, '') < ? ORDER BY id",
            (isoformat(cutoff),),
        )
        return [str(row[0]) for row in rows]

    def upsert(self, records: Sequence[ProfileRecord]) -> None:
        self._many(
            "INSERT INTO profiles (id, last_seen, record) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, "
            "record = excluded.record",
            [(r.id, isoformat(r.last_seen), r.data) for r in records],
        )

    def delete(self, profile_ids: Sequence[str]) -> int:
        return self._many("DELETE FROM profiles WHERE id = ?", [(pid,) for pid in profile_ids])
