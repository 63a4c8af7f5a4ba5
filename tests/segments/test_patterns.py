from __future__ import annotations

import re
from typing import Any

import pytest

import loopwise.segments.conditions as conditions
from loopwise.errors import ConditionError
from loopwise.segments.conditions import compile_condition
from loopwise.segments.patterns import compile_pattern, search, translate

# Patterns that take exponential time on a backtracking engine (Python's re, JS RegExp) for an
# input that almost matches. Each input is long enough that a backtracking engine would run for
# hours, so a regression shows as a test timeout, not as a measured duration.
CATASTROPHIC: list[tuple[str, str, bool]] = [
    (r"^([a-z0-9]+\.?)+@shop\.example$", "a" * 60 + "!", False),
    (r"^([a-z0-9]+\.?)+@shop\.example$", "a" * 60 + "@shop.example", True),
    (r"(a+)+$", "a" * 5_000 + "!", False),
    (r"(a+)+$", "b" + "a" * 5_000, True),
    (r"(a|aa)+$", "a" * 5_000 + "!", False),
    (r"(a|a?)+b", "a" * 5_000, False),
    (r"^(\w+\s?)*$", "word " * 2_000 + "!", False),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), CATASTROPHIC)
def test_catastrophic_patterns_answer_correctly(pattern: str, text: str, expected: bool) -> None:
    attrs = {"profile": {"traits": {"email": text}}}
    assert compile_condition({"profile.traits.email": {"$regex": pattern}})(attrs) is expected
    assert compile_condition({"profile.traits.email": {"$notRegex": pattern}})(attrs) is (
        not expected
    )


def test_evaluation_never_uses_the_backtracking_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Conditions compiled after the stdlib engine is made unusable still work: every pattern
    goes through RE2."""

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a condition used Python's backtracking re engine")

    monkeypatch.setattr(conditions.re, "compile", refuse)
    monkeypatch.setattr(conditions.re, "search", refuse)
    monkeypatch.setattr(conditions.re, "match", refuse)
    for op in ("$regex", "$regexi", "$notRegex", "$notRegexi"):
        matches = compile_condition({"e": {op: r"(a|aa)+$"}})
        assert matches({"e": "a" * 5_000 + "!"}) is op.startswith("$not")
    pattern = compile_pattern("x", insensitive=False, op="$regex", path="e.$regex")
    assert not isinstance(pattern, re.Pattern)
    assert type(pattern).__module__.startswith("re2")


@pytest.mark.parametrize(
    ("pattern", "advice"),
    [
        (r"(a)\1", "backreferences (\\1, \\k<name>) are not supported"),
        (r"(?<w>a)\k<w>", "backreferences (\\1, \\k<name>) are not supported"),
        (r"^(?=.*\d)\w+$", "lookahead is not supported"),
        (r"^(?!admin)\w+$", "negative lookahead is not supported"),
        (r"(?<=@)shop", "lookbehind is not supported"),
        (r"(?<!x)y", "negative lookbehind is not supported"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_advice(pattern: str, advice: str) -> None:
    condition = {"$or": [{"profile.traits.email": {"$regexi": pattern}}]}
    with pytest.raises(ConditionError) as info:
        compile_condition(condition, field_prefix="segments[0].condition")
    assert info.value.field == "segments[0].condition.$or[0].profile.traits.email.$regexi"
    assert advice in info.value.detail
    assert "linear-time engine" in info.value.detail


def test_huge_repetition_is_refused_at_load() -> None:
    with pytest.raises(ConditionError, match="repetition counts up to 1000"):
        compile_condition({"a": {"$regex": "x{5000}"}})


@pytest.mark.parametrize(
    ("js", "re2_syntax"),
    [
        (r"\u00e9", r"\x{00e9}"),
        (r"[\u0041-\u005A]", r"[\x{0041}-\x{005A}]"),
        (r"\cJ", r"\x{0A}"),
        (r"^[^]$", r"^[\s\S]$"),
        (r"a[]b", r"a[^\x00-\x{10FFFF}]b"),
        (r"\\u0041", r"\\u0041"),  # an escaped backslash, then plain text
        (r"[\]]", r"[\]]"),
        (r"\d+\.\d+", r"\d+\.\d+"),
    ],
)
def test_translate_rewrites_javascript_escapes(js: str, re2_syntax: str) -> None:
    assert translate(js) == re2_syntax


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        (r"\u00e9t\u00e9", "en été", True),
        (r"^[^]$", "\n", True),
        (r"a[]", "a", False),
        (r"\cI", "tab\there", True),
        (r"end$", "the end\n", False),  # JS: $ is the end of input, not before a final newline
        (r"^\d+$", "١٢٣", False),  # JS: \d is ASCII only
        (r"^\w+$", "café", False),  # JS: \w is ASCII only
        (r"(Mobile|Tablet)", "Android Mobile Browser", True),
        (r"/products/", "/products/x", True),
        (r"\/products\/", "/products/x", True),
    ],
)
def test_javascript_semantics_kept(pattern: str, text: str, expected: bool) -> None:
    assert compile_condition({"t": {"$regex": pattern}})({"t": text}) is expected


def test_case_insensitive_operators() -> None:
    assert compile_condition({"t": {"$regexi": "^ABC"}})({"t": "abcdef"}) is True
    assert compile_condition({"t": {"$regex": "^ABC"}})({"t": "abcdef"}) is False
    assert compile_condition({"t": {"$notRegexi": "^ABC"}})({"t": "abcdef"}) is False
    assert compile_condition({"t": {"$notRegex": "^ABC"}})({"t": "abcdef"}) is True


def test_lone_surrogate_text_is_searched_not_raised() -> None:
    pattern = compile_pattern("b$", insensitive=False, op="$regex", path="t")
    assert search(pattern, "\ud800ab") is True
    assert search(pattern, "\ud800ba") is False
