"""Calibration: raw tree scores to probabilities, fit on a later, held-out time slice.

Isotonic regression (scikit-learn's ``IsotonicRegression``) or Platt scaling (a logistic
regression on the raw score). A fitted calibrator is kept as plain numbers — isotonic as its
breakpoints, applied with ``np.interp`` (what scikit-learn's ``predict`` computes, clipped to
the fitted range), Platt as a slope and an intercept — so serving needs no scikit-learn object.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Method = Literal["isotonic", "platt"]
ISOTONIC_MIN_ROWS = 1000
ISOTONIC_MIN_CLASS = 50


@dataclass(frozen=True)
class Calibrator:
    method: Method
    x: tuple[float, ...] = ()  # isotonic breakpoints (raw scores)
    y: tuple[float, ...] = ()  # isotonic probabilities at them
    slope: float = 1.0  # platt: sigmoid(slope * raw + intercept)
    intercept: float = 0.0

    def apply(self, raw: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        return 1.0 / (1.0 + np.exp(-(self.slope * raw + self.intercept)))

    def one(self, raw: float) -> float:
        """:meth:`apply` for one score, in plain Python (the serving path)."""
        if self.method == "platt":
            return 1.0 / (1.0 + math.exp(-(self.slope * raw + self.intercept)))
        xs, ys = self.x, self.y
        i = bisect.bisect_right(xs, raw)
        if i == 0:
            return ys[0]
        if i >= len(xs):
            return ys[-1]
        x0, x1 = xs[i - 1], xs[i]
        if x1 == x0:
            return ys[i]
        return ys[i - 1] + (ys[i] - ys[i - 1]) * (raw - x0) / (x1 - x0)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "x": list(self.x),
            "y": list(self.y),
            "slope": self.slope,
            "intercept": self.intercept,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibrator:
        method = data.get("method")
        if method not in ("isotonic", "platt"):
            raise ValueError(f"unknown calibration method {method!r}")
        return cls(
            method,
            tuple(float(v) for v in data.get("x", [])),
            tuple(float(v) for v in data.get("y", [])),
            float(data.get("slope", 1.0)),
            float(data.get("intercept", 0.0)),
        )


def choose(requested: str, labels: np.ndarray) -> Method:
    """``auto``: isotonic when the slice is large enough for a monotone step function to be
    stable, else Platt's two parameters."""
    if requested in ("isotonic", "platt"):
        return requested  # type: ignore[return-value]
    positives = int(labels.sum())
    negatives = len(labels) - positives
    enough = len(labels) >= ISOTONIC_MIN_ROWS and min(positives, negatives) >= ISOTONIC_MIN_CLASS
    return "isotonic" if enough else "platt"


def fit(raw: np.ndarray, labels: np.ndarray, method: Method) -> Calibrator:
    from sklearn.isotonic import IsotonicRegression  # training only: serving needs numpy
    from sklearn.linear_model import LogisticRegression

    if method == "isotonic":
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        model.fit(raw, labels)
        return Calibrator(
            "isotonic",
            tuple(float(v) for v in model.X_thresholds_),
            tuple(float(v) for v in model.y_thresholds_),
        )
    logistic = LogisticRegression(C=1e6, max_iter=1000)
    logistic.fit(raw.reshape(-1, 1), labels.astype(int))
    return Calibrator(
        "platt", slope=float(logistic.coef_[0][0]), intercept=float(logistic.intercept_[0])
    )
