"""Named segments: definitions validated on load, compiled once, evaluated per profile or request.

A segment whose condition reads ``context.*`` depends on the request, so it is evaluated at
decision time; the others depend only on the profile and are evaluated on every profile update.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loopwise.errors import ConditionError, ConfigError
from loopwise.segments.conditions import (
    NEVER,
    OPERATORS,
    CompiledCondition,
    SavedGroups,
    compile_condition,
    referenced_roots,
)
from loopwise.validation import invalid_at

SEGMENT_KEY_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"
_CONTEXT = frozenset({"context"})


def check_operators(condition: Any, path: str = "") -> None:
    """Refuse operators the compiler does not know in a condition someone wrote (workspace file,
    admin API). At evaluation an unknown operator never matches, as in GrowthBook, so a typo such
    as ``$regx`` would silently switch a segment or rule off."""
    stack: list[tuple[Any, str]] = [(condition, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                here = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and key.startswith("$") and key not in OPERATORS:
                    raise ConditionError(
                        f'Unknown operator "{key}" at {here}; it would never match. Use one of '
                        f"{', '.join(sorted(OPERATORS))}.",
                        field=here,
                    )
                stack.append((value, here))
        elif isinstance(node, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(node))


class SegmentDefinition(BaseModel):
    """One segment as written in ``loopwise.yaml`` or sent to the admin API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=SEGMENT_KEY_PATTERN, max_length=100)
    name: str = Field(min_length=1)
    description: str = ""
    condition: dict[str, Any]

    @field_validator("condition")
    @classmethod
    def _condition_compiles(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            check_operators(value)
            compile_condition(value)
        except ConditionError as exc:
            loc: tuple[str | int, ...] = (exc.field,) if exc.field else ()
            raise invalid_at("Segment", loc, exc.detail, value) from None
        return value

    @property
    def roots(self) -> set[str]:
        return referenced_roots(self.condition)

    @property
    def context_dependent(self) -> bool:
        return "context" in self.roots


class SegmentRegistry:
    """The workspace's segments, compiled once. Evaluation returns sorted segment keys."""

    def __init__(
        self,
        definitions: Iterable[SegmentDefinition],
        saved_groups: SavedGroups | None = None,
    ) -> None:
        by_key: dict[str, SegmentDefinition] = {}
        compiled: dict[str, CompiledCondition] = {}
        for index, definition in enumerate(definitions):
            if definition.key in by_key:
                raise ConfigError(
                    f"Segment key {definition.key!r} is defined twice. Give each segment a unique "
                    f"key or remove the duplicate.",
                    field=f"segments[{index}].key",
                )
            by_key[definition.key] = definition
            compiled[definition.key] = compile_condition(
                definition.condition, saved_groups, field_prefix=f"segments[{index}].condition"
            )
        self._definitions = [by_key[key] for key in sorted(by_key)]
        self._all = [(key, compiled[key]) for key in sorted(compiled)]
        # a saved group the condition refers to may read the request too
        reads_context = {
            key: "context" in referenced_roots(d.condition, saved_groups)
            for key, d in by_key.items()
        }
        self._context = [(k, c) for k, c in self._all if reads_context[k]]
        self._profile = [(k, c) for k, c in self._all if not reads_context[k]]
        self._by_key = by_key
        self._saved_groups = saved_groups
        self._reads_context = reads_context
        # every segment compiled again for an empty context (membership outside a request):
        # context leaves fold to constants, so "context, else the profile" reads the profile
        self._without_context = [
            (
                key,
                compile_condition(by_key[key].condition, saved_groups, empty_roots=_CONTEXT)
                if reads_context[key]
                else check,
            )
            for key, check in self._all
        ]

    @property
    def definitions(self) -> list[SegmentDefinition]:
        """All definitions, sorted by key."""
        return list(self._definitions)

    def get(self, key: str) -> SegmentDefinition | None:
        return self._by_key.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)

    @property
    def profile_segment_keys(self) -> list[str]:
        """Segments that read only the profile: kept up to date on profile updates."""
        return [key for key, _ in self._profile]

    @property
    def context_segment_keys(self) -> list[str]:
        """Segments that read ``context.*``: evaluated at decision time."""
        return [key for key, _ in self._context]

    def evaluate(self, attributes: Mapping[str, Any]) -> list[str]:
        """Keys of every segment whose condition matches ``{"profile": ..., "context": ...}``."""
        return [key for key, matches in self._all if matches(attributes)]

    def evaluator(self, context: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], list[str]]:
        """:meth:`evaluate` for attributes whose ``context`` is always ``context`` (a campaign's
        audience shares one): the segments that read the context are compiled again with its
        leaves folded to constants, so each evaluation reads only the profile. Same answer as
        ``evaluate`` for any attributes holding this context."""
        fixed = {"context": context}
        groups = self._saved_groups
        checks = [
            (
                key,
                compile_condition(self._by_key[key].condition, groups, fixed_roots=fixed)
                if self._reads_context[key]
                else check,
            )
            for key, check in self._all
        ]
        live = [(key, check) for key, check in checks if check is not NEVER]

        def evaluate(attributes: Mapping[str, Any]) -> list[str]:
            return [key for key, matches in live if matches(attributes)]

        return evaluate

    def evaluate_without_context(self, profile: Mapping[str, Any]) -> list[str]:
        """``evaluate({"profile": profile, "context": {}})``, faster."""
        attributes = {"profile": profile, "context": {}}
        return [key for key, matches in self._without_context if matches(attributes)]

    def evaluate_profile(self, attributes: Mapping[str, Any]) -> list[str]:
        return [key for key, matches in self._profile if matches(attributes)]

    def evaluate_context(self, attributes: Mapping[str, Any]) -> list[str]:
        return [key for key, matches in self._context if matches(attributes)]


def membership_changes(before: Iterable[str], after: Iterable[str]) -> tuple[list[str], list[str]]:
    """(entered, left): segment keys gained and lost between two evaluations, each sorted."""
    old, new = set(before), set(after)
    return sorted(new - old), sorted(old - new)
