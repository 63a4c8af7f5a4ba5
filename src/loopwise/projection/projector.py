"""The projector: loads a batch's snapshot, runs the fold, writes the effects in the job's unit of
work, and publishes them to the views in ``on_commit``.

It runs inside a write job (on the writer thread): reads that must see earlier jobs of the same
transaction go through the unit of work (identity links, exposures, consent, decisions); profiles
come from the profile view's in-flight entries, then the view itself, so a group commit of many
batches decodes each profile at most once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from loopwise.catalog.items import Item
from loopwise.events.kinds import EventKind, classify
from loopwise.events.schema import Event
from loopwise.privacy.consent import ConsentState
from loopwise.profiles import codec
from loopwise.profiles.identity import IdentityGraph, profile_id_for
from loopwise.profiles.model import Profile
from loopwise.projection.effects import (
    ConsentChanged,
    Effect,
    ExposureChanged,
    ExposureRemoved,
    IdentityLinked,
    ItemInteractionObserved,
    OutcomeAttributed,
    ProfilesMerged,
    ProfileUpserted,
    SegmentsChanged,
)
from loopwise.projection.fold import FoldContext, Folded, fold
from loopwise.projection.snapshot import Snapshot
from loopwise.storage.records import Exposure, Observation
from loopwise.storage.stores import SegmentChanges, UnitOfWork
from loopwise.views import Views
from loopwise.workspace.compiled import CompiledWorkspace

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Listener = Callable[[Sequence[Effect]], None]


class ProjectionHook(Protocol):
    """A part of the loop that reacts to folded events in the same unit of work (journeys keep
    their state and their outbox there, so an action is recorded with the change that causes
    it). Called after the fold's own effects were written; register views in ``on_commit``."""

    def project(
        self, uow: UnitOfWork, events: Sequence[Event], folded: Folded, context: FoldContext
    ) -> None: ...


@dataclass(slots=True)
class Projected:
    """What one batch did: events applied, retries skipped, the newest log position."""

    accepted: int = 0
    duplicates: int = 0
    last_seq: int = 0
    newest_event_at: datetime | None = None
    effects: list[Effect] = field(default_factory=list)


