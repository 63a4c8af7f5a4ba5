"""The facade: one object over the services, for the CLI, the simulator, the HTTP app and
library users. It owns no stage's state; :mod:`loopwise.composition` builds what it delegates to.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopwise.api.edge_settings import CorsSettings, RateLimitSettings
from loopwise.api.keys import KeyRing
from loopwise.catalog.items import Item
from loopwise.clock import Clock, system_clock
from loopwise.composition import Services, build
from loopwise.config import SAMPLE_WORKSPACE, Workspace
from loopwise.decide.edge_exposures import EdgeExposuresRequest
from loopwise.decide.request import DecideRequest, DecideResponse
from loopwise.decide.strategies import StrategyRegistry
from loopwise.events.geolocation import CountryDatabase, Geolocator, open_geolocator
from loopwise.events.normalize import Locate
from loopwise.events.schema import Event
from loopwise.models.interactions import Interaction, interactions_from_logged
from loopwise.models.training import Progress
from loopwise.projection.ingest import IngestResult
from loopwise.projection.replay import Rebuilt
from loopwise.storage.stores import Storage
from loopwise.workspace.history import Applied, Author, change_summary
from loopwise.workspace.service import open_workspace

if TYPE_CHECKING:
    from loopwise.distributed.scale import ScaleOut

__all__ = ["Engine", "IngestResult"]

HEALTH_PROBE_SECONDS = 5.0


class Engine:
    """Ingest -> profiles -> segments -> decide, with the feedback loop, on one storage."""

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
        scale: ScaleOut | None = None,
    ) -> None:
        # the bundled country table unless told otherwise (open() adds a city database)
        self.geolocator = geolocator if geolocator is not None else CountryDatabase()
        self.services: Services = build(
            workspace, storage, keys=keys, clock=clock, strategies=strategies, seed=seed,
            data_dir=data_dir, watch=watch, scale=scale,
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
        redis_url: str | None = None,
    ) -> tuple[Engine, dict[str, str]]:
        """Open (or create) a data directory (SQLite unless ``database_url`` names another
        backend; with ``redis_url`` too, as one worker among several: loopwise.distributed).
        Returns the engine and any keys generated now (to print once)."""
        from loopwise.storage import open_storage

        data_dir.mkdir(parents=True, exist_ok=True)
        environ = os.environ if environ is None else environ
        storage = open_storage(database_url, data_dir)
        scale: ScaleOut | None = None
        try:
            if redis_url:
                from loopwise.distributed import scale as scale_out

                scale = scale_out.ScaleOut(redis_url, storage)
            keys, new_keys = KeyRing.load_or_create(data_dir, environ)
            path = workspace_file or SAMPLE_WORKSPACE
            choice = open_workspace(storage, path, clock)
            workspace = choice.workspace
            engine = cls(
                workspace, storage, keys=keys, clock=clock, data_dir=data_dir, watch=watch,
                geolocator=open_geolocator(environ), scale=scale,
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
        """Read and write health. Writes that failed stay reported until a commit succeeds; with
        no traffic, a probe write after ``HEALTH_PROBE_SECONDS`` tells whether the disk came
        back."""
        health = self.storage.health()
        failed_at = health.get("write_failed_at")
        if failed_at is not None and time.monotonic() - failed_at >= HEALTH_PROBE_SECONDS:
            with contextlib.suppress(Exception):
                self.storage.write(lambda uow: uow.config.put_meta("health_probe", "ok"))
            health = self.storage.health()
        return health

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

    def profile_view(self, identifier: str) -> dict[str, Any] | None:
        return self.services.profiles.view(identifier)

    def rebuild_profiles(self) -> Rebuilt:
        return self.services.replay.rebuild()

    def replay(self) -> dict[str, Any]:
        return self.services.replay.replay()

    # -- privacy -------------------------------------------------------------------------------
    def erase_profile(self, identifier: str) -> dict[str, Any]:
        return self.services.privacy.erase(identifier)

    def export_profile(self, identifier: str) -> dict[str, Any]:
        return self.services.privacy.export(identifier, self.profile_view)

    def get_consent(self, user_id: str, country: str | None = None) -> dict[str, Any]:
        return self.services.privacy.get_consent(user_id, country, self.services.profiles.country)

    def put_consent(self, user_id: str, body: Any) -> dict[str, Any]:
        self.services.privacy.put_consent(user_id, body)
        return self.get_consent(user_id)

    def consent_history(self, user_id: str) -> list[dict[str, Any]]:
        return self.services.privacy.consent_history(user_id)

    def pseudonymous_id(self, identifier: str) -> str:
        return self.services.privacy.pseudonymous_id(identifier)

    def append_erasure_record(self, pseudonym: str, summary: Mapping[str, Any]) -> dict[str, Any]:
        return self.services.privacy.append_erasure_record(pseudonym, summary)

    def run_retention(self, *, dry_run: bool = False) -> dict[str, Any]:
        return self.services.privacy.run_retention(dry_run=dry_run)

    # -- catalog and workspace -----------------------------------------------------------------
    def put_items(self, items: list[Item]) -> int:
        return self.services.catalog.put(items)

    def get_item(self, item_id: str) -> Item | None:
        return self.services.catalog.get(item_id)

    def list_items(self, offset: int, limit: int) -> tuple[list[Item], int]:
        return self.services.catalog.page(offset, limit)

    def delete_items(self, item_ids: list[str]) -> int:
        return self.services.catalog.delete(item_ids)

    def workspace_document(self) -> dict[str, Any]:
        return self.services.workspace.document()

    def replace_workspace(self, document: dict[str, Any]) -> dict[str, Any]:
        return self.services.workspace.replace(document)

    def put_slot(self, key: str, document: dict[str, Any]) -> dict[str, Any]:
        return self.services.workspace.replace_entry("slots", key, document)

    def delete_slot(self, key: str) -> None:
        self.services.workspace.replace_entry("slots", key, None)

    def put_segment(self, key: str, document: dict[str, Any]) -> dict[str, Any]:
        return self.services.workspace.replace_entry("segments", key, document)

    def delete_segment(self, key: str) -> None:
        self.services.workspace.replace_entry("segments", key, None)

    def workspace_snapshot(self) -> tuple[int, dict[str, Any]]:
        return self.services.workspace.snapshot()

    def change_workspace(
        self,
        section: str | None,
        key: str | None,
        document: dict[str, Any] | None,
        *,
        author: Author,
        expected: int | None,
    ) -> Applied:
        service = self.services.workspace
        if section is None or key is None:
            whole = document or {}
            return service.apply(lambda _: whole, author=author, expected=expected)
        return service.apply_entry(section, key, document, author=author, expected=expected)

    def workspace_history(self, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
        return [change_summary(c) for c in self.services.workspace.history(limit, before)]

    def workspace_revision(self, revision: int) -> dict[str, Any] | None:
        change = self.storage.workspace_history.get(revision)
        return None if change is None else {**change_summary(change), "document": change.document}

    def restore_workspace(
        self, revision: int, *, author: Author, expected: int | None = None
    ) -> Applied:
        return self.services.workspace.restore(revision, author=author, expected=expected)

    def cluster(self, k_min: int = 2, k_max: int = 8, seed: int = 0) -> dict[str, Any]:
        return self.services.clusters.cluster(k_min, k_max, seed)

    def clusters(self) -> dict[str, Any]:
        return self.services.clusters.clusters()

    # -- experiments and models ----------------------------------------------------------------
    def list_experiments(self) -> list[dict[str, Any]]:
        return self.services.experiments.list()

    def experiment_results(self, key: str, segment: str | None = None) -> dict[str, Any]:
        return self.services.experiments.results(key, segment)

    def experiment_results_over_time(self, key: str) -> dict[str, Any]:
        return self.services.experiments.results_over_time(key)

    def interactions(self) -> list[Interaction]:
        return list(interactions_from_logged(self.storage.events.iter()))

    def train_models(self, wait: bool = True, progress: Progress | None = None) -> dict[str, Any]:
        items, settings = self.services.catalog.items, self.workspace.training
        return self.models.train(self.interactions, items, settings, wait=wait, progress=progress)

    def model_versions(self) -> dict[str, Any]:
        return self.models.versions(self.workspace.training.keep_versions)

    def rollback_models(self, version: str | None = None) -> dict[str, Any]:
        return self.models.rollback(self.workspace.training.keep_versions, version)

    def start_retraining(self) -> bool:
        return self.models.start_periodic(
            self.workspace.training.retrain_every_minutes, self.interactions,
            lambda: self.services.catalog.items, lambda: self.workspace.training,
        )  # fmt: skip

    def counts(self) -> dict[str, int]:
        storage = self.storage
        items = len(self.services.catalog.items)
        return {
            "events": storage.events.count(),
            "profiles": storage.profiles.count(),
            "items": items,
        }
