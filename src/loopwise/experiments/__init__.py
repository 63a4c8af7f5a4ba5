"""Experiments: deterministic, GrowthBook-compatible assignment and the statistics to read them.

``assignment`` hashes users into arms (pure, no I/O); ``stats`` turns per-arm sufficient
statistics into lifts, p-values, posteriors, always-valid intervals and SRM checks;
``calculator`` and ``cli`` put them in front of people (``loopwise stats ...``); ``settings`` are
the workspace's ``experiments:``/``holdout:`` sections and ``results`` joins exposures and events
into the report of ``GET /v1/experiments/{key}/results`` and ``loopwise experiments report``.
"""

from __future__ import annotations

from loopwise.experiments.assignment import (
    ArmSpec,
    Assignment,
    ExperimentSpec,
    HoldoutSpec,
    MetricSpec,
    assign,
    in_holdout,
)
from loopwise.experiments.stats import SampleStats

__all__ = [
    "ArmSpec",
    "Assignment",
    "ExperimentSpec",
    "HoldoutSpec",
    "MetricSpec",
    "SampleStats",
    "assign",
    "in_holdout",
]
