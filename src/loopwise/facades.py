"""The engine facade's delegations, one mixin per domain: privacy, catalog, workspace, models,
channels.

Each mixin only forwards to its service (:class:`~loopwise.composition.Services`), so
``Engine`` (``loopwise/engine.py``) stays a short file about opening and closing the engine and
the loop itself, while the CLI, the simulator, the HTTP ports and library users keep calling the
same method names. New code may call the services directly (``engine.services.privacy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopwise.catalog.items import Item
from loopwise.channels.batch import Campaign, DecideBatchRequest, Shard
from loopwise.channels.rerank import RerankRequest
from loopwise.composition import Services
from loopwise.journeys import facade as journeys
from loopwise.models.interactions import Interaction, interactions_from_logged
from loopwise.models.training import Progress
from loopwise.workspace.history import Applied, Author, change_summary


class _Facade:
    services: Services


class PrivacyFacade(_Facade):
    """Consent, erasure, export, retention (:class:`~loopwise.privacy.service.PrivacyService`)."""

    def profile_view(self, identifier: str) -> dict[str, Any] | None:
        view = self.services.profiles.view(identifier)
        return journeys.with_journey_history(self.services, view)

    def erase_profile(self, identifier: str) -> dict[str, Any]:
        return self.services.privacy.erase(identifier)

    def export_profile(self, identifier: str) -> dict[str, Any]:
        document = self.services.privacy.export(identifier, self.services.profiles.view)
        document["journeys"] = journeys.journey_history_of(self.services, identifier)
        return document

    def get_consent(self, user_id: str, country: str | None = None) -> dict[str, Any]:
        return self.services.privacy.get_consent(user_id, country, self.services.profiles.country)

    def put_consent(self, user_id: str, body: Any) -> dict[str, Any]:
        self.services.privacy.put_consent(user_id, body)
        state = self.get_consent(user_id)
        journeys.drop_withdrawn_sends(self.services, user_id, state)
        return state

    def consent_history(self, user_id: str) -> list[dict[str, Any]]:
        return self.services.privacy.consent_history(user_id)

    def pseudonymous_id(self, identifier: str) -> str:
        return self.services.privacy.pseudonymous_id(identifier)

    def append_erasure_record(self, pseudonym: str, summary: Mapping[str, Any]) -> dict[str, Any]:
        return self.services.privacy.append_erasure_record(pseudonym, summary)

    def run_retention(self, *, dry_run: bool = False) -> dict[str, Any]:
        return self.services.privacy.run_retention(dry_run=dry_run)


class CatalogFacade(_Facade):
    """Items (:class:`~loopwise.catalog.service.CatalogService`)."""

    def put_items(self, items: list[Item]) -> int:
        return self.services.catalog.put(items)

    def get_item(self, item_id: str) -> Item | None:
        return self.services.catalog.get(item_id)

    def list_items(self, offset: int, limit: int) -> tuple[list[Item], int]:
        return self.services.catalog.page(offset, limit)

    def delete_items(self, item_ids: list[str]) -> int:
        return self.services.catalog.delete(item_ids)


class WorkspaceFacade(_Facade):
    """The live workspace, its history and clusters
    (:class:`~loopwise.workspace.service.WorkspaceService`,
    :class:`~loopwise.segments.service.ClusterService`)."""

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
        change = self.services.storage.workspace_history.get(revision)
        return None if change is None else {**change_summary(change), "document": change.document}

    def restore_workspace(
        self, revision: int, *, author: Author, expected: int | None = None
    ) -> Applied:
        return self.services.workspace.restore(revision, author=author, expected=expected)

    def cluster(self, k_min: int = 2, k_max: int = 8, seed: int = 0) -> dict[str, Any]:
        return self.services.clusters.cluster(k_min, k_max, seed)

    def clusters(self) -> dict[str, Any]:
        return self.services.clusters.clusters()


class ModelsFacade(_Facade):
    """Experiments and models (:class:`~loopwise.experiments.service.ExperimentService`,
    :class:`~loopwise.models.manager.ModelManager`)."""

    def list_experiments(self) -> list[dict[str, Any]]:
        return self.services.experiments.list()

    def experiment_results(self, key: str, segment: str | None = None) -> dict[str, Any]:
        return self.services.experiments.results(key, segment)

    def experiment_results_over_time(self, key: str) -> dict[str, Any]:
        return self.services.experiments.results_over_time(key)

    def interactions(self) -> list[Interaction]:
        return list(interactions_from_logged(self.services.storage.events.iter()))

    def train_models(
        self, wait: bool = True, progress: Progress | None = None, tune_seconds: float | None = None
    ) -> dict[str, Any]:
        """``tune_seconds`` overrides ``training.tune_seconds`` (Optuna budget) for this run."""
        services = self.services
        items, settings = services.catalog.items, services.workspace.workspace.training
        if tune_seconds is not None:
            settings = settings.model_copy(update={"tune_seconds": tune_seconds})
        return services.models.train(
            self.interactions, items, settings, wait=wait, progress=progress,
            segments_of=services.profiles.membership,
        )  # fmt: skip

    def model_versions(self) -> dict[str, Any]:
        return self.services.models.versions(
            self.services.workspace.workspace.training.keep_versions
        )

    def rollback_models(self, version: str | None = None) -> dict[str, Any]:
        training = self.services.workspace.workspace.training
        return self.services.models.rollback(training.keep_versions, version)

    def start_retraining(self) -> bool:
        services = self.services
        return services.models.start_periodic(
            services.workspace.workspace.training.retrain_every_minutes, self.interactions,
            lambda: services.catalog.items, lambda: services.workspace.workspace.training,
        )  # fmt: skip

    def counts(self) -> dict[str, int]:
        storage = self.services.storage
        return {
            "events": storage.events.count(),
            "profiles": storage.profiles.count(),
            "items": len(self.services.catalog.items),
        }


class ChannelsFacade(_Facade):
    """Campaigns and search reranking (:mod:`loopwise.channels`, docs/channels.md)."""

    def decide_batch(self, request: DecideBatchRequest, shard: Shard | None = None) -> Campaign:
        """A validated campaign: iterate its ``rows()`` to decide the audience (``shard``: one
        part of it, see :mod:`loopwise.channels.workers`)."""
        return self.services.channels.batch.prepare(request, shard)

    def rerank(
        self, request: RerankRequest, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return self.services.channels.rerank.rerank(request, headers)


class LearningFacade(_Facade):
    """Bandit state, off-policy evaluation and predictive scores (:mod:`loopwise.bandits`,
    :mod:`loopwise.ope`, :mod:`loopwise.scores`)."""

    def run_ope(self, document: dict[str, Any]) -> dict[str, Any]:
        """Off-policy evaluation from the decision log (docs/ope.md)."""
        from loopwise.ope.service import OpeService, parse_request

        services = self.services
        services.decide.flush()
        service = OpeService(
            services.storage, lambda: services.workspace.compiled, services.bandits
        )
        return service.run(parse_request(document))

    def bandit_state(self) -> list[dict[str, Any]]:
        return self.services.bandits.snapshot()

    def train_scores(self) -> dict[str, Any]:
        return self.services.scores.train()

    def evaluate_scores(
        self, version: str | None = None, output: Path | None = None
    ) -> dict[str, Any]:
        return self.services.scores.evaluate(version, output)

    def score_versions(self) -> dict[str, Any]:
        return self.services.scores.versions()
