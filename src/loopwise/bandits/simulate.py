"""A bandit against a fixed A/B/n split, in the real engine, with simulated visitors.

One engine (in process, memory storage, a clock that advances with the visits) and one block slot
``hero`` with four headline variants. An experiment splits visitors: half get the classic A/B/n
test (one fixed variant each, an eighth of the traffic per variant) and half the slot's bandit
(Thompson sampling per device segment). Simulated visitors — half on phones — click with a rate
that depends on their device and the variant they see (the ground truth, never shown to the
engine). Clicks go back through ingest with the decision id, so the bandit learns only through
the projection's outcome effects.

Measured: the cumulative expected regret of each side (per decision, the best variant's click
rate for that visitor's device less the shown one's), and the click rate per side from the
experiments engine's own results (and from the ground truth beside it).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loopwise.clock import FixedClock
from loopwise.config import Workspace
from loopwise.decide.request import DecideRequest
from loopwise.events.normalize import parse_request
from loopwise.storage.memory import MemoryStorage

# click rate per device and variant: each device has its own best headline
TRUE_RATES: dict[str, dict[str, float]] = {
    "desktop": {"free-shipping": 0.040, "new-season": 0.060, "app-only": 0.020, "sale": 0.045},
    "mobile": {"free-shipping": 0.030, "new-season": 0.035, "app-only": 0.070, "sale": 0.040},
}
VARIANTS = ("free-shipping", "new-season", "app-only", "sale")
EXPERIMENT = "hero-bandit-vs-ab"
CURVE_POINTS = 40


@dataclass(slots=True)
class BanditSimulation:
    visitors: int
    seed: int
    # per side ("bandit", "ab"): cumulative expected regret after each of its decisions, sampled
    regret: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    clicks: dict[str, int] = field(default_factory=dict)
    expected_rate: dict[str, float] = field(default_factory=dict)  # ground truth, per side
    best_rate: float = 0.0  # the oracle: always the device's best variant
    results: dict[str, Any] = field(default_factory=dict)  # the experiments engine's
    learned: list[dict[str, Any]] = field(default_factory=list)  # the bandit's state at the end

    @property
    def measured_rate(self) -> dict[str, float]:
        return {side: self.clicks[side] / max(self.decisions[side], 1) for side in self.clicks}

    @property
    def gain(self) -> float:
        """Relative click gain of the bandit over the A/B/n split (ground-truth rates)."""
        ab = self.expected_rate.get("ab", 0.0)
        return self.expected_rate.get("bandit", 0.0) / ab - 1.0 if ab else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "visitors": self.visitors,
            "seed": self.seed,
            "decisions": self.decisions,
            "clicks": self.clicks,
            "measured_rate": self.measured_rate,
            "expected_rate": self.expected_rate,
            "best_rate": self.best_rate,
            "gain": self.gain,
            "final_regret": {side: points[-1][1] for side, points in self.regret.items() if points},
        }


def workspace() -> Workspace:
    arms: list[dict[str, Any]] = [
        {"key": f"fixed-{variant}", "variant": variant, "weight": 0.125} for variant in VARIANTS
    ]
    arms.append({"key": "bandit", "strategy": "bandit", "weight": 0.5})
    return Workspace.model_validate(
        {
            "workspace": "bandit-simulation",
            "builtin_segments": False,
            "segments": [
                {
                    "key": "mobile",
                    "name": "On a phone",
                    "condition": {"context.device.type": "mobile"},
                }
            ],
            "slots": [
                {
                    "key": "hero",
                    "kind": "block",
                    "strategy": "bandit",
                    "bandit": {"segments": ["mobile"], "reward": "click", "warmup": 20},
                    "variants": [{"id": v, "content": {"headline": v}} for v in VARIANTS],
                }
            ],
            "experiments": [
                {
                    "key": EXPERIMENT,
                    "slot": "hero",
                    "arms": arms,
                    "metrics": [
                        {"key": "clicked", "kind": "conversion", "event": "Content Clicked"}
                    ],
                }
            ],
        }
    )


PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"


def simulate(visitors: int = 6000, seed: int = 7) -> BanditSimulation:
    from loopwise.engine import Engine

    clock = FixedClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    engine = Engine(workspace(), MemoryStorage(), clock=clock, seed=seed)
    rng = random.Random(seed)
    sim = BanditSimulation(visitors=visitors, seed=seed)
    best = {device: max(rates.values()) for device, rates in TRUE_RATES.items()}
    regret = {"bandit": 0.0, "ab": 0.0}
    expected = {"bandit": 0.0, "ab": 0.0}
    curve: dict[str, list[float]] = {"bandit": [], "ab": []}
    sim.decisions = {"bandit": 0, "ab": 0}
    sim.clicks = {"bandit": 0, "ab": 0}
    oracle = 0.0
    try:
        for i in range(visitors):
            clock.advance(30)
            device = "mobile" if rng.random() < 0.5 else "desktop"
            anon = f"sim-{seed}-{i}"
            request = DecideRequest.model_validate(
                {
                    "user": {"anonymous_id": anon},
                    "context": {"userAgent": PHONE if device == "mobile" else DESKTOP},
                    "slots": [{"slot": "hero"}],
                }
            )
            reply = engine.decide(request)
            slot = reply.slots[0]
            assert slot.variant is not None
            side = "bandit" if slot.strategy == "bandit" else "ab"
            rate = TRUE_RATES[device][slot.variant.id]
            regret[side] += best[device] - rate
            expected[side] += rate
            oracle += best[device]
            curve[side].append(regret[side])
            sim.decisions[side] += 1
            engine.services.decide.flush()
            if rng.random() < rate:
                sim.clicks[side] += 1
                message = {
                    "type": "track",
                    "anonymousId": anon,
                    "event": "Content Clicked",
                    "messageId": str(uuid.uuid4()),
                    "timestamp": clock().isoformat(),
                    "properties": {"decision_id": reply.decision_id, "slot": "hero"},
                }
                engine.ingest(parse_request(message, kind="track", received_at=clock()))
        sim.results = engine.experiment_results(EXPERIMENT)
        sim.learned = engine.bandit_state()
    finally:
        engine.close()
    for side, points in curve.items():
        step = max(1, len(points) // CURVE_POINTS)
        sim.regret[side] = [(n + 1, points[n]) for n in range(step - 1, len(points), step)]
        sim.expected_rate[side] = expected[side] / max(sim.decisions[side], 1)
    sim.best_rate = oracle / max(visitors, 1)
    return sim


def regret_plot(sim: BanditSimulation) -> str | None:
    """PNG (base64) of the cumulative regret per decision of each side."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    if not any(sim.regret.values()):
        return None
    figure = Figure(figsize=(7, 3.6))
    axes = figure.subplots()
    labels = {"bandit": "bandit (Thompson sampling per device)", "ab": "fixed A/B/n split"}
    for side, points in sim.regret.items():
        axes.plot([n for n, _ in points], [v for _, v in points], label=labels.get(side, side))
    axes.set_xlabel("decisions on that side")
    axes.set_ylabel("cumulative expected regret (clicks lost)")
    axes.set_title("Regret: clicks lost against always showing each device's best headline")
    axes.grid(alpha=0.3)
    axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()
