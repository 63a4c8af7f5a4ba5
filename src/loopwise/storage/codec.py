"""Record <-> bytes for the typed records every backend stores as a blob (one encoding, so a
backend never invents its own and a copy made by one backend reads back in another)."""

from __future__ import annotations

from typing import Any

import orjson

from loopwise.clock import isoformat, parse_timestamp
from loopwise.events.schema import Event
from loopwise.storage.records import Exposure, Observation


class UnreadableRecord(ValueError):
    """A stored blob that does not decode; the message says what is wrong."""


def _time(value: Any, what: str) -> Any:
    parsed = parse_timestamp(value)
    if parsed is None:
        raise UnreadableRecord(f"{what} has no readable time ({value!r})")
    return parsed


def _totals(value: Any) -> dict[str, tuple[float, float]]:
    return {str(name): (float(pair[0]), float(pair[1])) for name, pair in (value or {}).items()}


def encode_exposure(exposure: Exposure) -> bytes:
    return orjson.dumps(
        {
            "experiment": exposure.experiment,
            "profile_id": exposure.profile_id,
            "arm": exposure.arm,
            "exposed_at": isoformat(exposure.exposed_at),
            "slot": exposure.slot,
            "decision_id": exposure.decision_id,
            "segments": list(exposure.segments),
            "before": {k: list(v) for k, v in exposure.before.items()},
            "after": {k: list(v) for k, v in exposure.after.items()},
        }
    )


def decode_exposure(blob: bytes) -> Exposure:
    try:
        r = orjson.loads(blob)
        return Exposure(
            experiment=str(r["experiment"]),
            profile_id=str(r["profile_id"]),
            arm=str(r["arm"]),
            exposed_at=_time(r["exposed_at"], "exposure"),
            slot=r.get("slot"),
            decision_id=r.get("decision_id"),
            segments=tuple(str(s) for s in r.get("segments") or ()),
            before=_totals(r.get("before")),
            after=_totals(r.get("after")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise UnreadableRecord(f"exposure record: {exc!r}") from exc


def encode_observation(observation: Observation) -> bytes:
    return orjson.dumps(
        [
            observation.kind,
            list(observation.item_ids),
            isoformat(observation.at),
            list(observation.segments),
            list(observation.recent_items),
            observation.anonymous,
        ]
    )


def decode_observation(seq: int, blob: bytes) -> Observation:
    try:
        kind, items, at, segments, recent, anonymous = orjson.loads(blob)
        return Observation(
            seq=seq,
            kind=str(kind),
            item_ids=tuple(items),
            at=_time(at, "observation"),
            segments=tuple(segments),
            recent_items=tuple(recent),
            anonymous=bool(anonymous),
        )
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise UnreadableRecord(f"item observation {seq}: {exc!r}") from exc


def encode_event(event: Event) -> bytes:
    return orjson.dumps(event.to_record())


def decode_event(blob: bytes) -> Event:
    try:
        return Event.from_record(orjson.loads(blob))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AssertionError) as exc:
        raise UnreadableRecord(f"event record: {exc!r}") from exc


def decode_json(blob: bytes | str, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(blob)
    except orjson.JSONDecodeError as exc:
        raise UnreadableRecord(f"{what}: {exc}") from exc
    if not isinstance(value, dict):
        raise UnreadableRecord(f"{what}: not a JSON object")
    return value
