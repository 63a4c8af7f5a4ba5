"""The state the fold reads: a batch's slice of the loop (the people its events name), loaded by
the projector before folding and advanced by the fold as it goes.

A snapshot is plain data: identity links and members, profiles, their segment memberships,
exposures, consent states and the decisions the events point at. The fold never reads anything
else, which is what makes it pure — and what lets live ingest, restart and replay share it.
Reading a profile the projector did not load is a bug, so it raises instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from loopwise.privacy.consent import ConsentState
from loopwise.profiles.identity import IdentityGraph
from loopwise.profiles.model import Profile
from loopwise.storage.records import Exposure


class SnapshotMiss(KeyError):
    """The fold asked for a profile the projector did not load."""


@dataclass(slots=True)
class Snapshot:
    graph: IdentityGraph
    # every profile id the batch can touch; None: no such profile (yet)
    profiles: dict[str, Profile | None]
    # segments of profiles[pid] as it is now (missing: not evaluated yet)
    memberships: dict[str, frozenset[str]] = field(default_factory=dict)
    # pid -> experiment -> exposure
    exposures: dict[str, dict[str, Exposure]] = field(default_factory=dict)
    consent: dict[str, ConsentState] = field(default_factory=dict)
    known_decisions: set[str] = field(default_factory=set)
    # pid -> the newest logged decision (id, created_at), for conversions without decision_id
    last_decisions: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    # -- what the batch did so far (the fold keeps these) -------------------------------------
    # membership of each touched profile when the batch first touched it
    starting_memberships: dict[str, frozenset[str]] = field(default_factory=dict)
    touched: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    removed: set[str] = field(default_factory=set)
    # a replay's snapshot holds everything there is: a profile it lacks does not exist
    complete: bool = False

    def profile(self, pid: str) -> Profile | None:
        try:
            return self.profiles[pid]
        except KeyError:
            if self.complete:
                return None
            raise SnapshotMiss(pid) from None

    def owner_of(self, pid: str) -> str | None:
        """The user id already on a profile (the identity planner refuses merging two users)."""
        profile = self.profiles.get(pid)
        return profile.user_id if profile is not None else None

    @classmethod
    def empty(cls) -> Snapshot:
        """A snapshot of nothing (a replay from the start of the log)."""
        return cls(graph=IdentityGraph(), profiles={}, complete=True)
