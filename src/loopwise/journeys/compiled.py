"""A journey compiled once per workspace change: conditions as callables, durations in seconds,
step ids resolved to indexes. The state machine runs this, never the authoring model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loopwise.experiments.settings import ArmConfig, ExperimentConfig, MetricConfig
from loopwise.journeys.spec import END, JourneyConfig, QuietHours, Step, parse_duration
from loopwise.segments.conditions import compile_condition

Condition = Callable[[Mapping[str, Any]], bool]
HOLDOUT_ARM = "holdout"
JOURNEY_ARM = "journey"
REPURCHASE = "repurchase"  # wait: repurchase — the typical repurchase interval of what was bought


@dataclass(frozen=True, slots=True)
class CompiledStep:
    id: str
    kind: str  # wait | wait_until | branch | action
    step: Step
    seconds: float | None = None  # wait, wait_until (at most); None for wait: repurchase
    event: str | None = None  # wait_until
    condition: Condition | None = None  # branch
    then: int | None = None  # branch: index to go to (len(steps): end)
    otherwise: int | None = None
    timeout: int | None = None  # wait_until: index after a timeout


def _always(_: Mapping[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class CompiledJourney:
    config: JourneyConfig
    steps: tuple[CompiledStep, ...]
    entry: Condition
    exit_events: frozenset[str]
    exit_conditions: tuple[Condition, ...]
    inactive_seconds: float | None
    reentry_seconds: float | None
    cap_window_seconds: float
    experiment: ExperimentConfig | None = None
    index: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.config.key

    @property
    def quiet(self) -> QuietHours | None:
        return self.config.quiet_hours

    @property
    def running(self) -> bool:
        return self.config.status == "running"


def compile_journey(config: JourneyConfig) -> CompiledJourney:
    ids = config.step_ids
    index = {sid: i for i, sid in enumerate(ids)}
    end = len(ids)

    def target(name: str | None, default: int) -> int:
        if name is None:
            return default
        return end if name == END else index[name]

    steps = []
    for i, (sid, step) in enumerate(zip(ids, config.steps, strict=True)):
        if step.wait is not None:
            seconds = None if step.wait == REPURCHASE else parse_duration(step.wait)
            steps.append(CompiledStep(sid, "wait", step, seconds=seconds))
        elif step.wait_until is not None:
            until = step.wait_until
            steps.append(
                CompiledStep(
                    sid, "wait_until", step, seconds=parse_duration(until.at_most),
                    event=until.event, timeout=target(until.timeout_goto, i + 1),
                )
            )  # fmt: skip
        elif step.branch is not None:
            steps.append(
                CompiledStep(
                    sid, "branch", step, condition=compile_condition(step.branch.when),
                    then=target(step.branch.then, i + 1),
                    otherwise=target(step.branch.otherwise, i + 1),
                )
            )  # fmt: skip
        else:
            steps.append(CompiledStep(sid, "action", step))
    trigger = config.trigger
    return CompiledJourney(
        config=config,
        steps=tuple(steps),
        entry=compile_condition(config.entry) if config.entry else _always,
        exit_events=frozenset(e.event for e in config.exit if e.event),
        exit_conditions=tuple(compile_condition(e.condition) for e in config.exit if e.condition),
        inactive_seconds=(
            parse_duration(trigger.inactive_for) if trigger.inactive_for is not None else None
        ),
        reentry_seconds=(
            parse_duration(config.reentry.after) if config.reentry.after is not None else None
        ),
        cap_window_seconds=parse_duration(config.caps.per_journey_within),
        experiment=holdout_experiment(config),
        index=index,
    )


def holdout_experiment(config: JourneyConfig) -> ExperimentConfig | None:
    """The journey's holdout as an experiment of the experiments engine: arm ``holdout`` (the
    control, gets nothing) against ``journey``; the metric is conversion on the journey's
    conversion event, so its report gives the journey's lift per segment."""
    if config.holdout_percent <= 0:
        return None
    share = config.holdout_percent / 100
    return ExperimentConfig.model_construct(
        key=config.experiment_key,
        slot=f"journey:{config.key}",
        status="running" if config.status == "running" else "stopped",
        description=f"Journey {config.key}: holdout (no sends) vs the journey",
        arms=[
            ArmConfig(key=HOLDOUT_ARM, strategy="popular", weight=share),
            ArmConfig(key=JOURNEY_ARM, strategy="popular", weight=1 - share),
        ],
        control=HOLDOUT_ARM,
        coverage=1.0,
        hash_version=2,
        seed=config.experiment_key,
        namespace=None,
        targeting={},
        force={},
        start=None,
        end=None,
        metrics=[
            MetricConfig(key="converted", kind="conversion", event=config.conversion_event),
            MetricConfig(key="revenue", kind="revenue", event=config.conversion_event),
        ],
    )


def journey_experiments(journeys: list[JourneyConfig]) -> list[ExperimentConfig]:
    found = (holdout_experiment(j) for j in journeys)
    return [e for e in found if e is not None]
