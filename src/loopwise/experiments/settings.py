"""The workspace's ``holdout:`` and ``experiments:`` sections (``loopwise.yaml``).

These models are the *authoring* shape (arm keys, a control, a force map of user ids, metrics by
event name); :meth:`ExperimentConfig.spec` turns one into the GrowthBook-compatible
:class:`~loopwise.experiments.assignment.ExperimentSpec` that :func:`assign` hashes with, so the
assignment algorithm lives in one place. References to the rest of the workspace (slot, variants,
strategies) are checked by :class:`loopwise.config.Workspace` and the engine.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopwise.experiments.assignment import (
    KEY_PATTERN,
    ArmSpec,
    ExperimentSpec,
    HoldoutSpec,
    as_utc,
    check_condition,
)

HOLDOUT_KEY = "holdout"
"""Key of the program-level experiment that compares the global holdout with everyone else."""
HOLDOUT_ARM = "holdout"
PERSONALIZED_ARM = "personalized"


class MetricConfig(BaseModel):
    """What counts as success, read from the event log after a user's first exposure.

    conversion: 1 if the user sent ``event`` at least once, else 0; count: how many ``event``s;
    revenue: the summed revenue of ``event`` (``loopwise.events.kinds.order_revenue``); ratio:
    Σ numerator / Σ denominator over users, where both name other (non-ratio) metrics of the
    same experiment (e.g. revenue per product view).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    kind: Literal["conversion", "count", "revenue", "ratio"] = "conversion"
    event: str | None = Field(
        default=None, min_length=1, description='Track event name, e.g. "Order Completed".'
    )
    numerator: str | None = Field(default=None, description="Ratio metrics: a metric key.")
    denominator: str | None = Field(default=None, description="Ratio metrics: a metric key.")
    guardrail: bool = Field(
        default=False, description="Watched for harm; not the metric the verdict is about."
    )
    higher_is_better: bool = Field(
        default=True, description="False for metrics where a rise is harm (refunds, errors)."
    )

    @model_validator(mode="after")
    def _shape(self) -> MetricConfig:
        if self.kind == "ratio":
            if not self.numerator or not self.denominator:
                raise ValueError(
                    f"metric {self.key!r} is a ratio: set numerator and denominator to the keys "
                    "of two other metrics of this experiment (e.g. revenue and views)"
                )
            if self.event is not None:
                raise ValueError(
                    f"metric {self.key!r} is a ratio: remove event (its events come from the "
                    "numerator and denominator metrics)"
                )
        else:
            if not self.event:
                raise ValueError(
                    f"metric {self.key!r} needs event: the track event that counts, e.g. "
                    '"Order Completed"'
                )
            if self.numerator is not None or self.denominator is not None:
                raise ValueError(
                    f"metric {self.key!r} has numerator/denominator but kind {self.kind!r}; "
                    "use kind ratio or remove them"
                )
        return self


