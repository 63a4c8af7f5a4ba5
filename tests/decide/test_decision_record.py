"""The decision log record, made from the reply's objects or from the slots' JSON already
dumped (a campaign serializes each slot once, for its row and for the log)."""

from __future__ import annotations

from datetime import UTC, datetime

from loopwise.decide import explain
from loopwise.decide.request import (
    DecidedItem,
    DecidedVariant,
    DecideResponse,
    Reason,
    SlotDecision,
)
from loopwise.decide.service import _slot_json, decision_record

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _response() -> DecideResponse:
    items = [DecidedItem(id="sku-1", title="Boot", score=2.5, propensity=0.9, attributes={})]
    reasons = [
        explain.rule_matched("r1", "", "hikers", "Hikers"),
        explain.cold_start("popular items"),  # no ref: left out of the reply's JSON
        Reason(kind="strategy", text="Strategy popular: popular right now", ref="popular"),
    ]
    return DecideResponse(
        decision_id="d_1",
        profile_id="p_1",
        segments=["hikers"],
        slots=[
            SlotDecision(
                slot="list", kind="list", items=items, strategy="popular", reasons=reasons
            ),
            SlotDecision(
                slot="hero",
                kind="block",
                variant=DecidedVariant(id="v1", content={"title": "Hi", "note": None}),
                reasons=[explain.variant_chosen("v1", None)],
                bandit={"bucket": 3},
            ),
        ],
    )


def test_the_record_from_the_dumped_slots_is_the_record_from_the_reply() -> None:
    response = _response()
    dumped = [_slot_json(slot) for slot in response.slots]
    for identified in (True, False):
        plain = decision_record(response, NOW, identified=identified)
        assert decision_record(response, NOW, identified=identified, dumped=dumped) == plain
    assert "ref" not in dumped[0]["reasons"][1]  # the reply's JSON leaves the None out


def test_reason_fields_are_those_the_record_writes() -> None:
    # _reason_record rebuilds Reason.model_dump(mode="json") from the reply's JSON
    assert tuple(Reason.model_fields) == ("kind", "text", "ref")


def test_fixed_reasons_are_built_once() -> None:
    assert explain.strategy_used("popular", explain.POPULAR) is explain.strategy_used(
        "popular", explain.POPULAR
    )
    assert explain.not_consented() == explain.not_consented("personalization")
