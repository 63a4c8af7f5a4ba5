"""Rows read back into records, the same for every backend: what happens after the query.

A row that does not decode is skipped by reads that replay or serve (one bad row must not stop
them) and listed by ``damaged()``; a damaged configuration document is a problem naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from loopwise.errors import ValidationFailed
from loopwise.storage.codec import (
    UnreadableRecord,
    decode_event,
    decode_exposure,
    decode_json,
    decode_observation,
)
from loopwise.storage.records import Damaged, Exposure, JsonDict, LoggedEvent, Observation


def logged_events(rows: Iterable[tuple[Any, str, bytes]]) -> Iterator[LoggedEvent]:
    """``(seq, profile id, record)`` rows as logged events, damaged ones skipped."""
    for seq, profile_id, blob in rows:
        try:
            yield LoggedEvent(int(seq), profile_id, decode_event(blob))
        except UnreadableRecord:
            continue  # listed by damaged(); one bad row must not stop a replay


def damaged_events(rows: Iterable[tuple[Any, bytes]], limit: int) -> list[Damaged]:
    found: list[Damaged] = []
    for seq, blob in rows:
        try:
            decode_event(blob)
        except UnreadableRecord as exc:
            found.append(Damaged("events", str(seq), str(exc), bytes(blob)))
            if len(found) >= limit:
                break
    return found


def consent_states(rows: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, JsonDict]]:
    for key, blob in rows:
        try:
            yield key, decode_json(blob, f"consent {key}")
        except UnreadableRecord:
            continue  # a damaged state reads as no choice (the defaults apply)


def exposures(blobs: Iterable[bytes]) -> Iterator[Exposure]:
    for blob in blobs:
        try:
            yield decode_exposure(blob)
        except UnreadableRecord:
            continue


def observations(rows: Iterable[tuple[Any, bytes]]) -> Iterator[Observation]:
    for seq, blob in rows:
        try:
            yield decode_observation(int(seq), blob)
        except UnreadableRecord:
            continue


def items(rows: Iterable[tuple[str, bytes]]) -> list[JsonDict]:
    found = []
    for item_id, blob in rows:
        try:
            found.append(decode_json(blob, f"item {item_id}"))
        except UnreadableRecord:
            continue
    return found


def damaged_items(rows: Iterable[tuple[str, bytes]]) -> list[Damaged]:
    found = []
    for item_id, blob in rows:
        try:
            decode_json(blob, f"item {item_id}")
        except UnreadableRecord as exc:
            found.append(Damaged("items", item_id, str(exc), bytes(blob)))
    return found


def config_document(key: str, blob: bytes) -> JsonDict:
    try:
        return decode_json(blob, f"config {key!r}")
    except UnreadableRecord as exc:
        raise ValidationFailed(
            f"The stored {key} document is damaged ({exc}); it is ignored until it is "
            "written again.",
            field=f"config.{key}",
        ) from exc


def with_outcomes(
    decisions: Iterable[tuple[str, bytes]], outcomes: Iterable[tuple[str, bytes]]
) -> list[JsonDict]:
    """Decision records, each with its ``outcomes`` (given oldest first) attached."""
    records = [(decision_id, orjson.loads(blob)) for decision_id, blob in decisions]
    attached: dict[str, list[JsonDict]] = {decision_id: [] for decision_id, _ in records}
    for decision_id, blob in outcomes:
        attached[decision_id].append(orjson.loads(blob))
    for decision_id, record in records:
        record["outcomes"] = attached[decision_id]
    return [record for _, record in records]
