"""How the delivery worker reaches the rest of the engine: who a delivery's person is (consent,
ids, erased or not), deciding a slot for them, and ingesting an identify event for them. Kept
here so composition.py only wires objects together."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from loopwise.clock import Clock
from loopwise.decide.request import DecideRequest
from loopwise.decide.service import DecideService
from loopwise.events.schema import Event
from loopwise.journeys.delivery import Person
from loopwise.privacy import consent as privacy_consent
from loopwise.privacy.service import PrivacyService, consent_keys, stored_state
from loopwise.privacy.settings import PrivacySettings
from loopwise.profiles import codec
from loopwise.profiles.model import Profile
from loopwise.projection.ingest import IngestService
from loopwise.storage.journey_records import Delivery
from loopwise.storage.stores import Storage
from loopwise.views import Views


class EnginePorts:
    def __init__(
        self,
        storage: Storage,
        views: Views,
        privacy: PrivacyService,
        privacy_settings: Callable[[], PrivacySettings],
        decide: DecideService,
        ingest: IngestService,
        clock: Clock,
    ) -> None:
        self._storage = storage
        self._views = views
        self._privacy = privacy
        self._settings = privacy_settings
        self._decide = decide
        self._ingest = ingest
        self._clock = clock

    def person(self, profile_id: str, category: str) -> Person:
        profile = self._views.profiles.entry(profile_id).profile
        if profile is None:
            # the view may still hold the absence the ingest job read before creating the
            # profile (it is published after the commit that queued this send): ask the store
            profile = self._stored_profile(profile_id)
        if profile is None:
            return Person(False, False, None, None, "")
        identifiers = [profile.user_id, *sorted(profile.anonymous_ids)]
        keys = list(dict.fromkeys([profile_id, *consent_keys(self._storage.identities, *[
            i for i in identifiers if i])]))  # fmt: skip
        # from the store, not the view: the view is published after the commit that queued
        # this delivery, and the worker may get here in between (a first-ever consent, or a
        # change, would read as stale and drop the send)
        state = stored_state(self._storage.consent, keys)
        granted = privacy_consent.granted(state, category, profile.country, self._settings())
        anonymous = sorted(profile.anonymous_ids)
        return Person(
            exists=True,
            consented=granted,
            user_id=profile.user_id,
            anonymous_id=anonymous[0] if anonymous else None,
            pseudonymous_id=self._privacy.pseudonymous_id(profile.user_id or profile_id),
        )

    def _stored_profile(self, profile_id: str) -> Profile | None:
        """The stored profile; None when there is none (erased) or it is damaged (nothing is
        sent on what cannot be read)."""
        record = self._storage.profiles.get(profile_id)
        if record is None:
            return None
        try:
            return codec.decode(record)
        except codec.DamagedProfile:
            return None

    def decide(self, person: Person, slot: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        user: dict[str, str] = {}
        if person.user_id:
            user["user_id"] = person.user_id
        elif person.anonymous_id:
            user["anonymous_id"] = person.anonymous_id
        request = DecideRequest.model_validate(
            {"user": user, "slots": [{"slot": slot}], "context": {"channel": "journey"}}
        )
        response = self._decide.decide(request).model_dump(mode="json")
        slots = response.get("slots") or [{}]
        return {"decision_id": response.get("decision_id"), "slot": slots[0]}

    def identify(self, delivery: Delivery, person: Person) -> None:
        from loopwise.clock import parse_timestamp

        at = parse_timestamp(delivery.payload.get("at")) or delivery.created_at
        event = Event(
            message_id=delivery.key,
            type="identify",
            timestamp=at,
            received_at=self._clock(),
            user_id=person.user_id,
            anonymous_id=None if person.user_id else person.anonymous_id,
            traits=dict(delivery.payload.get("traits") or {}),
            context={"library": {"name": "loopwise-journeys"}},
        )
        self._ingest.submit([event]).result(timeout=60)
