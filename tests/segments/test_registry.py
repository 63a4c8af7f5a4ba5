from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from loopwise.errors import ConditionError, ConfigError
from loopwise.segments.registry import (
    SegmentDefinition,
    SegmentRegistry,
    check_operators,
    membership_changes,
)


def seg(key: str, condition: dict[str, Any], **extra: Any) -> SegmentDefinition:
    return SegmentDefinition(key=key, name=key.title(), condition=condition, **extra)


SEGMENTS = [
    seg("returning", {"profile.sessions": {"$gt": 1}}),
    seg("mobile_now", {"context.device.type": "mobile"}),
    seg("big_cart", {"profile.cart.value": {"$gte": 100}}),
    seg(
        "evening_buyer",
        {"$and": [{"profile.purchases": {"$gte": 1}}, {"context.time.hour": {"$gte": 18}}]},
    ),
    seg("vip", {"profile.user_id": {"$inGroup": "vips"}}),
]
ATTRS = {
    "profile": {"sessions": 3, "cart": {"value": 120.0}, "purchases": 2, "user_id": "u1"},
    "context": {"device": {"type": "mobile"}, "time": {"hour": 20}},
}


def test_definition_validates_key_and_forbids_extra_fields() -> None:
    assert seg("ok-key_2", {}).description == ""
    for bad in ("", "Upper", "_lead", "has space", "a.b"):
        with pytest.raises(ValidationError) as info:
            seg(bad, {})
        assert info.value.errors()[0]["loc"] == ("key",)
    with pytest.raises(ValidationError) as info:
        SegmentDefinition(key="a", name="A", condition={}, colour="red")  # type: ignore[call-arg]
    assert info.value.errors()[0]["loc"] == ("colour",)


def test_definition_reports_bad_condition_under_condition() -> None:
    with pytest.raises(ValidationError) as info:
        seg("x", {"$or": [{"profile.sessions": {"$in": 3}}]})
    error = info.value.errors()[0]
    assert error["loc"] == ("condition", "$or[0].profile.sessions.$in")
    assert "needs a list of values" in error["msg"]


def test_definition_requires_an_object_condition() -> None:
    with pytest.raises(ValidationError) as info:
        SegmentDefinition(key="x", name="X", condition=[1])  # type: ignore[arg-type]
    assert info.value.errors()[0]["loc"][0] == "condition"


def test_registry_splits_profile_and_context_segments() -> None:
    registry = SegmentRegistry(SEGMENTS, saved_groups={"vips": ["u1"]})
    assert registry.profile_segment_keys == ["big_cart", "returning", "vip"]
    assert registry.context_segment_keys == ["evening_buyer", "mobile_now"]
    assert registry.evaluate(ATTRS) == [
        "big_cart",
        "evening_buyer",
        "mobile_now",
        "returning",
        "vip",
    ]
    assert registry.evaluate_profile(ATTRS) == ["big_cart", "returning", "vip"]
    assert registry.evaluate_context(ATTRS) == ["evening_buyer", "mobile_now"]


def test_registry_evaluates_non_matches_and_missing_context() -> None:
    registry = SegmentRegistry(SEGMENTS)  # no saved groups: $inGroup matches nobody
    attrs = {"profile": {"sessions": 1, "cart": {"value": 20}, "purchases": 1, "user_id": "u1"}}
    assert registry.evaluate(attrs) == []
    attrs["context"] = {"time": {"hour": 19}}
    assert registry.evaluate(attrs) == ["evening_buyer"]


def test_registry_lookup_and_definitions_sorted() -> None:
    registry = SegmentRegistry(SEGMENTS)
    assert [d.key for d in registry.definitions] == sorted(d.key for d in SEGMENTS)
    assert registry.get("vip") is SEGMENTS[4]
    assert registry.get("nope") is None
    assert "vip" in registry and len(registry) == 5
    registry.definitions.clear()  # a copy: the registry keeps its own list
    assert len(registry.definitions) == 5


def test_duplicate_keys_raise_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        SegmentRegistry([seg("a", {}), seg("b", {}), seg("a", {"x": 1})])
    assert "'a'" in info.value.detail
    assert info.value.field == "segments[2].key"


def test_unvalidated_definition_still_reports_condition_path() -> None:
    broken = SegmentDefinition.model_construct(key="b", name="B", condition={"a": {"$in": 1}})
    with pytest.raises(ConditionError) as info:
        SegmentRegistry([seg("a", {}), broken])
    assert info.value.field == "segments[1].condition.a.$in"


def test_membership_changes() -> None:
    assert membership_changes(["b", "a", "c"], ["d", "a", "b"]) == (["d"], ["c"])
    assert membership_changes([], ["z", "y"]) == (["y", "z"], [])
    assert membership_changes(["x"], []) == ([], ["x"])
    assert membership_changes(["x"], ["x"]) == ([], [])


keys = st.sets(st.sampled_from("abcdefg"))


