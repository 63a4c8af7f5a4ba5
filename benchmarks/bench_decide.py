"""decide() in-process: p50/p99 for a 3-slot page of the sample workspace (hero block with rules,
recommended and trending lists on their default strategies), at 10k items and 100k profiles.

The population comes from :mod:`benchmarks.population` (real ingest, then cloned profiles on the
same storage). Every timed request decides the page for a random known user.
"""

from __future__ import annotations

import random
import time
from typing import Any

from benchmarks.population import build_engine
from loopwise.decide.request import DecideRequest

PAGE = [{"slot": "hero"}, {"slot": "recommended", "n": 4}, {"slot": "trending", "n": 4}]
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)


def decide_body(anonymous_id: str) -> dict[str, Any]:
    """The JSON body of one page's decide request (also sent over HTTP)."""
    return {
        "user": {"anonymous_id": anonymous_id},
        "context": {"page": {"url": "https://shop.test/"}, "userAgent": USER_AGENT},
        "slots": PAGE,
    }


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return sorted_values[index]


def run(profiles: int = 100_000, items: int = 10_000, requests: int = 5000) -> dict[str, Any]:
    start = time.perf_counter()
    engine, ids = build_engine(profiles, items)
    setup = time.perf_counter() - start
    rng = random.Random(2)
    requests_ = [
        DecideRequest.model_validate(decide_body(rng.choice(ids))) for _ in range(requests)
    ]
    for request in requests_[:200]:  # warm caches
        engine.decide(request)
    timings, cpu = [], []
    for request in requests_:
        start, start_cpu = time.perf_counter(), time.thread_time()
        engine.decide(request)
        timings.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)  # this thread's: not the waits
    timings.sort()
    cpu.sort()
    result = {
        "profiles": len(engine.services.views.profiles),
        "items": len(engine.services.catalog.items),
        "requests": requests,
        "p50_ms": percentile(timings, 0.50),
        "p99_ms": percentile(timings, 0.99),
        "mean_ms": sum(timings) / len(timings),
        "cpu_p50_ms": percentile(cpu, 0.50),
        "cpu_p99_ms": percentile(cpu, 0.99),
        "setup_s": setup,
    }
    engine.close()
    return result


if __name__ == "__main__":
    print(run())
