"""The ingest service: the consent gate, then the projector, in one write job per request.

Validation happened at the edge (``events.normalize``); here the events of people who did not
consent to analytics are dropped (they feed only anonymous item counts), the consent choices
events carry are recorded, and the rest are appended to the log and folded. The future resolves
once all of it is committed and the views show it: a 200 means durable *and* applied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from loopwise.clock import Clock, EventTimeClock
from loopwise.events.kinds import classify, item_ids
from loopwise.events.schema import Event
from loopwise.privacy import consent as privacy_consent
from loopwise.privacy.consent import ConsentState
from loopwise.privacy.service import PrivacyService, state_of
from loopwise.privacy.settings import PrivacySettings
from loopwise.profiles.context import as_dict, country_from_context, device_from_context
from loopwise.profiles.identity import profile_id_for
from loopwise.projection.projector import Projector
from loopwise.storage.records import Observation
from loopwise.storage.stores import Storage, UnitOfWork
from loopwise.views import Views


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0  # new events stored and applied
    duplicates: int = 0  # retries of already stored messages (ignored)
    # accepted without analytics consent: counted in item popularity only, stored nowhere
    anonymised: int = 0


class IngestService:
    def __init__(
        self,
        storage: Storage,
        views: Views,
        projector: Projector,
        privacy: PrivacyService,
        settings: Callable[[], PrivacySettings],
        clock: Clock,
    ) -> None:
        self._storage = storage
        self._views = views
        self._projector = projector
        self._privacy = privacy
        self._settings = settings
        self._clock = clock

    def submit(self, events: Sequence[Event]) -> Future[IngestResult]:
        """Queue events; the future resolves once they are durable and applied."""
        wanted = [e for e in events if e.type != "group" or e.user_id or e.anonymous_id]
        return self._storage.submit(lambda uow: self._job(uow, wanted))

    def ingest(self, events: Sequence[Event]) -> IngestResult:
        return self.submit(events).result()

    def _job(self, uow: UnitOfWork, events: Sequence[Event]) -> IngestResult:
        result = IngestResult()
        kept = self.gate(uow, events, result)
        projected = self._projector.project(uow, kept)
        result.accepted = projected.accepted
        result.duplicates = projected.duplicates
        newest = projected.newest_event_at
        if isinstance(self._clock, EventTimeClock) and newest is not None:
            clock = self._clock
            uow.on_commit(lambda: clock.observe(newest))
        return result

    # -- the consent gate ----------------------------------------------------------------------
    def gate(self, uow: UnitOfWork, events: Sequence[Event], result: IngestResult) -> list[Event]:
        """Record the consent choices events carry (``context.consent.categoryPreferences``),
        then keep only events of people who consented to analytics. An event's own choices
        apply to that event (withdrawing analytics in an event keeps the event out of the log).
        The others feed only the anonymous item counts: no event stored, no profile, no
        identity link, no segment history, no attribution."""
        privacy = self._settings()
        nobody = privacy_consent.EMPTY
        tracked_by_default = not privacy_consent.needs_country(
            nobody, "analytics", privacy
        ) and privacy_consent.granted(nobody, "analytics", None, privacy)
        choices = [privacy_consent.from_event_context(e.context, privacy) for e in events]
        anyone = self._views.consent.anyone_chose() or any(choices)
        if tracked_by_default and not anyone:
            return list(events)  # the fast path: nobody made a choice, analytics is the default
        if not anyone:  # nobody chose: each event gets its region's default, no consent reads
            return self._by_region(uow, events, result)
        keys_of = _ConsentKeys(uow, events)
        staged: dict[str, ConsentState] = {}
        stored = {
            key: ConsentState.from_record(record)
            for key, record in uow.consent.get(keys_of.all_keys()).items()
        }
        kept: list[Event] = []
        anonymous: list[Observation] = []
        for event, chosen in zip(events, choices, strict=True):
            keys = keys_of(event)
            if chosen and keys:
                user = event.user_id or event.anonymous_id or event.previous_id or ""
                # a choice is never later than its receipt: a client clock ahead must not date
                # it past the person's next explicit (PUT) choice, which would lose
                at = min(event.timestamp, event.received_at)
                self._privacy.record_consent(uow, staged, keys, user, chosen, at, "event")
            state = (
                state_of(uow, keys, staged)
                if any(k in staged for k in keys)
                else _merged(stored, keys)
            )
            country = None
            if privacy_consent.needs_country(state, "analytics", privacy):
                country = country_from_context(event.context) or self._known_country(
                    keys_of.profile_of(event)
                )
            if privacy_consent.granted(state, "analytics", country, privacy):
                kept.append(event)
                continue
            result.anonymised += 1
            _anonymous_observation(event, anonymous)
        self._observe_anonymous(uow, anonymous)
        return kept

    def _by_region(
        self, uow: UnitOfWork, events: Sequence[Event], result: IngestResult
    ) -> list[Event]:
        """The gate when no one has made a choice: analytics is the default of each event's
        region (from its context, else the person's profile; identities read only for events
        without a country)."""
        privacy = self._settings()
        kept: list[Event] = []
        anonymous: list[Observation] = []
        keys_of: _ConsentKeys | None = None
        regional = privacy_consent.needs_country(privacy_consent.EMPTY, "analytics", privacy)
        for event in events:
            country = country_from_context(event.context) if regional else None
            if country is None and regional:
                if keys_of is None:
                    keys_of = _ConsentKeys(uow, events)
                country = self._known_country(keys_of.profile_of(event))
            if privacy_consent.granted(privacy_consent.EMPTY, "analytics", country, privacy):
                kept.append(event)
                continue
            result.anonymised += 1
            _anonymous_observation(event, anonymous)
        self._observe_anonymous(uow, anonymous)
        return kept

    def _observe_anonymous(self, uow: UnitOfWork, anonymous: list[Observation]) -> None:
        if anonymous:
            positions = uow.item_stats.observe(anonymous)
            view = self._views.item_stats
            uow.on_commit(lambda: view.apply(anonymous, positions))

    def _known_country(self, pid: str | None) -> str | None:
        """The country on the person's profile (for events whose context has none)."""
        if pid is None:
            return None
        profile = self._views.profiles.for_writer([pid])[pid].profile
        return profile.country if profile is not None else None


