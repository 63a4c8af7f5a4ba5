"""A workspace compiled for serving: segment registry, slots, experiments by slot, the holdout.

Compiled once per change and swapped whole (readers hold one ``CompiledWorkspace`` for a whole
request, so a change never shows half-applied). Published K-Means clusters join the registry here,
and ``profile.cluster`` is set from the same model wherever attributes are built.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from loopwise.bandits.settings import BANDIT
from loopwise.config import Workspace
from loopwise.decide.strategies import StrategyRegistry
from loopwise.errors import ConditionError, ConfigError
from loopwise.experiments.settings import ExperimentConfig
from loopwise.journeys.compiled import journey_experiments
from loopwise.models.serving import MODEL_STRATEGIES
from loopwise.profiles.model import AFFINITY_TABLES, Profile
from loopwise.segments.clusters import CLUSTER_ATTRIBUTE, ClusterModel, is_cluster_key
from loopwise.segments.conditions import CompiledCondition, compile_condition, referenced_paths
from loopwise.segments.registry import SegmentRegistry

if TYPE_CHECKING:
    from loopwise.scores.serving import LiveScores

SCORES_ATTRIBUTE = "scores"  # profile.scores.<key> (loopwise.scores)


class CompiledWorkspace:
    """The parts derived from a workspace (and the published clusters)."""

    def __init__(
        self,
        workspace: Workspace,
        strategies: StrategyRegistry,
        clusters: ClusterModel | None = None,
        scores: LiveScores | None = None,
    ) -> None:
        self.workspace = workspace
        self.strategies = strategies
        self.clusters = clusters
        self.scores = scores  # the served score model's holder (swapped without recompiling)
        cluster_segments = clusters.segments() if clusters is not None else []
        self.registry = SegmentRegistry(
            workspace.all_segments() + cluster_segments, workspace.saved_groups
        )
        self.segment_names = {d.key: d.name for d in self.registry.definitions}
        self.slots = {slot.key: slot for slot in workspace.slots}
        self.settings = workspace.profiles
        # model names are valid before training: their stand-ins answer with popular items
        known_strategies = set(strategies.names()) | set(MODEL_STRATEGIES)
        for i, slot in enumerate(workspace.slots):
            uses = [(f"slots[{i}].default_strategy", slot.default_strategy)] + [
                (f"slots[{i}].rules[{j}].then.strategy", r.then.strategy)
                for j, r in enumerate(slot.rules)
                if r.then.strategy is not None
            ]
            for field_path, name in uses:
                if name not in known_strategies:
                    raise ConfigError(
                        f'Slot "{slot.key}" uses unknown strategy "{name}". Known strategies: '
                        f"{', '.join(strategies.names())}.",
                        field=field_path,
                    )
        self.experiments: dict[str, list[ExperimentConfig]] = {}
        for i, experiment in enumerate(workspace.experiments):
            self.experiments.setdefault(experiment.slot, []).append(experiment)
            for j, arm in enumerate(experiment.arms):
                slot_kind = self.slots[experiment.slot].kind
                block_bandit = arm.strategy == BANDIT and slot_kind == "block"
                unknown = arm.strategy is not None and arm.strategy not in known_strategies
                if unknown and not block_bandit:
                    raise ConfigError(
                        f'Experiment "{experiment.key}" arm "{arm.key}" uses unknown strategy '
                        f'"{arm.strategy}". Known strategies: {", ".join(strategies.names())}.',
                        field=f"experiments[{i}].arms[{j}].strategy",
                    )
        self.holdout = workspace.holdout.experiment(workspace.experiments)
        # targeting conditions may name saved groups: compiled with them, here, once
        self.targeting: dict[str, CompiledCondition] = {}
        for i, experiment in enumerate(workspace.experiments):
            try:
                self.targeting[experiment.key] = compile_condition(
                    experiment.targeting, workspace.saved_groups
                )
            except ConditionError as exc:
                where = f"experiments[{i}].targeting" + (f".{exc.field}" if exc.field else "")
                raise ConfigError(exc.detail, field=where) from None
        # the affinity tables some segment condition reads ("categories" also gives
        # top_category); the others need not be decayed and sorted to evaluate membership
        conditions = orjson.dumps([d.condition for d in self.registry.definitions]).decode()
        conditions += orjson.dumps(workspace.saved_groups).decode()
        self._condition_tables = tuple(
            t
            for t in AFFINITY_TABLES
            if t == "categories"
            or f"affinity.{t}" in conditions
            or '"profile.affinity"' in conditions
        )
        # the profile.* attributes some segment condition reads (None: the whole namespace)
        paths = set()
        for definition in self.registry.definitions:
            paths |= referenced_paths(definition.condition, workspace.saved_groups)
        profile_paths = [p.split(".") for p in paths if p.split(".", 1)[0] == "profile"]
        self._condition_keys: frozenset[str] | None = (
            None
            if any(len(p) < 2 for p in profile_paths)
            else frozenset(p[1] for p in profile_paths)
        )
        # segments that read predictive scores need them to evaluate membership
        self._conditions_read_scores = f'"profile.{SCORES_ATTRIBUTE}' in conditions or (
            '"profile"' in conditions and f'"{SCORES_ATTRIBUTE}' in conditions
        )
        # experiment -> event names its metrics read (what the projector totals per person)
        self.metric_events: dict[str, frozenset[str]] = {
            e.key: frozenset(m.event for m in e.metrics if m.event)
            for e in [
                *workspace.experiments,
                self.holdout,
                *journey_experiments(workspace.journeys),
            ]
        }

    def with_clusters(self, clusters: ClusterModel | None) -> CompiledWorkspace:
        return CompiledWorkspace(self.workspace, self.strategies, clusters, self.scores)

    @property
    def conditions_read_scores(self) -> bool:
        """Some segment reads ``profile.scores``: memberships depend on the served model."""
        return self._conditions_read_scores

    def _add_scores(
        self, profile: Profile, attributes: dict[str, Any], at_last_event: bool = False
    ) -> None:
        """``profile.scores`` into ``attributes`` (when a score model is served). Scores are as
        of the profile's last event; ``at_last_event``: ``attributes`` are of that moment, so
        the scores' features are read from them instead of computed again."""
        if self.scores is not None:
            values = self.scores.attribute(
                profile, self.settings, attributes if at_last_event else None
            )
            if values is not None:
                attributes[SCORES_ATTRIBUTE] = values

    def experiment(self, key: str) -> ExperimentConfig | None:
        if key == self.holdout.key:
            return self.holdout
        return self.workspace.experiment(key)

    def profile_attributes(self, profile: Profile, at: datetime) -> dict[str, Any]:
        """``profile.*`` at ``at``, with ``profile.cluster`` when clusters are published."""
        attributes = profile.attributes(at, self.settings)
        if self.clusters is not None:
            attributes[CLUSTER_ATTRIBUTE] = self.clusters.assign(attributes)
        self._add_scores(profile, attributes)  # as of the profile's last event
        return attributes

    def membership(self, profile: Profile) -> frozenset[str]:
        """The segments a profile state is in, evaluated at its own last event: the one
        definition live ingest, restart and replay share (so they agree)."""
        at = profile.last_seen
        scores = self.scores is not None and self.scores.model is not None
        # a served score reads every attribute (its features); else only what conditions read
        keys = None if scores else self._condition_keys
        values = profile.attributes(at, self.settings, self._condition_tables, keys)
        if self.clusters is not None:
            values[CLUSTER_ATTRIBUTE] = self.clusters.assign(profile.attributes(at, self.settings))
        # a changed profile's scores are computed here, from the same attributes (membership
        # is evaluated for every state the fold produces): remembered on the profile
        if scores:
            self._add_scores(profile, values, at_last_event=True)
            if not self._conditions_read_scores:
                values.pop(SCORES_ATTRIBUTE, None)
        return frozenset(self.registry.evaluate_without_context(values))

    def unpublished_cluster_rules(self) -> list[str]:
        """Rules that target a cluster key the published model does not have."""
        published = set(self.clusters.keys) if self.clusters is not None else set()
        return [
            f'Rule "{rule.id}" of slot "{slot.key}" targets {key}, which is not published; '
            "it matches nobody until a clustering publishes it."
            for slot in self.workspace.slots
            for rule in slot.rules
            for key in rule.segments
            if is_cluster_key(key) and key not in published
        ]


def experiment_keys(compiled: CompiledWorkspace) -> Iterable[str]:
    yield from (e.key for e in compiled.workspace.experiments)
    if compiled.workspace.holdout.enabled:
        yield compiled.holdout.key
