"""Item statistics in memory: the observation tail and the checkpoint that covers the rest."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.codec import encode_observation
from loopwise.storage.decoding import observations
from loopwise.storage.memory.base import Store
from loopwise.storage.records import Checkpoint, Observation
from loopwise.storage.sqlite.item_stats import CHECKPOINT_NAME


class MemoryItemStatsStore(Store):
    def checkpoint(self) -> Checkpoint | None:
        with self._db.read() as tables:
            row = tables["checkpoints"].get(CHECKPOINT_NAME)
        if row is None:
            return None
        position, saved_at, data = row
        when = parse_timestamp(saved_at)
        return None if when is None else Checkpoint(position, data, when)

    def observations(self, after: int = 0) -> Iterator[Observation]:
        with self._db.read() as tables:
            rows = tables["item_observations"].rows
            tail = [(seq, rows[seq][-1]) for seq in sorted(k for k in rows if k > after)]
        return observations(tail)

    def anonymous_observations(self) -> Iterator[Observation]:
        with self._db.read() as tables:
            rows = tables["item_observations"].rows
            kept = [(seq, rows[seq][-1]) for seq in sorted(rows) if rows[seq][1]]
        return observations(kept)

    def observe(self, observations: Sequence[Observation]) -> list[int]:
        seqs = []
        for observation in observations:
            seq = self._db.next_id("item_observations")
            # the blob last, as every memory table keeps it
            row = (
                isoformat(observation.at),
                observation.anonymous,
                encode_observation(observation),
            )
            self._db.put("item_observations", seq, row)
            seqs.append(seq)
        return seqs

    def purge_before(self, cutoff: datetime) -> int:
        stamp = isoformat(cutoff)
        with self._db.read() as tables:
            old = [k for k, row in tables["item_observations"].rows.items() if row[0] < stamp]
        for seq in old:
            self._db.pop("item_observations", seq)
        return len(old)

    def last_position(self) -> int:
        with self._db.read() as tables:
            return max(tables["item_observations"].rows, default=0)

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        row = (int(checkpoint.position), isoformat(checkpoint.saved_at), bytes(checkpoint.data))
        self._db.put("checkpoints", CHECKPOINT_NAME, row)
        with self._db.read() as tables:
            rows = tables["item_observations"].rows
            covered = [k for k, row in rows.items() if k <= checkpoint.position and not row[1]]
        for seq in covered:
            self._db.pop("item_observations", seq)
