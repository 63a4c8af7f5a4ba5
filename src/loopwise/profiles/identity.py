"""Identity resolution: which profile an event belongs to, and when two profiles become one.

Pure bookkeeping over an in-memory map of identifier -> profile id; the engine persists what it
decides. Profile ids are derived from the first identifier seen (``p_`` + a hash), so replaying the
same event log yields the same ids — and ids never expose the raw user id.

Rules, in the spirit of Segment's identity resolution:
- an event carrying a ``userId`` and an ``anonymousId`` (or an ``alias`` with ``previousId``) links
  them; if they already belong to two profiles, those merge into the known user's profile;
- two profiles that each have a *different* user id never merge (a shared device): the anonymous id
  moves to the user who just signed in instead — unless an ``alias`` call says they are one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from loopwise.events.schema import Event


def profile_id_for(identifier: str) -> str:
    return "p_" + hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:24]


@dataclass(slots=True)
class Resolution:
    profile_id: str
    new_links: list[str] = field(default_factory=list)  # identifiers to link to profile_id
    merge_from: str | None = None  # a profile to fold into profile_id (then delete)
    moved: list[str] = field(default_factory=list)  # identifiers taken from another profile


def _nobody(profile_id: str) -> str | None:
    return None


class IdentityGraph:
    def __init__(self, links: Mapping[str, str] | None = None) -> None:
        self.links: dict[str, str] = dict(links or {})
        self.members: dict[str, set[str]] = {}
        for identifier, profile_id in self.links.items():
            self.members.setdefault(profile_id, set()).add(identifier)

    def resolve(self, identifier: str | None) -> str | None:
        return self.links.get(identifier) if identifier else None

    def resolve_user(self, user_id: str | None, anonymous_id: str | None) -> str | None:
        return self.resolve(user_id) or self.resolve(anonymous_id)

    def identifiers(self, profile_id: str) -> set[str]:
        return set(self.members.get(profile_id, ()))

    def plan(self, event: Event, owner_of: Callable[[str], str | None]) -> Resolution:
        """Decide where ``event`` lands. ``owner_of(profile_id)`` gives the user id already
        stored on a profile, used to refuse merging two different known users."""
        known = event.user_id
        other = event.previous_id if event.type == "alias" else event.anonymous_id
        ids = [i for i in (known, other) if i]
        if not ids:
            raise ValueError("event has no identifier")
        primary_pid = self.resolve(known) if known else None
        other_pid = self.resolve(other) if other else None
        if event.type == "alias":
            # An explicit link: the caller says these are one person, whoever owned what.
            owner_of = _nobody
        if primary_pid is None and other_pid is None:
            return Resolution(profile_id_for(ids[0]), new_links=ids)
        if primary_pid is None:
            assert other_pid is not None
            owner = owner_of(other_pid)
            if known and owner and owner != known:
                # the device belonged to another user: a fresh profile for this user
                pid = profile_id_for(known)
                return Resolution(pid, new_links=[known], moved=[other] if other else [])
            return Resolution(other_pid, new_links=[known] if known else [])
        if other_pid is None or other_pid == primary_pid:
            return Resolution(primary_pid, new_links=[other] if other and other_pid is None else [])
        owner = owner_of(other_pid)
        if owner and owner != known:
            return Resolution(primary_pid, moved=[other] if other else [])
        return Resolution(primary_pid, merge_from=other_pid)

    def apply(self, resolution: Resolution) -> Callable[[], None]:
        """Apply a resolution; returns a function that undoes it (for a write that fails)."""
        identifiers = [*resolution.new_links, *resolution.moved]
        pids = {resolution.profile_id}
        pids.update(p for p in (self.links.get(i) for i in identifiers) if p is not None)
        if resolution.merge_from is not None:
            pids.add(resolution.merge_from)
            identifiers += self.members.get(resolution.merge_from, set())
        old_links = {i: self.links.get(i) for i in identifiers}
        old_members = {p: set(self.members[p]) if p in self.members else None for p in pids}
        self._apply(resolution)

        def undo() -> None:
            for identifier, previous in old_links.items():
                if previous is None:
                    self.links.pop(identifier, None)
                else:
                    self.links[identifier] = previous
            for profile_id, members in old_members.items():
                if members is None:
                    self.members.pop(profile_id, None)
                else:
                    self.members[profile_id] = members

        return undo

    def _apply(self, resolution: Resolution) -> None:
        pid = resolution.profile_id
        for identifier in [*resolution.new_links, *resolution.moved]:
            previous = self.links.get(identifier)
            if previous is not None and previous != pid:
                self.members.get(previous, set()).discard(identifier)
            self.links[identifier] = pid
            self.members.setdefault(pid, set()).add(identifier)
        if resolution.merge_from is not None:
            for identifier in self.members.pop(resolution.merge_from, set()):
                self.links[identifier] = pid
                self.members.setdefault(pid, set()).add(identifier)

    def forget(self, profile_id: str) -> set[str]:
        identifiers = self.members.pop(profile_id, set())
        for identifier in identifiers:
            self.links.pop(identifier, None)
        return identifiers
