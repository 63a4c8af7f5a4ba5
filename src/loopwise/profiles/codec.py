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
    return ProfileRecord(profile.id, profile.last_seen, orjson.dumps(profile.to_record()))


def decode(record: ProfileRecord) -> Profile:
    try:
        document = orjson.loads(record.data)
    except orjson.JSONDecodeError as exc:
        raise DamagedProfile(record.id, f"not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise DamagedProfile(record.id, "not a JSON object")
    try:
        profile = Profile.from_record(document)
    except ValidationFailed as exc:
        raise DamagedProfile(record.id, exc.detail) from exc
    if profile.id != record.id:
        raise DamagedProfile(record.id, f"holds profile {profile.id!r}")
    return profile
