"""The engine facade's journey delegations (a mixin of :class:`loopwise.engine.Engine`), and
the journey parts of the privacy ones: the profile view and the export carry the person's
journey history, and withdrawing consent drops the pending sends that needed it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopwise.composition import Services


class JourneysFacade:
    services: Services

    def list_journeys(self) -> list[dict[str, Any]]:
        return self.services.journeys.summaries()

    def journey(self, key: str) -> dict[str, Any]:
        return self.services.journeys.show(key)

    def start_journeys(self) -> None:
        """Run journeys on the clock and deliver the outbox in the background (``serve``);
        one process per data directory should (other processes only read and ingest)."""
        self.services.journeys.start()
        self.services.delivery.start()

    def tick_journeys(self) -> int:
        """Step every journey state due by the engine's clock now."""
        return self.services.journeys.tick()

    def deliver(self, timeout: float = 60.0) -> int:
        """Send what the outbox has due now (the worker does this in the background)."""
        return self.services.delivery.drain(timeout)

    def outbox(self, status: str | None = None, limit: int = 100) -> dict[str, Any]:
        return self.services.journeys.outbox(status, limit)

    def retry_delivery(self, delivery_id: int) -> dict[str, Any]:
        return self.services.journeys.retry(delivery_id)


# -- what privacy shows and does about journeys (called by facades.PrivacyFacade) -----------------
def with_journey_history(services: Services, view: dict[str, Any] | None) -> dict[str, Any] | None:
    """The profile view with the person's journeys and deliveries (when there are journeys)."""
    if view is not None and services.journeys.journeys():
        pid = (view.get("profile") or {}).get("id")
        if pid:
            view["journeys"] = services.journeys.history([pid])[0]
    return view


def journey_history_of(services: Services, identifier: str) -> dict[str, Any]:
    """Every journey state and delivery held under any of the person's profile ids (export)."""
    _, _, profile_ids = services.privacy.person(None, identifier)
    return services.journeys.history(profile_ids)[0]


def drop_withdrawn_sends(services: Services, user_id: str, state: Mapping[str, Any]) -> None:
    """Pending sends of a category the person no longer grants are dropped now (the delivery
    worker checks again before every send)."""
    granted = state.get("categories") or {}
    withdrawn = {name for name, value in dict(granted).items() if value is False}
    pid = services.profiles.resolve(user_id)
    if withdrawn and pid is not None:
        services.journeys.drop_withdrawn([pid], withdrawn)
