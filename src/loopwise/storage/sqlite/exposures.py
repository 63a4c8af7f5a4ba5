"""Experiment exposures on SQLite: one row per (experiment, profile)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from loopwise.clock import isoformat
from loopwise.storage.codec import UnreadableRecord, decode_exposure, encode_exposure
from loopwise.storage.records import Exposure
from loopwise.storage.sqlite.base import Table


def _decoded(rows: Iterable[tuple[bytes]]) -> Iterator[Exposure]:
    for (blob,) in rows:
        try:
            yield decode_exposure(blob)
        except UnreadableRecord:
            continue


class SqliteExposureStore(Table):
    def get(self, experiment: str, profile_id: str) -> Exposure | None:
        blob = self._one(
            "SELECT record FROM exposures WHERE experiment = ? AND profile_id = ?",
            (experiment, profile_id),
        )
        return next(_decoded([(blob,)]), None) if blob is not None else None

    def for_profiles(self, profile_ids: Iterable[str]) -> list[Exposure]:
        rows = self._in(
            "SELECT record FROM exposures WHERE profile_id IN ({}) ORDER BY exposed_at, rowid",
            list(profile_ids),
        )
        return list(_decoded(rows))

    def iter(self, experiment: str | None = None) -> Iterator[Exposure]:
        if experiment is None:
            rows = self._stream("SELECT record FROM exposures ORDER BY exposed_at, rowid")
        else:
            rows = self._stream(
                "SELECT record FROM exposures WHERE experiment = ? ORDER BY exposed_at, rowid",
                (experiment,),
            )
        yield from _decoded(rows)

    def count(self, experiment: str) -> int:
        return int(self._one("SELECT count(*) FROM exposures WHERE experiment = ?", (experiment,)))

    def experiments(self) -> dict[str, int]:
        rows = self._all("SELECT experiment, count(*) FROM exposures GROUP BY experiment")
        return {str(name): int(count) for name, count in rows}

    def insert(self, exposure: Exposure) -> bool:
        return (
            self._exec(
                "INSERT OR IGNORE INTO exposures (experiment, profile_id, exposed_at, record) "
                "VALUES (?, ?, ?, ?)",
                (
                    exposure.experiment,
                    exposure.profile_id,
                    isoformat(exposure.exposed_at),
                    encode_exposure(exposure),
                ),
            )
            == 1
        )

    def put(self, exposure: Exposure) -> None:
        self._exec(
            "INSERT INTO exposures (experiment, profile_id, exposed_at, record) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (experiment, profile_id) DO UPDATE SET "
            "exposed_at = excluded.exposed_at, record = excluded.record",
            (
                exposure.experiment,
                exposure.profile_id,
                isoformat(exposure.exposed_at),
                encode_exposure(exposure),
            ),
        )

    def delete(self, experiment: str, profile_id: str) -> None:
        self._exec(
            "DELETE FROM exposures WHERE experiment = ? AND profile_id = ?",
            (experiment, profile_id),
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._exec("DELETE FROM exposures WHERE profile_id = ?", (profile_id,))

    def purge_before(self, cutoff: datetime) -> int:
        return self._exec("DELETE FROM exposures WHERE exposed_at < ?", (isoformat(cutoff),))
