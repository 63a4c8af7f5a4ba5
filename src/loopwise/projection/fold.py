"""The one fold: ``fold(snapshot, events, context) -> effects``.

Live ingest, restart and ``loopwise replay`` all run this, so a replayed engine equals the live
one. Per event: resolve identity (link, move, or merge two profiles), run the profile reducer,
observe item statistics, attribute outcomes to decisions, and count the person's metric events
into their experiment exposures. Per batch: each touched profile's segment membership, its entries
and exits, and its new state.

Pure: everything the fold reads is in the :class:`~loopwise.projection.snapshot.Snapshot` and the
:class:`FoldContext`; it writes only to the snapshot (its own working state, so later events of the
batch see earlier ones) and returns what changed as typed effects.

Memberships are a function of a profile state (``CompiledWorkspace.membership``: evaluated at the
state's own last event), never of where a batch happened to end, so the per-segment popularity an
event feeds ("the segments its person was in just before it") is the same live and in a replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from loopwise.catalog.items import Item
from loopwise.clock import isoformat
from loopwise.decide.item_stats import KIND_WEIGHTS
from loopwise.events.kinds import EventKind, classify, item_ids, order_revenue
from loopwise.events.schema import Event
from loopwise.privacy import consent as privacy_consent
from loopwise.profiles.context import as_dict, device_from_context
from loopwise.profiles.identity import profile_id_for
from loopwise.profiles.model import Profile
from loopwise.profiles.reducer import merge, reduce
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
from loopwise.projection.snapshot import Snapshot
from loopwise.segments.registry import membership_changes
from loopwise.storage.records import Observation
from loopwise.workspace.compiled import CompiledWorkspace

# a decision made later than the conversion (beyond clock slack) did not cause it
DECISION_CLOCK_SLACK = timedelta(minutes=5)
ATTRIBUTED_KINDS = (EventKind.IMPRESSION, EventKind.CLICK, EventKind.PURCHASE)


@dataclass(frozen=True, slots=True)
class FoldContext:
    compiled: CompiledWorkspace
    catalog: Mapping[str, Item]


@dataclass(frozen=True, slots=True)
class Folded:
    """A batch folded: the profile each event was applied to (after the batch's merges) and
    every effect in order."""

    profile_ids: list[str]
    effects: list[Effect]


def fold(snapshot: Snapshot, events: Sequence[Event], context: FoldContext) -> Folded:
    effects: list[Effect] = []
    applied_to: list[str] = []
    merged_into: dict[str, str] = {}
    for event in events:
        pid, changes = fold_event(snapshot, event, context)
        applied_to.append(pid)
        effects += changes
        for change in changes:
            if isinstance(change, ProfilesMerged):
                merged_into[change.source] = change.target
    effects += finish_batch(snapshot, context)
    return Folded([_follow(merged_into, pid) for pid in applied_to], effects)


def _follow(merged_into: Mapping[str, str], pid: str) -> str:
    seen = set()
    while pid in merged_into and pid not in seen:
        seen.add(pid)
        pid = merged_into[pid]
    return pid


def membership_of(snapshot: Snapshot, pid: str, context: FoldContext) -> frozenset[str]:
    """Segments of the profile's current state (cached in the snapshot until it changes)."""
    known = snapshot.memberships.get(pid)
    if known is not None:
        return known
    profile = snapshot.profile(pid)
    found = frozenset() if profile is None else context.compiled.membership(profile)
    snapshot.memberships[pid] = found
    return found


def fold_event(snapshot: Snapshot, event: Event, context: FoldContext) -> tuple[str, list[Effect]]:
    """Fold one event; returns the profile it was applied to and its effects."""
    settings = context.compiled.settings
    resolution = snapshot.graph.plan(event, snapshot.owner_of)
    snapshot.graph.apply(resolution)
    pid = resolution.profile_id
    effects: list[Effect] = [
        IdentityLinked(identifier, pid) for identifier in [*resolution.new_links, *resolution.moved]
    ]
    effects += _follow_exposures(snapshot, resolution.new_links, pid)
    existing = snapshot.profile(pid)
    profile = existing or Profile.new(pid, event.timestamp)
    if pid not in snapshot.touched:
        snapshot.touched[pid] = None
        snapshot.starting_memberships[pid] = (
            membership_of(snapshot, pid, context) if existing is not None else frozenset()
        )
    source = resolution.merge_from
    if source is not None:
        secondary = snapshot.profile(source)
        if secondary is not None:
            starting = snapshot.starting_memberships.pop(source, None)
            if starting is None:
                starting = membership_of(snapshot, source, context)
            snapshot.starting_memberships[pid] |= starting
            profile = merge(profile, secondary, settings)
        snapshot.touched.pop(source, None)
        effects += [IdentityLinked(i, pid) for i in sorted(snapshot.graph.identifiers(pid))]
        effects.append(ProfilesMerged(source, pid))
        effects += _merge_consent(snapshot, source, pid)
        effects += _move_exposures(snapshot, source, pid)
        snapshot.profiles[source] = None
        snapshot.memberships.pop(source, None)
        snapshot.removed.add(source)
    kind = classify(event)
    ids = item_ids(event)
    observed: Observation | None = None
    if ids and KIND_WEIGHTS.get(kind, 0.0) > 0 and not _from_bot(event):
        if profile is existing:
            segments = membership_of(snapshot, pid, context)
        elif profile.events:  # just merged: the joined state's segments before this event
            segments = context.compiled.membership(profile)
        else:  # a person's first event
            segments = frozenset()
        observed = Observation(
            seq=0,
            kind=kind.value,
            item_ids=tuple(ids),
            at=event.timestamp,
            segments=tuple(sorted(segments)),
            recent_items=tuple(profile.recently_viewed),
        )
    profile = reduce(profile, event, settings, context.catalog)
    snapshot.profiles[pid] = profile
    snapshot.memberships.pop(pid, None)
    snapshot.removed.discard(pid)
    if observed is not None:
        effects.append(ItemInteractionObserved(observed))
    effects += _attribute(snapshot, event, kind, ids, pid, context)
    effects += _count_metric_event(snapshot, event, pid, context)
    return pid, effects


def finish_batch(snapshot: Snapshot, context: FoldContext) -> list[Effect]:
    """Each touched profile's membership now, its entries and exits, and its new state."""
    effects: list[Effect] = []
    for pid in snapshot.touched:
        profile = snapshot.profiles.get(pid)
        if profile is None:
            continue
        after = membership_of(snapshot, pid, context)
        entered, left = membership_changes(snapshot.starting_memberships.get(pid, ()), after)
        if entered or left:
            effects.append(
                SegmentsChanged(pid, tuple(entered), tuple(left), isoformat(profile.last_seen))
            )
        effects.append(ProfileUpserted(profile, after))
    snapshot.touched.clear()
    snapshot.starting_memberships.clear()
    return effects


def _from_bot(event: Event) -> bool:
    """Headless browsers and known crawlers do not feed popularity or trending."""
    return device_from_context(as_dict(event.context)).get("type") == "bot"


# -- identity side effects ---------------------------------------------------------------------
def _follow_exposures(snapshot: Snapshot, identifiers: Iterable[str], pid: str) -> list[Effect]:
    """A visitor decided before any of their events was stored was exposed under the profile id
    their identifier would get; when that identifier joins another profile, so do the
    exposures (the arm they saw stays theirs)."""
    effects: list[Effect] = []
    for identifier in identifiers:
        phantom = profile_id_for(identifier)
        if phantom == pid or not snapshot.exposures.get(phantom):
            continue
        if snapshot.profile(phantom) is None:
            effects += _move_exposures(snapshot, phantom, pid)
    return effects


def _move_exposures(snapshot: Snapshot, source: str, target: str) -> list[Effect]:
    """Exposures follow a merged person. Where both had one for the same experiment the earlier
    exposure wins (it is the person's first), and it keeps what both recorded since."""
    moving = snapshot.exposures.pop(source, {})
    kept = snapshot.exposures.setdefault(target, {})
    effects: list[Effect] = []
    for experiment, exposure in sorted(moving.items()):
        held = kept.get(experiment)
        moved = replace(exposure, profile_id=target)
        if held is None:
            kept[experiment] = moved
            effects.append(ExposureChanged(moved, previous=exposure))
            continue
        winner, loser = (moved, held) if moved.exposed_at < held.exposed_at else (held, moved)
        combined = replace(winner, after=_add_totals(winner.after, loser.after))
        kept[experiment] = combined
        effects.append(ExposureRemoved(exposure))
        effects.append(ExposureChanged(combined, previous=held))
    return effects


def _add_totals(
    a: Mapping[str, tuple[float, float]], b: Mapping[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    total = dict(a)
    for name, (count, revenue) in b.items():
        held = total.get(name, (0.0, 0.0))
        total[name] = (held[0] + count, held[1] + revenue)
    return total


def _merge_consent(snapshot: Snapshot, source: str, target: str) -> list[Effect]:
    """Merged people's consent is both, the newest choice per category winning."""
    moved = snapshot.consent.get(source)
    if moved is None or not moved.choices:
        return []
    held = snapshot.consent.get(target, privacy_consent.EMPTY)
    merged = privacy_consent.merge([held, moved])
    snapshot.consent[target] = merged
    return [ConsentChanged(target, merged)]


# -- the loop back: outcomes -------------------------------------------------------------------
def _attribute(
    snapshot: Snapshot,
    event: Event,
    kind: EventKind,
    ids: list[str],
    pid: str,
    context: FoldContext,
) -> list[Effect]:
    """Tie impressions, clicks and conversions to the decision that led to them."""
    if kind not in ATTRIBUTED_KINDS:
        return []
    decision_id = event.decision_id
    if decision_id is not None:
        if decision_id not in snapshot.known_decisions:
            return []
        how = "decision_id"
    elif kind == EventKind.PURCHASE:
        hours = context.compiled.workspace.attribution.conversion_window_hours
        last = snapshot.last_decisions.get(pid)
        if last is None or last[1] < event.timestamp - timedelta(hours=hours):
            return []
        if last[1] > event.timestamp + DECISION_CLOCK_SLACK:
            return []
        decision_id, how = last[0], "last_decision_in_window"
    else:
        return []
    outcome = {
        "kind": kind.value,
        "event": event.event,
        "message_id": event.message_id,
        "item_ids": ids,
        "slot": event.properties.get("slot"),
        "revenue": event.properties.get("revenue"),
        "at": isoformat(event.timestamp),
        "attributed_by": how,
    }
    return [OutcomeAttributed(decision_id, outcome)]


def _count_metric_event(
    snapshot: Snapshot, event: Event, pid: str, context: FoldContext
) -> list[Effect]:
    """Count an exposed person's metric events into their exposures (from exposure on, until
    the experiment ends): experiment results read these totals, never the event log."""
    exposures = snapshot.exposures.get(pid)
    name = event.event if event.type == "track" else None
    if not exposures or not name:
        return []
    effects: list[Effect] = []
    for key, exposure in list(exposures.items()):
        if name not in context.compiled.metric_events.get(key, ()):
            continue
        if event.timestamp < exposure.exposed_at:
            continue
        experiment = context.compiled.experiment(key)
        if experiment is not None and experiment.end and event.timestamp >= experiment.end:
            continue
        count, revenue = exposure.after.get(name, (0.0, 0.0))
        totals = {**exposure.after, name: (count + 1.0, revenue + order_revenue(event))}
        updated = replace(exposure, after=totals)
        exposures[key] = updated
        effects.append(ExposureChanged(updated, previous=exposure))
    return effects


def pre_exposure_totals(
    profile: Profile | None, event_names: Iterable[str], revenue_events: Iterable[str]
) -> dict[str, tuple[float, float]]:
    """The CUPED covariate at exposure: each metric event's count in the 30 days before (the
    profile's per-day counts) and, for purchase events, the person's revenue so far."""
    if profile is None:
        return {}
    revenue_names = set(revenue_events)
    totals: dict[str, tuple[float, float]] = {}
    for name in event_names:
        count = float(sum(profile.daily_counts.get(name, {}).values()))
        revenue = profile.revenue if name in revenue_names else 0.0
        if count or revenue:
            totals[name] = (count, revenue)
    return totals
