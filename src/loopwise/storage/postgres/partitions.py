"""The event log's monthly partitions, by time of receipt, created on demand.

Why receipt and not event time: receipt time only moves forward, so inserts land in the newest
partition and a new one is needed once a month, not for every backfilled month a client sends;
retention, which purges by event time, can still drop a whole old partition once every event in
it is older than the cutoff (checked, since event time may run up to a day ahead of receipt),
and deletes row by row only in the partitions that straddle the cutoff.

A partition is created as a plain table and then attached: ``ATTACH PARTITION`` takes only a
SHARE UPDATE EXCLUSIVE lock on ``events``, so readers and other writers go on, where ``CREATE
TABLE ... PARTITION OF`` would lock them out until the writer's transaction commits. Creating
happens inside the writer's transaction under the log-positions lock, so two processes never
race for the same month, and a rolled-back job takes its partition with it: the cache of known
partitions is forgotten on every rollback and checked again.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from psycopg import sql

from loopwise.storage.postgres.base import Connection

_NAME = re.compile(r"^events_y(\d{4})m(\d{2})$")


def month_of(at: datetime) -> tuple[int, int]:
    at = at.astimezone(UTC)
    return at.year, at.month


def partition_name(month: tuple[int, int]) -> str:
    return f"events_y{month[0]:04d}m{month[1]:02d}"


def month_bounds(month: tuple[int, int]) -> tuple[datetime, datetime]:
    year, number = month
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def attached(conn: Connection) -> dict[str, tuple[int, int]]:
    """``name -> month`` of every partition of ``events``."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass"
    ).fetchall()
    found = {}
    for (name,) in rows:
        match = _NAME.match(name)
        if match:
            found[name] = (int(match[1]), int(match[2]))
    return found


class Partitions:
    """The writer's cache of partitions known to exist in its transaction."""

    def __init__(self) -> None:
        self._known: set[tuple[int, int]] = set()

    def ensure(self, conn: Connection, months: set[tuple[int, int]]) -> None:
        missing = months - self._known
        if not missing:
            return
        existing = set(attached(conn).values())
        for month in sorted(missing - existing):
            name = sql.Identifier(partition_name(month))
            start, end = month_bounds(month)
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                ).format(name)
            )
            conn.execute(  # DDL takes no parameters: the bounds are literals
                sql.SQL(
                    "ALTER TABLE events ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})"
                ).format(name, sql.Literal(start), sql.Literal(end))
            )
        self._known |= months

    def dropped(self, month: tuple[int, int]) -> None:
        self._known.discard(month)

    def forget(self) -> None:
        self._known.clear()
