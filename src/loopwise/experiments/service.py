"""The experiments service: the workspace's experiments and their results, from the aggregates
the projector and the decision log keep current (never a scan of exposed people's events)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from loopwise.errors import NotFound
from loopwise.experiments.aggregates import ExperimentAggregates
from loopwise.experiments.results import report
from loopwise.experiments.settings import HOLDOUT_KEY, ExperimentConfig
from loopwise.journeys.compiled import journey_experiments
from loopwise.projection.effects import Effect, ExposureChanged, ExposureRemoved
from loopwise.storage.records import Exposure
from loopwise.storage.stores import Storage
from loopwise.workspace.compiled import CompiledWorkspace


class ExperimentService:
    def __init__(
        self,
        storage: Storage,
        compiled: Callable[[], CompiledWorkspace],
        flush: Callable[[], None],
        *,
        max_age_seconds: float | None = None,
    ) -> None:
        self._storage = storage
        self._compiled = compiled
        self._flush = flush
        self.aggregates = ExperimentAggregates(storage.exposures, max_age_seconds)

    # -- listeners (after commit) ---------------------------------------------------------------
    def on_effects(self, effects: Sequence[Effect]) -> None:
        added: list[Exposure] = []
        removed: list[Exposure] = []
        for effect in effects:
            if isinstance(effect, ExposureChanged):
                added.append(effect.exposure)
                if effect.previous is not None:
                    removed.append(effect.previous)
            elif isinstance(effect, ExposureRemoved):
                removed.append(effect.exposure)
        if added or removed:
            self.aggregates.changed(added, removed)

    def on_exposures(self, exposures: list[Exposure]) -> None:
        if exposures:
            self.aggregates.changed(exposures)

    # -- reads ---------------------------------------------------------------------------------
    def experiment(self, key: str) -> ExperimentConfig:
        compiled = self._compiled()
        workspace = compiled.workspace
        exposed = self._storage.exposures.experiments()
        if key == HOLDOUT_KEY and (workspace.holdout.enabled or HOLDOUT_KEY in exposed):
            return compiled.holdout
        found = workspace.experiment(key)
        if found is None:
            known = [e.key for e in workspace.experiments]
            if workspace.holdout.enabled:
                known.append(HOLDOUT_KEY)
            raise NotFound(
                f'No experiment "{key}". Known experiments: {", ".join(known) or "none"}.',
                field="key",
            )
        return found

    def list(self, *, flush: bool = True) -> list[dict[str, Any]]:
        """Every experiment of the workspace (and the holdout when on) with its exposures.
        ``flush=False`` (dashboards): skip waiting for the exposures still being written."""
        compiled = self._compiled()
        experiments = list(compiled.workspace.experiments)
        if compiled.workspace.holdout.enabled:
            experiments.append(compiled.holdout)
        experiments += journey_experiments(compiled.workspace.journeys)  # journey holdouts
        if flush:
            self._flush()  # exposures queued behind replies are committed (and counted)
        exposed = self._storage.exposures.experiments()
        return [
            {
                "key": e.key,
                "slot": e.slot,
                "status": e.status,
                "description": e.description,
                "control": e.control_key,
                "arms": [
                    {"key": a.key, "weight": w} for a, w in zip(e.arms, e.weights, strict=True)
                ],
                "metrics": [m.key for m in e.metrics],
                "exposed_users": exposed.get(e.key, 0),
            }
            for e in experiments
        ]

    def results(
        self, key: str, segment: str | None = None, *, flush: bool = True
    ) -> dict[str, Any]:
        """Per arm (and per segment at exposure) from every exposed person's totals since their
        first exposure. ``segment`` keeps the people who were in it at exposure."""
        experiment = self.experiment(key)
        compiled = self._compiled()
        if segment is not None and segment not in compiled.segment_names:
            raise NotFound(
                f'No segment "{segment}". Use a segment key of the workspace, e.g. '
                f"{', '.join(sorted(compiled.segment_names)[:5])}.",
                field="segment",
            )
        if flush:
            self._flush()  # exposures queued behind replies are committed (and counted)
        summary = self.aggregates.summary(experiment, segment)
        return report(experiment, summary, segment=segment)

    def results_over_time(self, key: str, *, days: int = 60, flush: bool = True) -> dict[str, Any]:
        """Per day of first exposure (the last ``days`` days with exposures), each non-control
        arm's lift per metric with its interval, over everyone exposed up to that day."""
        experiment = self.experiment(key)
        if flush:
            self._flush()
        rows = []
        for day, summary in self.aggregates.cumulative_by_day(experiment)[-days:]:
            result = report(experiment, summary)
            rows.append(
                {
                    "date": day.isoformat(),
                    "users": dict(summary.users),
                    "metrics": [
                        {
                            "key": metric["key"],
                            "results": [
                                {"arm": row["arm"], "lift": row.get("lift")}
                                for row in metric["results"]
                                if row["arm"] != result["control"]
                            ],
                        }
                        for metric in result["metrics"]
                    ],
                }
            )
        return {"experiment": experiment.key, "control": experiment.control_key, "days": rows}