def _anonymous_observation(event: Event, into: list[Observation]) -> None:
    """What an event without analytics consent still feeds: the anonymous item counts."""
    ids = item_ids(event)
    if ids and device_from_context(as_dict(event.context)).get("type") != "bot":
        into.append(
            Observation(0, classify(event).value, tuple(ids), event.timestamp, anonymous=True)
        )


def _merged(states: dict[str, ConsentState], keys: Sequence[str]) -> ConsentState:
    found = [states[k] for k in keys if k in states and states[k].choices]
    if not found:
        return privacy_consent.EMPTY
    return found[0] if len(found) == 1 else privacy_consent.merge(found)


class _ConsentKeys:
    """Consent keys of a batch's people, from one identity read for the whole batch."""

    def __init__(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        identifiers = list(
            dict.fromkeys(
                i for e in events for i in (e.user_id, e.anonymous_id, e.previous_id) if i
            )
        )
        self._links = uow.identities.resolve(identifiers)
        self._members = uow.identities.members(set(self._links.values()))
        self._identifiers = identifiers

    def keys(self, identifiers: Sequence[str | None]) -> list[str]:
        keys: list[str] = []
        for identifier in identifiers:
            if not identifier:
                continue
            pid = self._links.get(identifier)
            if pid is not None:
                keys.append(pid)
                keys.extend(profile_id_for(i) for i in sorted(self._members.get(pid, ())))
            keys.append(profile_id_for(identifier))
        return list(dict.fromkeys(keys))

    def __call__(self, event: Event) -> list[str]:
        return self.keys([event.user_id, event.anonymous_id, event.previous_id])

    def all_keys(self) -> list[str]:
        return self.keys(list(self._identifiers))

    def profile_of(self, event: Event) -> str | None:
        return self._links.get(event.user_id or "") or self._links.get(event.anonymous_id or "")
