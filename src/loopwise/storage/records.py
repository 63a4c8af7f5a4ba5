"""Typed records the stores hold. Plain frozen dataclasses: no I/O, no behaviour beyond shape.

Profiles travel as encoded bytes (``ProfileRecord.data``, see :mod:`loopwise.profiles.codec`):
the projector encodes each changed profile once and the same bytes go to the store and to the
profile view's cache, so no backend decodes or re-encodes a profile on the write path.
Decisions and audit records are documented JSON documents (``docs/internals.md``) and stay dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopwise.events.schema import Event


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event as the log holds it: its position and the profile it was applied to."""

    seq: int
    profile_id: str
    event: Event


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    """One stored profile: its id, when it was last seen (retention reads it without decoding)
    and the encoded profile."""

    id: str
    last_seen: datetime
    data: bytes


@dataclass(frozen=True, slots=True)
class SegmentChange:
    segment: str
    change: str  # "entered" | "left"
    at: datetime


@dataclass(frozen=True, slots=True)
class Exposure:
    """A person's first exposure to an experiment, and what they did after it.

    ``before`` holds the metric events' counts and revenue in the pre-exposure window (the CUPED
    covariate), ``after`` the same since exposure (until the experiment's end); both are keyed
    by event name, ``{name: (count, revenue)}``, so a metric defined later over the same event
    reads them too.
    """

    experiment: str
    profile_id: str
    arm: str
    exposed_at: datetime
    slot: str | None = None
    decision_id: str | None = None
    segments: tuple[str, ...] = ()
    before: dict[str, tuple[float, float]] = field(default_factory=dict)
    after: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Observation:
    """One event's contribution to item statistics (no person in it: anonymous counts)."""

    seq: int
    kind: str  # EventKind value
    item_ids: tuple[str, ...]
    at: datetime
    segments: tuple[str, ...] = ()
    recent_items: tuple[str, ...] = ()
    # from an event stored nowhere (no analytics consent): it cannot be re-derived from the log,
    # so checkpoints never drop it (only retention does)
    anonymous: bool = False


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Derived state as of a log position: everything up to ``position`` is in ``data``."""

    position: int
    data: bytes
    saved_at: datetime


@dataclass(frozen=True, slots=True)
class Damaged:
    """A stored row that cannot be read; reported with what it is, never raised on reads that
    erasure, export or start-up depend on."""

    table: str
    key: str
    problem: str
    raw: bytes = b""


JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A console user. ``password_hash`` is an argon2 encoded hash (never the password);
    ``failed_logins``/``last_failed_at`` slow down repeated failed sign-ins across workers."""

    email: str  # lower-cased; the key
    role: str  # "viewer" | "editor" | "admin"
    password_hash: str
    created_at: datetime
    disabled: bool = False
    failed_logins: int = 0
    last_failed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A signed-in console session. Only a hash of the cookie's token is stored, so a copy of
    the database signs nobody in; ``csrf`` is the token every state-changing form carries."""

    token_hash: str  # the key
    email: str
    csrf: str
    created_at: datetime
    expires_at: datetime
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class WorkspaceChange:
    """One revision of the workspace: who changed it, how, and the whole document after (the
    document before is the previous revision's; ``diff`` says what changed, for reading)."""

    revision: int
    at: datetime
    actor: str  # "admin key", a console user's email, "file", "clusters", "cli"
    source: str  # "admin" | "console" | "file" | "clusters" | "restore" | "push" | "start"
    comment: str
    document: JsonDict
    diff: tuple[str, ...] = ()
