"""Segment entries and exits in memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.memory.base import Store
from loopwise.storage.records import SegmentChange
from loopwise.storage.stores import SegmentChanges


def _change(row: Any) -> SegmentChange | None:
    _, segment, change, at = row
    when = parse_timestamp(at)
    return None if when is None else SegmentChange(segment, change, when)


class MemorySegmentHistory(Store):
    def for_profile(self, profile_id: str) -> list[SegmentChange]:
        with self._db.read() as tables:
            history = tables["segment_history"]
            rows = [history.rows[k] for k in sorted(history.keys_where("profile_id", profile_id))]
        return [c for c in (_change(row) for row in rows) if c is not None]

    def iter(self, since: datetime | None = None) -> Iterator[tuple[str, SegmentChange]]:
        cutoff = "" if since is None else isoformat(since)
        with self._db.read() as tables:
            items = tables["segment_history"].rows.items()
            rows = [row for _, row in sorted((k, r) for k, r in items if r[3] >= cutoff)]
        rows.sort(key=lambda row: row[3])  # by time; stable, so recording order breaks ties
        for row in rows:
            found = _change(row)
            if found is not None:
                yield row[0], found

    def record(
        self, profile_id: str, entered: Sequence[str], left: Sequence[str], at: datetime
    ) -> None:
        stamp = isoformat(at)
        changes = [(key, "entered") for key in entered] + [(key, "left") for key in left]
        for segment, change in changes:
            row = (profile_id, segment, change, stamp)
            self._db.put("segment_history", self._db.next_id("segment_history"), row)

    def record_many(self, changes: Sequence[SegmentChanges]) -> None:
        for profile_id, entered, left, at in changes:
            self.record(profile_id, entered, left, at)

    def delete_profile(self, profile_id: str) -> int:
        with self._db.read() as tables:
            keys = tables["segment_history"].keys_where("profile_id", profile_id)
        for key in keys:
            self._db.pop("segment_history", key)
        return len(keys)

    def purge_before(self, cutoff: datetime) -> int:
        stamp = isoformat(cutoff)
        with self._db.read() as tables:
            old = [k for k, row in tables["segment_history"].rows.items() if row[3] < stamp]
        for key in old:
            self._db.pop("segment_history", key)
        return len(old)
