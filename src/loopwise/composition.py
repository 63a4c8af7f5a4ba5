"""The composition root: builds every service from a workspace and a storage, and wires who tells
whom after a commit. Nothing else constructs services; ``Engine`` and the HTTP app receive them.

Write path: ingest (consent gate) -> projector (the fold) -> stores, then views in ``on_commit``.
Read path: decide, profiles, experiments, privacy read the views (and stores off the hot path).
Changes made by another process (a second worker, ``loopwise import items``, ``loopwise cluster``)
reach this one through the :class:`ChangeWatcher`, which polls the stores' change counters.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from loopwise.api.keys import KeyRing
from loopwise.bandits.service import BanditService
from loopwise.catalog.items import Item
from loopwise.catalog.service import CatalogService
from loopwise.channels.service import Channels, build_channels
from loopwise.clock import Clock, EventTimeClock
from loopwise.config import Workspace
from loopwise.decide.edge_exposures import EdgeExposureService
from loopwise.decide.item_stats import ItemStats
from loopwise.decide.service import DecideService
from loopwise.decide.strategies import StrategyRegistry
from loopwise.experiments.service import ExperimentService
from loopwise.journeys.delivery import DeliveryWorker
from loopwise.journeys.service import JourneyService
from loopwise.journeys.wiring import EnginePorts
from loopwise.models.manager import ModelManager
from loopwise.privacy.service import PrivacyService
from loopwise.profiles.service import ProfileService
from loopwise.projection.effects import Effect
from loopwise.projection.ingest import IngestService
from loopwise.projection.projector import Projector, profile_states
from loopwise.projection.replay import ReplayService
from loopwise.scores.service import ScoreService
from loopwise.scores.serving import LiveScores
from loopwise.segments.service import ClusterService
from loopwise.storage.records import Checkpoint
from loopwise.storage.sqlite.schema import REBUILD_ITEM_STATS_META
from loopwise.storage.stores import Storage, UnitOfWork
from loopwise.views import Views
from loopwise.views.consent import ConsentView
from loopwise.views.exposures import ExposureView
from loopwise.views.identities import IdentityView
from loopwise.views.item_stats import Checkpointer, ItemStatsView
from loopwise.views.profiles import ProfileView
from loopwise.workspace.compiled import CompiledWorkspace
from loopwise.workspace.service import WorkspaceService

log = logging.getLogger(__name__)

WATCH_SECONDS = 1.0  # another process's change applies here within about this long


def new_item_stats(workspace: Workspace) -> ItemStats:
    # trending is re-ranked at most every 30 s of event time: the ranking is a batch job that
    # must not land inside many requests
    return ItemStats(
        half_life_days=workspace.popularity.half_life_days, trending_max_age_seconds=30.0
    )


@dataclass(slots=True)
class Services:
    storage: Storage
    strategies: StrategyRegistry
    keys: KeyRing
    clock: Clock
    views: Views
    workspace: WorkspaceService
    catalog: CatalogService
    projector: Projector
    ingest: IngestService
    privacy: PrivacyService
    profiles: ProfileService
    decide: DecideService
    edge_exposures: EdgeExposureService
    experiments: ExperimentService
    clusters: ClusterService
    replay: ReplayService
    models: ModelManager
    checkpointer: Checkpointer
    watcher: ChangeWatcher
    journeys: JourneyService
    delivery: DeliveryWorker
    channels: Channels
    bandits: BanditService
    scores: ScoreService

    def close(self) -> None:
        self.journeys.stop()
        self.delivery.stop()
        self.watcher.stop()
        self.models.stop()
        self.checkpointer.stop()
        self.storage.close()


class ChangeWatcher:
    """Polls the stores' change counters and refreshes what another process changed."""

    def __init__(self, storage: Storage, refreshers: list[Callable[[dict[str, int]], object]]):
        self._storage = storage
        self._refreshers = refreshers
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loopwise-changes", daemon=True)

    def start(self) -> ChangeWatcher:
        self._thread.start()
        return self

    def check(self) -> None:
        revisions = self._storage.config.revisions()
        for refresh in self._refreshers:
            refresh(revisions)

    def _loop(self) -> None:
        while not self._stopped.wait(WATCH_SECONDS):
            try:
                self.check()
            except Exception as exc:  # the next round may succeed (database back)
                log.warning("checking for changes failed: %s", type(exc).__name__)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def build(
    workspace: Workspace,
    storage: Storage,
    *,
    keys: KeyRing | None = None,
    clock: Clock,
    strategies: StrategyRegistry | None = None,
    seed: int | None = None,
    data_dir: Path | None = None,
    watch: bool = False,
) -> Services:
    strategies = strategies or StrategyRegistry.default()
    limit = workspace.profiles.cache_profiles
    views = Views(
        profiles=ProfileView(storage.profiles, limit),
        identities=IdentityView(storage.identities, 4 * limit),
        consent=ConsentView(storage.consent, limit),
        exposures=ExposureView(storage.exposures, limit),
        item_stats=ItemStatsView(new_item_stats(workspace)),
    )
    live_scores = LiveScores()
    workspace_service = WorkspaceService(storage, workspace, strategies, clock, live_scores)
    catalog = CatalogService(storage)

    def compiled() -> CompiledWorkspace:
        return workspace_service.compiled

    def items() -> Mapping[str, Item]:
        return catalog.items

    projector = Projector(views, compiled, items)
    privacy = PrivacyService(storage, views, lambda: workspace_service.workspace.privacy, clock)
    ingest = IngestService(
        storage, views, projector, privacy, lambda: workspace_service.workspace.privacy, clock
    )
    profiles = ProfileService(storage, views, compiled, items, clock)
    bandits = BanditService(
        storage,
        clock,
        window=lambda: timedelta(
            hours=workspace_service.workspace.attribution.conversion_window_hours
        ),
    )
    bandits.rebuild()
    decide = DecideService(
        storage, views, compiled, items, strategies, clock, seed=seed, bandits=bandits
    )
    edge_exposures = EdgeExposureService(decide, views, compiled, clock)
    experiments = ExperimentService(storage, compiled, decide.flush)
    clusters = ClusterService(storage, workspace_service, clock)
    replay = ReplayService(
        storage,
        views,
        compiled,
        items,
        lambda: new_item_stats(workspace_service.workspace),
        clock,
        on_replaced=experiments.aggregates.clear,
    )
    models = ModelManager(strategies, data_dir, clock)
    journeys = JourneyService(storage, views, compiled, items, clock)
    engine_ports = EnginePorts(
        storage, views, privacy, lambda: workspace_service.workspace.privacy, decide, ingest,
        clock,
    )  # fmt: skip
    delivery = DeliveryWorker(
        storage, lambda: workspace_service.workspace.webhooks, engine_ports.person,
        engine_ports.decide, engine_ports.identify,
    )  # fmt: skip
    scores = ScoreService(storage, compiled, items, live_scores, data_dir, clock)

    # who is told what, after commit
    projector.listeners.append(experiments.on_effects)
    decide.exposure_listeners.append(experiments.on_exposures)
    projector.hooks.append(journeys)  # journey state and outbox in the ingest job's unit of work
    journeys.exposure_listeners.append(experiments.on_exposures)
    journeys.delivery_listeners.append(delivery.wake)
    decide.decision_listeners.append(bandits.on_decision)
    projector.listeners.append(bandits.on_effects)

    def rescore(effects: Sequence[Effect]) -> None:  # scores follow committed profile changes
        live_scores.on_profiles(profile_states(effects).values(), compiled().settings)

    def scores_swapped() -> None:
        if compiled().conditions_read_scores:
            views.profiles.forget_memberships()
        decide.prerender.invalidate()

    projector.listeners.append(rescore)
    live_scores.listeners.append(scores_swapped)

    def workspace_changed(before: CompiledWorkspace, after: CompiledWorkspace) -> None:
        if before.registry.definitions != after.registry.definitions:
            views.profiles.forget_memberships()
        decide.refresh()

    workspace_service.listeners.append(workspace_changed)
    catalog.listeners.append(lambda _: decide.refresh())

    _load_item_stats(storage, views, replay, clock)

    def save_checkpoint(checkpoint: Checkpoint) -> None:
        storage.write(lambda uow: uow.item_stats.save_checkpoint(checkpoint))

    checkpointer = Checkpointer(views.item_stats, save_checkpoint, clock)
    watcher = ChangeWatcher(storage, [workspace_service.refresh, catalog.refresh, scores.refresh])
    if watch:
        checkpointer.start()
        watcher.start()
    return Services(
        storage=storage,
        strategies=strategies,
        keys=keys if keys is not None else KeyRing(),
        clock=clock,
        views=views,
        workspace=workspace_service,
        catalog=catalog,
        projector=projector,
        ingest=ingest,
        privacy=privacy,
        profiles=profiles,
        decide=decide,
        edge_exposures=edge_exposures,
        experiments=experiments,
        clusters=clusters,
        replay=replay,
        models=models,
        checkpointer=checkpointer,
        watcher=watcher,
        journeys=journeys,
        delivery=delivery,
        channels=build_channels(storage, views, decide, compiled, items, strategies, clock),
        bandits=bandits,
        scores=scores,
    )


