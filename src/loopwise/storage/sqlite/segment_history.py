"""Segment entries and exits on SQLite."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.records import SegmentChange
from loopwise.storage.sqlite.base import Table
from loopwise.storage.stores import SegmentChanges


def _change(segment: str, change: str, at: str) -> SegmentChange | None:
    when = parse_timestamp(at)
    return None if when is None else SegmentChange(str(segment), str(change), when)


class SqliteSegmentHistory(Table):
    def for_profile(self, profile_id: str) -> list[SegmentChange]:
        rows = self._all(
            "SELECT segment, change, at FROM segment_history WHERE profile_id = ? ORDER BY id",
            (profile_id,),
        )
        return [c for c in (_change(*row) for row in rows) if c is not None]

    def iter(self, since: datetime | None = None) -> Iterator[tuple[str, SegmentChange]]:
        cutoff = "" if since is None else isoformat(since)
        for pid, segment, change, at in self._stream(
            "SELECT profile_id, segment, change, at FROM segment_history WHERE at >= ? "
            "ORDER BY at, id",
            (cutoff,),
        ):
            found = _change(segment, change, at)
            if found is not None:
                yield str(pid), found

    def record(
        self, profile_id: str, entered: Sequence[str], left: Sequence[str], at: datetime
    ) -> None:
        stamp = isoformat(at)
        rows = [(profile_id, key, "entered", stamp) for key in entered]
        rows += [(profile_id, key, "left", stamp) for key in left]
        self._many(
            "INSERT INTO segment_history (profile_id, segment, change, at) VALUES (?, ?, ?, ?)",
            rows,
        )

    def record_many(self, changes: Sequence[SegmentChanges]) -> None:
        rows = []
        for profile_id, entered, left, at in changes:
            stamp = isoformat(at)
            rows += [(profile_id, key, "entered", stamp) for key in entered]
            rows += [(profile_id, key, "left", stamp) for key in left]
        self._many(
            "INSERT INTO segment_history (profile_id, segment, change, at) VALUES (?, ?, ?, ?)",
            rows,
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._exec("DELETE FROM segment_history WHERE profile_id = ?", (profile_id,))

    def purge_before(self, cutoff: datetime) -> int:
        return self._exec("DELETE FROM segment_history WHERE at < ?", (isoformat(cutoff),))
