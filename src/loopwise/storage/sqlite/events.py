"""The event log on SQLite: ``events`` (seq = log position, unique message id)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from loopwise.clock import isoformat
from loopwise.events.schema import Event
from loopwise.storage.codec import UnreadableRecord, decode_event, encode_event
from loopwise.storage.records import Damaged, LoggedEvent
from loopwise.storage.sqlite.base import Table, as_bytes


class SqliteEventLog(Table):
    def iter(self, profile_id: str | None = None, *, after: int = 0) -> Iterator[LoggedEvent]:
        if profile_id is None:
            rows = self._stream(
                "SELECT seq, profile_id, record FROM events WHERE seq > ? ORDER BY seq", (after,)
            )
        else:
            rows = self._stream(
                "SELECT seq, profile_id, record FROM events WHERE profile_id = ? AND seq > ? "
                "ORDER BY seq",
                (profile_id, after),
            )
        for seq, pid, blob in rows:
            try:
                yield LoggedEvent(int(seq), str(pid), decode_event(blob))
            except UnreadableRecord:
                continue  # listed by damaged(); one bad row must not stop a replay

    def count(self) -> int:
        return int(self._one("SELECT count(*) FROM events"))

    def last_seq(self) -> int:
        return int(self._one("SELECT coalesce(max(seq), 0) FROM events"))

    def known(self, message_ids: Sequence[str]) -> set[str]:
        rows = self._in("SELECT message_id FROM events WHERE message_id IN ({})", message_ids)
        return {str(row[0]) for row in rows}

    def damaged(self, limit: int = 100) -> list[Damaged]:
        found: list[Damaged] = []
        for seq, blob in self._stream("SELECT seq, record FROM events ORDER BY seq"):
            try:
                decode_event(blob)
            except UnreadableRecord as exc:
                found.append(Damaged("events", str(seq), str(exc), as_bytes(blob)))
                if len(found) >= limit:
                    break
        return found

    def append(self, events: Sequence[Event], profile_ids: Sequence[str]) -> list[int | None]:
        if len(events) != len(profile_ids):
            raise ValueError("append needs exactly one profile id per event")
        seen = self.known([event.message_id for event in events])
        seqs: list[int | None] = []
        rows = []
        # AUTOINCREMENT hands out sqlite_sequence + 1, + 2, ... inside this one-writer
        # transaction, so the positions are known without a query per row
        base = int(
            self._one("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events'")
            or 0
        )
        for event, profile_id in zip(events, profile_ids, strict=True):
            if event.message_id in seen:
                seqs.append(None)
                continue
            seen.add(event.message_id)
            rows.append(
                (
                    event.message_id,
                    profile_id,
                    event.type,
                    isoformat(event.timestamp),
                    isoformat(event.received_at),
                    encode_event(event),
                )
            )
            seqs.append(base + len(rows))
        self._many(
            "INSERT INTO events (message_id, profile_id, type, ts, received_at, record) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        return seqs

    def reassign(self, from_profile_id: str, to_profile_id: str) -> int:
        return self._exec(
            "UPDATE events SET profile_id = ? WHERE profile_id = ?",
            (to_profile_id, from_profile_id),
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._exec("DELETE FROM events WHERE profile_id = ?", (profile_id,))

    def purge_before(self, cutoff: datetime) -> int:
        return self._exec("DELETE FROM events WHERE ts < ?", (isoformat(cutoff),))
