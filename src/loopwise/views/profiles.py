"""The profile view: recently used profiles and their segment memberships.

Locking: one lock inside the LRU guards its order; cached values are immutable (a ``Profile`` is
never changed once published — the reducer works on copies), so a reader holds a profile without
locks. The writer thread publishes after commit; a reader that loaded a profile from the store
inserts it only if nothing newer was published meanwhile (``setdefault``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple

from loopwise.profiles import codec
from loopwise.profiles.cache import LruCache
from loopwise.profiles.model import Profile
from loopwise.storage.stores import ProfileStoreReader

log = logging.getLogger(__name__)

# rebuild a damaged profile from its events; ``store``: write it back (not from inside a write
# job, where the job's own writes replace it)
Repair = Callable[[str, bool], "Profile | None"]


class Entry(NamedTuple):
    profile: Profile | None  # None: no such profile (cached too, so unknown ids stay cheap)
    membership: frozenset[str] | None  # None: not evaluated for this state yet
    generation: int = 0  # the segment definitions the membership was evaluated with


class Pending:
    """Profiles written by jobs whose transaction has not committed yet, for the jobs after them
    in the same group commit (readers never see these). Writer thread only: no lock."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[object, Profile | None, frozenset[str] | None]] = {}

    def stage(
        self,
        token: object,
        profile_id: str,
        profile: Profile | None,
        membership: frozenset[str] | None,
    ) -> None:
        self._entries[profile_id] = (token, profile, membership)

    def get(self, profile_id: str) -> tuple[Profile | None, frozenset[str] | None] | None:
        found = self._entries.get(profile_id)
        return None if found is None else (found[1], found[2])

    def release(self, token: object) -> None:
        """The job's transaction ended (committed and published, or lost)."""
        for pid in [p for p, (t, _, _) in self._entries.items() if t is token]:
            del self._entries[pid]


class ProfileView:
    def __init__(self, store: ProfileStoreReader, limit: int, repair: Repair | None = None):
        self._store = store
        self._cache: LruCache[str, Entry] = LruCache(limit)
        self._repair = repair
        self._generation = 0  # bumped when segment definitions change
        self.pending = Pending()

    @property
    def limit(self) -> int:
        return self._cache.limit

    def set_repair(self, repair: Repair) -> None:
        self._repair = repair

    def entry(self, pid: str, *, writer: bool = False) -> Entry:
        cached = self._cache.get(pid)
        if cached is not None:
            return cached
        record = self._store.get(pid)
        profile: Profile | None = None
        if record is not None:
            try:
                profile = codec.decode(record)
            except codec.DamagedProfile as exc:
                log.warning("%s; rebuilding it from its events", exc.problem)
                profile = self._repair(pid, not writer) if self._repair is not None else None
                if profile is None:
                    return Entry(None, None)  # not cached: the next read tries again
        return self._cache.setdefault(pid, Entry(profile, None))

    def get(self, pid: str) -> Profile | None:
        return self.entry(pid).profile

    def membership(self, entry: Entry) -> frozenset[str] | None:
        """The entry's membership if it was evaluated with today's segment definitions."""
        return entry.membership if entry.generation == self._generation else None

    def get_many(self, pids: Iterable[str], *, writer: bool = False) -> dict[str, Entry]:
        """Entries for many ids, loading the missing ones from the store in one query."""
        found: dict[str, Entry] = {}
        missing: list[str] = []
        for pid in dict.fromkeys(pids):
            cached = self._cache.get(pid)
            if cached is None:
                missing.append(pid)
            else:
                found[pid] = cached
        if missing:
            records = self._store.get_many(missing)
            for pid in missing:
                record = records.get(pid)
                if record is None:
                    found[pid] = self._cache.setdefault(pid, Entry(None, None))
                    continue
                try:
                    entry = Entry(codec.decode(record), None)
                except codec.DamagedProfile:
                    found[pid] = self.entry(pid, writer=writer)  # the one-by-one path repairs it
                    continue
                found[pid] = self._cache.setdefault(pid, entry)
        return found

    def for_writer(self, pids: Iterable[str]) -> dict[str, Entry]:
        """What a write job must build on: in-flight jobs' profiles first, then the view."""
        found: dict[str, Entry] = {}
        rest: list[str] = []
        for pid in pids:
            staged = self.pending.get(pid)
            if staged is None:
                rest.append(pid)
            else:
                found[pid] = Entry(staged[0], staged[1], self._generation)
        found.update(self.get_many(rest, writer=True))
        return found

    def remember_membership(self, pid: str, profile: Profile, membership: frozenset[str]) -> None:
        """Keep a membership evaluated for the cached state (not for a newer one)."""
        cached = self._cache.get(pid)
        if cached is not None and cached.profile is profile:
            self._cache[pid] = Entry(profile, membership, self._generation)

    # -- after commit ---------------------------------------------------------------------------
    def publish(self, profile: Profile, membership: frozenset[str] | None) -> None:
        self._cache[profile.id] = Entry(profile, membership, self._generation)

    def forget(self, pids: Iterable[str]) -> None:
        for pid in pids:
            self._cache.pop(pid, None)

    def mark_absent(self, pids: Iterable[str]) -> None:
        for pid in pids:
            self._cache[pid] = Entry(None, None)

    def clear(self) -> None:
        self._cache.clear()

    def forget_memberships(self) -> None:
        """The segments changed: every cached membership is re-evaluated on next use."""
        self._generation += 1

    def __len__(self) -> int:
        return len(self._cache)