@given(keys, keys)
def test_membership_changes_replay_to_after(before: set[str], after: set[str]) -> None:
    entered, left = membership_changes(before, after)
    assert (before - set(left)) | set(entered) == after
    assert not set(entered) & set(left)
    assert entered == sorted(entered) and left == sorted(left)


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ({"profile.top_category": {"$regx": "^run"}}, "profile.top_category.$regx"),
        ({"n": {"$gt": 1, "$nope": 1}}, "n.$nope"),
        ({"$or": [{"a": 1}, {"b": {"$not": {"$startsWith": "x"}}}]}, "$or[1].b.$not.$startsWith"),
        ({"$xor": []}, "$xor"),
    ],
)
def test_written_conditions_refuse_unknown_operators(condition: dict[str, Any], field: str) -> None:
    with pytest.raises(ConditionError) as info:
        check_operators(condition)
    assert info.value.field == field
    with pytest.raises(ValidationError, match="Unknown operator"):
        SegmentDefinition(key="typo", name="Typo", condition=condition)


def test_known_operators_pass_the_check() -> None:
    check_operators({"$and": [{"p": {"$in": [1]}}, {"$not": {"q": {"$elemMatch": {"$gte": 2}}}}]})


def test_the_docs_state_the_segment_key_rule_the_code_enforces() -> None:
    from pathlib import Path

    from loopwise.segments.registry import SEGMENT_KEY_PATTERN

    docs = Path(__file__).resolve().parents[2] / "docs"
    for page in ("workspace.md", "internals.md"):
        text = (docs / page).read_text(encoding="utf-8")
        assert f"`{SEGMENT_KEY_PATTERN}`" in text, page
        assert "100 characters" in text, page
    for key in ("running_fans", "a-b", "9lives"):
        SegmentDefinition(key=key, name="X", condition={})
    for key in ("_x", "-x", "Upper", "a" * 101):
        with pytest.raises(ValidationError):
            SegmentDefinition(key=key, name="X", condition={})


WITHOUT_CONTEXT_CASES = [
    {"context.country": {"$exists": False}},
    {"context.country": "DE"},
    {"context": {"$exists": True}},
    {"context": {}},
    {"$not": {"context.device.type": "mobile"}},
    {"$nor": [{"context.country": "DE"}, {"profile.sessions": {"$gt": 1}}]},
    {"$or": [{"context.country": "DE"}, {"profile.sessions": {"$gt": 1}}]},
    {"$and": [{"context.x": None}, {"profile.sessions": 2}]},
    {"profile.items": {"$elemMatch": {"context": "a"}}},
    {"profile.items": {"$elemMatch": {"context.b": {"$exists": True}}}},
]


@pytest.mark.parametrize("condition", WITHOUT_CONTEXT_CASES)
@pytest.mark.parametrize("sessions", [1, 2])
def test_evaluation_without_context_equals_evaluation_with_an_empty_one(
    condition: dict[str, Any], sessions: int
) -> None:
    from loopwise.segments.builtin import BUILTIN_SEGMENTS

    definitions = [SegmentDefinition(key="case", name="Case", condition=condition)]
    registry = SegmentRegistry([*BUILTIN_SEGMENTS, *definitions])
    items = [{"context": "a"}, {"context": {"b": 1}}] if sessions == 2 else [{"x": 1}]
    profile = {"sessions": sessions, "items": items, "device": {"type": "mobile"}}
    expected = registry.evaluate({"profile": profile, "context": {}})
    assert registry.evaluate_without_context(profile) == expected


FIXED_CONTEXTS: list[dict[str, Any]] = [
    {},
    {"time": {"hour": 9, "weekday": 0}},
    {"device": {"type": "mobile"}, "country": "US", "traffic_source": "email"},
    {"country": "DE", "campaign": {"source": "newsletter"}, "time": {"hour": 20}},
]
FIXED_CONTEXT_SEGMENTS = [
    *SEGMENTS,
    seg("us_or_returning", {"$or": [{"context.country": "US"}, {"profile.sessions": 3}]}),
    seg("no_country", {"context.country": {"$exists": False}}),
    seg("not_mobile", {"$not": {"context.device.type": "mobile"}}),
    seg("whole_context", {"context": {"$exists": True}}),
    seg("from_group", {"$savedGroup": {"id": "emailed"}}),
    seg("in_list_group", {"$savedGroup": {"id": "sources"}}),
    seg("items_match", {"profile.items": {"$elemMatch": {"context.b": {"$exists": True}}}}),
]
FIXED_GROUPS = {
    "vips": ["u1"],
    "emailed": {"type": "condition", "condition": {"context.traffic_source": "email"}},
    "sources": {"type": "list", "attributeKey": "context.country", "values": ["DE"]},
}


@pytest.mark.parametrize("context", FIXED_CONTEXTS)
def test_an_evaluator_for_one_context_answers_as_evaluate(context: dict[str, Any]) -> None:
    """A campaign's audience shares one context: its leaves folded in once, the same segments
    as evaluating each person with it, for any profile."""
    from loopwise.segments.builtin import BUILTIN_SEGMENTS

    registry = SegmentRegistry([*BUILTIN_SEGMENTS, *FIXED_CONTEXT_SEGMENTS], FIXED_GROUPS)
    evaluate = registry.evaluator(context)
    profiles: list[dict[str, Any]] = [
        {},
        ATTRS["profile"],
        {"sessions": 1, "country": "GB", "device": {"type": "desktop"}, "purchases": 0},
        {"sessions": 3, "traffic_source": "email", "items": [{"context": {"b": 1}}]},
    ]
    seen = set()
    for profile in profiles:
        attributes = {"profile": profile, "context": context}
        expected = registry.evaluate(attributes)
        assert evaluate(attributes) == expected, (context, profile)
        seen.update(expected)
    assert len(seen) > 5  # the cases reach many segments, both ways
