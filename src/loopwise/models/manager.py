"""Model lifecycle inside a running engine: train, store, hot-swap, roll back, retrain on a timer.

The manager owns the artifact store of a data directory and registers the current version's
strategies in the engine's :class:`~loopwise.decide.strategies.StrategyRegistry` under stable
names (``hybrid``, ``als``, ...). A swap builds every new strategy first and then registers them
one by one; each strategy holds its whole version, so a decision never mixes two versions within
one strategy. Model names a version lacks get the "not trained yet" stand-in back.

One training at a time: a second request while one runs gets :class:`~loopwise.errors.Conflict`.
Training reads the event log (``interactions``, a callable the engine passes), fits in the
calling thread (or a background thread with ``wait=False``), then saves and swaps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from loopwise.catalog.items import Item
from loopwise.clock import Clock, isoformat
from loopwise.config import TrainingSettings
from loopwise.decide.strategies import StrategyRegistry
from loopwise.errors import Conflict, LoopwiseError, NotFound
from loopwise.models.artifacts import CURRENT, ArtifactStore
from loopwise.models.interactions import Interaction
from loopwise.models.serving import (
    MODEL_STRATEGIES,
    ModelBundle,
    UntrainedModelStrategy,
    strategies_for,
)
from loopwise.models.training import NotEnoughData, Progress, model_names, train

log = logging.getLogger(__name__)


class ModelManager:
    """See the module docstring. ``data_dir`` None keeps no artifacts: training then raises
    NotFound (an engine without a data directory serves untrained stand-ins only)."""

    def __init__(self, strategies: StrategyRegistry, data_dir: Path | None, clock: Clock) -> None:
        self.strategies = strategies
        self.data_dir = data_dir
        self.clock = clock
        self.bundle: ModelBundle | None = None
        self._lock = threading.Lock()  # held while a training runs
        self._swap_lock = threading.Lock()
        self._status: dict[str, Any] = {"running": False}
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        for name in MODEL_STRATEGIES:
            if name not in strategies:
                strategies.register(UntrainedModelStrategy(name))

    def store(self, keep: int) -> ArtifactStore:
        if self.data_dir is None:
            raise NotFound(
                "This engine has no data directory to keep model versions in; open it with "
                "Engine.open(data_dir) or `loopwise serve --data-dir`.",
                field="data_dir",
            )
        return ArtifactStore(self.data_dir, keep)

    # -- serving -------------------------------------------------------------------------------
    def install(self, bundle: ModelBundle | None) -> None:
        """Hot-swap the served models (None: back to the untrained stand-ins)."""
        with self._swap_lock:
            fresh = strategies_for(bundle) if bundle is not None else []
            served = {strategy.name for strategy in fresh}
            for strategy in fresh:
                self.strategies.register(strategy)
            for name in MODEL_STRATEGIES:
                if name not in served:
                    self.strategies.register(UntrainedModelStrategy(name))
            self.bundle = bundle

    def load_current(self, keep: int = 5) -> str | None:
        """Serve the stored current version, if any; returns its name. A version that cannot be
        loaded (e.g. pickled by incompatible library versions) is logged and skipped."""
        if self.data_dir is None:
            return None
        store = ArtifactStore(self.data_dir, keep)
        version = store.current()
        if version is None:
            if (store.root / CURRENT).is_file():
                log.warning(
                    "the current model version is missing or incomplete in %s; serving "
                    "untrained stand-ins until a training or rollback",
                    store.root,
                )
            return None
        try:
            # a pickle of other library versions may load and still lack what serving reads
            bundle = ModelBundle(store.load(version), version.name)
        except Exception as exc:  # an unreadable artifact must not stop the engine
            log.warning("model version %s could not be loaded: %s", version.name, exc)
            return None
        self.install(bundle)
        return version.name

    # -- training ------------------------------------------------------------------------------
    def train(
        self,
        interactions: Callable[[], list[Interaction]],
        items: Mapping[str, Item],
        settings: TrainingSettings,
        *,
        wait: bool = True,
        progress: Progress | None = None,
        segments_of: Callable[[str], Collection[str]] | None = None,
    ) -> dict[str, Any]:
        """Train, store and serve a new version. ``segments_of`` (a profile's segments now)
        breaks the holdout metrics down per segment. ``wait=True`` returns the new version's
        metadata; ``wait=False`` checks the data, starts a background thread and returns
        ``{"status": "running", ...}`` (follow it with :meth:`status`). Conflict if a training
        is running; NotEnoughData (409) below ``settings.min_interactions``."""
        store = self.store(settings.keep_versions)
        if not self._lock.acquire(blocking=False):
            raise Conflict(
                "A training is already running; wait for it (GET /v1/admin/models shows its "
                "status) and try again.",
                field="training",
            )
        try:
            data = interactions()
            if len(data) < settings.min_interactions:
                train(data, items, settings)  # raises NotEnoughData with the message
            model_names(settings, items)  # an impossible configuration: refused now, not later
            self._status = {"running": True, "started_at": isoformat(self.clock())}
        except BaseException:
            self._lock.release()
            raise
        if wait:
            return self._run(store, data, items, settings, progress, segments_of)
        thread = threading.Thread(
            target=self._run_logged,
            args=(store, data, items, settings, progress, segments_of),
            name="loopwise-train",
            daemon=True,
        )
        thread.start()
        return dict(self._status, status="running")

    def _run(
        self,
        store: ArtifactStore,
        data: list[Interaction],
        items: Mapping[str, Item],
        settings: TrainingSettings,
        progress: Progress | None = None,
        segments_of: Callable[[str], Collection[str]] | None = None,
    ) -> dict[str, Any]:
        """Runs with ``self._lock`` held; releases it."""
        try:
            started: datetime = self.clock()
            trained = train(data, items, settings, progress=progress, segments_of=segments_of)
            version = store.save(trained, started)
            self.install(ModelBundle(trained, version.name))
            self._status = {
                "running": False,
                "last_version": version.name,
                "finished_at": isoformat(self.clock()),
            }
            return trained.metadata
        except BaseException as exc:
            detail = exc.detail if isinstance(exc, LoopwiseError) else type(exc).__name__
            self._status = {"running": False, "last_error": detail}
            raise
        finally:
            self._lock.release()

    def _run_logged(
        self,
        store: ArtifactStore,
        data: list[Interaction],
        items: Mapping[str, Item],
        settings: TrainingSettings,
        progress: Progress | None = None,
        segments_of: Callable[[str], Collection[str]] | None = None,
    ) -> None:
        try:
            self._run(store, data, items, settings, progress, segments_of)
        except Exception:
            log.exception("background training failed")

    def status(self) -> dict[str, Any]:
        return dict(self._status)

    def versions(self, keep: int = 5) -> dict[str, Any]:
        listing: dict[str, Any] = (
            self.store(keep).listing() if self.data_dir is not None else {"versions": []}
        )
        listing["current"] = self.bundle.version if self.bundle is not None else None
        listing["serving"] = sorted(
            name
            for name in MODEL_STRATEGIES
            if not isinstance(self.strategies.get(name), UntrainedModelStrategy)
        )
        listing["training"] = self.status()
        return listing

    def rollback(self, keep: int = 5, to: str | None = None) -> dict[str, Any]:
        """Serve the version before the current one (or version ``to``) and point ``current``
        at it. Conflict while a training runs or when there is nothing older."""
        store = self.store(keep)
        if not self._lock.acquire(blocking=False):
            raise Conflict("A training is running; roll back after it finished.", field="training")
        try:
            version = store.get(to) if to else store.previous()
            trained = store.loadable(version)
            try:
                bundle = ModelBundle(trained, version.name)
            except Exception as exc:  # e.g. a pickle of other library versions
                raise Conflict(
                    f"Model version {version.name} cannot be served ({type(exc).__name__}); "
                    "choose another version or train a new one.",
                    field="version",
                ) from exc
            store.set_current(version.name)  # only once the version is known to serve
            self.install(bundle)
            return {"current": version.name, "metadata": trained.metadata}
        finally:
            self._lock.release()

    # -- periodic retraining -------------------------------------------------------------------
    def start_periodic(
        self,
        minutes: float,
        interactions: Callable[[], list[Interaction]],
        items: Callable[[], Mapping[str, Item]],
        settings: Callable[[], TrainingSettings],
    ) -> bool:
        """Retrain every ``minutes`` in a daemon thread until :meth:`stop`. Too little data or
        a running training skips a round (logged). Returns whether a thread was started."""
        if minutes <= 0 or self.data_dir is None or self._timer is not None:
            return False

        def loop() -> None:
            while not self._stop.wait(minutes * 60.0):
                began = time.perf_counter()
                try:
                    self.train(interactions, items(), settings())
                    log.info("periodic retraining took %.1f s", time.perf_counter() - began)
                except (NotEnoughData, Conflict) as exc:
                    log.info("periodic retraining skipped: %s", exc.detail)
                except Exception:
                    log.exception("periodic retraining failed")

        self._timer = threading.Thread(target=loop, name="loopwise-retrain", daemon=True)
        self._timer.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.join(timeout=5.0)
