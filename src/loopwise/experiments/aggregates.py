"""Experiment results kept current: per experiment, arm and metric (overall and per segment at
exposure) the sufficient statistics (``Moments``), updated as exposures and their totals change.

An exposure carries its person's metric-event totals (since exposure, and the pre-exposure window
for CUPED), which the projector keeps current; the statistics here change by the difference of
one person's values, so a results request costs the same at 50,000 exposed people as at 50.
Built from the exposure store on first use (and again when the experiment's definition changes;
in a multi-worker deployment also after ``max_age_seconds``, since other workers change it too).
Locking: one lock around every summary.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterable
from datetime import date

from loopwise.experiments.results import Moments, Summary, UserOutcome
from loopwise.experiments.settings import ExperimentConfig, MetricConfig
from loopwise.storage.records import Exposure
from loopwise.storage.stores import ExposureStoreReader


def _metric_value(metric: MetricConfig, totals: dict[str, tuple[float, float]]) -> float:
    count, revenue = totals.get(metric.event or "", (0.0, 0.0))
    if metric.kind == "revenue":
        return revenue
    if metric.kind == "conversion":
        return float(count > 0)
    return count


def exposure_outcome(experiment: ExperimentConfig, exposure: Exposure) -> UserOutcome:
    """One exposed person's ``metric -> (y, x)``: y since exposure, x before it (ratios:
    numerator and denominator since exposure)."""
    values: dict[str, tuple[float, float]] = {}
    for metric in experiment.metrics:
        if metric.kind != "ratio":
            values[metric.key] = (
                _metric_value(metric, exposure.after),
                _metric_value(metric, exposure.before),
            )
    for metric in experiment.metrics:
        if metric.kind == "ratio" and metric.numerator and metric.denominator:
            values[metric.key] = (values[metric.numerator][0], values[metric.denominator][0])
    return UserOutcome(exposure.arm, frozenset(exposure.segments), values)


class _Live:
    """One experiment's summary and the definition it was built for."""

    def __init__(self, experiment: ExperimentConfig) -> None:
        self.definition = experiment.model_dump_json()
        self.experiment = experiment
        self.built_at = time.monotonic()
        self.summary = Summary(
            users={arm.key: 0 for arm in experiment.arms},
            moments={
                a.key: {m.key: Moments() for m in experiment.metrics} for a in experiment.arms
            },
        )
        self.segment_users: dict[str, dict[str, int]] = {}
        # the same statistics per day of first exposure (overall only): results over time
        self.by_day: dict[date, Summary] = {}

    def _day(self, day: date) -> Summary:
        found = self.by_day.get(day)
        if found is None:
            experiment = self.experiment
            found = Summary(
                users={arm.key: 0 for arm in experiment.arms},
                moments={
                    a.key: {m.key: Moments() for m in experiment.metrics} for a in experiment.arms
                },
            )
            self.by_day[day] = found
        return found

    def apply(self, exposure: Exposure, sign: int) -> None:
        outcome = exposure_outcome(self.experiment, exposure)
        summary = self.summary
        if outcome.arm not in summary.users:  # an arm removed from the workspace since
            return
        summary.users[outcome.arm] += sign
        daily = self._day(exposure.exposed_at.date())
        daily.users[outcome.arm] += sign
        for segment in outcome.segments:
            counts = self.segment_users.setdefault(segment, {})
            counts[outcome.arm] = counts.get(outcome.arm, 0) + sign
        for metric in self.experiment.metrics:
            y, x = outcome.values.get(metric.key, (0.0, 0.0))
            _update(summary.moments[outcome.arm][metric.key], y, x, sign)
            _update(daily.moments[outcome.arm][metric.key], y, x, sign)
            for segment in outcome.segments:
                arms = summary.by_segment.setdefault(segment, {})
                _update(
                    arms.setdefault(outcome.arm, {}).setdefault(metric.key, Moments()), y, x, sign
                )


def _update(moments: Moments, y: float, x: float, sign: int) -> None:
    moments.n += sign
    moments.sum_y += sign * y
    moments.sum_y2 += sign * y * y
    moments.sum_x += sign * x
    moments.sum_x2 += sign * x * x
    moments.sum_xy += sign * x * y
    moments.positive += sign * (y > 0)


def _add(into: Moments, other: Moments) -> None:
    into.n += other.n
    into.sum_y += other.sum_y
    into.sum_y2 += other.sum_y2
    into.sum_x += other.sum_x
    into.sum_x2 += other.sum_x2
    into.sum_xy += other.sum_xy
    into.positive += other.positive


class ExperimentAggregates:
    def __init__(self, store: ExposureStoreReader, max_age_seconds: float | None = None) -> None:
        self._store = store
        self._max_age = max_age_seconds
        self._live: dict[str, _Live] = {}
        self._lock = threading.Lock()

    def _current(self, experiment: ExperimentConfig) -> _Live:
        live = self._live.get(experiment.key)
        stale = live is None or live.definition != experiment.model_dump_json()
        if not stale and self._max_age is not None and live is not None:
            stale = time.monotonic() - live.built_at > self._max_age
        if stale:
            live = _Live(experiment)
            for exposure in self._store.iter(experiment.key):
                live.apply(exposure, +1)
            self._live[experiment.key] = live
        assert live is not None
        return live

    def summary(self, experiment: ExperimentConfig, segment: str | None = None) -> Summary:
        """A copy of the experiment's statistics (only those in ``segment`` at exposure)."""
        with self._lock:
            live = self._current(experiment)
            if segment is None:
                return copy.deepcopy(live.summary)
            users = {arm.key: 0 for arm in experiment.arms}
            users.update(live.segment_users.get(segment, {}))
            moments = {
                arm.key: {m.key: Moments() for m in experiment.metrics} for arm in experiment.arms
            }
            for arm, per_metric in live.summary.by_segment.get(segment, {}).items():
                if arm in moments:
                    moments[arm].update(copy.deepcopy(per_metric))
            return Summary(users=users, moments=moments)

    def cumulative_by_day(self, experiment: ExperimentConfig) -> list[tuple[date, Summary]]:
        """Per day of first exposure (oldest first), the statistics of everyone first exposed
        on or before it: how the result built up as people arrived (each person with their
        totals to date, as GrowthBook's by-exposure-date view)."""
        with self._lock:
            live = self._current(experiment)
            days = sorted(live.by_day)
            running = Summary(
                users={arm.key: 0 for arm in experiment.arms},
                moments={
                    a.key: {m.key: Moments() for m in experiment.metrics} for a in experiment.arms
                },
            )
            out: list[tuple[date, Summary]] = []
            for day in days:
                daily = live.by_day[day]
                for arm, count in daily.users.items():
                    running.users[arm] = running.users.get(arm, 0) + count
                for arm, per_metric in daily.moments.items():
                    for key, moments in per_metric.items():
                        _add(running.moments[arm][key], moments)
                out.append((day, copy.deepcopy(running)))
            return out

    # -- after commit ---------------------------------------------------------------------------
    def changed(self, added: Iterable[Exposure], removed: Iterable[Exposure] = ()) -> None:
        """Exposures that appeared (or took a new state) and that went away (or were replaced):
        a state change is one removal and one addition."""
        with self._lock:
            for exposure in removed:
                live = self._live.get(exposure.experiment)
                if live is not None:
                    live.apply(exposure, -1)
            for exposure in added:
                live = self._live.get(exposure.experiment)
                if live is not None:
                    live.apply(exposure, +1)

    def clear(self) -> None:
        with self._lock:
            self._live.clear()
