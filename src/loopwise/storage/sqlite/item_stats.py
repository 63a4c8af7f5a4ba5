"""Item statistics on SQLite: the observation tail and the checkpoint that covers the rest."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.codec import UnreadableRecord, decode_observation, encode_observation
from loopwise.storage.records import Checkpoint, Observation
from loopwise.storage.sqlite.base import Table, as_bytes

CHECKPOINT_NAME = "item_stats"


class SqliteItemStatsStore(Table):
    def checkpoint(self) -> Checkpoint | None:
        row = self._row(
            "SELECT position, data, saved_at FROM checkpoints WHERE name = ?", (CHECKPOINT_NAME,)
        )
        if row is None:
            return None
        saved_at = parse_timestamp(row[2])
        if saved_at is None:
            return None
        return Checkpoint(int(row[0]), as_bytes(row[1]), saved_at)

    def _decoded(self, rows: Iterator[tuple[int, bytes]]) -> Iterator[Observation]:
        for seq, blob in rows:
            try:
                yield decode_observation(int(seq), blob)
            except UnreadableRecord:
                continue

    def observations(self, after: int = 0) -> Iterator[Observation]:
        yield from self._decoded(
            self._stream(
                "SELECT seq, record FROM item_observations WHERE seq > ? ORDER BY seq", (after,)
            )
        )

    def anonymous_observations(self) -> Iterator[Observation]:
        yield from self._decoded(
            self._stream(
                "SELECT seq, record FROM item_observations WHERE anonymous = 1 ORDER BY seq"
            )
        )

    def observe(self, observations: Sequence[Observation]) -> list[int]:
        if not observations:
            return []
        # AUTOINCREMENT hands out sqlite_sequence + 1, + 2, ... inside the one-writer transaction
        base = int(
            self._one(
                "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'item_observations'"
            )
        )
        self._many(
            "INSERT INTO item_observations (at, anonymous, record) VALUES (?, ?, ?)",
            [(isoformat(o.at), int(o.anonymous), encode_observation(o)) for o in observations],
        )
        return [base + n for n in range(1, len(observations) + 1)]

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._exec(
            "INSERT INTO checkpoints (name, position, saved_at, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "saved_at = excluded.saved_at, data = excluded.data",
            (CHECKPOINT_NAME, checkpoint.position, isoformat(checkpoint.saved_at), checkpoint.data),
        )
        self._exec(
            "DELETE FROM item_observations WHERE seq <= ? AND anonymous = 0",
            (checkpoint.position,),
        )

    def purge_before(self, cutoff: datetime) -> int:
        return self._exec("DELETE FROM item_observations WHERE at < ?", (isoformat(cutoff),))
