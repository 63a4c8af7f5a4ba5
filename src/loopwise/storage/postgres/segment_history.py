"""Segment entries and exits on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from loopwise.storage.postgres.base import BEGINNING, Table, ms, utc
from loopwise.storage.records import SegmentChange
from loopwise.storage.stores import SegmentChanges


def _order(row: Any) -> list[Any]:
    return [row[3], row[4]]


class PostgresSegmentHistory(Table):
    def for_profile(self, profile_id: str) -> list[SegmentChange]:
        rows = self._all(
            "SELECT segment, change, at FROM segment_history WHERE profile_id = %s ORDER BY id",
            [profile_id],
        )
        return [SegmentChange(segment, change, utc(at)) for segment, change, at in rows]

    def iter(self, since: datetime | None = None) -> Iterator[tuple[str, SegmentChange]]:
        rows = self._paged(
            "SELECT profile_id, segment, change, at, id FROM segment_history "
            "WHERE (at, id) > (%s, %s) ORDER BY at, id LIMIT %s",
            [],
            _order,
            start=[BEGINNING if since is None else ms(since), 0],  # ids start at 1
        )
        for pid, segment, change, at, _ in rows:
            yield pid, SegmentChange(segment, change, utc(at))

    def record(
        self, profile_id: str, entered: Sequence[str], left: Sequence[str], at: datetime
    ) -> None:
        changes = [(key, "entered") for key in entered] + [(key, "left") for key in left]
        if not changes:
            return
        # ids follow the order rows leave the sorted SELECT: entries, then exits, as given
        self._exec(
            "INSERT INTO segment_history (profile_id, segment, change, at) "
            "SELECT %s, segment, change, %s FROM unnest(%b::text[], %b::text[]) "
            "WITH ORDINALITY AS c(segment, change, n) ORDER BY n",
            [profile_id, ms(at), [c[0] for c in changes], [c[1] for c in changes]],
        )

    def record_many(self, changes: Sequence[SegmentChanges]) -> None:
        rows = [
            (profile_id, segment, change, ms(at))
            for profile_id, entered, left, at in changes
            for segment, change in [
                *((k, "entered") for k in entered),
                *((k, "left") for k in left),
            ]
        ]
        if not rows:
            return
        self._exec(
            "INSERT INTO segment_history (profile_id, segment, change, at) "
            "SELECT p, s, c, a FROM unnest(%b::text[], %b::text[], %b::text[], "
            "%b::timestamptz[]) WITH ORDINALITY AS r(p, s, c, a, n) ORDER BY n",
            [
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [r[3] for r in rows],
            ],
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._exec("DELETE FROM segment_history WHERE profile_id = %s", [profile_id])

    def purge_before(self, cutoff: datetime) -> int:
        return self._exec("DELETE FROM segment_history WHERE at < %s", [ms(cutoff)])
