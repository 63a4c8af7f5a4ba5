"""The event log on PostgreSQL: ``events`` (partitioned by month of receipt, for the reasons
in :mod:`loopwise.storage.postgres.partitions`) and ``event_ids`` (every stored message id).

Positions come from one sequence. Appends (and item observations) take a transaction-scoped
advisory lock first, so across every process writing to this schema positions are handed out in
commit order: a reader following the log with ``iter(after=last)`` never misses a row that
commits later with a smaller position.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from psycopg import sql

from loopwise.events.schema import Event
from loopwise.storage.codec import encode_event
from loopwise.storage.decoding import damaged_events, logged_events
from loopwise.storage.postgres.base import POSITIONS_LOCK, Connect, Table, first_column, ms
from loopwise.storage.postgres.partitions import (
    Partitions,
    attached,
    month_bounds,
    month_of,
)
from loopwise.storage.records import Damaged, LoggedEvent


def take_positions(table: Table, sequence: str, count: int) -> list[int]:
    """``count`` new positions from ``sequence``, in order, after taking the log-positions lock
    (held to the end of the transaction); both in one round trip."""
    with table._connect() as conn, conn.pipeline():
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", [POSITIONS_LOCK]
        )
        cursor = conn.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [sequence, count])
        return sorted(int(row[0]) for row in cursor.fetchall())


class PostgresEventLog(Table):
    def __init__(self, connect: Connect, *, pooled: bool, partitions: Partitions | None) -> None:
        super().__init__(connect, pooled=pooled)
        self._partitions = partitions

    def iter(self, profile_id: str | None = None, *, after: int = 0) -> Iterator[LoggedEvent]:
        if profile_id is None:
            query = (
                "SELECT seq, profile_id, record FROM events WHERE seq > %s ORDER BY seq LIMIT %s"
            )
            rows = self._paged(query, [], first_column, start=[after])
        else:
            query = (
                "SELECT seq, profile_id, record FROM events WHERE profile_id = %s AND seq > %s "
                "ORDER BY seq LIMIT %s"
            )
            rows = self._paged(query, [profile_id], first_column, start=[after])
        return logged_events(rows)

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM events"))

    def last_seq(self) -> int:
        return int(self._one("SELECT coalesce(max(seq), 0) FROM events"))

    def known(self, message_ids: Sequence[str]) -> set[str]:
        rows = self._all(
            "SELECT message_id FROM event_ids WHERE message_id = ANY(%b)", [list(message_ids)]
        )
        return {row[0] for row in rows}

    def damaged(self, limit: int = 100) -> list[Damaged]:
        query = "SELECT seq, record FROM events WHERE seq > %s ORDER BY seq LIMIT %s"
        return damaged_events(self._paged(query, [], first_column, start=[0]), limit)

    def append(self, events: Sequence[Event], profile_ids: Sequence[str]) -> list[int | None]:
        if len(events) != len(profile_ids):
            raise ValueError("append needs exactly one profile id per event")
        first: dict[str, int] = {}  # message id -> index of its first copy in this batch
        for index, event in enumerate(events):
            first.setdefault(event.message_id, index)
        seqs: list[int | None] = [None] * len(events)
        if not first:
            return seqs
        assert self._partitions is not None, "appends run in a unit of work"
        candidates = list(first.values())  # first copies, in batch order
        # a position for each candidate, so the insert needs no second trip: a retry's
        # position is left unused (positions have gaps, as sequences do; none is reused)
        positions = take_positions(self, "events_seq", len(candidates))
        with self._connect() as conn:
            self._partitions.ensure(conn, {month_of(events[i].received_at) for i in candidates})
        columns: list[list[object]] = [[], [], [], [], [], [], []]
        for index, seq in zip(candidates, positions, strict=True):
            event = events[index]
            row = (
                seq,
                ms(event.received_at),
                event.message_id,
                profile_ids[index],
                event.type,
                ms(event.timestamp),
                encode_event(event),
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        stored = self._returning(  # dedupe and insert in one statement
            "WITH fresh AS (INSERT INTO event_ids (message_id) SELECT unnest(%b::text[]) "
            "ON CONFLICT DO NOTHING RETURNING message_id) "
            "INSERT INTO events (seq, received_at, message_id, profile_id, type, ts, record) "
            "SELECT u.* FROM unnest(%b::bigint[], %b::timestamptz[], %b::text[], %b::text[], "
            "%b::text[], %b::timestamptz[], %b::bytea[]) "
            "AS u(seq, received_at, message_id, profile_id, type, ts, record) "
            "JOIN fresh USING (message_id) RETURNING seq",
            [list(first), *columns],
        )
        new = {int(row[0]) for row in stored}
        for index, seq in zip(candidates, positions, strict=True):
            if seq in new:
                seqs[index] = seq
        return seqs

    def reassign(self, from_profile_id: str, to_profile_id: str) -> int:
        return self._exec(
            "UPDATE events SET profile_id = %s WHERE profile_id = %s",
            [to_profile_id, from_profile_id],
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._delete("profile_id = %s", [profile_id])

    def purge_before(self, cutoff: datetime) -> int:
        cutoff = ms(cutoff)
        removed = 0
        with self._connect() as conn:
            partitions = attached(conn)
        for name, month in sorted(partitions.items()):
            if month_bounds(month)[1] > cutoff:
                continue  # the month ends after the cutoff: it may hold newer events
            table = sql.Identifier(name)
            count, newest = self._row(sql.SQL("SELECT count(*), max(ts) FROM {}").format(table))
            if newest is not None and newest >= cutoff:
                continue  # an event that ran ahead of its receipt: delete row by row below
            self._exec(
                sql.SQL(
                    "DELETE FROM event_ids e USING {} p WHERE e.message_id = p.message_id"
                ).format(table)
            )
            self._exec(sql.SQL("DROP TABLE {}").format(table))
            if self._partitions is not None:
                self._partitions.dropped(month)
            removed += int(count)
        return removed + self._delete("ts < %s", [cutoff])

    def _delete(self, where: str, params: Sequence[object]) -> int:
        """Delete the events matching ``where`` and forget their message ids."""
        query = sql.SQL(
            "WITH gone AS (DELETE FROM events WHERE {} RETURNING message_id), "
            "forgotten AS (DELETE FROM event_ids e USING gone g "
            "WHERE e.message_id = g.message_id) SELECT count(*) FROM gone"
        ).format(sql.SQL(where))  # ``where`` is one of this module's, never input
        return int(self._returning(query, params)[0][0])
