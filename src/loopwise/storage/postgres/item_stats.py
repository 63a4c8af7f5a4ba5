"""Item statistics on PostgreSQL: the observation tail and the checkpoint that covers the rest.

Observations take the log-positions lock (:mod:`loopwise.storage.postgres.events`), so their
positions commit in order across processes and a checkpoint never drops one that commits late.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from loopwise.storage.codec import encode_observation
from loopwise.storage.decoding import observations
from loopwise.storage.postgres.base import Table, first_column, ms, utc
from loopwise.storage.postgres.events import take_positions
from loopwise.storage.records import Checkpoint, Observation
from loopwise.storage.sqlite.item_stats import CHECKPOINT_NAME


class PostgresItemStatsStore(Table):
    def checkpoint(self) -> Checkpoint | None:
        row = self._row(
            "SELECT position, data, saved_at FROM checkpoints WHERE name = %s", [CHECKPOINT_NAME]
        )
        return None if row is None else Checkpoint(int(row[0]), bytes(row[1]), utc(row[2]))

    def checkpoint_position(self) -> int:
        """The position the stored checkpoint covers (0: none), without reading its data."""
        value = self._one("SELECT position FROM checkpoints WHERE name = %s", [CHECKPOINT_NAME])
        return 0 if value is None else int(value)

    def observations(self, after: int = 0) -> Iterator[Observation]:
        return observations(
            self._paged(
                "SELECT seq, record FROM item_observations WHERE seq > %s ORDER BY seq LIMIT %s",
                [],
                first_column,
                start=[after],
            )
        )

    def anonymous_observations(self) -> Iterator[Observation]:
        return observations(
            self._paged(
                "SELECT seq, record FROM item_observations WHERE anonymous AND seq > %s "
                "ORDER BY seq LIMIT %s",
                [],
                first_column,
                start=[0],
            )
        )

    def observe(self, observations: Sequence[Observation]) -> list[int]:
        if not observations:
            return []
        seqs = take_positions(self, "item_observations_seq", len(observations))
        self._exec(
            "INSERT INTO item_observations (seq, at, anonymous, record) "
            "SELECT * FROM unnest(%b::bigint[], %b::timestamptz[], %b::boolean[], %b::bytea[])",
            [
                seqs,
                [ms(o.at) for o in observations],
                [o.anonymous for o in observations],
                [encode_observation(o) for o in observations],
            ],
        )
        return list(seqs)

    def purge_before(self, cutoff: datetime) -> int:
        return self._exec("DELETE FROM item_observations WHERE at < %s", [ms(cutoff)])

    def last_position(self) -> int:
        return int(self._one("SELECT coalesce(max(seq), 0) FROM item_observations"))

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._exec(
            "INSERT INTO checkpoints (name, position, saved_at, data) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "saved_at = excluded.saved_at, data = excluded.data",
            [CHECKPOINT_NAME, checkpoint.position, ms(checkpoint.saved_at), checkpoint.data],
        )
        self._exec(
            "DELETE FROM item_observations WHERE seq <= %s AND NOT anonymous",
            [checkpoint.position],
        )
