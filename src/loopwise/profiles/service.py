"""The profile service: who an identifier is, what the engine knows about them, and the repair
of a damaged stored profile (rebuilt from the person's own events by the one reducer)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from loopwise.catalog.items import Item
from loopwise.clock import Clock, isoformat
from loopwise.profiles import codec
from loopwise.profiles.model import Profile
from loopwise.profiles.reducer import reduce
from loopwise.storage.records import SegmentChange
from loopwise.storage.stores import Storage, UnitOfWork
from loopwise.views import Views
from loopwise.workspace.compiled import CompiledWorkspace

log = logging.getLogger(__name__)


class ProfileService:
    def __init__(
        self,
        storage: Storage,
        views: Views,
        compiled: Callable[[], CompiledWorkspace],
        catalog: Callable[[], Mapping[str, Item]],
        clock: Clock,
    ) -> None:
        self._storage = storage
        self._views = views
        self._compiled = compiled
        self._catalog = catalog
        self._clock = clock
        views.profiles.set_repair(self.repair)

    def resolve(self, identifier: str) -> str | None:
        """The profile id of a userId or anonymousId; a profile id resolves to itself."""
        pid = self._views.identities.resolve(identifier)
        if pid is not None:
            return pid
        return identifier if self._views.profiles.get(identifier) is not None else None

    def profile(self, identifier: str) -> Profile | None:
        pid = self.resolve(identifier)
        return self._views.profiles.get(pid) if pid else None

    def membership(self, pid: str) -> frozenset[str]:
        """The segments of the stored profile state (cached with the profile)."""
        entry = self._views.profiles.entry(pid)
        if entry.profile is None:
            return frozenset()
        known = self._views.profiles.membership(entry)
        if known is None:
            known = self._compiled().membership(entry.profile)
            self._views.profiles.remember_membership(pid, entry.profile, known)
        return known

    def view(self, identifier: str) -> dict[str, Any] | None:
        """``GET /v1/profiles/{id}``: attributes now, segments, identifiers, segment history."""
        pid = self.resolve(identifier)
        profile = self._views.profiles.get(pid) if pid else None
        if profile is None or pid is None:
            return None
        compiled = self._compiled()
        attributes = compiled.profile_attributes(profile, self._clock())
        segments = compiled.registry.evaluate({"profile": attributes, "context": {}})
        history = [
            {"segment": c.segment, "change": c.change, "at": isoformat(c.at)}
            for c in self._storage.segment_history.for_profile(pid)
        ]
        return {
            "profile": attributes,
            "segments": segments,
            "identifiers": sorted(self._views.identities.members(pid)),
            "segment_history": history,
        }

    def every_profile(self) -> Iterator[Profile]:
        """Every stored profile, decoded (damaged ones are skipped with a warning): for batch
        readers off the hot path, such as the console's segment census."""
        for record in self._storage.profiles.iter():
            try:
                yield codec.decode(record)
            except codec.DamagedProfile as exc:
                log.warning("%s; left out", exc)

    def count(self) -> int:
        return self._storage.profiles.count()

    def segment_changes(self, since: datetime | None = None) -> Iterator[tuple[str, SegmentChange]]:
        """Every segment entry and exit, oldest first (segment sizes over time)."""
        return self._storage.segment_history.iter(since)

    def country(self, identifier: str) -> str | None:
        profile = self.profile(identifier)
        return profile.country if profile is not None else None

    def repair(self, pid: str, store: bool = True) -> Profile | None:
        """Rebuild a damaged stored profile from its events with the reducer and (``store``)
        write it over the damaged record; None when it has no events left."""
        compiled = self._compiled()
        catalog = self._catalog()
        profile: Profile | None = None
        for logged in self._storage.events.iter(pid):
            if profile is None:
                profile = Profile.new(pid, logged.event.timestamp)
            profile = reduce(profile, logged.event, compiled.settings, catalog)
        if profile is None:
            if store:

                def drop(uow: UnitOfWork) -> None:
                    uow.profiles.delete([pid])

                self._storage.write(drop)
            return None
        if store:
            record = codec.encode(profile)
            self._storage.write(lambda uow: uow.profiles.upsert([record]))
        log.warning("profile %s was damaged and has been rebuilt from its events", pid[:8])
        return profile
