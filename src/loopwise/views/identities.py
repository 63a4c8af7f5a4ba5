"""The identity view: which profile an identifier resolves to.

Bounded: recently used identifiers (and recently asked-about unknown ones, so anonymous visitors
who never sent an event cost no store read per request) in an LRU; the rest are read from the
identity store when asked. Locking: the LRU's own lock; values are plain strings. Links are
published after commit; a reader's store result is inserted only when nothing newer was
published meanwhile (``setdefault``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from loopwise.profiles.cache import LruCache
from loopwise.storage.stores import IdentityStoreReader

_UNKNOWN = ""  # cached "no link" (a real profile id is never empty)


class IdentityView:
    def __init__(self, store: IdentityStoreReader, limit: int) -> None:
        self._store = store
        self._cache: LruCache[str, str] = LruCache(limit)
        self._members: LruCache[str, frozenset[str]] = LruCache(max(1, limit // 4))

    def resolve(self, identifier: str | None) -> str | None:
        if not identifier:
            return None
        cached = self._cache.get(identifier)
        if cached is None:
            found = self._store.resolve([identifier]).get(identifier, _UNKNOWN)
            cached = self._cache.setdefault(identifier, found)
        return cached or None

    def resolve_many(self, identifiers: Iterable[str]) -> dict[str, str]:
        """``identifier -> profile id`` for the linked ones, with one store read for misses."""

        def load(missing: list[str]) -> dict[str, str]:
            stored = self._store.resolve(missing)
            return {identifier: stored.get(identifier, _UNKNOWN) for identifier in missing}

        found = self._cache.get_many((i for i in identifiers if i), load)
        return {identifier: pid for identifier, pid in found.items() if pid}

    def resolve_user(self, user_id: str | None, anonymous_id: str | None) -> str | None:
        return self.resolve(user_id) or self.resolve(anonymous_id)

    def members_many(self, pids: Iterable[str]) -> dict[str, frozenset[str]]:
        """:meth:`members` of each, with one store read for the profiles not cached."""

        def load(missing: list[str]) -> dict[str, frozenset[str]]:
            stored = self._store.members(missing)
            return {pid: frozenset(stored.get(pid, ())) for pid in missing}

        return self._members.get_many(pids, load)

    def members(self, pid: str) -> frozenset[str]:
        """Every identifier of a profile."""
        cached = self._members.get(pid)
        if cached is None:
            stored = frozenset(self._store.members([pid]).get(pid, ()))
            cached = self._members.setdefault(pid, stored)
        return cached

    # -- after commit ---------------------------------------------------------------------------
    def publish(self, links: Mapping[str, str]) -> None:
        for identifier, pid in links.items():
            previous = self._cache.get(identifier)
            if previous:
                self._members.pop(previous, None)
            self._members.pop(pid, None)
            self._cache[identifier] = pid

    def forget(self, identifiers: Iterable[str]) -> None:
        for identifier in identifiers:
            previous = self._cache.get(identifier)
            if previous:
                self._members.pop(previous, None)
            self._cache[identifier] = _UNKNOWN

    def clear(self) -> None:
        self._cache.clear()
        self._members.clear()
