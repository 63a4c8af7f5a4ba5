"""The exposure view: who saw which arm, for the decide hot path (a stored exposure always beats
the hash, and a first exposure is logged only once).

Per profile: ``experiment -> Exposure``, in an LRU, loaded from the exposure store on a miss.
Locking: the LRU's own lock; the per-profile maps are replaced, never changed in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from loopwise.profiles.cache import LruCache
from loopwise.storage.records import Exposure
from loopwise.storage.stores import ExposureStoreReader


class ExposureView:
    def __init__(self, store: ExposureStoreReader, limit: int) -> None:
        self._store = store
        self._cache: LruCache[str, Mapping[str, Exposure]] = LruCache(limit)

    def of(self, pid: str) -> Mapping[str, Exposure]:
        cached = self._cache.get(pid)
        if cached is None:
            stored = {e.experiment: e for e in self._store.for_profiles([pid])}
            cached = self._cache.setdefault(pid, stored)
        return cached

    def get(self, experiment: str, pid: str) -> Exposure | None:
        return self.of(pid).get(experiment)

    # -- after commit ---------------------------------------------------------------------------
    def publish(self, exposures: Iterable[Exposure]) -> None:
        for exposure in exposures:
            held = dict(self.of(exposure.profile_id))
            held[exposure.experiment] = exposure
            self._cache[exposure.profile_id] = held

    def remove(self, exposures: Iterable[Exposure]) -> None:
        for exposure in exposures:
            held = dict(self.of(exposure.profile_id))
            if held.get(exposure.experiment) == exposure:
                del held[exposure.experiment]
            self._cache[exposure.profile_id] = held

    def forget(self, pids: Iterable[str]) -> None:
        for pid in pids:
            self._cache.pop(pid, None)

    def clear(self) -> None:
        self._cache.clear()
