"""The numpy trees equal LightGBM's own raw scores."""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest

from loopwise.scores.forest import Forest


def _booster(x: np.ndarray, y: np.ndarray, rounds: int, depth: int) -> lightgbm.Booster:
    params = {
        "objective": "binary",
        "max_depth": depth,
        "num_leaves": 2**depth,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "num_threads": 1,
        "seed": 0,
    }
    return lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=rounds)


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_forest_equals_lightgbm_raw_scores(depth: int) -> None:
    rng = np.random.default_rng(depth)
    x = rng.normal(size=(600, 7))
    x[:, 3] = rng.integers(0, 4, size=600)  # counts: thresholds between integers
    x[:, 5] = 0.0  # a constant column (never split on)
    y = (x[:, 0] + 0.5 * x[:, 3] + rng.normal(size=600) > 1).astype(float)
    boosters = [_booster(x, y, 25, depth), _booster(x, 1 - y, 10, max(depth - 1, 1))]
    forest = Forest.from_dumps([b.dump_model() for b in boosters])
    expected = np.column_stack([b.predict(x, raw_score=True) for b in boosters])
    for row in range(0, 600, 37):
        assert np.allclose(forest.raw(x[row]), expected[row], rtol=0, atol=1e-9)
    assert np.allclose(forest.raw_many(x), expected, rtol=0, atol=1e-9)


def test_a_tree_without_splits_is_its_leaf() -> None:
    x = np.zeros((50, 2))
    y = np.array([0.0, 1.0] * 25)
    booster = _booster(x, y, 3, 3)  # nothing to split on: single-leaf trees
    forest = Forest.from_dumps([booster.dump_model()])
    assert forest.raw(x[0])[0] == pytest.approx(booster.predict(x[:1], raw_score=True)[0])


def test_values_on_a_threshold_go_left() -> None:
    x = np.array([[0.0], [1.0], [2.0], [3.0]] * 30)
    y = (x[:, 0] >= 2).astype(float)
    booster = _booster(x, y, 5, 2)
    forest = Forest.from_dumps([booster.dump_model()])
    for value in (0.0, 1.0, 1.5, 2.0, 3.0):
        row = np.array([value])
        assert forest.raw(row)[0] == pytest.approx(
            booster.predict(row.reshape(1, -1), raw_score=True)[0], abs=1e-12
        )
