"""The profile view: recently used profiles and their segment memberships.

Locking: one lock inside the LRU guards its order; cached values are immutable (a ``Profile`` is
never changed once published — the reducer works on copies), so a reader holds a profile without
locks. The writer thread publishes after commit; a reader that loaded a profile from the store
inserts it only if nothing newer was published meanwhile (``setdefault``).
"""

from __future__ import annotations

import logging
import zlib
from collections import OrderedDict
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


# an encoded profile record (b"": no such profile; compressed once the profile left the hot
# tier), its membership and that one's generation
Compact = tuple[bytes, "frozenset[str] | None", int]

# distinct memberships shared by every profile in them (a frozenset is ~200 bytes; most people
# share a handful of combinations); beyond this many, new combinations are kept unshared
SHARED_MEMBERSHIPS = 10_000
ZLIB_LEVEL = 1  # a 2 kB record to ~0.9 kB in microseconds; decompressing is faster still


def compressed(data: bytes) -> bytes:
    """A record as the compact tier keeps it once its profile is no longer hot (JSON records
    start with ``{``, zlib streams never do)."""
    return zlib.compress(data, ZLIB_LEVEL) if data[:1] == b"{" else data


def uncompressed(data: bytes) -> bytes:
    return data if data[:1] == b"{" else zlib.decompress(data)


class _HotTier(LruCache[str, "Entry"]):
    """The decoded tier; tells the view which profile it dropped."""

    def __init__(self, limit: int, evicted: Callable[[str], None]) -> None:
        super().__init__(limit)
        self._evicted = evicted

    def popitem(self, last: bool = True) -> tuple[str, Entry]:
        key, value = super().popitem(last)
        self._evicted(key)
        return key, value


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
    """Two tiers: the most recently used profiles decoded (``hot``), and many more kept as
    their encoded record (``compact``, about a kilobyte each) that decode on first use — so a
    large cache costs little memory and the hot path still reads a decoded profile."""

    def __init__(
        self,
        store: ProfileStoreReader,
        limit: int,
        repair: Repair | None = None,
        *,
        hot_limit: int | None = None,
    ):
        self._store = store
        self._compact: LruCache[str, Compact] = LruCache(limit)
        self._hot: LruCache[str, Entry] = _HotTier(
            hot_limit if hot_limit is not None else max(1, min(limit, max(1_000, limit // 10))),
            self._compress,
        )
        self._memberships: dict[frozenset[str], frozenset[str]] = {}
        self._repair = repair
        self._generation = 0  # bumped when segment definitions change
        self.pending = Pending()

    @property
    def limit(self) -> int:
        return self._compact.limit

    def set_repair(self, repair: Repair) -> None:
        self._repair = repair

    def _cached(self, pid: str) -> Entry | None:
        hot = self._hot.get(pid)
        if hot is not None:
            return hot
        compact = self._compact.get(pid)
        if compact is None:
            return None
        data, membership, generation = compact
        if not data:
            return Entry(None, None, generation)
        try:
            profile = codec.decode_data(pid, uncompressed(data))
        except (codec.DamagedProfile, zlib.error):
            self._compact.pop(pid, None)
            return None
        return self._hot.setdefault(pid, Entry(profile, membership, generation))

    def _compress(self, pid: str) -> None:
        """A profile left the hot tier: its record in the compact tier is compressed (the
        writer may publish a newer one meanwhile; that one is kept as it is)."""
        held: Compact | None = OrderedDict.get(self._compact, pid)
        if held is None or held[0][:1] != b"{":
            return
        small = (compressed(held[0]), held[1], held[2])
        with self._compact._lock:
            if OrderedDict.get(self._compact, pid) is held:
                OrderedDict.__setitem__(self._compact, pid, small)  # keeps its recency

    def _shared(self, membership: frozenset[str] | None) -> frozenset[str] | None:
        if membership is None:
            return None
        found = self._memberships.get(membership)
        if found is not None:
            return found
        if len(self._memberships) < SHARED_MEMBERSHIPS:
            self._memberships[membership] = membership
        return membership

    def _keep(self, pid: str, entry: Entry, data: bytes) -> Entry:
        """Cache what a reader loaded, unless something newer was published meanwhile."""
        self._compact.setdefault(pid, (data, entry.membership, entry.generation))
        return self._hot.setdefault(pid, entry)

    def entry(self, pid: str, *, writer: bool = False) -> Entry:
        cached = self._cached(pid)
        if cached is not None:
            return cached
        record = self._store.get(pid)
        if record is None:
            return self._keep(pid, Entry(None, None), b"")
        try:
            return self._keep(pid, Entry(codec.decode(record), None), record.data)
        except codec.DamagedProfile as exc:
            log.warning("%s; rebuilding it from its events", exc.problem)
        profile = self._repair(pid, not writer) if self._repair is not None else None
        if profile is None:
            return Entry(None, None)  # not cached: the next read tries again
        return self._keep(pid, Entry(profile, None), codec.encode(profile).data)

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
            cached = self._cached(pid)
            if cached is None:
                missing.append(pid)
            else:
                found[pid] = cached
        if missing:
            records = self._store.get_many(missing)
            for pid in missing:
                record = records.get(pid)
                if record is None:
                    found[pid] = self._keep(pid, Entry(None, None), b"")
                    continue
                try:
                    entry = Entry(codec.decode(record), None)
                except codec.DamagedProfile:
                    found[pid] = self.entry(pid, writer=writer)  # the one-by-one path repairs it
                    continue
                found[pid] = self._keep(pid, entry, record.data)
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
        cached = self._hot.get(pid)
        membership = self._shared(membership) or membership
        if cached is not None and cached.profile is profile:
            self._hot[pid] = Entry(profile, membership, self._generation)
            compact = self._compact.get(pid)
            if compact is not None:
                self._compact[pid] = (compact[0], membership, self._generation)

    # -- after commit ---------------------------------------------------------------------------
    def publish(
        self, profile: Profile, membership: frozenset[str] | None, data: bytes | None = None
    ) -> None:
        """A committed state (``data``: its encoded record, when the writer has it)."""
        encoded = data if data is not None else codec.encode(profile).data
        membership = self._shared(membership)
        self._compact[profile.id] = (encoded, membership, self._generation)
        self._hot[profile.id] = Entry(profile, membership, self._generation)

    def forget(self, pids: Iterable[str]) -> None:
        for pid in pids:
            self._hot.pop(pid, None)
            self._compact.pop(pid, None)

    def mark_absent(self, pids: Iterable[str]) -> None:
        for pid in pids:
            self._hot[pid] = Entry(None, None)
            self._compact[pid] = (b"", None, self._generation)

    def clear(self) -> None:
        self._hot.clear()
        self._compact.clear()

    def forget_memberships(self) -> None:
        """The segments changed: every cached membership is re-evaluated on next use."""
        self._generation += 1
        self._memberships = {}

    def __len__(self) -> int:
        return len(self._compact)
