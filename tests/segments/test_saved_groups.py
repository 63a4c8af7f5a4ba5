from __future__ import annotations

from typing import Any

import pytest

from loopwise.config import parse_workspace
from loopwise.errors import ConfigError
from loopwise.segments.registry import SegmentDefinition, SegmentRegistry
from loopwise.segments.saved_groups import check_group_references, check_saved_groups

GOOD: dict[str, Any] = {
    "staff": ["u1", "u2"],
    "beta": {"type": "list", "attributeKey": "profile.user_id", "values": ["u1"]},
    "pro": {"type": "condition", "condition": {"profile.traits.plan": "pro"}},
    "pro_beta": {
        "type": "condition",
        "condition": {"$and": [{"$savedGroup": {"id": "beta"}}, {"$savedGroup": {"id": "pro"}}]},
    },
}


def test_well_formed_groups_pass() -> None:
    check_saved_groups(GOOD)


@pytest.mark.parametrize(
    ("groups", "field", "fragment"),
    [
        ({"g": "x"}, "saved_groups.g", "must be a list of values or a typed group"),
        ({"g": {"type": "segment"}}, "saved_groups.g.type", "use one of list, condition"),
        ({"g": {"values": [1]}}, "saved_groups.g.type", "has type None"),
        ({"g": {"type": "list", "values": [1]}}, "saved_groups.g.attributeKey", "attributeKey"),
        (
            {"g": {"type": "list", "attributeKey": "id", "values": "u1"}},
            "saved_groups.g.values",
            "needs values: a list",
        ),
        (
            {"g": {"type": "list", "attributeKey": "id", "values": [], "condition": {}}},
            "saved_groups.g.condition",
            "does not take condition",
        ),
        ({"g": {"type": "condition", "condition": [1]}}, "saved_groups.g.condition", "an object"),
        (
            {"g": {"type": "condition", "condition": {"x": {"$in": 3}}}},
            "saved_groups.g.condition.x.$in",
            "needs a list of values",
        ),
        (
            {"g": {"type": "condition", "condition": {"x": {"$regx": "a"}}}},
            "saved_groups.g.condition.x.$regx",
            "Unknown operator",
        ),
        (
            {"g": {"type": "condition", "condition": {"x": {"$regex": "(a)\\1"}}}},
            "saved_groups.g.condition.x.$regex",
            "backreferences",
        ),
        (
            {"g": {"type": "condition", "condition": {"$savedGroup": {"id": "nope"}}}},
            "saved_groups.g.condition.$savedGroup",
            "'nope', which is not defined",
        ),
        (
            {"g": {"type": "condition", "condition": {"$savedGroup": {"id": "l"}}}, "l": ["u"]},
            "saved_groups.g.condition.$savedGroup",
            "a plain list of values",
        ),
        (
            {
                "a": {"type": "condition", "condition": {"$savedGroup": {"id": "b"}}},
                "b": {"type": "condition", "condition": {"$not": {"$savedGroup": {"id": "a"}}}},
            },
            "saved_groups.a.condition",
            "refers to itself (a -> b -> a)",
        ),
    ],
)
def test_malformed_groups_are_refused_with_their_path(
    groups: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        check_saved_groups(groups)
    assert info.value.field == field
    assert fragment in info.value.detail


def test_references_must_name_a_typed_group() -> None:
    condition = {"$or": [{"$savedGroup": {"id": "beta"}}, {"$savedGroup": {"id": "staff"}}]}
    with pytest.raises(ConfigError) as info:
        check_group_references(GOOD, condition, "segments[0].condition", owner='Segment "s"')
    assert info.value.field == "segments[0].condition.$or[1].$savedGroup"
    assert "$inGroup" in info.value.detail


def test_workspace_refuses_a_segment_or_rule_naming_an_unknown_group() -> None:
    segment = {"key": "s", "name": "S", "condition": {"$savedGroup": {"id": "missing"}}}
    with pytest.raises(ConfigError) as info:
        parse_workspace({"saved_groups": GOOD, "segments": [segment]})
    assert info.value.field == "segments[0].condition.$savedGroup"
    rule = {"id": "r", "when": {"$savedGroup": {"id": "staff"}}, "then": {"variant": "a"}}
    slot = {"key": "hero", "kind": "block", "variants": [{"id": "a"}], "rules": [rule]}
    with pytest.raises(ConfigError) as info:
        parse_workspace({"saved_groups": GOOD, "slots": [slot]})
    assert info.value.field == "slots[0].rules[0].when.$savedGroup"


def test_workspace_reports_a_malformed_group_under_saved_groups() -> None:
    with pytest.raises(ConfigError) as info:
        parse_workspace({"saved_groups": {"g": {"type": "list", "values": []}}})
    assert info.value.field == "saved_groups.g.attributeKey"


def test_segments_use_typed_groups_and_follow_them_to_the_request() -> None:
    workspace = parse_workspace(
        {
            "builtin_segments": False,
            "saved_groups": {
                **GOOD,
                "on_mobile": {"type": "condition", "condition": {"context.device.type": "mobile"}},
            },
            "segments": [
                {"key": "pro_beta", "name": "P", "condition": {"$savedGroup": {"id": "pro_beta"}}},
                {"key": "mobile", "name": "M", "condition": {"$savedGroup": {"id": "on_mobile"}}},
            ],
        }
    )
    registry = SegmentRegistry(workspace.segments, workspace.saved_groups)
    assert registry.context_segment_keys == ["mobile"]
    assert registry.profile_segment_keys == ["pro_beta"]
    member = {"profile": {"user_id": "u1", "traits": {"plan": "pro"}}, "context": {}}
    other = {"profile": {"user_id": "u2", "traits": {"plan": "pro"}}, "context": {}}
    assert registry.evaluate_profile(member) == ["pro_beta"]
    assert registry.evaluate_profile(other) == []
    on_phone = {"profile": {}, "context": {"device": {"type": "mobile"}}}
    assert registry.evaluate_context(on_phone) == ["mobile"]
    assert workspace.document()["saved_groups"]["beta"]["attributeKey"] == "profile.user_id"


def test_a_segment_definition_alone_accepts_a_reference() -> None:
    """The definition is checked without the workspace's groups; the workspace checks the id."""
    SegmentDefinition(key="s", name="S", condition={"$savedGroup": {"id": "beta"}})
