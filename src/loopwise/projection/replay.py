"""Replay: fold the whole event log again, from nothing, with the same fold live ingest runs.

``rebuild`` is pure (events in, state out). The replay service compares the rebuilt state with
the stored one and writes it back in one write job — profiles, identity links, exposure totals,
a fresh item-statistics checkpoint — so a damaged or out-of-date store is repaired on disk, not
only in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from loopwise.catalog.items import Item
from loopwise.clock import Clock
from loopwise.decide.item_stats import ItemStats
from loopwise.events.kinds import EventKind, order_revenue
from loopwise.events.schema import Event
from loopwise.profiles import codec
from loopwise.profiles.identity import IdentityGraph
from loopwise.profiles.model import Profile
from loopwise.projection.effects import ItemInteractionObserved, ProfilesMerged
from loopwise.projection.fold import FoldContext, fold
from loopwise.projection.snapshot import Snapshot
from loopwise.storage.records import Exposure, LoggedEvent, Observation
from loopwise.storage.stores import Storage, UnitOfWork
from loopwise.views import Views
from loopwise.views.item_stats import ItemStatsView
from loopwise.workspace.compiled import CompiledWorkspace

CHUNK = 1000  # events folded per batch; memberships do not depend on it (see projection.fold)


@dataclass(slots=True)
class Rebuilt:
    profiles: dict[str, Profile]
    memberships: dict[str, frozenset[str]]
    graph: IdentityGraph
    stats: ItemStats
    # (final profile id, event name, time, revenue) of every named track event, for exposures
    metric_events: list[tuple[str, str, datetime, float]] = field(default_factory=list)
    events: int = 0


def _observe(stats: ItemStats, observation: Observation) -> None:
    stats.observe(
        EventKind(observation.kind),
        observation.item_ids,
        observation.at,
        segments=observation.segments,
        recent_items=observation.recent_items,
    )


def rebuild(
    events: Iterable[LoggedEvent],
    anonymous: Iterable[Observation],
    context: FoldContext,
    new_stats: Callable[[], ItemStats],
) -> Rebuilt:
    """Every profile, link, membership and item statistic the log (plus the anonymous item
    observations, which no log holds) gives, folded in log order."""
    snapshot = Snapshot.empty()
    stats = new_stats()
    merged_into: dict[str, str] = {}
    named: list[tuple[str, str, datetime, float]] = []
    wanted = set().union(*context.compiled.metric_events.values())
    count = 0
    chunk: list[Event] = []

    def flush() -> None:
        folded = fold(snapshot, chunk, context)
        for effect in folded.effects:
            if isinstance(effect, ItemInteractionObserved):
                _observe(stats, effect.observation)
            elif isinstance(effect, ProfilesMerged):
                merged_into[effect.source] = effect.target
        for event, pid in zip(chunk, folded.profile_ids, strict=True):
            if event.type == "track" and event.event in wanted:
                named.append((pid, event.event, event.timestamp, order_revenue(event)))
        chunk.clear()

    for logged in events:
        chunk.append(logged.event)
        count += 1
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    for observation in anonymous:
        _observe(stats, observation)
    profiles = {pid: p for pid, p in snapshot.profiles.items() if p is not None}
    memberships = {pid: m for pid, m in snapshot.memberships.items() if pid in profiles}
    for pid, profile in profiles.items():
        if pid not in memberships:
            memberships[pid] = context.compiled.membership(profile)
    final = [(_final(merged_into, pid), name, at, rev) for pid, name, at, rev in named]
    return Rebuilt(profiles, memberships, snapshot.graph, stats, final, count)


def _final(merged_into: Mapping[str, str], pid: str) -> str:
    seen: set[str] = set()
    while pid in merged_into and pid not in seen:
        seen.add(pid)
        pid = merged_into[pid]
    return pid


def recount_exposures(
    exposures: Iterable[Exposure],
    metric_events: Iterable[tuple[str, str, datetime, float]],
    metric_names: Mapping[str, frozenset[str]],
    ends: Mapping[str, datetime | None],
) -> list[Exposure]:
    """Each exposure's totals since exposure (until the experiment's end), from the log."""
    by_profile: dict[str, list[tuple[str, datetime, float]]] = {}
    for pid, name, at, revenue in metric_events:
        by_profile.setdefault(pid, []).append((name, at, revenue))
    out: list[Exposure] = []
    for exposure in exposures:
        names = metric_names.get(exposure.experiment, frozenset())
        end = ends.get(exposure.experiment)
        totals: dict[str, tuple[float, float]] = {}
        for name, at, revenue in by_profile.get(exposure.profile_id, ()):
            if name not in names or at < exposure.exposed_at or (end is not None and at >= end):
                continue
            count, total = totals.get(name, (0.0, 0.0))
            totals[name] = (count + 1.0, total + revenue)
        out.append(replace(exposure, after=totals))
    return out


class ReplayService:
    """``loopwise replay`` / ``POST /v1/admin/replay``: rebuild from the log and store it."""

    def __init__(
        self,
        storage: Storage,
        views: Views,
        compiled: Callable[[], CompiledWorkspace],
        catalog: Callable[[], Mapping[str, Item]],
        new_stats: Callable[[], ItemStats],
        clock: Clock,
        on_replaced: Callable[[], None] = lambda: None,
    ) -> None:
        self._storage = storage
        self._views = views
        self._compiled = compiled
        self._catalog = catalog
        self._new_stats = new_stats
        self._clock = clock
        self._on_replaced = on_replaced

    def rebuild(self) -> Rebuilt:
        """The state the log gives, from nothing (stores nothing)."""
        return rebuild(
            self._storage.events.iter(),
            self._storage.item_stats.anonymous_observations(),
            FoldContext(self._compiled(), self._catalog()),
            self._new_stats,
        )

    def replay(self) -> dict[str, Any]:
        """Rebuild and store every profile, link, exposure total and the item statistics.
        Reports how many stored profiles differed from the rebuilt ones (0 when live processing
        was exact). One write job: no event is applied meanwhile."""
        compiled = self._compiled()

        def job(uow: UnitOfWork) -> dict[str, Any]:
            rebuilt = rebuild(
                uow.events.iter(),
                uow.item_stats.anonymous_observations(),
                FoldContext(compiled, self._catalog()),
                self._new_stats,
            )
            stored = {r.id: r.data for r in uow.profiles.iter()}
            records = {pid: codec.encode(p) for pid, p in rebuilt.profiles.items()}
            differing = sorted(
                pid
                for pid in set(stored) | set(records)
                if pid not in stored or pid not in records or stored[pid] != records[pid].data
            )
            uow.profiles.delete(sorted(set(stored) - set(records)))
            uow.profiles.upsert(list(records.values()))
            uow.identities.link(rebuilt.graph.links)
            ends = {}
            for key in compiled.metric_events:
                experiment = compiled.experiment(key)
                ends[key] = experiment.end if experiment is not None else None
            exposures = recount_exposures(
                uow.exposures.iter(), rebuilt.metric_events, compiled.metric_events, ends
            )
            for exposure in exposures:
                uow.exposures.put(exposure)
            position = max((o.seq for o in uow.item_stats.observations()), default=0)
            stats_view = ItemStatsView(rebuilt.stats)
            stats_view.position = position
            uow.item_stats.save_checkpoint(stats_view.capture(self._clock()))
            views = self._views

            def swap() -> None:
                views.profiles.clear()
                for pid, profile in rebuilt.profiles.items():
                    views.profiles.publish(profile, rebuilt.memberships.get(pid), records[pid].data)
                views.identities.clear()
                views.exposures.clear()
                views.item_stats.replace(rebuilt.stats, position)
                self._on_replaced()

            uow.on_commit(swap)
            return {
                "profiles": len(records),
                "events": rebuilt.events,
                "differing": len(differing),
                "differing_ids": differing[:20],
            }

        return self._storage.write(job)
