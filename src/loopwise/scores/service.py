"""The score service: train from the event log, store a version, serve it; evaluate a version on
the log as it is now; pick up a version another process (``loopwise train-scores``) made current.

Training reads the whole log through the fold (examples.py) on the calling thread, one training
at a time (a second gets Conflict). Serving swaps the :class:`~loopwise.scores.serving.LiveScores`
model whole; cached segment memberships are forgotten when segments read scores.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from loopwise.catalog.items import Item
from loopwise.clock import Clock, isoformat, parse_timestamp
from loopwise.errors import Conflict, NotFound
from loopwise.scores.artifacts import ScoreArtifactStore, Version
from loopwise.scores.examples import Examples, build_examples
from loopwise.scores.serving import LiveScores, ScoreModel
from loopwise.storage.stores import Storage
from loopwise.workspace.compiled import CompiledWorkspace

log = logging.getLogger(__name__)


class ScoreService:
    def __init__(
        self,
        storage: Storage,
        compiled: Callable[[], CompiledWorkspace],
        catalog: Callable[[], Mapping[str, Item]],
        live: LiveScores,
        data_dir: Path | None,
        clock: Clock,
    ) -> None:
        self._storage = storage
        self._compiled = compiled
        self._catalog = catalog
        self.live = live
        self.data_dir = data_dir
        self._clock = clock
        self._lock = threading.Lock()
        self._pointer: str | None = None

    def store(self) -> ScoreArtifactStore:
        if self.data_dir is None:
            raise NotFound(
                "This engine has no data directory to keep score models in; open it with "
                "Engine.open(data_dir) or `loopwise serve --data-dir`.",
                field="data_dir",
            )
        return ScoreArtifactStore(self.data_dir, self._compiled().workspace.scores.keep_versions)

    # -- examples -------------------------------------------------------------------------------
    def examples(self, sample_rate: float | None = None) -> Examples:
        """Point-in-time examples of the whole log (see examples.py)."""
        compiled = self._compiled()
        plain = CompiledWorkspace(compiled.workspace, compiled.strategies, compiled.clusters)
        return build_examples(
            self._storage.events.iter,
            plain,
            self._catalog(),
            compiled.workspace.scores,
            sample_rate=sample_rate,
        )

    # -- training -------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """Train every score, store the version, serve it; its metadata (with the report)."""
        store = self.store()
        if not self._lock.acquire(blocking=False):
            raise Conflict(
                "A score training is already running; try again after it.", field="scores"
            )
        try:
            started = self._clock()
            examples = self.examples()
            from loopwise.scores.training import train  # LightGBM: only when training

            trained = train(examples, self._compiled().workspace.scores)
            version, metadata = store.save(
                trained.to_json(), trained.metadata, trained.plots, started
            )
            self.install(ScoreModel(trained.to_json(), version.name))
            self._pointer = version.name
            return {**metadata, "path": str(version.path)}
        finally:
            self._lock.release()

    def install(self, model: ScoreModel | None) -> None:
        self.live.install(model)

    def load_current(self) -> str | None:
        """Serve the stored current version, if any (an unreadable one is logged, skipped)."""
        if self.data_dir is None:
            return None
        store = self.store()
        version = store.current()
        self._pointer = store.pointer()
        if version is None:
            return None
        try:
            model = ScoreModel(version.document(), version.name)
        except Exception as exc:  # an unreadable artifact must not stop the engine
            log.warning("score model %s could not be loaded: %s", version.name, exc)
            return None
        self.install(model)
        return version.name

    def refresh(self, _revisions: object = None) -> bool:
        """Serve the version another process made current (the change watcher calls this)."""
        if self.data_dir is None:
            return False
        pointer = ScoreArtifactStore(self.data_dir).pointer()
        if pointer == self._pointer:
            return False
        self.load_current()
        return True

    def versions(self) -> dict[str, Any]:
        listing = self.store().listing() if self.data_dir is not None else {"versions": []}
        listing["serving"] = self.live.version
        return listing

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(
        self, version_name: str | None = None, output: Path | None = None
    ) -> dict[str, Any]:
        """Measure a stored version (default: the current one) on the log as it is now: the
        latest ``test_share`` of the moments (all moments after the version's training data,
        when there are enough of those). Writes the report and calibration plots to ``output``
        (default: ``<version>/evaluation-<time>/``)."""
        # scikit-learn, matplotlib and LightGBM only when evaluating (not at serve start-up)
        from loopwise.scores import evaluation
        from loopwise.scores.training import time_slices

        store = self.store()
        version = store.get(version_name) if version_name else store.current()
        if version is None:
            raise NotFound(
                "No score model is trained yet; run `loopwise train-scores`.", field="version"
            )
        model = ScoreModel(version.document(), version.name)
        settings = self._compiled().workspace.scores
        examples = self.examples()
        x = model.spec.matrix(examples.attributes)
        times = examples.times()
        trained_until = _trained_until(version)
        report: dict[str, Any] = {}
        plots: dict[str, bytes] = {}
        probabilities = model.predict_many(x) if len(x) else np.zeros((0, len(model.keys)))
        for j, key in enumerate(model.keys):
            labels = examples.labels.get(key)
            if labels is None:
                report[key] = {"skipped": "the workspace no longer defines this score"}
                continue
            known = np.flatnonzero(~np.isnan(labels))
            later = known[times[known] > trained_until] if trained_until is not None else known[:0]
            if len(later) >= settings.min_examples // 4 and 0 < labels[later].sum() < len(later):
                rows, which = later, "moments after the version's training data"
            else:
                _, _, test = time_slices(times[known], settings)
                rows, which = known[test], "the latest time slice"
            y = labels[rows]
            if not len(rows) or y.min() == y.max():
                report[key] = {"skipped": f"{len(rows)} moments with one outcome: nothing to rank"}
                continue
            result = evaluation.report(
                probabilities[rows, j], y, [examples.segments[i] for i in rows]
            )
            result["measured_on"] = which
            definition = model.definitions[j]
            result["label"] = definition.label_text()
            report[key] = result
            plots[f"calibration-{key}.png"] = evaluation.plot(
                f"{key}: {definition.label_text()} ({which})", result
            )
        now = self._clock()
        target = output or version.path / f"evaluation-{now.strftime('%Y%m%dT%H%M%SZ')}"
        target.mkdir(parents=True, exist_ok=True)
        document = {
            "version": version.name,
            "evaluated_at": isoformat(now),
            "events": examples.events,
            "moments": len(examples),
            "report": report,
            "plots": [str(target / name) for name in plots],
        }
        (target / "report.json").write_text(json.dumps(document, indent=2) + "\n", "utf-8")
        for name, png in plots.items():
            (target / name).write_bytes(png)
        return {**document, "path": str(target)}


def _trained_until(version: Version) -> float | None:
    try:
        last = version.metadata().get("data_window", {}).get("last_event")
    except (OSError, ValueError):
        return None
    parsed = parse_timestamp(last) if last else None
    return parsed.timestamp() if parsed is not None else None
