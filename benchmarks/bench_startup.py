"""Start-up time against the number of stored events: ``loopwise serve`` from process start to
``/healthz`` 200, on data directories holding 0 (the reference, same run), 10k, 100k and 1M
events.

Round 1 re-read the whole event log at start (6 s at 10k events, 61 s at 500k); now start-up
loads the newest item-statistics checkpoint and folds only the observations after it, and every
other view fills from its store on demand, so the figure should not grow with the log. The data
directories are built once through the real ingest path (in process, 1,000-event batches over
many users) and kept under ``benchmarks/.work/`` for later runs.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_ingest import ADMIN_KEY, SERVER_KEY, WRITE_KEY, _free_port
from loopwise.catalog.importer import read_items
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request

WORK = Path(__file__).parent / ".work"
START = datetime(2026, 10, 1, tzinfo=UTC)


def build(data_dir: Path, events: int, seed: int = 3) -> float:
    """A data directory with ``events`` stored events (views, carts, orders of many users over
    30 days); returns the seconds it took. Reused when it already holds them."""
    marker = data_dir / f".events-{events}"
    if marker.exists():
        return 0.0
    started = time.perf_counter()
    clock = FixedClock(START)
    engine, _ = Engine.open(data_dir, environ={}, clock=clock, watch=False)
    try:
        items = [i.id for i in read_items(SAMPLE_WORKSPACE.parent / "items.jsonl")]
        rng = random.Random(seed)
        users = max(events // 10, 1)
        sent = 0
        while sent < events:
            size = min(1000, events - sent)
            clock.now = START + timedelta(seconds=30 * 86400 * sent / max(events, 1))
            batch = []
            for _ in range(size):
                user = f"user-{rng.randrange(users)}"
                roll = rng.random()
                name = (
                    "Product Viewed"
                    if roll < 0.8
                    else "Product Added"
                    if roll < 0.95
                    else ("Order Completed")
                )
                batch.append(
                    {"type": "track", "anonymousId": user, "event": name,
                     "messageId": str(uuid.uuid4()), "timestamp": clock().isoformat(),
                     "properties": {"product_id": rng.choice(items), "revenue": 30.0}}
                )  # fmt: skip
            engine.ingest(parse_request({"batch": batch}, kind="batch", received_at=clock()))
            sent += size
    finally:
        engine.close()
    marker.touch()
    return time.perf_counter() - started


def time_to_healthy(data_dir: Path) -> float:
    """Seconds from ``loopwise serve``'s process start to its first ``/healthz`` 200."""
    port = _free_port()
    env = {
        **os.environ,
        "LOOPWISE_WRITE_KEY": WRITE_KEY,
        "LOOPWISE_SERVER_KEY": SERVER_KEY,
        "LOOPWISE_ADMIN_KEY": ADMIN_KEY,
    }
    args = [sys.executable, "-m", "loopwise", "serve", "--port", str(port)]
    args += ["--data-dir", str(data_dir), "--log-level", "warning"]
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        while time.perf_counter() - started < 300:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.02)
        raise RuntimeError(f"loopwise serve on {data_dir} never became healthy")
    finally:
        process.terminate()
        process.wait(timeout=60)


def run(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), repeats: int = 3) -> dict[str, Any]:
    rows = []
    reference_dir = WORK / "startup-empty"
    reference_dir.mkdir(parents=True, exist_ok=True)
    for size in (0, *sizes):
        data_dir = reference_dir if size == 0 else WORK / f"startup-{size}"
        data_dir.mkdir(parents=True, exist_ok=True)
        built = build(data_dir, size) if size else 0.0
        times = [time_to_healthy(data_dir) for _ in range(repeats)]
        rows.append(
            {"events": size, "median_s": statistics.median(times), "max_s": max(times),
             "built_s": built}
        )  # fmt: skip
    reference = rows[0]["median_s"]
    for row in rows:
        row["ratio_to_empty"] = row["median_s"] / reference
    return {"rows": rows, "repeats": repeats}


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "## start-up against stored events (`loopwise serve` to /healthz 200)",
        "",
        "Each data directory built through the real ingest path (views, carts and orders of",
        "many users); the empty data directory is the reference in the same run. Median of "
        f"{result['repeats']} starts.",
        "",
        "| stored events | median s | max s | ratio to empty |",
        "| --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['events']:,} | {row['median_s']:.2f} | {row['max_s']:.2f} | "
            f"{row['ratio_to_empty']:.2f} |"
        )
    largest = result["rows"][-1]
    lines += [
        "",
        f"Goal ≤ 3 s at the largest size, independent of the log: "
        f"**{'met' if largest['median_s'] <= 3 else 'missed'}** in this run "
        f"({largest['median_s']:.2f} s at {largest['events']:,} events).",
        "",
    ]
    return lines


if __name__ == "__main__":
    print(run(sizes=(10_000,), repeats=1))
