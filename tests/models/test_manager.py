"""The model lifecycle inside an engine: stand-ins, no data directory, periodic retraining."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from loopwise.clock import FixedClock
from loopwise.config import TrainingSettings
from loopwise.decide.strategies import StrategyRegistry
from loopwise.errors import NotFound
from loopwise.models.manager import ModelManager
from loopwise.models.serving import MODEL_STRATEGIES, ModelStrategy, UntrainedModelStrategy
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
