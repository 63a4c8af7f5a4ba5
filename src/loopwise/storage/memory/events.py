"""The event log in memory: ``events`` by seq, indexed by message id and profile."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from loopwise.clock import isoformat
from loopwise.events.schema import Event
from loopwise.storage.codec import encode_event
from loopwise.storage.decoding import damaged_events, logged_events
from loopwise.storage.memory.base import Store
from loopwise.storage.records import Damaged, LoggedEvent


class MemoryEventLog(Store):
    def _rows(self, profile_id: str | None, after: int) -> list[tuple[int, Any]]:
        with self._db.read() as tables:
            events = tables["events"]
            keys = (
                events.rows if profile_id is None else events.keys_where("profile_id", profile_id)
            )
            return [(seq, events.rows[seq]) for seq in sorted(k for k in keys if k > after)]

    def iter(self, profile_id: str | None = None, *, after: int = 0) -> Iterator[LoggedEvent]:
        rows = self._rows(profile_id, after)
        return logged_events((seq, row[1], row[-1]) for seq, row in rows)

    def count(self) -> int:
        with self._db.read() as tables:
            return len(tables["events"].rows)

    def last_seq(self) -> int:
        with self._db.read() as tables:
            return max(tables["events"].rows, default=0)

    def known(self, message_ids: Sequence[str]) -> set[str]:
        with self._db.read() as tables:
            return {m for m in message_ids if tables["events"].has("message_id", m)}

    def damaged(self, limit: int = 100) -> list[Damaged]:
        return damaged_events(((seq, row[-1]) for seq, row in self._rows(None, 0)), limit)

    def append(self, events: Sequence[Event], profile_ids: Sequence[str]) -> list[int | None]:
        if len(events) != len(profile_ids):
            raise ValueError("append needs exactly one profile id per event")
        seen = self.known([event.message_id for event in events])
        fresh: list[int] = []  # indexes of the events to store: first copies of new ids
        for index, event in enumerate(events):
            if event.message_id not in seen:
                seen.add(event.message_id)
                fresh.append(index)
        seqs: list[int | None] = [None] * len(events)
        for index, seq in zip(fresh, self._db.next_ids("events", len(fresh)), strict=True):
            event = events[index]
            row = (
                event.message_id,
                profile_ids[index],
                isoformat(event.timestamp),
                isoformat(event.received_at),
                encode_event(event),
            )
            self._db.put("events", seq, row)
            seqs[index] = seq
        return seqs

    def reassign(self, from_profile_id: str, to_profile_id: str) -> int:
        rows = self._rows(from_profile_id, 0)
        for seq, row in rows:
            self._db.put("events", seq, (row[0], to_profile_id, *row[2:]))
        return len(rows)

    def delete_profile(self, profile_id: str) -> int:
        rows = self._rows(profile_id, 0)
        for seq, _ in rows:
            self._db.pop("events", seq)
        return len(rows)

    def purge_before(self, cutoff: datetime) -> int:
        stamp = isoformat(cutoff)
        old = [seq for seq, row in self._rows(None, 0) if row[2] < stamp]
        for seq in old:
            self._db.pop("events", seq)
        return len(old)
