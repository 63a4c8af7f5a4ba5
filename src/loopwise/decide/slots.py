"""Slots: the places on a page Loopwise fills (workspace schema, also used by the admin API).

A *block* slot shows one variant of hand-written content (hero banner, headline, CTA); a *list*
slot shows ``n`` catalog items chosen by a strategy. Rules change either per user/context.
Validation reports exact paths (``rules[1].then.variant``) so a broken loopwise.yaml says where.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loopwise.bandits.settings import BANDIT, BanditSettings
from loopwise.decide.filters import ItemFilters
from loopwise.decide.rules import LIST_ACTION_FIELDS, SLUG_PATTERN, Rule
from loopwise.validation import invalid_at

__all__ = ["ItemFilters", "Slot", "Variant"]


class Variant(BaseModel):
    """One version of a block slot's content."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100, description="Variant id, unique in the slot.")
    content: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form content blocks returned as-is: headline, body, cta, image, ...",
    )
    weight: float = Field(
        default=1.0,
        ge=0,
        description="Relative weight when experiments or bandits split traffic between variants.",
    )


def _duplicates(values: Sequence[str]) -> list[int]:
    seen: set[str] = set()
    dups = []
    for index, value in enumerate(values):
        if value in seen:
            dups.append(index)
        seen.add(value)
    return dups


class Slot(BaseModel):
    """A page slot: what it shows by default and the rules that change it."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        pattern=SLUG_PATTERN, max_length=100, description="Slot key (slug) used by /v1/decide."
    )
    kind: Literal["block", "list"] = Field(
        description="block: one content variant; list: n catalog items."
    )
    description: str = Field(default="", description="Where the slot appears and what it is for.")
    variants: list[Variant] = Field(
        default_factory=list, description="Block slots: the content variants (at least one)."
    )
    default_variant: str | None = Field(
        default=None,
        description="Block slots: variant shown when no rule matches (default: the first).",
    )
    strategy: Literal["fixed", "bandit"] | None = Field(
        default=None,
        description="Block slots: fixed (the default: the rule's or default variant) or bandit "
        "(a bandit learns which variant works; rules that pick a variant still win). "
        "docs/bandits.md",
    )
    bandit: BanditSettings | None = Field(
        default=None, description="Block slots with strategy bandit: its settings."
    )
    n: int = Field(default=4, ge=1, le=100, description="List slots: how many items to show.")
    default_strategy: str = Field(
        default="popular",
        min_length=1,
        description="List slots: strategy used when no rule picks one.",
    )
    strategy_params: dict[str, Any] = Field(
        default_factory=dict, description="List slots: parameters for the default strategy."
    )
    filters: ItemFilters = Field(
        default_factory=lambda: ItemFilters(), description="List slots: which items may be shown."
    )
    rules: list[Rule] = Field(
        default_factory=list, description="Targeting rules; the highest priority match wins."
    )
    fallback_items: list[str] = Field(
        default_factory=list,
        description="List slots: item ids shown when the strategy fails or falls short.",
    )
    exploration: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="List slots: probability of swapping one item for a random eligible one "
        "(epsilon-greedy), so the loop keeps learning.",
    )
    time_budget_ms: float = Field(
        default=50,
        gt=0,
        description="List slots: strategy time budget; slower answers use the fallback.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for index in _duplicates([rule.id for rule in self.rules]):
            raise invalid_at(
                "Slot",
                ("rules", index, "id"),
                f"duplicate rule id {self.rules[index].id!r}; give each rule a unique id",
                self.rules[index].id,
            )
        if self.kind == "block":
            self._check_block()
            self._check_bandit()
        else:
            self._check_list()
        return self

    def _check_block(self) -> None:
        if not self.variants:
            raise invalid_at(
                "Slot", ("variants",), "a block slot needs at least one variant", self.variants
            )
        ids = [variant.id for variant in self.variants]
        for index in _duplicates(ids):
            raise invalid_at(
                "Slot",
                ("variants", index, "id"),
                f"duplicate variant id {ids[index]!r}; give each variant a unique id",
                ids[index],
            )
        known = ", ".join(ids)
        if self.default_variant is not None and self.default_variant not in ids:
            raise invalid_at(
                "Slot",
                ("default_variant",),
                f"unknown variant {self.default_variant!r}; known variants: {known}",
                self.default_variant,
            )
        for index, rule in enumerate(self.rules):
            for name in rule.then.used_fields():
                if name in LIST_ACTION_FIELDS:
                    raise invalid_at(
                        "Slot",
                        ("rules", index, "then", name),
                        f"{name} only applies to list slots; a block slot rule sets variant",
                        getattr(rule.then, name),
                    )
            variant = rule.then.variant
            if variant is not None and variant not in ids:
                raise invalid_at(
                    "Slot",
                    ("rules", index, "then", "variant"),
                    f"unknown variant {variant!r}; known variants: {known}",
                    variant,
                )

    def _check_bandit(self) -> None:
        if self.bandit is not None and self.strategy != BANDIT:
            raise invalid_at(
                "Slot", ("bandit",), "bandit settings need strategy: bandit", self.strategy
            )
        if self.strategy != BANDIT:
            return
        floor = (self.bandit or BanditSettings()).floor
        if floor * len(self.variants) > 1.0:
            raise invalid_at(
                "Slot",
                ("bandit", "floor"),
                f"a floor of {floor:g} for {len(self.variants)} variants is more than 100%; "
                f"use at most {1 / len(self.variants):.4g}",
                floor,
            )

    def _check_list(self) -> None:
        if self.strategy == BANDIT or self.bandit is not None:
            raise invalid_at(
                "Slot",
                ("strategy",),
                "strategy: bandit applies to block slots; list slots use default_strategy",
                self.strategy,
            )
        if self.variants:
            raise invalid_at(
                "Slot",
                ("variants",),
                "variants only apply to block slots; use kind: block or remove them",
                self.variants,
            )
        if self.default_variant is not None:
            raise invalid_at(
                "Slot",
                ("default_variant",),
                "default_variant only applies to block slots",
                self.default_variant,
            )
        for index, rule in enumerate(self.rules):
            if rule.then.variant is not None:
                raise invalid_at(
                    "Slot",
                    ("rules", index, "then", "variant"),
                    "a list slot rule cannot pick a variant; use strategy, pin, boost, bury, "
                    "exclude or filters",
                    rule.then.variant,
                )

    def variant(self, variant_id: str) -> Variant | None:
        for variant in self.variants:
            if variant.id == variant_id:
                return variant
        return None

    def default_variant_model(self) -> Variant:
        """The block slot's default variant (``default_variant`` or the first)."""
        if self.default_variant is not None:
            found = self.variant(self.default_variant)
            if found is not None:
                return found
        return self.variants[0]
