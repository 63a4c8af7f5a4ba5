"""Delivery figures: the browser SDK's size as served (gzip, brotli) against the 5 KB target, and
the edge module's evaluation time per page in Node (the parity cases of tests/web/test_edge.py).

``python -m benchmarks.bench_delivery`` prints Markdown lines (appended to RESULTS.md by hand,
with the machine); it needs ``node`` for the edge figure.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.machine import describe
from loopwise.config import parse_workspace
from loopwise.decide.edge_bundle import build_edge_bundle
from loopwise.web.assets import asset

SDK_TARGET_BYTES = 5 * 1024


def sizes() -> list[str]:
    lines = ["| file | raw B | gzip B | brotli B |", "| --- | --- | --- | --- |"]
    for name in ("loopwise.js", "loopwise.mjs", "loopwise-preferences.js", "loopwise-edge.js"):
        bodies = asset(name).bodies
        lines.append(
            f"| {name} | {len(bodies['identity'])} | {len(bodies['gzip'])} | {len(bodies['br'])} |"
        )
    gz = len(asset("loopwise.js").bodies["gzip"])
    lines.append("")
    lines.append(
        f"loopwise.js gzipped: **{gz} B** "
        f"(target ≤ {SDK_TARGET_BYTES} B: {gz <= SDK_TARGET_BYTES})."
    )
    return lines


def edge_time() -> list[str]:
    if shutil.which("node") is None:
        return ["(node not found: no edge figure)"]
    from tests.web.test_edge import CASES, NOW, PARITY_TEST, WORKSPACE, engine_cases

    workspace = parse_workspace(WORKSPACE)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cases.json"
        cases = engine_cases(workspace, CASES)
        bundle = build_edge_bundle(workspace)
        path.write_text(json.dumps({"bundle": bundle, "now": NOW.isoformat(), "cases": cases}))
        run = subprocess.run(
            ["node", "--test", str(PARITY_TEST)],
            capture_output=True, text=True, timeout=120, env={"LOOPWISE_EDGE_CASES": str(path)},
        )  # fmt: skip
    found = re.search(r"edge evaluation: ([0-9.]+) us per page", run.stdout)
    figure = found.group(1) if found else "?"
    return [
        f"loopwise-edge.js `decideAtEdge`, {CASES} random contexts, 2 edge slots, 6 rules: "
        f"**{figure} µs per page** (target < 1 ms), all identical to the engine: "
        f"{run.returncode == 0}.",
        "",
        *edge_experiments_time(),
    ]


def edge_experiments_time() -> list[str]:
    """The same with experiments (4 on 2 slots, a holdout, consent defaults), cases from the
    engine's real decide."""
    from tests.web.test_edge import (
        EXPERIMENT_CASES,
        EXPERIMENTS_TEST,
        NOW,
        engine_experiment_cases,
    )

    bundle, cases = engine_experiment_cases(EXPERIMENT_CASES)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cases.json"
        path.write_text(json.dumps({"bundle": bundle, "now": NOW.isoformat(), "cases": cases}))
        run = subprocess.run(
            ["node", "--test", str(EXPERIMENTS_TEST)], capture_output=True, text=True,
            timeout=120, env={"LOOPWISE_EDGE_EXPERIMENT_CASES": str(path)},
        )  # fmt: skip
    found = re.search(r"edge evaluation with experiments: ([0-9.]+) us per page", run.stdout)
    figure = found.group(1) if found else "?"
    return [
        f"With experiments (3 edge slots, 4 experiments on 2 of them, one not started yet, a "
        f"10 % holdout), "
        f"{EXPERIMENT_CASES} visitors decided by the engine's own decide: **{figure} µs per "
        f"page**, the same variants, rules, arms and exposures: {run.returncode == 0}."
    ]


def main() -> None:
    machine = describe()
    print(f"Machine: {machine}")
    print("Command: `.venv/bin/python -m benchmarks.bench_delivery`\n")
    print("\n".join(sizes()))
    print()
    print("\n".join(edge_time()))


if __name__ == "__main__":
    main()
