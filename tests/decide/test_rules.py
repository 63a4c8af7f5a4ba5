from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from loopwise.decide.rules import CompiledRules, Rule, RuleAction, count_leaves, select_rule

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def rule(rule_id: str, **fields: Any) -> Rule:
    fields.setdefault("then", {"strategy": "popular"})
    return Rule.model_validate({"id": rule_id, **fields})


def attrs(segments: list[str] | None = None, **profile: Any) -> dict[str, Any]:
    return {"profile": profile, "context": {}, "segments": segments or []}


def test_action_needs_something_to_do() -> None:
    with pytest.raises(ValidationError, match="does nothing"):
        RuleAction()
    with pytest.raises(ValidationError, match="not both"):
        RuleAction(variant="a", strategy="popular")
    assert RuleAction(pin=["x"]).used_fields() == ["pin"]


def test_highest_priority_wins() -> None:
    rules = [rule("low", priority=1), rule("high", priority=5), rule("mid", priority=3)]
    assert select_rule(rules, attrs(), NOW).id == "high"  # type: ignore[union-attr]


def test_specific_beats_broad_at_equal_priority() -> None:
    broad = rule("broad", when={"profile.known": True})
    specific = rule("specific", when={"profile.known": True, "profile.sessions": {"$gte": 2}})
    in_segment = rule("segment", segments=["runners"])
    user = attrs(known=True, sessions=3)
    assert select_rule([broad, specific], user, NOW).id == "specific"  # type: ignore[union-attr]
    # ties keep list order
    assert select_rule([broad, in_segment], attrs(["runners"], known=True), NOW).id == "broad"  # type: ignore[union-attr]
    assert specific.specificity == 2
    assert in_segment.specificity == 1


def test_priority_beats_specificity() -> None:
    specific = rule("specific", when={"profile.known": True, "profile.sessions": {"$gt": 1}})
    broad = rule("broad", priority=1)
    assert select_rule([specific, broad], attrs(known=True, sessions=3), NOW).id == "broad"  # type: ignore[union-attr]


def test_non_matching_rules_are_skipped() -> None:
    rules = [rule("vip", priority=9, when={"profile.lifecycle": "repeat_customer"}), rule("all")]
    assert select_rule(rules, attrs(lifecycle="prospect"), NOW).id == "all"  # type: ignore[union-attr]
    assert select_rule(rules[:1], attrs(lifecycle="prospect"), NOW) is None


def test_segments_sugar_means_any_of() -> None:
    compiled = CompiledRules([rule("fans", segments=["runners", "hikers"])])
    assert compiled.select(attrs(), ["hikers"], NOW) is not None
    assert compiled.select(attrs(), ["swimmers"], NOW) is None


def test_when_can_read_segments_and_context() -> None:
    r = rule("mobile-runners", when={"segments": "runners", "context.device.type": "mobile"})
    hit = {"profile": {}, "context": {"device": {"type": "mobile"}}, "segments": ["runners"]}
    miss = {"profile": {}, "context": {"device": {"type": "desktop"}}, "segments": ["runners"]}
    assert select_rule([r], hit, NOW) is r
    assert select_rule([r], miss, NOW) is None


def test_time_window_is_half_open() -> None:
    sale = rule(
        "sale",
        priority=1,
        active_from=datetime(2025, 6, 1, tzinfo=UTC),
        active_to="2025-06-02T00:00:00",  # naive: read as UTC
    )
    rules = [sale, rule("always")]
    assert select_rule(rules, attrs(), datetime(2025, 5, 31, 23, tzinfo=UTC)).id == "always"  # type: ignore[union-attr]
    assert select_rule(rules, attrs(), datetime(2025, 6, 1, tzinfo=UTC)).id == "sale"  # type: ignore[union-attr]
    assert select_rule(rules, attrs(), datetime(2025, 6, 2, tzinfo=UTC)).id == "always"  # type: ignore[union-attr]


def test_window_must_be_ordered() -> None:
    with pytest.raises(ValidationError) as info:
        rule("bad", active_from="2025-06-02T00:00:00Z", active_to="2025-06-01T00:00:00Z")
    assert info.value.errors()[0]["loc"] == ("active_to",)


def test_malformed_condition_reports_its_path() -> None:
    with pytest.raises(ValidationError) as info:
        rule("bad", when={"$and": [{"profile.sessions": {"$gt": 1}}, {"profile.x": {"$in": 5}}]})
    error = info.value.errors()[0]
    assert error["loc"] == ("when", "$and[1].profile.x.$in")
    assert "needs a list" in error["msg"]


def test_ordered_shows_evaluation_order() -> None:
    rules = [rule("a"), rule("b", priority=2), rule("c", when={"profile.known": True})]
    assert [r.id for r in CompiledRules(rules).ordered] == ["b", "c", "a"]


@pytest.mark.parametrize(
    ("condition", "leaves"),
    [
        ({}, 0),
        ({"profile.a": 1}, 1),
        ({"profile.a": {"$gt": 1, "$lt": 5}}, 2),
        ({"$or": [{"profile.a": 1}, {"profile.b": 2}], "profile.c": {"$exists": True}}, 3),
        ({"$not": {"profile.a": 1}}, 1),
        ({"profile.tags": {"$elemMatch": {"$eq": "x"}}}, 1),
    ],
)
def test_count_leaves(condition: dict[str, Any], leaves: int) -> None:
    assert count_leaves(condition) == leaves


def test_rule_ids_are_slugs() -> None:
    with pytest.raises(ValidationError):
        rule("Not A Slug")


def test_rule_with_an_unknown_operator_is_refused_naming_the_path() -> None:
    with pytest.raises(ValidationError) as info:
        Rule.model_validate(
            {"id": "r", "when": {"profile.sessions": {"$bogus": 1}}, "then": {"pin": ["a"]}}
        )
    error = info.value.errors()[0]
    assert error["loc"] == ("when", "profile.sessions.$bogus")
    assert "Unknown operator" in error["msg"]
