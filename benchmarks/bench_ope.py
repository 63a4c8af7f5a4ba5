"""Off-policy evaluation: Open Bandit Dataset against Open Bandit Pipeline, and its cost.

- OBD (``../shared/data/obd``, ZOZOTOWN, the random policy's logs of campaign ``all``): the BTS
  policy's click rate estimated by IPW, SNIPW and DR, next to Open Bandit Pipeline 0.4.1's IPW
  estimate (measured with obp, see docs/ope.md) and the BTS policy's own logged click rate (the
  ground truth); the time of the Monte Carlo action distribution and of the estimates;
- Loopwise's decision log: the time of ``POST /v1/admin/ope``'s work for a slot with N logged
  decisions (in process, memory storage).

``python -m benchmarks --only ope`` writes its section of RESULTS.md;
``python -m benchmarks.bench_ope [--quick]`` prints it.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.machine import describe
from loopwise.ope.obd import evaluate_obd

OBD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "obd"
OBP_IPW = 0.00455288  # Open Bandit Pipeline 0.4.1, random_state 12345, n_sim 100,000


def obd(bootstrap: int) -> dict[str, Any] | None:
    if not OBD.exists():
        return None
    start = time.perf_counter()
    report = evaluate_obd(
        OBD, campaign="all", logging_policy="random", policy="obd-bts", n_bootstrap=bootstrap
    )
    return {"report": report, "seconds": time.perf_counter() - start}


def decision_log(decisions: int, bootstrap: int) -> dict[str, Any]:
    import uuid

    from loopwise.clock import FixedClock
    from loopwise.config import Workspace
    from loopwise.decide.request import DecideRequest
    from loopwise.engine import Engine
    from loopwise.events.normalize import parse_request
    from loopwise.storage.memory import MemoryStorage

    rates = {"a": 0.05, "b": 0.12, "c": 0.08}
    workspace = Workspace.model_validate(
        {
            "workspace": "bench-ope",
            "builtin_segments": False,
            "slots": [
                {
                    "key": "hero",
                    "kind": "block",
                    "strategy": "bandit",
                    "bandit": {"warmup": 10**6},  # uniform logging throughout
                    "variants": [{"id": v, "content": {}} for v in rates],
                }
            ],
        }
    )
    clock = FixedClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    engine = Engine(workspace, MemoryStorage(), clock=clock, seed=1)
    rng = random.Random(1)
    for i in range(decisions):
        clock.advance(5)
        body = {"user": {"anonymous_id": f"v{i}"}, "slots": [{"slot": "hero"}]}
        reply = engine.decide(DecideRequest.model_validate(body))
        engine.services.decide.flush()
        variant = reply.slots[0].variant
        if variant is not None and rng.random() < rates[variant.id]:
            message = {
                "type": "track",
                "anonymousId": f"v{i}",
                "event": "Content Clicked",
                "messageId": str(uuid.uuid4()),
                "timestamp": clock().isoformat(),
                "properties": {"decision_id": reply.decision_id, "slot": "hero"},
            }
            engine.ingest(parse_request(message, kind="track", received_at=clock()))
    start = time.perf_counter()
    report = engine.run_ope({"policy": "variant:b", "slot": "hero", "bootstrap": bootstrap})
    seconds = time.perf_counter() - start
    engine.close()
    return {"decisions": decisions, "seconds": seconds, "report": report}


def run(decisions: int = 5000, bootstrap: int = 1000) -> dict[str, Any]:
    return {"obd": obd(bootstrap), "log": decision_log(decisions, bootstrap)}


def _cell(estimate: dict[str, Any]) -> str:
    interval = estimate["interval"]
    return f"{estimate['value']:.6g} ({interval['lower']:.4g} to {interval['upper']:.4g})"


def markdown(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    found = result["obd"]
    if found is None:
        lines.append(f"- Open Bandit Dataset not found at {OBD}: skipped.")
    else:
        report = found["report"]
        estimates = report["estimates"]
        lines += [
            "Open Bandit Dataset (ZOZOTOWN), campaign `all`: the BTS policy (production priors, "
            "action distribution by Monte Carlo, 100,000 draws, seed 12345) estimated from the "
            f"random policy's {report['rounds']:,} logged impressions; 95% bootstrap intervals "
            f"({report['bootstrap']['samples']} resamples). Command: `loopwise ope --format obd "
            "--data ../shared/data/obd --campaign all --logging-policy random --policy obd-bts "
            "--json`.",
            "",
            "| estimator | Loopwise | Open Bandit Pipeline 0.4.1 |",
            "| --- | --- | --- |",
            f"| IPW | {_cell(estimates['ipw'])} | {OBP_IPW:.6g} |",
            f"| SNIPW | {_cell(estimates['snipw'])} | - |",
            f"| DR (logistic regression reward model) | {_cell(estimates['dr'])} | - |",
            "",
            f"- IPW to 3 significant digits: Loopwise **{estimates['ipw']['value']:.3g}**, OBP "
            f"**{OBP_IPW:.3g}** (equal to every digit: the same Monte Carlo stream).",
            f"- ground truth, the BTS policy's own logs: {report['on_policy_value']:.4g} click "
            f"rate; the random policy's: {report['logged_reward_rate']:.4g}.",
            f"- effective sample size {report['effective_sample_size']:.0f} of "
            f"{report['rounds']:,}; whole command {found['seconds']:.1f} s (reading, 100,000 "
            "Monte Carlo rankings, reward model, bootstrap).",
            "",
        ]
    log = result["log"]
    estimates = log["report"]["estimates"]
    lines += [
        f"- decision log: {log['decisions']:,} decisions of a block slot (3 variants, uniform "
        f"logging; true click rate of `variant:b` 0.12): IPW {_cell(estimates['ipw'])}, DR "
        f"{_cell(estimates['dr'])}; evaluation {log['seconds']:.2f} s (`POST /v1/admin/ope` "
        "work: read the log, reward model, bootstrap).",
    ]
    return lines


def main() -> None:
    quick = "--quick" in sys.argv
    result = run(1000, 200) if quick else run()
    print(f"Machine: {describe()}")
    print(f"Command: `.venv/bin/python -m benchmarks.bench_ope{' --quick' if quick else ''}`")
    print()
    print("\n".join(markdown(result)))


if __name__ == "__main__":
    main()
