"""Deterministic assignment of users to experiment arms, bit-for-bit compatible with GrowthBook.

Why GrowthBook's algorithm: a site that already runs GrowthBook's SDKs (or moves between the two)
gets the same arm for the same user, and the algorithm's properties are well understood:

* ``fnv1a32`` — FNV-1a, 32 bits, over the string's UTF-16 code units (what JavaScript's
  ``charCodeAt`` returns), offset basis 2166136261, prime 16777619, modulo 2^32.
* ``hash(seed, value, version)`` — version 1: ``fnv(value + seed) % 1000 / 1000``; version 2:
  ``fnv(str(fnv(seed + value))) % 10000 / 10000`` (the double hash decorrelates experiments whose
  seeds share a prefix); any other version → ``None``.
* ``bucket_ranges`` — arm *i* owns ``[c_i, c_i + coverage·w_i)`` where ``c_i`` is the sum of the
  earlier weights. Because ``c_i`` does not depend on coverage, raising coverage only *adds* users:
  nobody already in the experiment changes arm.
* namespaces — ``hash("__" + id, value, 1)`` in ``[start, end)``: experiments whose namespace
  ranges do not overlap never share a user.

Stickiness: the arm depends only on ``(seed, user_key, weights, coverage)``, so it is stable as
long as the key is. The engine passes the profile id, which survives the anonymous → known
identity merge (the merged profile keeps the primary id), so a visitor who logs in keeps the arm
they saw while anonymous.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopwise.errors import ConditionError
from loopwise.segments.conditions import CompiledCondition, compile_condition

FNV_OFFSET_BASIS = 2166136261
FNV_PRIME = 16777619
_MASK32 = 0xFFFFFFFF
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$"

_DERIVED = ("ranges", "compiled_condition")
"""``ExperimentSpec`` values cached on first use (the model is frozen)."""

Namespace = tuple[str, float, float]
BucketRange = tuple[float, float]


# --- GrowthBook's primitives ------------------------------------------------------------------


def fnv1a32(text: str) -> int:
    """FNV-1a over UTF-16 code units, as GrowthBook's JS ``hashFnv32a`` (``charCodeAt``)."""
    value = FNV_OFFSET_BASIS
    for unit in _code_units(text):
        value = ((value ^ unit) * FNV_PRIME) & _MASK32
    return value


def _code_units(text: str) -> Iterable[int]:
    if text.isascii():  # the usual ids: one byte per code unit, no decoding needed
        return text.encode("ascii")
    data = text.encode("utf-16-le", "surrogatepass")
    return (data[i] | (data[i + 1] << 8) for i in range(0, len(data), 2))


def hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's ``hash``: the user's number in [0, 1); ``None`` for an unknown version."""
    if version == 2:
        return fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000
    if version == 1:
        return fnv1a32(value + seed) % 1000 / 1000
    return None


def _equal_weights(num_arms: int) -> list[float]:
    return [1 / num_arms] * num_arms if num_arms > 0 else []


def bucket_ranges(
    num_arms: int, coverage: float = 1, weights: list[float] | None = None
) -> list[BucketRange]:
    """GrowthBook's ``getBucketRanges``. Bad weights (missing, wrong length, not summing to
    1 ± 0.01) fall back to equal weights and coverage is clamped to [0, 1], as the SDKs do."""
    coverage = min(max(coverage, 0.0), 1.0)
    equal = _equal_weights(num_arms)
    chosen = weights if weights is not None and len(weights) == num_arms else equal
    total = sum(chosen)
    if total < 0.99 or total > 1.01:
        chosen = equal
    ranges: list[BucketRange] = []
    cumulative = 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(n: float, ranges: list[BucketRange]) -> int:
    """Index of the first range with ``start <= n < end``; ``-1`` when ``n`` is in none (the user
    is outside the experiment's coverage)."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def in_namespace(hash_value: str, namespace: Namespace) -> bool:
    """Whether the user (``hash_value`` is the user key) falls in the namespace's slice."""
    namespace_id, start, end = namespace
    n = hash("__" + namespace_id, hash_value, 1)
    return n is not None and start <= n < end


# --- Workspace schema ---------------------------------------------------------------------------


def check_condition(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` itself when it compiles as a condition; else ValueError with the condition's
    path, which pydantic reports as a validation error of the field holding it."""
    try:
        compile_condition(value)
    except ConditionError as exc:
        where = f"at {exc.field}: " if exc.field else ""
        raise ValueError(f"{where}{exc.detail}") from exc
    return value


def as_utc(value: datetime | None) -> datetime | None:
    """Naive times in the workspace file mean UTC, so they compare with the engine's clock."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class MetricSpec(BaseModel):
    """A metric read from the event log: who converted, how much, or a ratio of two events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    kind: Literal["conversion", "count", "revenue", "ratio"]
    event: str = Field(min_length=1, description='Event name, e.g. "Order Completed".')
    denominator_event: str | None = None
    window_hours: float = Field(default=168, gt=0)

    @model_validator(mode="after")
    def _ratio_has_denominator(self) -> MetricSpec:
        if self.kind == "ratio" and not self.denominator_event:
            raise ValueError(
                f"Metric {self.key!r} is a ratio: set denominator_event to the event that counts "
                "the denominator (e.g. 'Product Viewed')."
            )
        if self.kind != "ratio" and self.denominator_event is not None:
            raise ValueError(
                f"Metric {self.key!r} has denominator_event but kind {self.kind!r}; "
                "use kind 'ratio' or remove denominator_event."
            )
        return self


class ArmSpec(BaseModel):
    """One arm: what the slot serves (a variant or a strategy) and optionally its traffic weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    name: str = ""
    variant: str | None = None
    strategy: str | None = None
    weight: float | None = Field(default=None, ge=0, le=1)


class ExperimentSpec(BaseModel):
    """An experiment as written in ``loopwise.yaml``; ``assign`` turns it into an arm per user."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=KEY_PATTERN, max_length=100)
    slot: str | None = None
    arms: list[ArmSpec] = Field(min_length=2)
    weights: list[float] | None = None
    coverage: float = Field(default=1, ge=0, le=1)
    seed: str | None = None
    hash_version: Literal[1, 2] = 2
    namespace: Namespace | None = None
    condition: dict[str, Any] = Field(default_factory=dict)
    force_arm: int | None = None
    active: bool = True
    metrics: list[MetricSpec] = Field(default_factory=list)
    guardrails: list[MetricSpec] = Field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("condition")
    @classmethod
    def _condition_compiles(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_condition(value)

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)

    @field_validator("namespace")
    @classmethod
    def _namespace_range(cls, value: Namespace | None) -> Namespace | None:
        if value is not None and not 0 <= value[1] < value[2] <= 1:
            raise ValueError(
                "namespace must be [id, start, end] with 0 <= start < end <= 1, "
                "e.g. ['checkout', 0, 0.5]."
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        keys = [arm.key for arm in self.arms]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"Arm keys must be unique; {duplicates} appear more than once.")
        per_arm = [arm.weight for arm in self.arms]
        if self.weights is not None and any(w is not None for w in per_arm):
            raise ValueError("Give weights either in `weights` or on each arm, not both.")
        if self.weights is None and any(w is None for w in per_arm) and any(per_arm):
            raise ValueError("Give a weight on every arm or on none (equal split).")
        weights = self.arm_weights
        if weights is not None:
            if len(weights) != len(self.arms):
                raise ValueError(
                    f"weights has {len(weights)} entries for {len(self.arms)} arms; "
                    "give one weight per arm."
                )
            if any(w < 0 for w in weights) or abs(sum(weights) - 1) > 0.01:
                raise ValueError(f"weights must be >= 0 and sum to 1 (they sum to {sum(weights)}).")
        if self.force_arm is not None and not 0 <= self.force_arm < len(self.arms):
            raise ValueError(
                f"force_arm {self.force_arm} is not an arm index; use 0..{len(self.arms) - 1}."
            )
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start.")
        return self

    @property
    def arm_weights(self) -> list[float] | None:
        """The traffic split (``weights`` or the arms' own), ``None`` for an equal split."""
        if self.weights is not None:
            return list(self.weights)
        per_arm = [arm.weight for arm in self.arms]
        if all(w is not None for w in per_arm):
            return [float(w) for w in per_arm if w is not None]
        return None

    @property
    def hash_seed(self) -> str:
        """The seed fed to ``hash``: ``seed`` or, as in GrowthBook, the experiment key."""
        return self.seed if self.seed is not None else self.key

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copies drop the cached ranges and condition: ``update`` may change what they derive
        from."""
        copied = super().model_copy(update=update, deep=deep)
        for name in _DERIVED:
            copied.__dict__.pop(name, None)
        return copied

    @cached_property
    def ranges(self) -> list[BucketRange]:
        """Each arm's slice of [0, 1) (computed once; the spec is immutable)."""
        return bucket_ranges(len(self.arms), self.coverage, self.arm_weights)

    @cached_property
    def compiled_condition(self) -> CompiledCondition:
        return compile_condition(self.condition)

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        """Whether the targeting condition holds for these attributes (compiled once)."""
        return self.compiled_condition(attributes)

    def running(self, now: datetime | None) -> bool:
        """Active and, when ``now`` is given, inside ``[start, end)``."""
        if not self.active:
            return False
        if now is None:
            return True
        return (self.start is None or now >= self.start) and (self.end is None or now < self.end)


class HoldoutSpec(BaseModel):
    """A global holdout: a fixed share of users who see no experiment and no personalization, so
    the long-run value of the whole programme can be measured against them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(default="global-holdout", pattern=KEY_PATTERN, max_length=100)
    percent: float = Field(ge=0, le=0.5)
    seed: str | None = None


def in_holdout(spec: HoldoutSpec, user_key: str) -> bool:
    """Whether the user is in the holdout; hashed with the holdout's own seed (default its key) so
    membership is independent of every experiment's arm."""
    n = hash(spec.seed if spec.seed is not None else spec.key, user_key, 2)
    return n is not None and n < spec.percent


# --- Assignment ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assignment:
    """Which arm a user gets and why.

    ``in_experiment`` False means: serve ``arm_index`` (the control, or ``force_arm``) but log no
    exposure, exactly like GrowthBook's ``inExperiment``. ``hash_value`` is ``None`` when the arm
    did not come from hashing (forced, excluded before hashing).
    """

    experiment: str
    arm_index: int
    arm_key: str
    hash_value: float | None
    in_experiment: bool
    reason: str


def _result(
    spec: ExperimentSpec, index: int, n: float | None, in_experiment: bool, reason: str
) -> Assignment:
    return Assignment(spec.key, index, spec.arms[index].key, n, in_experiment, reason)


def assign(
    experiment: ExperimentSpec,
    user_key: str,
    attributes: Mapping[str, Any],
    *,
    forced: Mapping[str, int] | None = None,
    qa_mode: bool = False,
    now: datetime | None = None,
    targeting: CompiledCondition | None = None,
) -> Assignment | None:
    """Assign ``user_key`` to an arm of ``experiment`` in GrowthBook's order of checks.

    ``user_key`` must be stable for the user (the engine passes the profile id, which survives
    identity merges); the same key always gets the same arm. ``forced`` maps experiment keys to
    arm indexes (QA links, previews) and wins over everything, even a paused experiment.
    Returns ``None`` when the experiment is not running (inactive, or ``now`` outside
    ``[start, end)``): the caller should behave as if it did not exist. ``targeting`` is the
    experiment's condition compiled with the workspace's saved groups (else compiled alone).
    """
    if forced is not None and experiment.key in forced:
        index = forced[experiment.key]
        if 0 <= index < len(experiment.arms):
            return _result(experiment, index, None, True, "forced arm")
        return _result(experiment, 0, None, False, f"forced arm {index} does not exist")
    if not experiment.running(now):
        return None
    if not user_key:
        return _result(experiment, 0, None, False, "no user key to hash")
    if experiment.namespace is not None and not in_namespace(user_key, experiment.namespace):
        return _result(experiment, 0, None, False, f"outside namespace {experiment.namespace[0]}")
    if not (targeting(attributes) if targeting is not None else experiment.matches(attributes)):
        return _result(experiment, 0, None, False, "targeting condition not met")
    n = hash(experiment.hash_seed, user_key, experiment.hash_version)
    if n is None:  # unreachable with the validated schema; kept for GrowthBook parity
        return _result(experiment, 0, None, False, "unknown hash version")
    index = choose_variation(n, experiment.ranges)
    if index < 0:
        return _result(experiment, 0, n, False, "outside coverage")
    if experiment.force_arm is not None:
        return _result(experiment, experiment.force_arm, n, False, "experiment forces an arm")
    if qa_mode:
        return _result(experiment, 0, n, False, "QA mode: no random assignment")
    return _result(experiment, index, n, True, f"hashed into arm {experiment.arms[index].key}")
