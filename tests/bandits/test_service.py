"""Bandit block slots end to end: the engine decides, clicks come back through ingest and the
projection's outcome effects, the bandit learns without retraining, logs exact propensities,
and its state survives a restart on every backend."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import pytest

from loopwise.clock import FixedClock
from loopwise.config import Workspace
from loopwise.decide.request import DecideRequest
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.stores import Storage
from tests.bandits.conftest import bandit_workspace, decide, new_engine, run_loop, send

RATES = {"a": 0.05, "b": 0.35, "c": 0.1}


def test_learns_the_best_variant_from_clicks(clock: FixedClock) -> None:
    engine = new_engine(bandit_workspace(warmup=10), clock)
    shown = run_loop(engine, clock, RATES, 500)
    late = collections.Counter(shown[-150:])
    assert late["b"] / 150 > 0.8
    assert engine.services.bandits.learned > 50  # successes learned online, no training job
    (learner,) = engine.bandit_state()
    assert learner["slot"] == "hero" and learner["bucket"] == "all"
    assert sum(arm["decisions"] for arm in learner["arms"].values()) == 500


def test_every_decision_logs_the_exact_propensity_and_floor(clock: FixedClock) -> None:
    engine = new_engine(bandit_workspace(floor=0.02), clock)
    run_loop(engine, clock, RATES, 200)
    reply = decide(engine, "someone")
    slot = reply["slots"][0]
    assert "bandit" not in slot  # the trace stays server-side
    assert slot["strategy"] == "bandit" and slot["ai_influenced"]
    assert any("bandit" in r["text"] for r in slot["reasons"])
    logged = engine.get_decision(reply["decision_id"])
    assert logged is not None
    entry = logged["slots"][0]
    probabilities = entry["bandit"]["probabilities"]
    assert entry["propensity"] == probabilities[entry["variant"]]
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert min(probabilities.values()) >= 0.02 - 1e-12


def test_warmup_serves_by_weight_until_each_arm_has_enough(clock: FixedClock) -> None:
    engine = new_engine(bandit_workspace(warmup=1000), clock)
    shown = run_loop(engine, clock, {"a": 0.0, "b": 0.9, "c": 0.0}, 300)
    counts = collections.Counter(shown)
    assert all(60 < counts[v] < 140 for v in "abc")
    logged = engine.get_decision(decide(engine, "x")["decision_id"])
    assert logged is not None and logged["slots"][0]["bandit"]["warmup"] is True
    assert logged["slots"][0]["propensity"] == pytest.approx(1 / 3)


def test_learns_per_segment(clock: FixedClock) -> None:
    engine = new_engine(bandit_workspace(segments=["mobile"]), clock)
    mobile = {"device": {"type": "mobile"}, "userAgent": "Mozilla/5.0 (iPhone)"}

    def context(i: int) -> dict[str, Any]:
        return {"device": {"type": "mobile"}} if i % 2 else {}

    import random

    rng = random.Random(4)
    for i in range(800):
        clock.advance(5)
        reply = decide(engine, f"p{i}", context(i))
        variant = reply["slots"][0]["variant"]["id"]
        best = "c" if i % 2 else "a"
        engine.services.decide.flush()
        if rng.random() < (0.4 if variant == best else 0.05):
            send(
                engine, clock, "track", anonymousId=f"p{i}", event="Content Clicked",
                properties={"decision_id": reply["decision_id"], "slot": "hero"},
            )  # fmt: skip
    state = {learner["bucket"]: learner["arms"] for learner in engine.bandit_state()}
    assert set(state) == {"all", "mobile"}
    assert max(state["mobile"], key=lambda v: state["mobile"][v]["decisions"]) == "c"
    assert max(state["all"], key=lambda v: state["all"][v]["decisions"]) == "a"
    assert decide(engine, "new-phone", mobile)["segments"] == ["mobile"]


def test_contextual_linear_thompson_sampling(clock: FixedClock) -> None:
    engine = new_engine(
        bandit_workspace(
            algorithm="linear_thompson", features=["context.device.type=mobile"], warmup=5
        ),
        clock,
    )
    import random

    rng = random.Random(5)
    late: list[tuple[bool, str]] = []
    for i in range(700):
        clock.advance(5)
        on_mobile = i % 2 == 1
        ctx = {"device": {"type": "mobile"}} if on_mobile else {}
        reply = decide(engine, f"q{i}", ctx)
        variant = reply["slots"][0]["variant"]["id"]
        engine.services.decide.flush()
        best = "c" if on_mobile else "b"
        if i >= 500:
            late.append((on_mobile, variant))
        if rng.random() < (0.5 if variant == best else 0.05):
            send(
                engine, clock, "track", anonymousId=f"q{i}", event="Content Clicked",
                properties={"decision_id": reply["decision_id"], "slot": "hero"},
            )  # fmt: skip
    mobile = [v for m, v in late if m]
    desktop = [v for m, v in late if not m]
    assert mobile.count("c") / len(mobile) > 0.7
    assert desktop.count("b") / len(desktop) > 0.7
    logged = engine.get_decision(decide(engine, "z", {"device": {"type": "mobile"}})["decision_id"])
    assert logged is not None and logged["slots"][0]["bandit"]["x"] == [1.0, 1.0]


def test_a_rule_that_picks_a_variant_wins_over_the_bandit(clock: FixedClock) -> None:
    document = bandit_workspace().model_dump(mode="json", exclude_none=True)
    document["slots"][0]["rules"] = [
        {"id": "phones", "when": {"context.device.type": "mobile"}, "then": {"variant": "c"}}
    ]
    engine = new_engine(Workspace.model_validate(document), clock)
    reply = decide(engine, "m", {"device": {"type": "mobile"}})
    assert reply["slots"][0]["variant"]["id"] == "c"
    assert reply["slots"][0]["strategy"] is None and reply["slots"][0]["propensity"] == 1.0


def test_no_consent_decisions_do_not_count(clock: FixedClock) -> None:
    document = bandit_workspace().model_dump(mode="json", exclude_none=True)
    document["privacy"] = {"defaults": {"default": {"analytics": False}}}
    engine = new_engine(Workspace.model_validate(document), clock)
    for i in range(20):
        decide(engine, f"anon{i}")
    engine.services.decide.flush()
    assert engine.bandit_state() == []


def test_never_prerendered(clock: FixedClock) -> None:
    engine = new_engine(bandit_workspace(), clock)
    reply = decide(engine, "c1")
    assert reply["cache"] is None or reply["cache"]["slots"]["hero"] == "live"


def test_state_survives_a_restart_on_every_backend(
    clock: FixedClock, backend: Callable[[], Storage]
) -> None:
    workspace = bandit_workspace(warmup=5)
    engine = new_engine(workspace, clock, backend())
    run_loop(engine, clock, RATES, 150)
    before = engine.bandit_state()
    _stop(engine)
    clock.advance(3 * 24 * 3600)  # past the attribution window: the next start checkpoints
    again = new_engine(workspace, clock, backend())
    assert again.bandit_state() == before
    stored = again.services.storage.config.get("bandits.checkpoint")
    assert stored is not None and stored["state"]
    _stop(again)
    third = new_engine(workspace, clock, backend())  # from the checkpoint, no tail left
    assert third.bandit_state() == before
    shown = run_loop(third, clock, RATES, 60, seed=9)
    assert collections.Counter(shown)["b"] > 30  # it goes on from what it knew
    third.close()


def _stop(engine: Any) -> None:
    """Shut an engine down as a restart would (memory storage lives on in its object)."""
    if getattr(engine.services.storage, "kind", "") == "memory":
        engine.services.decide.flush()
        return
    engine.close()


def test_bandit_slots_are_not_decided_at_the_edge() -> None:
    from loopwise.decide.edge_bundle import build_edge_bundle

    bundle = build_edge_bundle(bandit_workspace())
    assert "hero" in bundle["personal"] and "hero" not in bundle["slots"]


def test_trials_can_count_impressions_only(clock: FixedClock) -> None:
    storage = MemoryStorage()
    workspace = bandit_workspace(trial="impression")
    engine = new_engine(workspace, clock, storage)
    replies = []
    for i in range(10):
        clock.advance(5)
        replies.append(decide(engine, f"i{i}"))
    engine.services.decide.flush()
    for i, reply in enumerate(replies[:4]):
        send(
            engine, clock, "track", anonymousId=f"i{i}", event="Content Impression",
            properties={"decision_id": reply["decision_id"], "slot": "hero"},
        )  # fmt: skip
    for i in (0, 7):  # one click after an impression, one without any
        send(
            engine, clock, "track", anonymousId=f"i{i}", event="Content Clicked",
            properties={"decision_id": replies[i]["decision_id"], "slot": "hero"},
        )  # fmt: skip

    def totals(state: list[dict[str, Any]]) -> tuple[int, int]:
        arms = [arm for learner in state for arm in learner["arms"].values()]
        return sum(a["decisions"] for a in arms), sum(a["successes"] for a in arms)

    assert totals(engine.bandit_state()) == (5, 2)
    again = new_engine(workspace, clock, storage)  # rebuilt from the log: the same
    assert totals(again.bandit_state()) == (5, 2)


def test_a_resync_reads_only_the_attribution_window_not_the_whole_log(clock: FixedClock) -> None:
    storage = MemoryStorage()
    engine = new_engine(bandit_workspace(warmup=5), clock, storage)
    service = engine.services.bandits
    run_loop(engine, clock, RATES, 120)
    learned = engine.bandit_state()
    assert service.resync() == 120  # nothing settled yet: the whole log is in the window
    assert engine.bandit_state() == learned
    clock.advance(3 * 24 * 3600)  # the 120 decisions leave the window: settled from now on
    assert service.resync() == 120  # this round settles them
    assert service.resync() == 0  # the next one starts after them
    assert engine.bandit_state() == learned
    run_loop(engine, clock, RATES, 30, seed=5)
    assert service.resync() == 30  # only the window's decisions are read again
    restarted = new_engine(bandit_workspace(warmup=5), clock, storage)
    assert engine.bandit_state() == restarted.bandit_state()


def test_a_start_reads_the_decisions_of_other_slots_once(clock: FixedClock) -> None:
    """A log of mostly non-bandit decisions (page slots, campaigns) is read by one start, not
    by every start after it: the checkpoint moves past them though nothing was folded."""
    document = bandit_workspace(warmup=5).model_dump(mode="json", exclude_unset=True)
    plain = {"key": "banner", "kind": "block", "variants": [{"id": "x", "content": {"t": "X"}}]}
    document["slots"].append(plain)
    workspace = Workspace.model_validate(document)
    storage = MemoryStorage()
    engine = new_engine(workspace, clock, storage)
    run_loop(engine, clock, RATES, 20)
    clock.advance(3 * 24 * 3600)  # the bandit's decisions settle; then others, still recent
    for i in range(30):
        clock.advance(5)
        engine.decide(
            DecideRequest.model_validate(
                {"user": {"anonymous_id": f"o{i}"}, "slots": [{"slot": "banner"}]}
            )
        )
    engine.services.decide.flush()
    learned = engine.bandit_state()
    reads = _count_reads(storage)
    assert new_engine(workspace, clock, storage).bandit_state() == learned
    assert reads[-1] == 50  # the first start reads the whole log and checkpoints at its end
    assert new_engine(workspace, clock, storage).bandit_state() == learned
    assert reads[-1] <= 1  # the next: only the newest decision, which the checkpoint holds
    run_loop(engine, clock, RATES, 5, seed=4)  # new bandit decisions: in the window again
    starts = new_engine(workspace, clock, storage)
    assert reads[-1] == 6 and starts.services.bandits.rebuild() == 5


def _count_reads(storage: MemoryStorage) -> list[int]:
    """How many decisions each later read of the whole log (a start's) yields."""
    counts: list[int] = []
    iterate = storage.decisions.iter

    def counted(since: Any = None) -> Any:
        counts.append(0)
        for decision in iterate(since):
            counts[-1] += 1
            yield decision

    storage.decisions.iter = counted  # type: ignore[method-assign]
    return counts
