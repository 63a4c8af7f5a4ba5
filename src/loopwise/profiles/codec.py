"""A profile as bytes: what the profile store keeps and the profile view caches.

The projector encodes each changed profile once per batch; the same bytes are stored and cached,
and a reader decodes them only when it needs the profile. Decoding failures are
:class:`DamagedProfile`, which callers turn into a repair (rebuilding the profile from its events)
instead of an error for the person.
"""

from __future__ import annotations

from typing import Any

import orjson

from loopwise.errors import ValidationFailed
from loopwise.profiles.model import RECORD_TABLES, Profile
from loopwise.storage.records import ProfileRecord


class DamagedProfile(Exception):
    """A stored profile that cannot be decoded."""

    def __init__(self, profile_id: str, problem: str) -> None:
        super().__init__(f"stored profile {profile_id} is damaged: {problem}")
        self.profile_id = profile_id
        self.problem = problem


def encode(profile: Profile) -> ProfileRecord:
    # orjson's result keeps the capacity it grew to (several kB for a 2 kB record): an exact
    # copy, since the profile view keeps these bytes for many profiles
    data = memoryview(orjson.dumps(profile.to_record())).tobytes()
    return ProfileRecord(profile.id, profile.last_seen, data)


def decode(record: ProfileRecord) -> Profile:
    return decode_data(record.id, record.data)


def decode_data(profile_id: str, data: bytes) -> Profile:
    return from_document(profile_id, parse(profile_id, data))


def parse(profile_id: str, data: bytes) -> dict[str, Any]:
    """The stored JSON object, not yet a profile (:func:`from_document`)."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DamagedProfile(profile_id, f"not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise DamagedProfile(profile_id, "not a JSON object")
    return document


def from_document(
    profile_id: str, document: dict[str, Any], tables: frozenset[str] = RECORD_TABLES
) -> Profile:
    """The profile of a parsed record; ``tables``: the costly tables to read (the others left
    empty, for attributes that do not read them: :func:`loopwise.profiles.model.record_tables`;
    :func:`read_tables` reads them later)."""
    try:
        profile = Profile.from_record(document, tables)
    except ValidationFailed as exc:
        raise DamagedProfile(profile_id, exc.detail) from exc
    if profile.id != profile_id:
        raise DamagedProfile(profile_id, f"holds profile {profile.id!r}")
    return profile


def read_tables(profile: Profile, document: dict[str, Any], tables: frozenset[str]) -> None:
    """The ``tables`` a :func:`from_document` of ``document`` left out, read into ``profile``."""
    try:
        profile.read_tables(document, tables)
    except ValidationFailed as exc:
        raise DamagedProfile(profile.id, exc.detail) from exc