def _load_item_stats(storage: Storage, views: Views, replay: ReplayService, clock: Clock) -> None:
    """The checkpoint and the tail after it; a database migrated from round 1 (no checkpoint,
    no observations) rebuilds them from the log once."""
    event_clock = clock if isinstance(clock, EventTimeClock) else None

    def observe(at: object) -> None:
        # a restarted simulation or backtest resumes at its own time, not the wall clock's
        if event_clock is not None:
            event_clock.observe(at)  # type: ignore[arg-type]

    if storage.config.meta(REBUILD_ITEM_STATS_META) == "1":
        rebuilt = replay.rebuild()
        position = max((o.seq for o in storage.item_stats.observations()), default=0)
        views.item_stats.replace(rebuilt.stats, position)
        checkpoint = views.item_stats.capture(clock())

        def job(uow: UnitOfWork) -> None:
            uow.item_stats.save_checkpoint(checkpoint)
            uow.config.put_meta(REBUILD_ITEM_STATS_META, "0")

        storage.write(job)
    else:
        views.item_stats.load(storage.item_stats, observe)
    if event_clock is not None:
        newest = next(storage.events.iter(after=max(storage.events.last_seq() - 1, 0)), None)
        if newest is not None:
            event_clock.observe(newest.event.timestamp)
