"""What folding an event changes, as typed values (the fold returns them; nothing else decides).

The projector writes effects to the stores in one unit of work and hands them to the views in
``on_commit``; a replay produces the same effects from the same log. Effects name profiles by id
and carry the new state whole (a profile, an exposure), so applying them twice gives the same
result.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopwise.privacy.consent import ConsentState
from loopwise.profiles.model import Profile
from loopwise.storage.records import Exposure, JsonDict, Observation


@dataclass(frozen=True, slots=True)
class IdentityLinked:
    """``identifier`` now resolves to ``profile_id`` (new, or moved from another profile)."""

    identifier: str
    profile_id: str


@dataclass(frozen=True, slots=True)
class ProfilesMerged:
    """``source`` became part of ``target``: its identifiers, events, consent and exposures
    follow (the exposures' own moves are separate effects); the source profile is gone."""

    source: str
    target: str


@dataclass(frozen=True, slots=True)
class ProfileUpserted:
    """A profile's state after the batch, with the segments it is in."""

    profile: Profile
    membership: frozenset[str]


@dataclass(frozen=True, slots=True)
class SegmentsChanged:
    profile_id: str
    entered: tuple[str, ...]
    left: tuple[str, ...]
    at_iso: str


@dataclass(frozen=True, slots=True)
class ItemInteractionObserved:
    """One event's anonymous contribution to item statistics."""

    observation: Observation


@dataclass(frozen=True, slots=True)
class OutcomeAttributed:
    decision_id: str
    outcome: JsonDict


@dataclass(frozen=True, slots=True)
class ExposureChanged:
    """An exposure's new state: moved to another profile (``previous`` was under another id) or
    its totals grew. ``previous`` is None for a move onto a profile without one."""

    exposure: Exposure
    previous: Exposure | None


@dataclass(frozen=True, slots=True)
class ConsentChanged:
    """A person's consent state under ``key`` after a merge joined two people's choices."""

    key: str
    state: ConsentState


@dataclass(frozen=True, slots=True)
class ExposureRemoved:
    """An exposure that lost a merge to an earlier one of the same experiment."""

    exposure: Exposure


Effect = (
    IdentityLinked
    | ProfilesMerged
    | ProfileUpserted
    | SegmentsChanged
    | ItemInteractionObserved
    | OutcomeAttributed
    | ExposureChanged
    | ExposureRemoved
    | ConsentChanged
)