class ArmConfig(BaseModel):
    """One arm: list slots give a strategy (and params), block slots a variant id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    name: str = ""
    strategy: str | None = Field(default=None, min_length=1)
    strategy_params: dict[str, Any] = Field(default_factory=dict)
    variant: str | None = Field(default=None, min_length=1)
    weight: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _one_override(self) -> ArmConfig:
        if (self.strategy is None) == (self.variant is None):
            raise ValueError(
                f"arm {self.key!r}: give exactly one of strategy (list slots) or variant "
                "(block slots)"
            )
        if self.strategy_params and self.strategy is None:
            raise ValueError(f"arm {self.key!r}: strategy_params needs a strategy")
        return self


class NamespaceConfig(BaseModel):
    """A slice ``[start, end)`` of a namespace: experiments in disjoint slices share no user."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=100)
    start: float = Field(default=0.0, ge=0, le=1)
    end: float = Field(default=1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> NamespaceConfig:
        if not self.start < self.end:
            raise ValueError("namespace start must be below end, e.g. {start: 0, end: 0.5}")
        return self


class ExperimentConfig(BaseModel):
    """An experiment on one slot: each arm overrides the slot's strategy or variant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    slot: str = Field(min_length=1)
    status: Literal["draft", "running", "stopped"] = "running"
    description: str = ""
    arms: list[ArmConfig] = Field(min_length=2)
    control: str | None = Field(
        default=None, description="Arm key of the control (default: first)."
    )
    coverage: float = Field(default=1.0, ge=0, le=1)
    hash_version: Literal[1, 2] = 2
    seed: str | None = None
    namespace: NamespaceConfig | None = None
    targeting: dict[str, Any] = Field(default_factory=dict)
    force: dict[str, str] = Field(
        default_factory=dict, description="QA: user id / anonymous id / profile id -> arm key."
    )
    start: datetime | None = None
    end: datetime | None = None
    metrics: list[MetricConfig] = Field(default_factory=list)

    @field_validator("targeting")
    @classmethod
    def _targeting_compiles(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_condition(value)

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        if self.key == HOLDOUT_KEY:
            raise ValueError(
                f"experiment key {HOLDOUT_KEY!r} is reserved for the global holdout's results; "
                "choose another key"
            )
        arm_keys = [arm.key for arm in self.arms]
        if len(set(arm_keys)) != len(arm_keys):
            raise ValueError(f"arm keys must be unique within the experiment: {arm_keys}")
        if self.control is not None and self.control not in arm_keys:
            raise ValueError(f"control {self.control!r} is not an arm; use one of {arm_keys}")
        for user, arm in self.force.items():
            if arm not in arm_keys:
                raise ValueError(
                    f"force[{user!r}] names unknown arm {arm!r}; use one of {arm_keys}"
                )
        metric_keys = [metric.key for metric in self.metrics]
        if len(set(metric_keys)) != len(metric_keys):
            raise ValueError(f"metric keys must be unique within the experiment: {metric_keys}")
        plain = {m.key for m in self.metrics if m.kind != "ratio"}
        for metric in self.metrics:
            for ref in (metric.numerator, metric.denominator):
                if ref is not None and ref not in plain:
                    raise ValueError(
                        f"ratio metric {metric.key!r} refers to {ref!r}, which is not a non-ratio "
                        f"metric of this experiment; define it under metrics (known: "
                        f"{sorted(plain)})"
                    )
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        self.spec  # noqa: B018 - builds the assignment spec, which checks the weights
        return self

    @cached_property
    def spec(self) -> ExperimentSpec:
        """The assignment spec (GrowthBook semantics). ``force`` is applied by the engine, which
        knows the user's ids; weights missing on every arm mean an equal split."""
        try:
            return ExperimentSpec(
                key=self.key,
                slot=self.slot,
                arms=[ArmSpec(key=a.key, name=a.name, weight=a.weight) for a in self.arms],
                coverage=self.coverage,
                seed=self.seed,
                hash_version=self.hash_version,
                namespace=(
                    (self.namespace.id, self.namespace.start, self.namespace.end)
                    if self.namespace is not None
                    else None
                ),
                condition=self.targeting,
                active=self.status == "running",
                start=self.start,
                end=self.end,
            )
        except ValueError as exc:  # pydantic's ValidationError: re-raise its message plainly
            errors = getattr(exc, "errors", None)
            message = str(errors()[0]["msg"]) if callable(errors) else str(exc)
            raise ValueError(message.removeprefix("Value error, ")) from None

    @property
    def control_key(self) -> str:
        return self.control if self.control is not None else self.arms[0].key

    @property
    def control_index(self) -> int:
        return [arm.key for arm in self.arms].index(self.control_key)

    @property
    def weights(self) -> list[float]:
        """The configured split (equal when no arm has a weight)."""
        configured = self.spec.arm_weights
        return configured if configured is not None else [1 / len(self.arms)] * len(self.arms)

    def arm(self, key: str) -> ArmConfig | None:
        return next((arm for arm in self.arms if arm.key == key), None)


def default_holdout_metrics() -> list[MetricConfig]:
    return [
        MetricConfig(key="purchase", kind="conversion", event="Order Completed"),
        MetricConfig(key="revenue", kind="revenue", event="Order Completed"),
    ]


class HoldoutConfig(BaseModel):
    """The global holdout: ``percent`` of users never get personalization (nor experiments), so
    the program as a whole is measured against them (experiment ``holdout`` in the results)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    percent: float = Field(default=0.0, ge=0, le=50, description="Share of users held out, 0..50.")
    seed: str | None = Field(default=None, description=f'Hash seed (default "{HOLDOUT_KEY}").')
    metrics: list[MetricConfig] | None = Field(
        default=None,
        description="Metrics of the holdout comparison (default: the experiments' metrics, else "
        "purchase conversion and revenue on Order Completed).",
    )

    @model_validator(mode="after")
    def _ratio_references(self) -> HoldoutConfig:
        plain = {m.key for m in self.metrics or [] if m.kind != "ratio"}
        for metric in self.metrics or []:
            for ref in (metric.numerator, metric.denominator):
                if ref is not None and ref not in plain:
                    raise ValueError(
                        f"ratio metric {metric.key!r} refers to {ref!r}, which is not a non-ratio "
                        "holdout metric"
                    )
        return self

    @property
    def enabled(self) -> bool:
        return self.percent > 0

    @cached_property
    def spec(self) -> HoldoutSpec:
        return HoldoutSpec(key=HOLDOUT_KEY, percent=self.percent / 100, seed=self.seed)

    def experiment(self, experiments: list[ExperimentConfig]) -> ExperimentConfig:
        """The holdout as a two-arm experiment (control ``holdout``) for exposures and results."""
        metrics = self.metrics
        if metrics is None:
            seen: dict[str, MetricConfig] = {}
            for experiment in experiments:
                for metric in experiment.metrics:
                    seen.setdefault(metric.key, metric)
            metrics = list(seen.values()) or default_holdout_metrics()
        share = self.percent / 100
        return ExperimentConfig.model_construct(
            key=HOLDOUT_KEY,
            slot="*",
            status="running" if self.enabled else "stopped",
            description="Global holdout (no personalization) vs everyone else",
            arms=[
                ArmConfig(key=HOLDOUT_ARM, strategy="popular", weight=share),
                ArmConfig(key=PERSONALIZED_ARM, strategy="popular", weight=1 - share),
            ],
            control=HOLDOUT_ARM,
            coverage=1.0,
            hash_version=2,
            seed=self.seed,
            namespace=None,
            targeting={},
            force={},
            start=None,
            end=None,
            metrics=metrics,
        )
