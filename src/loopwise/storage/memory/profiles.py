"""Profiles in memory: ``profiles`` (id -> last_seen, encoded profile)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.memory.base import Store
from loopwise.storage.records import ProfileRecord

_EPOCH = parse_timestamp("1970-01-01T00:00:00Z")


def _record(pid: Any, row: Any) -> ProfileRecord:
    return ProfileRecord(pid, parse_timestamp(row[0]) or _EPOCH, row[1])  # type: ignore[arg-type]


class MemoryProfileStore(Store):
    def get(self, profile_id: str) -> ProfileRecord | None:
        with self._db.read() as tables:
            row = tables["profiles"].get(profile_id)
        return None if row is None else _record(profile_id, row)

    def get_many(self, profile_ids: Sequence[str]) -> dict[str, ProfileRecord]:
        with self._db.read() as tables:
            rows = [(pid, tables["profiles"].get(pid)) for pid in dict.fromkeys(profile_ids)]
        return {pid: _record(pid, row) for pid, row in rows if row is not None}

    def iter(self) -> Iterator[ProfileRecord]:
        with self._db.read() as tables:
            rows = sorted(tables["profiles"].rows.items())
        return (_record(pid, row) for pid, row in rows)

    def count(self) -> int:
        with self._db.read() as tables:
            return len(tables["profiles"].rows)

    def last_seen_before(self, cutoff: datetime) -> list[str]:
        stamp = isoformat(cutoff)
        with self._db.read() as tables:
            rows = tables["profiles"].rows.items()
            return sorted(str(pid) for pid, row in rows if row[0] < stamp)

    def upsert(self, records: Sequence[ProfileRecord]) -> None:
        for record in records:
            self._db.put("profiles", record.id, (isoformat(record.last_seen), bytes(record.data)))

    def delete(self, profile_ids: Sequence[str]) -> int:
        return sum(self._db.pop("profiles", pid) is not None for pid in profile_ids)
