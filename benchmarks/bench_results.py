"""Experiment results against the number of exposed people: ``GET /v1/experiments/{key}/results``
through the engine (in process), at 1,000 (the reference, same run), 10,000 and 50,000 exposed.

Round 1 re-read every exposed person's events on every request (87 ms at 1,000, 4.4 s at
50,000). Now each exposure carries its person's metric totals, kept current by the projector,
and the results come from per-arm statistics kept current as those change: a request costs the
same at any size. The first request after start builds the statistics from the exposure store
once (reported as "cold").
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.bench_decide import percentile
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.engine import Engine
from loopwise.storage.records import Exposure
from loopwise.storage.sqlite import SqliteStorage
from loopwise.storage.stores import UnitOfWork

EXPERIMENT = "recs-personalized"
SEGMENTS = ("browser", "buyer", "mobile", "desktop", "returning_visitor", "first_time_visitor")
T0 = datetime(2026, 11, 2, tzinfo=UTC)


def exposures(count: int, seed: int = 5) -> list[Exposure]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        bought = rng.random() < 0.05
        after = {"Order Completed": (1.0, rng.uniform(10, 200))} if bought else {}
        out.append(
            Exposure(
                EXPERIMENT,
                f"p_{n:024x}",
                rng.choice(["control", "personalized"]),
                T0 + timedelta(seconds=n),
                slot="recommended",
                segments=tuple(s for s in SEGMENTS if rng.random() < 0.4),
                before={"Order Completed": (1.0, 40.0)} if rng.random() < 0.1 else {},
                after=after,
            )
        )
    return out


def _insert(chunk: list[Exposure]) -> Callable[[UnitOfWork], None]:
    def job(uow: UnitOfWork) -> None:
        for exposure in chunk:
            uow.exposures.insert(exposure)

    return job


def measure(count: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        storage = SqliteStorage(Path(tmp) / "loopwise.db")
        rows = exposures(count)
        for start in range(0, count, 5000):
            storage.write(_insert(rows[start : start + 5000]))
        engine = Engine(load_workspace_file(SAMPLE_WORKSPACE), storage, clock=FixedClock(T0))
        try:
            started = time.perf_counter()
            first = engine.experiment_results(EXPERIMENT)
            cold = (time.perf_counter() - started) * 1000
            assert sum(arm["users"] for arm in first["arms"]) == count
            timings = []
            for n in range(requests):
                segment = None if n % 2 == 0 else SEGMENTS[n % len(SEGMENTS)]
                started = time.perf_counter()
                engine.experiment_results(EXPERIMENT, segment)
                timings.append((time.perf_counter() - started) * 1000)
        finally:
            engine.close()
    timings.sort()
    return {
        "exposed": count,
        "cold_ms": cold,
        "p50_ms": percentile(timings, 0.5),
        "p99_ms": percentile(timings, 0.99),
        "mean_ms": statistics.fmean(timings),
    }


def run(sizes: tuple[int, ...] = (1_000, 10_000, 50_000), requests: int = 200) -> dict[str, Any]:
    rows = [measure(size, requests) for size in sizes]
    reference = rows[0]["p50_ms"]
    for row in rows:
        row["ratio_to_smallest"] = row["p50_ms"] / reference
    return {"rows": rows, "requests": requests}


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "## experiment results against exposed people (in process)",
        "",
        f"`Engine.experiment_results` on the sample workspace's `{EXPERIMENT}`, half overall and",
        "half for one segment at exposure; exposures with purchase totals written to SQLite",
        f"first. {result['requests']} requests per size; cold = the first request after start",
        "(builds the statistics from the exposure store once).",
        "",
        "| exposed | cold ms | p50 ms | p99 ms | p50 ratio to smallest |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['exposed']:,} | {row['cold_ms']:.0f} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.2f} | {row['ratio_to_smallest']:.2f} |"
        )
    largest = result["rows"][-1]
    lines += [
        "",
        f"Goal ≤ 100 ms at {largest['exposed']:,} exposed: "
        f"**{'met' if largest['p99_ms'] <= 100 else 'missed'}** in this run (p99).",
        "",
    ]
    return lines


if __name__ == "__main__":
    print(run(sizes=(1_000, 10_000), requests=50))
