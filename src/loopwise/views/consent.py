"""The consent view: people's consent states on the hot path.

States are keyed as the consent store keys them (a canonical profile id, or the id a first event
would give an identifier). Bounded LRU with cached "no choice" entries; ``anyone_chose`` lets
ingest and decide skip every lookup while nobody has made a choice (the common case of a new
install). Locking: the LRU's own lock; states are immutable. A withdrawal is published on commit,
so it applies to the very next request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from loopwise.privacy.consent import EMPTY, ConsentState, merge
from loopwise.profiles.cache import LruCache
from loopwise.storage.stores import ConsentStoreReader


class ConsentView:
    def __init__(self, store: ConsentStoreReader, limit: int) -> None:
        self._store = store
        self._cache: LruCache[str, ConsentState] = LruCache(limit)
        self._anyone = store.count() > 0

    def anyone_chose(self) -> bool:
        """False only while no consent choice was ever stored."""
        return self._anyone

    def states(self, keys: Iterable[str]) -> dict[str, ConsentState]:
        if not self._anyone:  # nothing stored: every state is empty (forget caches EMPTY too)
            return {}

        def load(missing: list[str]) -> dict[str, ConsentState]:
            stored = self._store.get(missing)
            return {
                key: EMPTY
                if (record := stored.get(key)) is None
                else ConsentState.from_record(record)
                for key in missing
            }

        found = self._cache.get_many(keys, load)
        return {key: state for key, state in found.items() if state.choices}

    def state(self, keys: Iterable[str]) -> ConsentState:
        """One person's state: the merge of every key that is theirs."""
        found = list(self.states(keys).values())
        if not found:
            return EMPTY
        return found[0] if len(found) == 1 else merge(found)

    # -- after commit ---------------------------------------------------------------------------
    def publish(self, states: Mapping[str, ConsentState]) -> None:
        if states:
            self._anyone = True
        for key, state in states.items():
            self._cache[key] = state

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._cache[key] = EMPTY
