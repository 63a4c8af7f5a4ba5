"""What goes into the outbox for a journey's actions and for segment changes.

Every delivery gets an idempotency key derived from what caused it (journey, person, entry,
step and visit; or segment, person, change and time; plus the endpoint), so the same cause can
never be queued twice (the outbox keeps each key once) and a receiver can drop repeats of an
attempt. The body is finished by the delivery worker before the first attempt (person ids,
content decided for the slot) and then kept, so every retry sends the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from loopwise.clock import isoformat
from loopwise.journeys.compiled import CompiledJourney
from loopwise.journeys.machine import Action
from loopwise.journeys.spec import Endpoint, WebhookSettings
from loopwise.journeys.state import JourneyState
from loopwise.projection.effects import SegmentsChanged
from loopwise.storage.journey_records import PENDING, Delivery

WEBHOOK = "webhook"
IDENTIFY = "identify"  # set a trait / enter or leave a list segment: an identify event
DECIDE = "decide"  # decide a slot for later pickup
LIST_TRAIT_PREFIX = "list_"  # enter_segment: X sets trait list_X (a list segment reads it)


def _delivery(
    key: str, pid: str, kind: str, at: datetime, now: datetime, payload: dict[str, Any]
) -> Delivery:
    return Delivery(
        id=0, key=key, profile_id=pid, kind=kind, status=PENDING, attempts=0,
        next_attempt_at=now, created_at=at, payload=payload,
    )  # fmt: skip


def deliveries_for(
    journey: CompiledJourney,
    state: JourneyState,
    actions: Sequence[Action],
    webhooks: WebhookSettings,
    now: datetime,
) -> list[Delivery]:
    out: list[Delivery] = []
    pid = state.profile_id
    base = f"{journey.key}:{pid}:{state.entries}"
    common = {"journey": journey.key, "consent": journey.config.consent, "entry": state.entries}
    for action in actions:
        at = isoformat(action.at)
        if action.kind in ("journey.entered", "journey.exited"):
            for endpoint in webhooks.endpoints:
                if action.kind in endpoint.subscribe:
                    out.append(
                        _delivery(
                            f"{base}:{action.kind}:{endpoint.key}", pid, WEBHOOK, action.at, now,
                            {**common, "type": action.kind, "endpoint": endpoint.key,
                             "step": action.step, "at": at, "detail": dict(action.detail),
                             "consent": endpoint.consent},
                        )
                    )  # fmt: skip
            continue
        step = action.step_config
        visit = state.visited.count(action.step or "") or 1
        key = f"{base}:{action.step}:{visit}"
        payload: dict[str, Any] = {**common, "step": action.step, "at": at, "action": action.kind}
        if action.kind == "webhook":
            payload |= {"type": "journey.step", "endpoint": step.endpoint, "slot": step.slot}
            out.append(_delivery(key, pid, WEBHOOK, action.at, now, payload))
            for endpoint in webhooks.endpoints:
                if "journey.step" in endpoint.subscribe and endpoint.key != step.endpoint:
                    copy = {**payload, "endpoint": endpoint.key, "slot": None}
                    out.append(
                        _delivery(f"{key}:{endpoint.key}", pid, WEBHOOK, action.at, now, copy)
                    )
        elif action.kind == "set_trait":
            out.append(_delivery(key, pid, IDENTIFY, action.at, now, payload | {
                "traits": dict(step.traits)}))  # fmt: skip
        elif action.kind in ("enter_segment", "leave_segment"):
            traits = {LIST_TRAIT_PREFIX + step.segment: action.kind == "enter_segment"}
            payload |= {"traits": traits, "segment": step.segment}
            out.append(_delivery(key, pid, IDENTIFY, action.at, now, payload))
        elif action.kind == "decide":
            out.append(_delivery(key, pid, DECIDE, action.at, now, payload | {"slot": step.slot}))
    return out


def segment_deliveries(
    endpoints: Sequence[Endpoint], effect: SegmentsChanged, now: datetime
) -> list[Delivery]:
    """``segment.entered`` / ``segment.exited`` for the endpoints subscribed to them."""
    at = datetime.fromisoformat(effect.at_iso.replace("Z", "+00:00"))
    out = []
    for endpoint in endpoints:
        for kind, keys in (("segment.entered", effect.entered), ("segment.exited", effect.left)):
            if kind not in endpoint.subscribe:
                continue
            for segment in keys:
                if endpoint.segments and segment not in endpoint.segments:
                    continue
                key = f"segment:{segment}:{effect.profile_id}:{kind}:{effect.at_iso}:{endpoint.key}"
                payload = {
                    "type": kind, "endpoint": endpoint.key, "segment": segment,
                    "at": effect.at_iso, "consent": endpoint.consent,
                }  # fmt: skip
                out.append(_delivery(key, effect.profile_id, WEBHOOK, at, now, payload))
    return out
