"""Which rules a score drove, and how /why words it."""

from __future__ import annotations

from loopwise.config import parse_workspace
from loopwise.decide import explain
from loopwise.decide.strategies import StrategyRegistry
from loopwise.decide.why import explain_decision
from loopwise.scores.explain import rule_scores
from loopwise.workspace.compiled import CompiledWorkspace

WORKSPACE = {
    "scores": {"definitions": [{"key": "convert"}, {"key": "churn"}, {"key": "engage.shoes"}]},
    "segments": [
        {"key": "at_risk", "name": "At risk", "condition": {"profile.scores.churn": {"$gt": 0.6}}},
    ],
    "slots": [
        {
            "key": "hero",
            "kind": "block",
            "variants": [{"id": "a", "content": {}}, {"id": "b", "content": {}}],
            "rules": [
                {
                    "id": "buyers",
                    "when": {
                        "$or": [
                            {"profile.scores.convert": {"$gte": 0.75}},
                            {"profile.scores.engage.shoes": {"$gt": 0.5}},
                        ]
                    },
                    "then": {"variant": "b"},
                },
                {"id": "save", "segments": ["at_risk"], "then": {"variant": "b"}},
                {"id": "plain", "when": {"profile.sessions": {"$gt": 3}}, "then": {"variant": "a"}},
            ],
        }
    ],
}


def test_rule_scores_reads_the_rule_and_the_segments_the_person_is_in() -> None:
    compiled = CompiledWorkspace(parse_workspace(WORKSPACE), StrategyRegistry.default())
    assert rule_scores(compiled, "hero", "buyers", []) == ["convert", "engage.shoes"]
    assert rule_scores(compiled, "hero", "save", ["at_risk"]) == ["churn"]
    assert rule_scores(compiled, "hero", "save", []) == []  # not in it: the score did not decide
    assert rule_scores(compiled, "hero", "plain", ["at_risk"]) == []
    assert rule_scores(compiled, "nope", "buyers", []) == []
    assert compiled.conditions_read_scores


def test_why_summarises_with_the_score_and_its_factors() -> None:
    reason = explain.score_influenced(
        "convert",
        "purchase within 7 days",
        0.82,
        [("items in your cart", 0.9), ("orders placed", -0.2)],
    )
    assert reason.ref == "scores.convert" and reason.kind == "model"
    assert reason.text == (
        "AI-influenced: a model estimates your likelihood of purchase within 7 days at 82% "
        "(score convert), mostly from: items in your cart (raises it), orders placed (lowers it)"
    )
    record = {
        "decision_id": "d_1",
        "ai_influenced": True,
        "slots": [
            {
                "slot": "hero",
                "ai_influenced": True,
                "reasons": [
                    explain.rule_matched("buyers", "", None, None).model_dump(),
                    explain.variant_chosen("b", "buyers").model_dump(),
                    reason.model_dump(),
                ],
            }
        ],
    }
    why = explain_decision(record)["slots"][0]
    assert why["summary"] == reason.text
    assert reason.text in why["reasons"]
