"""Experiment exposures in memory: one row per (experiment, profile), in insertion order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from loopwise.clock import isoformat
from loopwise.storage.codec import encode_exposure
from loopwise.storage.decoding import exposures
from loopwise.storage.memory.base import Store
from loopwise.storage.records import Exposure


def _decoded(rows: Iterable[Any]) -> Iterator[Exposure]:
    return exposures(row[-1] for row in rows)


def _oldest_first(rows: Iterable[Any]) -> list[Any]:
    return sorted(rows, key=lambda row: (row[2], row[3]))  # exposed_at, then insertion


class MemoryExposureStore(Store):
    def _where(self, index: str, values: Iterable[str]) -> list[Any]:
        with self._db.read() as tables:
            exposures = tables["exposures"]
            keys = [k for v in dict.fromkeys(values) for k in exposures.keys_where(index, v)]
            return _oldest_first(exposures.rows[k] for k in keys)

    def get(self, experiment: str, profile_id: str) -> Exposure | None:
        with self._db.read() as tables:
            row = tables["exposures"].get((experiment, profile_id))
        return None if row is None else next(_decoded([row]), None)

    def for_profiles(self, profile_ids: Iterable[str]) -> list[Exposure]:
        return list(_decoded(self._where("profile_id", profile_ids)))

    def iter(self, experiment: str | None = None) -> Iterator[Exposure]:
        if experiment is not None:
            return _decoded(self._where("experiment", [experiment]))
        with self._db.read() as tables:
            rows = _oldest_first(tables["exposures"].rows.values())
        return _decoded(rows)

    def count(self, experiment: str) -> int:
        with self._db.read() as tables:
            return len(tables["exposures"].keys_where("experiment", experiment))

    def experiments(self) -> dict[str, int]:
        with self._db.read() as tables:
            exposures = tables["exposures"]
            names = list(exposures.values_of("experiment"))
            return {name: len(exposures.keys_where("experiment", name)) for name in names}

    def _store(self, exposure: Exposure, order: int) -> None:
        key = (exposure.experiment, exposure.profile_id)
        at = isoformat(exposure.exposed_at)
        self._db.put("exposures", key, (*key, at, order, encode_exposure(exposure)))

    def insert(self, exposure: Exposure) -> bool:
        with self._db.read() as tables:
            exists = tables["exposures"].get((exposure.experiment, exposure.profile_id))
        if exists is not None:
            return False
        self._store(exposure, self._db.next_id("exposures"))
        return True

    def put(self, exposure: Exposure) -> None:
        with self._db.read() as tables:
            old = tables["exposures"].get((exposure.experiment, exposure.profile_id))
        # a replaced row keeps its place in insertion order, as an SQL upsert keeps its rowid
        self._store(exposure, old[3] if old is not None else self._db.next_id("exposures"))

    def delete(self, experiment: str, profile_id: str) -> None:
        self._db.pop("exposures", (experiment, profile_id))

    def delete_profile(self, profile_id: str) -> int:
        rows = self._where("profile_id", [profile_id])
        for row in rows:
            self._db.pop("exposures", (row[0], row[1]))
        return len(rows)

    def purge_before(self, cutoff: datetime) -> int:
        stamp = isoformat(cutoff)
        with self._db.read() as tables:
            old = [key for key, row in tables["exposures"].rows.items() if row[2] < stamp]
        for key in old:
            self._db.pop("exposures", key)
        return len(old)
