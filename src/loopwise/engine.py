"""The facade: one object over the services, for the CLI, the simulator, the HTTP app and
library users. It owns no stage's state; :mod:`loopwise.composition` builds what it delegates to.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from loopwise.api.edge_settings import CorsSettings, RateLimitSettings
from loopwise.api.keys import KeyRing
from loopwise.clock import Clock, system_clock
from loopwise.composition import Services, build
from loopwise.config import SAMPLE_WORKSPACE, Workspace
from loopwise.decide.edge_exposures import EdgeExposuresRequest
from loopwise.decide.request import DecideRequest, DecideResponse
from loopwise.decide.strategies import StrategyRegistry
from loopwise.events.geolocation import CountryDatabase, Geolocator, open_geolocator
from loopwise.events.normalize import Locate
from loopwise.events.schema import Event
from loopwise.facades import (
    CatalogFacade,
    ChannelsFacade,
    LearningFacade,
    ModelsFacade,
    PrivacyFacade,
    WorkspaceFacade,
)
from loopwise.journeys.facade import JourneysFacade
from loopwise.projection.ingest import IngestResult
from loopwise.projection.replay import Rebuilt
from loopwise.storage.health import probed_health
from loopwise.storage.stores import Storage
from loopwise.workspace.service import open_workspace

__all__ = ["Engine", "IngestResult"]


class Engine(
    PrivacyFacade,
    CatalogFacade,
    WorkspaceFacade,
    ModelsFacade,
    ChannelsFacade,
    JourneysFacade,
    LearningFacade,
):
    """Ingest -> profiles -> segments -> decide, with the feedback loop, on one storage. The
    delegations by domain (privacy, catalog, workspace, models, channels, learning) are in
    :mod:`loopwise.facades`, the journeys' in :mod:`loopwise.journeys.facade`."""

    def __init__(
        self,
        workspace: Workspace,
        storage: Storage,
        *,
        keys: KeyRing | None = None,
        clock: Clock = system_clock,
        strategies: StrategyRegistry | None = None,
        seed: int | None = None,
        data_dir: Path | None = None,
        watch: bool = False,
        geolocator: Geolocator | None = None,
    ) -> None:
        # the bundled country table unless told otherwise (open() adds a city database)
        self.geolocator = geolocator if geolocator is not None else CountryDatabase()
        self.services: Services = build(
            workspace, storage, keys=keys, clock=clock, strategies=strategies, seed=seed,
            data_dir=data_dir, watch=watch,
        )  # fmt: skip
        self.storage, self.keys, self.clock = storage, self.services.keys, clock
        self.models, self.strategies = self.services.models, self.services.strategies

    @classmethod
    def open(
        cls,
        data_dir: Path,
        workspace_file: Path | None = None,
        *,
        clock: Clock = system_clock,
        environ: Mapping[str, str] | None = None,
        database_url: str | None = None,
        watch: bool = True,
    ) -> tuple[Engine, dict[str, str]]:
        """Open (or create) a data directory (SQLite unless ``database_url`` names another
        backend). Returns the engine and any keys generated now (to print once)."""
        from loopwise.storage import open_storage

        data_dir.mkdir(parents=True, exist_ok=True)
        environ = os.environ if environ is None else environ
        storage = open_storage(database_url, data_dir)
        try:
            keys, new_keys = KeyRing.load_or_create(data_dir, environ)
            path = workspace_file or SAMPLE_WORKSPACE
            choice = open_workspace(storage, path, clock)
            workspace = choice.workspace
            engine = cls(
                workspace, storage, keys=keys, clock=clock, data_dir=data_dir, watch=watch,
                geolocator=open_geolocator(environ),
            )  # fmt: skip
            engine.services.workspace.file_conflict = choice.conflict
            if workspace.items:
                item_file = Path(workspace.items)
                engine.services.catalog.import_initial(
                    item_file if item_file.is_absolute() else path.parent / item_file
                )
            engine.models.load_current(workspace.training.keep_versions)
        except BaseException:
            storage.close()
            raise
        return engine, new_keys

    def close(self) -> None:
        self.services.close()

    # -- settings the HTTP edge reads ----------------------------------------------------------
    @property
    def workspace(self) -> Workspace:
        return self.services.workspace.workspace

    @property
    def settings_country_header(self) -> str | None:
        return self.workspace.profiles.country_header

    @property
    def settings_truncate_ip(self) -> bool:
        return self.workspace.profiles.truncate_ip

    @property
    def geolocation(self) -> Locate | None:
        return self.geolocator.locate if self.workspace.profiles.geolocation else None

    @property
    def settings_cors(self) -> CorsSettings:
        return self.workspace.cors

    @property
    def settings_rate_limits(self) -> RateLimitSettings:
        return self.workspace.rate_limits

    def health(self) -> dict[str, Any]:
        """Read and write health (a failed write is probed again after a while)."""
        return probed_health(self.storage)

    def healthy(self) -> bool:
        return bool(self.health().get("ok"))

    # -- the loop ------------------------------------------------------------------------------
    def submit_ingest(self, events: list[Event]) -> Future[IngestResult]:
        return self.services.ingest.submit(events)

    def ingest(self, events: list[Event]) -> IngestResult:
        return self.services.ingest.ingest(events)

    def decide(
        self, request: DecideRequest, headers: Mapping[str, str] | None = None
    ) -> DecideResponse:
        return self.services.decide.decide(request, headers)

    def record_edge_exposures(self, request: EdgeExposuresRequest) -> dict[str, Any]:
        return self.services.edge_exposures.record(request)

    def get_decision(self, decision_id: str) -> dict[str, Any] | None:
        return self.services.decide.get_decision(decision_id)

    def resolve(self, identifier: str) -> str | None:
        return self.services.profiles.resolve(identifier)

    def rebuild_profiles(self) -> Rebuilt:
        return self.services.replay.rebuild()

    def replay(self) -> dict[str, Any]:
        return self.services.replay.replay()
