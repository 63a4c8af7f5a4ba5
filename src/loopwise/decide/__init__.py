"""The decide stage: slots, rules, strategies, item statistics and the decider (pure core).

The engine builds a :class:`Decider` from the workspace's slots, a :class:`StrategyRegistry`, the
catalog and the live :class:`ItemStats`, and calls ``decide_slots`` per request.
"""

from __future__ import annotations

from loopwise.decide.decider import Decider
from loopwise.decide.filters import ItemFilters, build_filter
from loopwise.decide.item_stats import ItemStats
from loopwise.decide.request import (
    DecidedItem,
    DecidedVariant,
    DecideRequest,
    DecideResponse,
    DecideUser,
    Reason,
    SlotDecision,
    SlotRequest,
)
from loopwise.decide.rules import CompiledRules, Rule, RuleAction, select_rule
from loopwise.decide.slots import Slot, Variant
from loopwise.decide.strategies import ScoredItem, Strategy, StrategyContext, StrategyRegistry

__all__ = [
    "CompiledRules",
    "DecideRequest",
    "DecideResponse",
    "DecideUser",
    "DecidedItem",
    "DecidedVariant",
    "Decider",
    "ItemFilters",
    "ItemStats",
    "Reason",
    "Rule",
    "RuleAction",
    "ScoredItem",
    "Slot",
    "SlotDecision",
    "SlotRequest",
    "Strategy",
    "StrategyContext",
    "StrategyRegistry",
    "Variant",
    "build_filter",
    "select_rule",
]
