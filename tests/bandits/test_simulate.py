"""The bandit-vs-A/B/n simulation behind the demo report and the bandits benchmark."""

from __future__ import annotations

import itertools

from loopwise.bandits.simulate import VARIANTS, regret_plot, simulate
from loopwise.sim.report import bandit_section


def test_simulation_measures_both_sides_through_the_engine() -> None:
    sim = simulate(visitors=600, seed=3)
    assert sum(sim.decisions.values()) == 600
    for side in ("bandit", "ab"):
        points = sim.regret[side]
        assert points and all(b[1] >= a[1] for a, b in itertools.pairwise(points))
        assert 0 < sim.expected_rate[side] <= sim.best_rate
    arms = {row["arm"]: row for row in sim.results["metrics"][0]["results"]}
    assert set(arms) == {"bandit", *(f"fixed-{v}" for v in VARIANTS)}
    assert arms["bandit"]["users"] == sim.decisions["bandit"]
    (learners) = sim.learned
    assert {learner["bucket"] for learner in learners} <= {"all", "mobile"}
    assert regret_plot(sim)
    html = "\n".join(bandit_section(sim))
    assert "Bandit vs a fixed A/B/n split" in html and "data:image/png;base64," in html
