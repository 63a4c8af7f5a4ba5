"""Bandit block slots: regret and click gain against a fixed A/B/n split, and what they cost.

- the simulation of :mod:`loopwise.bandits.simulate` (the real engine in process: decisions,
  clicks through ingest, learning through the projection's outcome effects): cumulative regret
  and click rate per side;
- decide latency of one block slot served by the bandit (Thompson, contextual linear Thompson)
  against the same slot fixed, on one warmed engine;
- start-up rebuild of the bandit state from the decision log (SQLite), with and without the
  checkpoint.

``python -m benchmarks --only bandits`` writes its section of RESULTS.md;
``python -m benchmarks.bench_bandits [--quick]`` prints it.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.bench_decide import percentile
from benchmarks.machine import describe
from loopwise.bandits.simulate import simulate
from loopwise.clock import FixedClock
from loopwise.config import Workspace
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.sqlite import SqliteStorage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def _workspace(strategy: str, bandit: dict[str, Any] | None = None) -> Workspace:
    slot: dict[str, Any] = {
        "key": "hero",
        "kind": "block",
        "strategy": strategy,
        "variants": [{"id": f"v{i}", "content": {"headline": f"H{i}"}} for i in range(4)],
    }
    if bandit is not None:
        slot["bandit"] = bandit
    return Workspace.model_validate(
        {
            "workspace": "bench-bandits",
            "builtin_segments": False,
            "segments": [
                {"key": "mobile", "name": "Mobile", "condition": {"context.device.type": "mobile"}}
            ],
            "slots": [slot],
        }
    )


SETUPS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "fixed (default variant)": ("fixed", None),
    "bandit: Thompson per segment": ("bandit", {"segments": ["mobile"]}),
    "bandit: linear Thompson (3 features)": (
        "bandit",
        {
            "algorithm": "linear_thompson",
            "features": ["context.device.type=mobile", "profile.sessions", "profile.engagement"],
        },
    ),
}


def _feed(engine: Engine, clock: FixedClock, rounds: int, rng: random.Random) -> None:
    """Warm the learner: decisions and some clicks."""
    for i in range(rounds):
        clock.advance(2)
        reply = engine.decide(_request(f"warm-{i}", rng))
        engine.services.decide.flush()
        if rng.random() < 0.05:
            message = {
                "type": "track",
                "anonymousId": f"warm-{i}",
                "event": "Content Clicked",
                "messageId": str(uuid.uuid4()),
                "timestamp": clock().isoformat(),
                "properties": {"decision_id": reply.decision_id, "slot": "hero"},
            }
            engine.ingest(parse_request(message, kind="track", received_at=clock()))


def _request(anon: str, rng: random.Random) -> DecideRequest:
    context = {"userAgent": PHONE} if rng.random() < 0.5 else {}
    return DecideRequest.model_validate(
        {"user": {"anonymous_id": anon}, "context": context, "slots": [{"slot": "hero"}]}
    )


def latency(requests: int, warm: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for label, (strategy, bandit) in SETUPS.items():
        clock = FixedClock(T0)
        engine = Engine(_workspace(strategy, bandit), MemoryStorage(), clock=clock, seed=1)
        rng = random.Random(2)
        _feed(engine, clock, warm, rng)
        batch = [_request(f"r-{i}", rng) for i in range(requests)]
        timings = []
        for request in batch:
            start = time.perf_counter()
            engine.decide(request)
            timings.append((time.perf_counter() - start) * 1000)
        engine.services.decide.flush()
        choose_us = _choose_cost(engine, strategy, bandit, rng)
        engine.close()
        timings.sort()
        out[label] = {
            "choose_us": choose_us,
            "p50": percentile(timings, 0.5),
            "p99": percentile(timings, 0.99),
            "mean": sum(timings) / len(timings),
        }
    return out


def _choose_cost(
    engine: Engine, strategy: str, bandit: dict[str, Any] | None, rng: random.Random
) -> float:
    """Microseconds of the bandit's own choice (distribution, floor, draw), warmed state."""
    if strategy != "bandit":
        return 0.0
    from loopwise.bandits.settings import BanditSettings

    settings = BanditSettings.model_validate(bandit or {})
    service = engine.services.bandits
    arms, weights = [f"v{i}" for i in range(4)], [1.0] * 4
    contexts: list[dict[str, Any]] = [{"device": {"type": "mobile"}}, {}]
    start = time.perf_counter()
    rounds = 2000
    for i in range(rounds):
        service.choose(
            "hero", settings, arms, weights, profile={"sessions": i % 5, "engagement": 40.0},
            context=contexts[i % 2], segments=["mobile"] if i % 2 == 0 else [], rng=rng,
        )  # fmt: skip
    return (time.perf_counter() - start) / rounds * 1e6


