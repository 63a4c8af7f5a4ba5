"""The views of a worker among several: the same views, plus two things.

- What this worker publishes after a commit is also noted on the :class:`ChangeBus` (the keys
  only), so every other worker drops those keys from its caches; ``invalidate`` is that drop
  (local only, nothing noted).
- Item statistics are folded only from the shared observation log (:class:`ItemStatsFollower`),
  mine and everyone else's in log order, so every worker's statistics are the same fold of the
  same observations; the local ``apply`` after a commit just wakes the follower.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from loopwise.decide.item_stats import ItemStats
from loopwise.distributed.bus import ChangeBus, Changes
from loopwise.privacy.consent import ConsentState
from loopwise.profiles.model import Profile
from loopwise.storage.records import Exposure, Observation
from loopwise.storage.stores import ItemStatsStoreReader, Storage
from loopwise.views import Views
from loopwise.views.consent import ConsentView
from loopwise.views.exposures import ExposureView
from loopwise.views.identities import IdentityView
from loopwise.views.item_stats import ItemStatsView
from loopwise.views.profiles import ProfileView

log = logging.getLogger(__name__)

FOLLOW_EVERY_S = 0.05  # the longest an observation waits to reach this worker's statistics


class SharedProfileView(ProfileView):
    bus: ChangeBus | None = None

    def publish(
        self, profile: Profile, membership: frozenset[str] | None, data: bytes | None = None
    ) -> None:
        super().publish(profile, membership, data)
        _note(self.bus, Changes(profiles={profile.id}))

    def forget(self, pids: Iterable[str]) -> None:
        pids = list(pids)
        super().forget(pids)
        _note(self.bus, Changes(profiles=set(pids)))

    def mark_absent(self, pids: Iterable[str]) -> None:
        pids = list(pids)
        super().mark_absent(pids)
        _note(self.bus, Changes(profiles=set(pids)))

    def clear(self) -> None:
        super().clear()
        _note(self.bus, Changes(everything=True))

    def invalidate(self, pids: Iterable[str]) -> None:
        super().forget(pids)

    def invalidate_all(self) -> None:
        super().clear()


class SharedIdentityView(IdentityView):
    bus: ChangeBus | None = None

    def publish(self, links: Mapping[str, str]) -> None:
        super().publish(links)
        _note(self.bus, Changes(identifiers=set(links), profiles=set(links.values())))

    def forget(self, identifiers: Iterable[str]) -> None:
        identifiers = list(identifiers)
        super().forget(identifiers)
        _note(self.bus, Changes(identifiers=set(identifiers)))

    def invalidate(self, identifiers: Iterable[str], pids: Iterable[str] = ()) -> None:
        for identifier in identifiers:
            previous = self._cache.pop(identifier, None)
            if previous:
                self._members.pop(previous, None)
        for pid in pids:
            self._members.pop(pid, None)

    def invalidate_all(self) -> None:
        super().clear()


class SharedConsentView(ConsentView):
    bus: ChangeBus | None = None

    def publish(self, states: Mapping[str, ConsentState]) -> None:
        super().publish(states)
        _note(self.bus, Changes(consent=set(states)))

    def forget(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        super().forget(keys)
        _note(self.bus, Changes(consent=set(keys)))

    def someone_chose(self) -> None:
        """Another worker stored a consent choice: the "nobody chose" fast paths are over."""
        self._anyone = True

    def invalidate(self, keys: Iterable[str], *, someone_chose: bool = True) -> None:
        """Drop ``keys``; ``someone_chose``: they were dropped because a choice was stored."""
        for key in keys:
            self._cache.pop(key, None)
        if someone_chose:
            self._anyone = True

    def invalidate_all(self) -> None:
        self._cache.clear()
        if not self._anyone:
            self._anyone = self._store.count() > 0


class SharedExposureView(ExposureView):
    bus: ChangeBus | None = None

    def publish(self, exposures: Iterable[Exposure]) -> None:
        exposures = list(exposures)
        super().publish(exposures)
        _note(self.bus, Changes(exposures={e.profile_id for e in exposures}))

    def remove(self, exposures: Iterable[Exposure]) -> None:
        exposures = list(exposures)
        super().remove(exposures)
        _note(self.bus, Changes(exposures={e.profile_id for e in exposures}))

    def forget(self, pids: Iterable[str]) -> None:
        pids = list(pids)
        super().forget(pids)
        _note(self.bus, Changes(exposures=set(pids)))

    def clear(self) -> None:
        super().clear()
        _note(self.bus, Changes(everything=True))

    def invalidate(self, pids: Iterable[str]) -> None:
        super().forget(pids)

    def invalidate_all(self) -> None:
        super().clear()


class SharedItemStatsView(ItemStatsView):
    """Statistics folded from the shared observation log only (see the module docstring)."""

    follower: ItemStatsFollower | None = None

    def apply(self, observations: Sequence[Observation], positions: Sequence[int]) -> None:
        if self.follower is not None:
            self.follower.wake()


class ItemStatsFollower:
    """Folds the observations after this worker's position, in log order, every
    :data:`FOLLOW_EVERY_S` (and as soon as this worker committed some). Positions commit in
    order across processes (the log-position lock), so following ``seq > position`` misses
    none. When another worker's checkpoint has dropped observations this one had not folded
    yet (its position is behind the checkpoint's), it loads that checkpoint first."""

    def __init__(
        self, view: ItemStatsView, store: ItemStatsStoreReader, empty: Callable[[], ItemStats]
    ) -> None:
        self._view = view
        self._store = store
        self._empty = empty
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loopwise-follow", daemon=True)
        self.failures = 0

    def start(self) -> ItemStatsFollower:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def follow(self) -> int:
        """Fold what is new; returns how many observations."""
        position = self._view.position
        checkpoint = self._checkpoint_position()
        if checkpoint > position:
            self._reload()
            position = self._view.position
        # read first, then fold under the statistics' lock (decide reads them meanwhile)
        folded = self._view.fold_in(list(self._store.observations(position)))
        if folded and self._checkpoint_position() > position:
            self._reload()  # a checkpoint dropped rows while we read: start from it
        return folded

    def _checkpoint_position(self) -> int:
        position = getattr(self._store, "checkpoint_position", None)
        if position is not None:
            return int(position())
        checkpoint = self._store.checkpoint()
        return checkpoint.position if checkpoint is not None else 0

    def _reload(self) -> None:
        fresh = ItemStatsView(self._empty())
        fresh.load(self._store, lambda at: None)
        self._view.replace(fresh.stats, fresh.position)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(FOLLOW_EVERY_S)
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                self.follow()
            except Exception as exc:  # the database may be back at the next round
                self.failures += 1
                log.warning("following item observations failed: %s", type(exc).__name__)
                self._stopped.wait(1.0)


def shared_views(storage: Storage, limit: int, item_stats: ItemStats, bus: ChangeBus) -> Views:
    profiles = SharedProfileView(storage.profiles, limit)
    identities = SharedIdentityView(storage.identities, 4 * limit)
    consent = SharedConsentView(storage.consent, limit)
    exposures = SharedExposureView(storage.exposures, limit)
    for view in (profiles, identities, consent, exposures):
        view.bus = bus
    stats = SharedItemStatsView(item_stats)
    return Views(
        profiles=profiles,
        identities=identities,
        consent=consent,
        exposures=exposures,
        item_stats=stats,
    )


def drop(views: Views, changes: Changes) -> None:
    """Drop what another worker changed from this worker's caches."""
    profiles, identities = views.profiles, views.identities
    consent, exposures = views.consent, views.exposures
    assert isinstance(profiles, SharedProfileView)
    assert isinstance(identities, SharedIdentityView)
    assert isinstance(consent, SharedConsentView)
    assert isinstance(exposures, SharedExposureView)
    if changes.everything:
        identities.invalidate_all()
        profiles.invalidate_all()
        consent.invalidate_all()
        exposures.invalidate_all()
        return
    if changes.identifiers or changes.profiles:
        identities.invalidate(changes.identifiers, changes.profiles)
    if changes.profiles:
        profiles.invalidate(changes.profiles)
    if changes.consent:
        consent.invalidate(changes.consent)
    if changes.exposures:
        exposures.invalidate(changes.exposures)


def _note(bus: ChangeBus | None, changes: Changes) -> None:
    if bus is not None:
        bus.note(changes)
