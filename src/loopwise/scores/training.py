"""Training: gradient-boosted trees (LightGBM) per score on the oldest time slice, calibrated on
the next slice, measured on the latest.

Examples are ordered by their moment ``t`` and cut into three slices by time: train (the oldest
``1 - calibration_share - test_share``), calibration, test. The trees never see the later
slices; the calibrator never sees the test slice, so the report measures what serving will do
on moments it has not seen. Pure apart from LightGBM's and scikit-learn's own work: examples in,
a :class:`TrainedScores` out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import lightgbm
import numpy as np

from loopwise.clock import isoformat
from loopwise.errors import Conflict
from loopwise.scores import calibration, evaluation
from loopwise.scores.examples import Examples
from loopwise.scores.features import FeatureSpec, fit_spec
from loopwise.scores.spec import ScoreDefinition, ScoreSettings


class NotEnoughExamples(Conflict):
    """No score could be trained (409): too little history in the log."""


@dataclass
class TrainedScore:
    definition: ScoreDefinition
    model: str  # LightGBM's model text
    calibrator: calibration.Calibrator
    report: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "definition": self.definition.model_dump(mode="json"),
            "model": self.model,
            "calibrator": self.calibrator.to_json(),
        }


@dataclass
class TrainedScores:
    spec: FeatureSpec
    scores: list[TrainedScore]
    metadata: dict[str, Any] = field(default_factory=dict)
    plots: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "features": self.spec.to_json(),
            "scores": [s.to_json() for s in self.scores],
        }


def params(settings: ScoreSettings) -> dict[str, Any]:
    return {
        "objective": "binary",
        "learning_rate": settings.learning_rate,
        "num_leaves": min(settings.num_leaves, 2**settings.max_depth),
        "max_depth": settings.max_depth,
        "min_data_in_leaf": settings.min_child_samples,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "seed": settings.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbose": -1,
    }


def time_slices(
    times: np.ndarray, settings: ScoreSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indexes (into ``times``) of the train, calibration and test slices, cut by time."""
    order = np.argsort(times, kind="stable")
    n = len(order)
    test_from = round(n * (1.0 - settings.test_share))
    cal_from = round(n * (1.0 - settings.test_share - settings.calibration_share))
    return order[:cal_from], order[cal_from:test_from], order[test_from:]


def _problem(name: str, y: np.ndarray, minimum: int) -> str | None:
    if len(y) < minimum:
        return f"{len(y)} moments in the {name} slice (at least {minimum} needed)"
    if y.min() == y.max():
        return f"every moment in the {name} slice has the same outcome"
    return None


def train_one(
    definition: ScoreDefinition,
    x: np.ndarray,
    y: np.ndarray,
    times: np.ndarray,
    segments: list[tuple[str, ...]],
    settings: ScoreSettings,
    names: Sequence[str] = (),
) -> TrainedScore | str:
    """One score's model, calibrator and test report, or why it cannot be trained."""
    train, cal, test = time_slices(times, settings)
    minimum = max(settings.min_examples, 10)
    for name, rows, need in (
        ("training", train, minimum),
        ("calibration", cal, max(minimum // 4, 10)),
        ("test", test, max(minimum // 4, 10)),
    ):
        problem = _problem(name, y[rows], need)
        if problem is not None:
            return problem
    booster = lightgbm.train(
        params(settings),
        lightgbm.Dataset(x[train], y[train], free_raw_data=True),
        num_boost_round=settings.trees,
    )
    method = calibration.choose(settings.calibration, y[cal])
    raw_cal = np.asarray(booster.predict(x[cal], raw_score=True), dtype=np.float64)
    calibrator = calibration.fit(raw_cal, y[cal], method)
    raw_test = np.asarray(booster.predict(x[test], raw_score=True), dtype=np.float64)
    p_test = calibrator.apply(raw_test)
    result = evaluation.report(
        p_test,
        y[test],
        [segments[i] for i in test],
        uncalibrated=1.0 / (1.0 + np.exp(-raw_test)),
    )
    result.update(
        {
            "label": definition.label_text(),
            "calibration_method": method,
            "slices": {
                "train": _window(times[train]),
                "calibration": _window(times[cal]),
                "test": _window(times[test]),
            },
            "importance": _importance(booster, names),
        }
    )
    return TrainedScore(definition, booster.model_to_string(), calibrator, result)


def _window(times: np.ndarray) -> dict[str, Any]:
    if not len(times):
        return {"n": 0}
    return {
        "n": len(times),
        "from": isoformat(datetime.fromtimestamp(float(times.min()), UTC)),
        "to": isoformat(datetime.fromtimestamp(float(times.max()), UTC)),
    }


def _importance(booster: lightgbm.Booster, names: Sequence[str]) -> list[dict[str, Any]]:
    gains = booster.feature_importance(importance_type="gain")
    total = float(gains.sum()) or 1.0
    names = list(names) or booster.feature_name()
    ranked = sorted(zip(names, gains, strict=True), key=lambda kv: -kv[1])[:10]
    return [{"feature": n, "share": round(float(g) / total, 4)} for n, g in ranked if g > 0]


def train(examples: Examples, settings: ScoreSettings) -> TrainedScores:
    """Every score the examples can support; NotEnoughExamples when none can be trained."""
    began = time.perf_counter()
    spec = fit_spec(examples.attributes)
    x = spec.matrix(examples.attributes)
    times = examples.times()
    trained: list[TrainedScore] = []
    skipped: dict[str, str] = {}
    for definition in settings.definitions:
        labels = examples.labels.get(definition.key)
        if labels is None:
            skipped[definition.key] = "no labels"
            continue
        known = np.flatnonzero(~np.isnan(labels))
        outcome = train_one(
            definition,
            x[known],
            labels[known],
            times[known],
            [examples.segments[i] for i in known],
            settings,
            spec.names,
        )
        if isinstance(outcome, str):
            skipped[definition.key] = outcome
        else:
            trained.append(outcome)
    if not trained:
        detail = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no scores are defined"
        raise NotEnoughExamples(
            f"No score could be trained from {len(examples)} moments of {examples.people} "
            f"people ({detail}). Collect more history (each score needs moments whose whole "
            "horizon lies inside the log) or lower scores.min_examples.",
            field="scores",
        )
    metadata = {
        "scores": [s.definition.key for s in trained],
        "skipped": skipped,
        "data_window": {
            "events": examples.events,
            "people": examples.people,
            "moments": len(examples),
            "first_event": isoformat(examples.first_event) if examples.first_event else None,
            "last_event": isoformat(examples.log_end) if examples.log_end else None,
        },
        "features": list(spec.names),
        "parameters": {
            **{k: v for k, v in params(settings).items() if k not in ("verbose", "num_threads")},
            "trees": settings.trees,
        },
        "report": {s.definition.key: s.report for s in trained},
        "training_seconds": round(time.perf_counter() - began, 3),
        "libraries": {"lightgbm": lightgbm.__version__},
    }
    plots = {
        f"calibration-{s.definition.key}.png": evaluation.plot(
            f"{s.definition.key}: {s.definition.label_text()} (test slice)", s.report
        )
        for s in trained
    }
    return TrainedScores(spec, trained, metadata, plots)
