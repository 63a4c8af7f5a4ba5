"""The records the journey stores hold: each person's state in a journey, and the outbox's
deliveries (webhooks and internal actions), with the one encoding every backend uses.

A journey state is a JSON document the journeys package owns (:mod:`loopwise.journeys.state`);
the stores keep it opaque beside the columns they query by (journey, profile id, when due). A
delivery is recorded in the same unit of work as the state change that caused it (the outbox
pattern) and carries its idempotency key, unique across the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from loopwise.clock import isoformat, parse_timestamp
from loopwise.storage.records import JsonDict

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"
DROPPED = "dropped"
STATUSES = (PENDING, DELIVERED, DEAD, DROPPED)


@dataclass(frozen=True, slots=True)
class JourneyRecord:
    """One person's state in one journey; ``due_at`` is when the runner must look again (a wait
    ending, quiet hours over, an inactivity watch), None when only an event can move it."""

    journey: str
    profile_id: str
    due_at: datetime | None
    data: JsonDict


@dataclass(frozen=True, slots=True)
class Delivery:
    """One send in the outbox. ``id`` is 0 before it is stored; ``key`` is the idempotency key
    every attempt carries; ``kind`` is ``webhook`` (HTTP) or an internal action (``identify``,
    ``decide``) the worker runs through the engine."""

    id: int
    key: str
    profile_id: str
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    payload: JsonDict
    last_error: str | None = None
    done_at: datetime | None = None


def encode_state(data: JsonDict) -> bytes:
    return orjson.dumps(data)


def decode_state(blob: bytes | str) -> JsonDict:
    value: Any = orjson.loads(blob)
    return value if isinstance(value, dict) else {}


def encode_delivery_body(delivery: Delivery) -> bytes:
    """What the columns do not hold: kind, payload, last error."""
    return orjson.dumps(
        {"kind": delivery.kind, "payload": delivery.payload, "last_error": delivery.last_error}
    )


def time_or_none(value: object) -> datetime | None:
    return None if value in (None, "") else parse_timestamp(value)


def iso_or_empty(value: datetime | None) -> str:
    return "" if value is None else isoformat(value)


def decode_delivery(
    id_: int,
    key: str,
    profile_id: str,
    status: str,
    attempts: int,
    next_attempt_at: object,
    created_at: object,
    done_at: object,
    blob: bytes | str,
) -> Delivery:
    body: Any = orjson.loads(blob)
    next_at = parse_timestamp(next_attempt_at)
    created = parse_timestamp(created_at)
    assert next_at is not None and created is not None
    return Delivery(
        id=int(id_),
        key=str(key),
        profile_id=str(profile_id),
        kind=str(body.get("kind", "webhook")),
        status=str(status),
        attempts=int(attempts),
        next_attempt_at=next_at,
        created_at=created,
        payload=dict(body.get("payload") or {}),
        last_error=body.get("last_error"),
        done_at=time_or_none(done_at),
    )
