"""The model lifecycle inside an engine: stand-ins, no data directory, periodic retraining."""

from __future__ import annotations

import logging
import pickle
import shutil
import threading
from pathlib import Path

import pytest

from loopwise.clock import FixedClock
from loopwise.config import TrainingSettings
from loopwise.decide.strategies import StrategyRegistry
from loopwise.errors import Conflict, NotFound, ValidationFailed
from loopwise.models.manager import ModelManager
from loopwise.models.serving import MODEL_STRATEGIES, ModelStrategy, UntrainedModelStrategy
from loopwise.models.training import TrainedModels
from tests.models.test_serving import T0
from tests.models.test_training import synthetic


def test_every_model_name_has_a_stand_in_until_trained() -> None:
    registry = StrategyRegistry.default()
    ModelManager(registry, None, FixedClock(T0))
    for name in MODEL_STRATEGIES:
        assert isinstance(registry.get(name), UntrainedModelStrategy)
    assert "popular" in registry  # the built-ins stay


def test_without_a_data_directory_training_says_where_to_keep_models() -> None:
    manager = ModelManager(StrategyRegistry.default(), None, FixedClock(T0))
    with pytest.raises(NotFound, match="data directory"):
        manager.train(synthetic, {}, TrainingSettings(min_interactions=10))
    assert manager.load_current() is None
    assert manager.start_periodic(5, synthetic, dict, TrainingSettings) is False


def test_a_version_without_a_model_puts_its_stand_in_back(tmp_path: Path) -> None:
    registry = StrategyRegistry.default()
    manager = ModelManager(registry, tmp_path, FixedClock(T0))
    full = TrainingSettings(models=["hybrid"], min_interactions=10)
    manager.train(synthetic, {}, full)
    assert isinstance(registry.get("als"), ModelStrategy)
    manager.train(synthetic, {}, TrainingSettings(models=["ease"], min_interactions=10))
    assert isinstance(registry.get("ease"), ModelStrategy)
    assert isinstance(registry.get("als"), UntrainedModelStrategy)
    assert manager.versions()["serving"] == ["ease"]


def test_periodic_retraining_trains_in_the_background_until_stopped(tmp_path: Path) -> None:
    registry = StrategyRegistry.default()
    manager = ModelManager(registry, tmp_path, FixedClock(T0))
    trained = threading.Event()
    calls: list[int] = []

    def interactions():  # type: ignore[no-untyped-def]
        calls.append(1)
        trained.set()
        return synthetic()

    settings = TrainingSettings(models=["ease"], min_interactions=10)
    assert manager.start_periodic(0.001, interactions, dict, lambda: settings) is True
    assert manager.start_periodic(0.001, interactions, dict, lambda: settings) is False  # one
    assert trained.wait(timeout=60)
    manager.stop()
    assert manager._timer is None
    rounds = len(calls)
    assert rounds >= 1
    # stopped: no further rounds start
    threading.Event().wait(0.1)
    assert len(calls) == rounds


def two_versions(tmp_path: Path) -> tuple[ModelManager, list[str]]:
    manager = ModelManager(StrategyRegistry.default(), tmp_path, FixedClock(T0))
    settings = TrainingSettings(models=["ease"], min_interactions=10)
    names = [manager.train(synthetic, {}, settings)["version"] for _ in range(2)]
    return manager, names


def test_rolling_back_to_an_unloadable_version_is_a_conflict_and_changes_nothing(
    tmp_path: Path,
) -> None:
    manager, (first, second) = two_versions(tmp_path)
    store = manager.store(5)
    (store.get(first).path / "models.pkl").write_bytes(b"truncated")
    with pytest.raises(Conflict, match=first):
        manager.rollback()
    with pytest.raises(Conflict, match=first):
        manager.rollback(to=first)
    assert store.current() is not None and store.current().name == second  # type: ignore[union-attr]
    assert manager.bundle is not None and manager.bundle.version == second
    assert not manager._lock.locked()


def old_artifact(trained: TrainedModels) -> bytes:
    """A TrainedModels pickled by a release whose class had fewer fields."""
    old = TrainedModels.__new__(TrainedModels)
    for name in ("item_ids", "item_users", "models"):
        object.__setattr__(old, name, getattr(trained, name))
    return pickle.dumps(old)


def test_an_artifact_of_another_release_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manager, (first, second) = two_versions(tmp_path)
    store = manager.store(5)
    path = store.get(second).path / "models.pkl"
    path.write_bytes(old_artifact(store.load(store.get(second))))
    registry = StrategyRegistry.default()
    reopened = ModelManager(registry, tmp_path, FixedClock(T0))
    with caplog.at_level(logging.WARNING):
        assert reopened.load_current() is None
    assert second in caplog.text
    assert isinstance(registry.get("ease"), UntrainedModelStrategy)
    with pytest.raises(Conflict, match=second):
        reopened.rollback(to=second)
    assert reopened.rollback(to=first)["current"] == first  # a loadable version still serves


def test_a_hand_deleted_current_version_degrades_to_stand_ins_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manager, (_, second) = two_versions(tmp_path)
    shutil.rmtree(manager.store(5).get(second).path)
    registry = StrategyRegistry.default()
    with caplog.at_level(logging.WARNING):
        assert ModelManager(registry, tmp_path, FixedClock(T0)).load_current() is None
    assert "missing" in caplog.text
    assert isinstance(registry.get("ease"), UntrainedModelStrategy)


def test_an_impossible_configuration_is_refused_before_a_background_training_starts(
    tmp_path: Path,
) -> None:
    manager = ModelManager(StrategyRegistry.default(), tmp_path, FixedClock(T0))
    settings = TrainingSettings(models=["content"], min_interactions=10)  # no catalog text
    with pytest.raises(ValidationFailed, match="content model"):
        manager.train(synthetic, {}, settings, wait=False)  # was a 202, then a failed thread
    assert manager.status() == {"running": False}
    assert not manager._lock.locked()