def rebuild(decisions: int) -> dict[str, float]:
    """Start-up cost: fold the decision log (first start), then from the checkpoint."""
    with tempfile.TemporaryDirectory() as scratch:
        clock = FixedClock(T0)
        workspace = _workspace("bandit", {"segments": ["mobile"]})
        engine = Engine(workspace, SqliteStorage(Path(scratch) / "db.sqlite"), clock=clock)
        _feed(engine, clock, decisions, random.Random(3))
        engine.close()
        clock.advance(3 * 86_400)  # past the attribution window
        start = time.perf_counter()
        engine = Engine(workspace, SqliteStorage(Path(scratch) / "db.sqlite"), clock=clock)
        first = time.perf_counter() - start
        engine.close()
        start = time.perf_counter()
        engine = Engine(workspace, SqliteStorage(Path(scratch) / "db.sqlite"), clock=clock)
        again = time.perf_counter() - start
        engine.close()
    return {"decisions": decisions, "first_start_s": first, "from_checkpoint_s": again}


def run(
    visitors: int = 6000, requests: int = 2000, warm: int = 1000, log: int = 5000
) -> dict[str, Any]:
    started = time.perf_counter()
    sim = simulate(visitors, seed=7)
    sim_seconds = time.perf_counter() - started
    return {
        "simulation": {**sim.to_dict(), "seconds": sim_seconds},
        "latency": latency(requests, warm),
        "requests": requests,
        "warm": warm,
        "rebuild": rebuild(log),
    }


def markdown(result: dict[str, Any]) -> list[str]:
    sim = result["simulation"]
    regret = sim["final_regret"]
    lines = [
        "Simulation (`loopwise.bandits.simulate`, the real engine in process, seed "
        f"{sim['seed']}): {sim['visitors']} visitors, half on phones, 4 headlines with a "
        "different best per device; an experiment gives half the traffic a fixed A/B/n split "
        "(one headline per arm) and half the bandit (Thompson sampling per device segment, "
        f"learning from clicks through the projection). {sim['seconds']:.0f} s.",
        "",
        "| side | decisions | clicks | click rate (measured) | click rate (ground truth) | "
        "cumulative regret (clicks lost) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for side, label in (("bandit", "bandit"), ("ab", "fixed A/B/n")):
        lines.append(
            f"| {label} | {sim['decisions'][side]} | {sim['clicks'][side]} | "
            f"{sim['measured_rate'][side]:.2%} | {sim['expected_rate'][side]:.2%} | "
            f"{regret[side]:.1f} |"
        )
    lines += [
        "",
        f"- clicks gained by the bandit over the A/B/n split: **{sim['gain']:+.1%}** (ground-truth "
        f"rates); the oracle (each device's best headline) clicks {sim['best_rate']:.2%}.",
        f"- regret per decision: bandit {regret['bandit'] / max(sim['decisions']['bandit'], 1):.4f}"
        f", A/B/n {regret['ab'] / max(sim['decisions']['ab'], 1):.4f}.",
        "",
        f"Decide latency, one block slot, {result['requests']} requests after {result['warm']} "
        "warm-up decisions with clicks (memory storage, in process):",
        "",
        "| slot | decide p50 ms | decide p99 ms | decide mean ms | the bandit's choice alone, µs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, row in result["latency"].items():
        choose = f"{row['choose_us']:.0f}" if row["choose_us"] else "-"
        lines.append(
            f"| {label} | {row['p50']:.3f} | {row['p99']:.3f} | {row['mean']:.3f} | {choose} |"
        )
    rb = result["rebuild"]
    lines += [
        "",
        f"- start-up with {rb['decisions']} bandit decisions in the log (SQLite): first start "
        f"(folds the log, writes the checkpoint) {rb['first_start_s']:.2f} s; next start (from "
        f"the checkpoint) {rb['from_checkpoint_s']:.2f} s (whole engine start-up).",
    ]
    return lines


def main() -> None:
    quick = "--quick" in sys.argv
    result = run(1500, 300, 300, 1000) if quick else run()
    print(f"Machine: {describe()}")
    print(f"Command: `.venv/bin/python -m benchmarks.bench_bandits{' --quick' if quick else ''}`")
    print()
    print("\n".join(markdown(result)))


if __name__ == "__main__":
    main()
