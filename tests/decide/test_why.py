"""The end-user explanation built from a decision's reasons."""

from __future__ import annotations

import pytest

from loopwise.decide import explain
from loopwise.decide.why import explain_decision, plain_reason


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (
            explain.strategy_used("recently_viewed", explain.RECENTLY_VIEWED),
            "Because you viewed this recently",
        ),
        (explain.strategy_used("popular", explain.POPULAR), "Because it is popular right now"),
        (explain.strategy_used("new", explain.NEW_ARRIVAL), "Because it is a new arrival"),
        (
            explain.rule_matched("r1", "", "hiking_fans", "Hiking fans"),
            "Because you are in segment Hiking fans",
        ),
        (explain.pinned("r1", ["sku-1"]), "Featured by the shop"),
        (explain.impersonal_instead("als", "popular"), "Chosen without using your profile"),
        (
            explain.cold_start("popular items"),
            "We don't know your interests yet, so these are popular items",
        ),
    ],
)
def test_reasons_in_plain_words(reason: explain.Reason, text: str) -> None:
    assert plain_reason(reason.model_dump()) == text


def test_internal_reasons_are_left_out() -> None:
    assert plain_reason(explain.variant_chosen("v1", None).model_dump()) is None


def test_summary_prefers_consent_then_rule_then_strategy() -> None:
    reasons = [
        explain.strategy_used("popular", explain.POPULAR).model_dump(),
        explain.not_consented().model_dump(),
    ]
    record = {"decision_id": "d", "slots": [{"slot": "s", "reasons": reasons}]}
    slot = explain_decision(record)["slots"][0]
    assert slot["summary"].startswith("Personalization not consented")
    assert slot["ai_influenced"] is False
    assert slot["reasons"][-1].startswith("Not AI-influenced")


def test_ai_influenced_slots_say_so() -> None:
    reasons = [explain.ai_influenced("als", trained=True).model_dump()]
    record = {
        "decision_id": "d",
        "ai_influenced": True,
        "slots": [{"slot": "s", "ai_influenced": True, "reasons": reasons}],
    }
    slot = explain_decision(record)["slots"][0]
    assert slot["summary"].startswith("AI-influenced: a model trained")


@pytest.mark.parametrize(
    "reason",
    [
        # a trained model's item reason, as the decider records it (kind "model")
        explain.strategy_used("als", explain.model_personal("als", "20260105-1", 5), "model"),
        # a model strategy before its first training (popular items, kind "model")
        explain.strategy_used(
            "hybrid", explain.instead_popular(explain.model_not_trained("hybrid")), "model"
        ),
    ],
)
def test_model_reasons_name_no_strategy_model_or_command(reason: explain.Reason) -> None:
    text = plain_reason(reason.model_dump())
    assert text is not None
    for internal in ("Strategy", "als", "hybrid", "20260105", "loopwise train"):
        assert internal not in text
