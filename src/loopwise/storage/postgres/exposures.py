"""Experiment exposures on PostgreSQL: one row per (experiment, profile)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from loopwise.storage.codec import encode_exposure
from loopwise.storage.decoding import exposures
from loopwise.storage.postgres.base import BEGINNING, Table, ms
from loopwise.storage.records import Exposure

_ORDER = "ORDER BY exposed_at, id LIMIT %s"


def _order(row: Any) -> list[Any]:
    return [row[0], row[1]]


class PostgresExposureStore(Table):
    def _values(self, exposure: Exposure) -> list[Any]:
        return [
            exposure.experiment,
            exposure.profile_id,
            ms(exposure.exposed_at),
            encode_exposure(exposure),
        ]

    def get(self, experiment: str, profile_id: str) -> Exposure | None:
        blob = self._one(
            "SELECT record FROM exposures WHERE experiment = %s AND profile_id = %s",
            [experiment, profile_id],
        )
        return None if blob is None else next(exposures([blob]), None)

    def for_profiles(self, profile_ids: Iterable[str]) -> list[Exposure]:
        rows = self._all(
            "SELECT record FROM exposures WHERE profile_id = ANY(%b) ORDER BY exposed_at, id",
            [list(profile_ids)],
        )
        return list(exposures(row[0] for row in rows))

    def iter(self, experiment: str | None = None) -> Iterator[Exposure]:
        select = "SELECT exposed_at, id, record FROM exposures"
        start = [BEGINNING, 0]  # ids start at 1
        if experiment is None:
            query = f"{select} WHERE (exposed_at, id) > (%s, %s) {_ORDER}"
            rows = self._paged(query, [], _order, start=start)
        else:
            query = f"{select} WHERE experiment = %s AND (exposed_at, id) > (%s, %s) {_ORDER}"
            rows = self._paged(query, [experiment], _order, start=start)
        return exposures(row[2] for row in rows)

    def count(self, experiment: str) -> int:
        return int(self._one("SELECT count(*) FROM exposures WHERE experiment = %s", [experiment]))

    def experiments(self) -> dict[str, int]:
        rows = self._all("SELECT experiment, count(*) FROM exposures GROUP BY experiment")
        return {name: int(count) for name, count in rows}

    def insert(self, exposure: Exposure) -> bool:
        return (
            self._exec(
                "INSERT INTO exposures (experiment, profile_id, exposed_at, record) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                self._values(exposure),
            )
            == 1
        )

    def put(self, exposure: Exposure) -> None:
        self._exec(
            "INSERT INTO exposures (experiment, profile_id, exposed_at, record) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (experiment, profile_id) DO UPDATE SET "
            "exposed_at = excluded.exposed_at, record = excluded.record",
            self._values(exposure),
        )

    def delete(self, experiment: str, profile_id: str) -> None:
        self._exec(
            "DELETE FROM exposures WHERE experiment = %s AND profile_id = %s",
            [experiment, profile_id],
        )

    def delete_profile(self, profile_id: str) -> int:
        return self._exec("DELETE FROM exposures WHERE profile_id = %s", [profile_id])

    def purge_before(self, cutoff: datetime) -> int:
        return self._exec("DELETE FROM exposures WHERE exposed_at < %s", [ms(cutoff)])
