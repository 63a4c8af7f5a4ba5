"""Slot rules: "when this user/context matches, show that".

A rule's ``when`` is a GrowthBook-style condition over ``{"profile", "context", "segments"}``
(compiled once by :func:`loopwise.segments.conditions.compile_condition`); ``segments`` is sugar
for "the user is in ANY of these segments". Selection is deterministic: highest ``priority`` wins,
ties go to the more specific rule (more leaf conditions), then to the earlier rule in the list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from loopwise.decide.filters import ItemFilters
from loopwise.errors import ConditionError
from loopwise.segments.conditions import SavedGroups, compile_condition
from loopwise.segments.registry import check_operators
from loopwise.validation import invalid_at

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
Matcher = Callable[[Mapping[str, Any]], bool]

# RuleAction fields that only make sense for list slots.
LIST_ACTION_FIELDS = ("strategy", "strategy_params", "pin", "boost", "bury", "exclude", "filters")


def _saved_groups(info: ValidationInfo) -> SavedGroups | None:
    context = info.context
    if isinstance(context, Mapping):
        groups = context.get("saved_groups")
        if isinstance(groups, Mapping):
            return groups
    return None


class RuleAction(BaseModel):
    """What a matching rule does: pick a variant (block slots) or shape a list (list slots)."""

    model_config = ConfigDict(extra="forbid")

    variant: str | None = Field(default=None, description="Block slots: the variant id to show.")
    strategy: str | None = Field(
        default=None, description="List slots: the strategy to use instead of the slot's default."
    )
    strategy_params: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameters for the strategy (with no `strategy`: merged over the slot's).",
    )
    pin: list[str] = Field(
        default_factory=list, description="Item ids forced to the top, in this order."
    )
    boost: list[str] = Field(
        default_factory=list, description="Item ids whose score is multiplied by boost_factor."
    )
    boost_factor: float = Field(
        default=2.0, gt=0, description="Score multiplier for boosted items."
    )
    bury: list[str] = Field(default_factory=list, description="Item ids moved to the end.")
    exclude: list[str] = Field(default_factory=list, description="Item ids never shown.")
    filters: ItemFilters | None = Field(
        default=None, description="Filters overriding the slot's, field by field."
    )

    @model_validator(mode="after")
    def _one_primary(self) -> Self:
        if self.variant is not None and self.strategy is not None:
            raise ValueError(
                "a rule picks either a variant (block slots) or a strategy (list slots), not both"
            )
        if not self.used_fields():
            raise ValueError(
                "the action does nothing: set variant (block slots) or strategy, pin, boost, "
                "bury, exclude or filters (list slots)"
            )
        return self

    def used_fields(self) -> list[str]:
        """Names of the action fields that do something (set and non-empty)."""
        used = []
        for name in ("variant", *LIST_ACTION_FIELDS):
            value = getattr(self, name)
            if value is not None and value != [] and value != {}:
                used.append(name)
        return used


class Rule(BaseModel):
    """One targeting rule of a slot."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        pattern=SLUG_PATTERN, max_length=100, description="Stable id (slug), shown in reasons."
    )
    description: str = Field(
        default="", description="Why the rule exists; shown in reasons when set."
    )
    when: dict[str, Any] = Field(
        default_factory=dict,
        description="Condition over {profile, context, segments} (GrowthBook operators). "
        "Empty: always.",
    )
    segments: list[str] = Field(
        default_factory=list, description="Match only users in ANY of these segment keys."
    )
    then: RuleAction = Field(description="What to do when the rule matches.")
    priority: int = Field(default=0, description="Higher wins; ties go to the more specific rule.")
    pricing: bool = Field(
        default=False,
        description="The rule sets personalized offers or prices: it fires only for people who "
        "consented to the pricing category.",
    )
    active_from: datetime | None = Field(
        default=None, description="Inactive before this time (UTC)."
    )
    active_to: datetime | None = Field(
        default=None, description="Inactive from this time on (UTC)."
    )

    @field_validator("when")
    @classmethod
    def _compiles(cls, when: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        try:
            check_operators(when)
            compile_condition(when, _saved_groups(info))
        except ConditionError as exc:
            loc: tuple[str | int, ...] = (exc.field,) if exc.field else ()
            raise invalid_at("Rule", loc, exc.detail, when) from None
        return when

    @field_validator("active_from", "active_to")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _window(self) -> Self:
        if (
            self.active_from is not None
            and self.active_to is not None
            and self.active_from >= self.active_to
        ):
            raise invalid_at(
                "Rule",
                ("active_to",),
                "active_to must be after active_from; fix the dates or drop one",
                self.active_to,
            )
        return self

    def is_active(self, now: datetime) -> bool:
        if self.active_from is not None and now < self.active_from:
            return False
        return self.active_to is None or now < self.active_to

    @property
    def specificity(self) -> int:
        """Leaf conditions in ``when`` plus one for a ``segments`` requirement (ANY-of is one
        requirement: listing more segments makes a rule broader, not narrower)."""
        return count_leaves(self.when) + (1 if self.segments else 0)


def _operator_leaves(value: Any) -> int:
    if isinstance(value, dict) and value and all(str(k).startswith("$") for k in value):
        total = 0
        for op, arg in value.items():
            total += _operator_leaves(arg) if op == "$not" else 1
        return total
    return 1


def count_leaves(condition: Any) -> int:
    """Number of leaf tests in a condition: each field test and each operator on a field counts
    one; ``$and``/``$or``/``$nor``/``$not`` count their members."""
    if not isinstance(condition, dict):
        return 0
    total = 0
    for key, value in condition.items():
        if key in ("$and", "$or", "$nor") and isinstance(value, list):
            total += sum(count_leaves(member) for member in value)
        elif key == "$not":
            total += count_leaves(value)
        elif str(key).startswith("$"):
            total += 1
        else:
            total += _operator_leaves(value)
    return total


class CompiledRules:
    """A slot's rules, compiled and ordered once, for selection on every request."""

    def __init__(self, rules: Sequence[Rule], saved_groups: SavedGroups | None = None) -> None:
        order = sorted(
            enumerate(rules), key=lambda pair: (-pair[1].priority, -pair[1].specificity, pair[0])
        )
        self._rules: list[tuple[Rule, Matcher, frozenset[str]]] = [
            (rule, compile_condition(rule.when, saved_groups), frozenset(rule.segments))
            for _, rule in order
        ]

    @property
    def ordered(self) -> list[Rule]:
        """The rules in the order they are tried."""
        return [rule for rule, _, _ in self._rules]

    def select(
        self,
        attributes: Mapping[str, Any],
        segments: Sequence[str],
        now: datetime,
        *,
        pricing: bool = True,
    ) -> Rule | None:
        """The winning rule for this user and context, or None when none matches. Without
        ``pricing`` (consent), rules flagged ``pricing`` never fire."""
        member_of = set(segments)
        for rule, matcher, required in self._rules:
            if not rule.is_active(now) or (rule.pricing and not pricing):
                continue
            if required and required.isdisjoint(member_of):
                continue
            if matcher(attributes):
                return rule
        return None


def select_rule(rules: Sequence[Rule], attributes: Mapping[str, Any], now: datetime) -> Rule | None:
    """One-shot selection; segments are read from ``attributes["segments"]``."""
    segments = attributes.get("segments") or []
    return CompiledRules(rules).select(attributes, list(segments), now)
