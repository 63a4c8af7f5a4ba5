"""A profile as bytes: what the profile store keeps and the profile view caches.

The projector encodes each changed profile once per batch; the same bytes are stored and cached,
and a reader decodes them only when it needs the profile. Decoding failures are
:class:`DamagedProfile`, which callers turn into a repair (rebuilding the profile from its events)
instead of an error for the person.
"""

from __future__ import annotations

import orjson

from loopwise.errors import ValidationFailed
from loopwise.profiles.model import Profile
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
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DamagedProfile(profile_id, f"not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise DamagedProfile(profile_id, "not a JSON object")
    try:
        profile = Profile.from_record(document)
    except ValidationFailed as exc:
        raise DamagedProfile(profile_id, exc.detail) from exc
    if profile.id != profile_id:
        raise DamagedProfile(profile_id, f"holds profile {profile.id!r}")
    return profile
