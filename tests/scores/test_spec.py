"""The workspace's scores: section — defaults, validation with field paths, references."""

from __future__ import annotations

from typing import Any

import pytest

from loopwise.config import parse_workspace
from loopwise.errors import ConfigError
from loopwise.scores.spec import ScoreDefinition, nest, referenced_scores


def test_defaults_are_convert_and_churn() -> None:
    scores = parse_workspace({}).scores
    convert, churn = scores.definitions
    assert (convert.key, convert.event, convert.horizon_days) == ("convert", "purchase", 7.0)
    assert (churn.key, churn.inactive, churn.horizon_days) == ("churn", True, 30.0)
    assert convert.label_text() == "purchase within 7 days"
    assert churn.label_text() == "no activity within 30 days"


def test_engage_defaults_to_views_of_its_category() -> None:
    definition = ScoreDefinition.model_validate({"key": "engage.shoes"})
    assert (definition.event, definition.category, definition.horizon_days) == (
        "item_view",
        "shoes",
        7.0,
    )
    assert definition.path == ("engage", "shoes")
    custom = ScoreDefinition.model_validate(
        {"key": "engage.shoes", "event": "purchase", "horizon_days": 30}
    )
    assert (custom.event, custom.category, custom.horizon_days) == ("purchase", "shoes", 30.0)


@pytest.mark.parametrize(
    ("definition", "field", "words"),
    [
        ({"key": "Convert!"}, "scores.definitions[0]", "lower-case name"),
        ({"key": "ltv"}, "scores.definitions[0]", "exactly one label"),
        ({"key": "x", "event": "purchase", "inactive": True}, "scores.definitions[0]", "one label"),
        ({"key": "x", "event": "purchase"}, "scores.definitions[0]", "horizon_days above 0"),
        ({"key": "x", "inactive": True, "category": "a", "horizon_days": 3}, "", "category"),
        ({"key": "convert", "horizon_days": 400}, "scores.definitions[0].horizon_days", "366"),
        ({"key": "convert", "colour": "red"}, "scores.definitions[0].colour", "Extra"),
    ],
)
def test_bad_definitions_name_the_field(definition: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_workspace({"scores": {"definitions": [definition]}})
    assert (caught.value.field or "").startswith(field or "scores.definitions[0]")
    assert words.lower() in caught.value.detail.lower()


def test_duplicate_and_colliding_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="defined twice"):
        parse_workspace({"scores": {"definitions": [{"key": "convert"}, {"key": "convert"}]}})
    with pytest.raises(ConfigError, match="collide"):
        parse_workspace(
            {
                "scores": {
                    "definitions": [
                        {"key": "engage", "event": "click", "horizon_days": 1},
                        {"key": "engage.shoes"},
                    ]
                }
            }
        )


def test_rules_and_segments_may_only_read_defined_scores() -> None:
    slot = {
        "key": "hero",
        "kind": "block",
        "variants": [{"id": "a", "content": {}}, {"id": "b", "content": {}}],
        "rules": [
            {"id": "r", "when": {"profile.scores.convrt": {"$gte": 0.75}}, "then": {"variant": "b"}}
        ],
    }
    with pytest.raises(ConfigError) as caught:
        parse_workspace({"slots": [slot]})
    assert caught.value.field == "slots[0].rules[0].when.profile.scores.convrt"
    assert "convert" in caught.value.detail  # names the defined ones
    segment = {
        "key": "hot",
        "name": "Hot",
        "condition": {"profile.scores.engage.shoes": {"$gt": 0.5}},
    }
    with pytest.raises(ConfigError) as caught:
        parse_workspace({"segments": [segment]})
    assert caught.value.field == "segments[0].condition.profile.scores.engage.shoes"
    workspace = parse_workspace(
        {"segments": [segment], "scores": {"definitions": [{"key": "engage.shoes"}]}}
    )
    assert workspace.scores.get("engage.shoes") is not None


def test_nest_and_references() -> None:
    assert nest({"convert": 0.3, "engage.shoes": 0.1, "engage.hats": 0.2}) == {
        "convert": 0.3,
        "engage": {"shoes": 0.1, "hats": 0.2},
    }
    condition = {"$or": [{"profile.scores.convert": {"$gte": 0.75}}, {"profile.sessions": 2}]}
    assert list(referenced_scores(condition)) == ["convert"]
