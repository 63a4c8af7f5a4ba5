"""A bandit as an experiment arm: bandit vs a fixed variant, measured by the experiments engine."""

from __future__ import annotations

import random

import pytest

from loopwise.clock import FixedClock
from loopwise.config import Workspace
from loopwise.errors import ConfigError
from tests.bandits.conftest import bandit_workspace, decide, new_engine, send

RATES = {"a": 0.05, "b": 0.3, "c": 0.1}


def _workspace(strategy: str = "fixed") -> Workspace:
    document = bandit_workspace().model_dump(mode="json", exclude_none=True)
    document["slots"][0]["strategy"] = strategy
    if strategy == "fixed":
        del document["slots"][0]["bandit"]
    document["experiments"] = [
        {
            "key": "hero-bandit",
            "slot": "hero",
            "arms": [
                {"key": "fixed", "variant": "a"},
                {"key": "bandit", "strategy": "bandit"},
            ],
            "metrics": [{"key": "clicked", "kind": "conversion", "event": "Content Clicked"}],
        }
    ]
    return Workspace.model_validate(document)


def test_bandit_arm_against_a_fixed_variant(clock: FixedClock) -> None:
    engine = new_engine(_workspace(), clock)
    rng = random.Random(8)
    arms: dict[str, list[str]] = {"fixed": [], "bandit": []}
    for i in range(600):
        clock.advance(5)
        reply = decide(engine, f"u{i}")
        slot = reply["slots"][0]
        arm = "bandit" if slot["strategy"] == "bandit" else "fixed"
        arms[arm].append(slot["variant"]["id"])
        engine.services.decide.flush()
        if rng.random() < RATES[slot["variant"]["id"]]:
            send(
                engine, clock, "track", anonymousId=f"u{i}", event="Content Clicked",
                properties={"decision_id": reply["decision_id"], "slot": "hero"},
            )  # fmt: skip
    assert set(arms["fixed"]) == {"a"}
    assert arms["bandit"][-100:].count("b") > 70  # the bandit found b within its own arm
    (learner,) = engine.bandit_state()
    assert sum(a["decisions"] for a in learner["arms"].values()) == len(arms["bandit"])
    results = engine.experiment_results("hero-bandit")
    (metric,) = results["metrics"]
    by_arm = {row["arm"]: row for row in metric["results"]}
    assert by_arm["fixed"]["users"] == len(arms["fixed"])
    assert by_arm["bandit"]["users"] == len(arms["bandit"])
    assert by_arm["bandit"]["value"] > by_arm["fixed"]["value"] + 0.1
    assert by_arm["bandit"]["lift"]["absolute_ci_low"] > 0


def test_validation_of_bandit_slots() -> None:
    document = bandit_workspace().model_dump(mode="json", exclude_none=True)
    document["slots"][0]["bandit"] = {"floor": 0.4}
    with pytest.raises(ConfigError) as caught:
        _validate(document)
    assert "floor" in str(caught.value.field)
    document["slots"][0]["bandit"] = {"segments": ["nobody"]}
    with pytest.raises(ConfigError) as caught:
        _validate(document)
    assert caught.value.field == "slots[0].bandit.segments[0]"
    document["slots"][0]["bandit"] = {"floor": 0.001}
    with pytest.raises(ConfigError) as caught:
        _validate(document)
    assert "floor" in str(caught.value.field)


def _validate(document: dict[str, object]) -> Workspace:
    from loopwise.config import parse_workspace

    return parse_workspace(document)
