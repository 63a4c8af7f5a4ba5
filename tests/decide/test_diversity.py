"""A list slot's diversity settings: MMR reordering, reserved exploration and serendipity."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from loopwise.catalog.items import Item
from loopwise.decide.decider import Decider
from loopwise.decide.request import SlotRequest
from loopwise.decide.slots import Slot
from loopwise.decide.strategies import (
    ScoredItem,
    StrategyContext,
    StrategyRegistry,
    item_features,
    item_similarity,
    mmr_order,
)
from tests.decide.test_decider import NOW, build_catalog, build_stats

RUNNER = {"affinity": {"categories": {"running": 9.0}}}


class RunningFirst:
    """A strategy that likes running items best, then yoga, then camping."""

    name = "running_first"

    def recommend(self, ctx: StrategyContext, n: int) -> list[ScoredItem]:
        order = [f"r0{i}" for i in range(4)] + [f"y0{i}" for i in range(4)] + ["c00", "c01"]
        return [ScoredItem(item, 10.0 - k) for k, item in enumerate(order)][:n]


def decider(**diversity: object) -> Decider:
    registry = StrategyRegistry.default()
    registry.register(RunningFirst())
    raw = {"key": "recs", "kind": "list", "n": 4, "default_strategy": "running_first"}
    if diversity:
        raw["diversity"] = diversity
    slots = {"recs": Slot.model_validate(raw)}
    return Decider(slots, registry, build_catalog(), build_stats())


def run(d: Decider, seed: int = 1) -> tuple[list[str], list[float], list[str]]:
    (decision,) = d.decide_slots(
        [SlotRequest(slot="recs")],
        profile=RUNNER,
        context={},
        segments=[],
        segment_names={},
        now=NOW,
        rng=random.Random(seed),
    )
    return (
        [i.id for i in decision.items],
        [i.propensity for i in decision.items],
        [r.text for r in decision.reasons],
    )


def test_without_diversity_the_ranking_stands() -> None:
    items, propensities, _ = run(decider())
    assert items == ["r00", "r01", "r02", "r03"]
    assert propensities == [1.0] * 4


def test_mmr_mixes_categories_and_says_so() -> None:
    items, _, reasons = run(decider(mmr_lambda=0.5))
    assert items[0] == "r00"  # the most relevant stays first
    assert {i[0] for i in items} >= {"r", "y", "c"}
    assert any(text.startswith("Diversified") for text in reasons)


def test_reserved_positions_show_serendipity_and_exploration() -> None:
    seen_random = set()
    for seed in range(20):
        items, propensities, reasons = run(decider(explore_positions=2, serendipity=0.5), seed=seed)
        assert items[:2] == ["r00", "r01"]
        serendipitous, random_pick = items[2], items[3]
        # never a running item: the person already likes running
        assert not serendipitous.startswith("r")
        assert 0 < propensities[2] < 1 and 0 < propensities[3] < 1
        assert any(t.startswith("Serendipity") for t in reasons)
        assert any(t.startswith("Exploration") for t in reasons)
        seen_random.add(random_pick)
    assert len(seen_random) > 3  # uniformly random, not a fixed item


def test_explore_positions_cannot_exceed_n() -> None:
    with pytest.raises(ValidationError) as caught:
        Slot.model_validate(
            {"key": "s", "kind": "list", "n": 2, "diversity": {"explore_positions": 3}}
        )
    assert "explore_positions" in str(caught.value)


def test_block_slots_have_no_diversity() -> None:
    with pytest.raises(ValidationError, match="only applies to list slots"):
        Slot.model_validate(
            {
                "key": "b",
                "kind": "block",
                "variants": [{"id": "a", "content": {}}],
                "diversity": {"mmr_lambda": 0.5},
            }
        )


def test_mmr_order_by_hand() -> None:
    catalog = {
        "a": Item("a", categories=("x",)),
        "b": Item("b", categories=("x",)),
        "c": Item("c", categories=("y",)),
    }
    assert mmr_order(["a", "b", "c"], [1.0, 0.9, 0.5], catalog, 3, 1.0) == [0, 1, 2]
    assert mmr_order(["a", "b", "c"], [1.0, 0.9, 0.5], catalog, 3, 0.5) == [0, 2, 1]
    assert item_similarity(item_features(catalog["a"]), item_features(catalog["b"])) == 1.0
    assert item_similarity(item_features(catalog["a"]), item_features(catalog["c"])) == 0.0
    assert build_catalog()  # the shared fixture catalog still builds