class Projector:
    def __init__(
        self,
        views: Views,
        compiled: Callable[[], CompiledWorkspace],
        catalog: Callable[[], Mapping[str, Item]],
    ) -> None:
        self._views = views
        self._compiled = compiled
        self._catalog = catalog
        # told of every committed batch's effects (experiment results, ...), after commit
        self.listeners: list[Listener] = []
        # run inside each batch's unit of work, after its effects are written (journeys, ...)
        self.hooks: list[ProjectionHook] = []

    def project(self, uow: UnitOfWork, events: Sequence[Event]) -> Projected:
        """Append the new events to the log and apply them; retries of stored messages (and
        repeats inside the batch) are skipped."""
        fresh = new_events(uow, events)
        result = Projected(duplicates=len(events) - len(fresh))
        if not fresh:
            return result
        context = FoldContext(self._compiled(), self._catalog())
        snapshot = self.load(uow, fresh)
        folded = fold(snapshot, fresh, context)
        seqs = uow.events.append(fresh, folded.profile_ids)
        result.accepted = len(fresh)
        result.last_seq = max((s for s in seqs if s is not None), default=0)
        result.newest_event_at = max(e.timestamp for e in fresh)
        result.effects = folded.effects
        self.write(uow, folded.effects)
        for hook in self.hooks:
            hook.project(uow, fresh, folded, context)
        return result

    # -- loading -------------------------------------------------------------------------------
    def load(self, uow: UnitOfWork, events: Sequence[Event]) -> Snapshot:
        """The snapshot of everyone these events name (and everyone they may merge with)."""
        identifiers = list(
            dict.fromkeys(
                i for e in events for i in (e.user_id, e.anonymous_id, e.previous_id) if i
            )
        )
        linked = uow.identities.resolve(identifiers)
        pids = list(dict.fromkeys([*linked.values(), *map(profile_id_for, identifiers)]))
        members = uow.identities.members(set(linked.values()))
        graph = IdentityGraph({i: pid for pid, ids in members.items() for i in ids})
        entries = self._views.profiles.for_writer(pids)
        snapshot = Snapshot(graph=graph, profiles={pid: entries[pid].profile for pid in pids})
        for pid, entry in entries.items():
            membership = self._views.profiles.membership(entry)
            if entry.profile is not None and membership is not None:
                snapshot.memberships[pid] = membership
        for exposure in uow.exposures.for_profiles(pids):
            snapshot.exposures.setdefault(exposure.profile_id, {})[exposure.experiment] = exposure
        if self._views.consent.anyone_chose():
            snapshot.consent = {
                key: ConsentState.from_record(record)
                for key, record in uow.consent.get(pids).items()
            }
        referenced = {e.decision_id for e in events if e.decision_id}
        if referenced:
            snapshot.known_decisions = uow.decisions.exists(referenced)
        if any(classify(e) == EventKind.PURCHASE and not e.decision_id for e in events):
            for pid in pids:
                last = uow.decisions.last_for(pid, EPOCH)
                if last is not None:
                    snapshot.last_decisions[pid] = last
        return snapshot

    # -- writing -------------------------------------------------------------------------------
    def write(self, uow: UnitOfWork, effects: Sequence[Effect]) -> None:
        """Effects into the stores of this unit of work, and into the views once it commits."""
        links: dict[str, str] = {}
        upserts: dict[str, ProfileUpserted] = {}
        merged: list[str] = []
        observations: list[Observation] = []
        changed_consent: dict[str, ConsentState] = {}
        segment_changes: list[SegmentChanges] = []
        for effect in effects:
            if isinstance(effect, IdentityLinked):
                links[effect.identifier] = effect.profile_id
            elif isinstance(effect, ProfilesMerged):
                uow.events.reassign(effect.source, effect.target)
                merged.append(effect.source)
                upserts.pop(effect.source, None)
            elif isinstance(effect, ProfileUpserted):
                upserts[effect.profile.id] = effect
            elif isinstance(effect, SegmentsChanged):
                at = datetime.fromisoformat(effect.at_iso.replace("Z", "+00:00"))
                segment_changes.append((effect.profile_id, effect.entered, effect.left, at))
            elif isinstance(effect, ItemInteractionObserved):
                observations.append(effect.observation)
            elif isinstance(effect, OutcomeAttributed):
                uow.decisions.add_outcome(effect.decision_id, effect.outcome)
            elif isinstance(effect, ExposureChanged):
                write_exposure(uow, effect.exposure, effect.previous)
            elif isinstance(effect, ExposureRemoved):
                uow.exposures.delete(effect.exposure.experiment, effect.exposure.profile_id)
            elif isinstance(effect, ConsentChanged):
                uow.consent.put(effect.key, effect.state.to_record())
                changed_consent[effect.key] = effect.state
        if segment_changes:
            uow.segment_history.record_many(segment_changes)
        if links:
            uow.identities.link(links)
        gone = [pid for pid in merged if pid not in upserts]
        if gone:
            uow.profiles.delete(gone)
        records = {pid: codec.encode(u.profile) for pid, u in upserts.items()}
        if records:
            uow.profiles.upsert(list(records.values()))
        positions = uow.item_stats.observe(observations) if observations else []
        token = object()
        pending = self._views.profiles.pending
        for pid in gone:
            pending.stage(token, pid, None, None)
        for upsert in upserts.values():
            pending.stage(token, upsert.profile.id, upsert.profile, upsert.membership)
        views = self._views

        def publish() -> None:
            pending.release(token)
            views.identities.publish(links)
            views.profiles.mark_absent(gone)
            for pid, upsert in upserts.items():
                views.profiles.publish(upsert.profile, upsert.membership, records[pid].data)
            if observations:
                views.item_stats.apply(observations, positions)
            publish_exposures(views, effects)
            if changed_consent:
                views.consent.publish(changed_consent)
            for listener in self.listeners:
                listener(effects)

        uow.on_commit(publish)
        uow.on_rollback(lambda: pending.release(token))


def new_events(uow: UnitOfWork, events: Sequence[Event]) -> list[Event]:
    """The events not stored yet, each message once (the first copy in the batch wins)."""
    stored = uow.events.known([e.message_id for e in events])
    fresh: list[Event] = []
    seen: set[str] = set()
    for event in events:
        if event.message_id in stored or event.message_id in seen:
            continue
        seen.add(event.message_id)
        fresh.append(event)
    return fresh


def write_exposure(uow: UnitOfWork, exposure: Exposure, previous: Exposure | None) -> None:
    uow.exposures.put(exposure)
    if previous is not None and previous.profile_id != exposure.profile_id:
        uow.exposures.delete(previous.experiment, previous.profile_id)


def publish_exposures(views: Views, effects: Iterable[Effect]) -> None:
    for effect in effects:
        if isinstance(effect, ExposureChanged):
            if effect.previous is not None and effect.previous.profile_id != (
                effect.exposure.profile_id
            ):
                views.exposures.remove([effect.previous])
            views.exposures.publish([effect.exposure])
        elif isinstance(effect, ExposureRemoved):
            views.exposures.remove([effect.exposure])


def profile_states(effects: Iterable[Effect]) -> dict[str, Profile]:
    """The final profile per id in a batch's effects."""
    return {e.profile.id: e.profile for e in effects if isinstance(e, ProfileUpserted)}
