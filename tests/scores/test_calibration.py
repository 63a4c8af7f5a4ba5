"""Calibrators kept as numbers predict what scikit-learn's fitted objects predict."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from loopwise.scores import calibration


@pytest.fixture()
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    raw = rng.normal(size=3000)
    labels = (rng.random(3000) < 1 / (1 + np.exp(-(2 * raw - 1)))).astype(float)
    return raw, labels


def test_isotonic_matches_scikit_learn(data: tuple[np.ndarray, np.ndarray]) -> None:
    raw, labels = data
    fitted = calibration.fit(raw, labels, "isotonic")
    reference = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, labels)
    probe = np.concatenate([np.linspace(-5, 5, 401), raw[:50]])
    assert np.allclose(fitted.apply(probe), reference.predict(probe), atol=1e-12)
    assert [fitted.one(float(v)) for v in probe] == pytest.approx(
        list(reference.predict(probe)), abs=1e-12
    )
    again = calibration.Calibrator.from_json(fitted.to_json())
    assert again.one(0.3) == fitted.one(0.3)


def test_platt_matches_a_logistic_regression(data: tuple[np.ndarray, np.ndarray]) -> None:
    raw, labels = data
    fitted = calibration.fit(raw, labels, "platt")
    reference = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), labels)
    probe = np.linspace(-4, 4, 9)
    expected = reference.predict_proba(probe.reshape(-1, 1))[:, 1]
    assert np.allclose(fitted.apply(probe), expected, atol=1e-9)
    assert fitted.one(1.0) == pytest.approx(expected[5], abs=1e-9)
    assert fitted.slope > 0


def test_auto_uses_isotonic_only_with_enough_of_both_outcomes() -> None:
    assert calibration.choose("auto", np.array([0.0, 1.0] * 600)) == "isotonic"
    assert calibration.choose("auto", np.array([0.0, 1.0] * 100)) == "platt"
    assert calibration.choose("auto", np.array([0.0] * 1990 + [1.0] * 10)) == "platt"
    assert calibration.choose("platt", np.array([0.0, 1.0] * 600)) == "platt"


def test_a_damaged_calibrator_is_refused() -> None:
    with pytest.raises(ValueError, match="calibration method"):
        calibration.Calibrator.from_json({"method": "magic"})
