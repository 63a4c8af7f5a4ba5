"""Segments: the condition language, the registry of named segments and the built-in ones."""

from __future__ import annotations

from loopwise.segments.builtin import BUILTIN_SEGMENTS, country_segment
from loopwise.segments.conditions import CompiledCondition, compile_condition, referenced_roots
from loopwise.segments.registry import SegmentDefinition, SegmentRegistry, membership_changes

__all__ = [
    "BUILTIN_SEGMENTS",
    "CompiledCondition",
    "SegmentDefinition",
    "SegmentRegistry",
    "compile_condition",
    "country_segment",
    "membership_changes",
    "referenced_roots",
]
