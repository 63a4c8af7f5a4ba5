"""The pre-render cache: decide cost with and without it, in the same run, and its hit ratio.

Two pages of the sample workspace on one engine (the population of :mod:`benchmarks.population`):

- a landing page (``hero`` block + ``trending`` list) for first-time visitors (new anonymous ids,
  a few contexts: country and device), the case the cache is for;
- the sample home page (``hero``, ``recommended`` on a personal strategy with an experiment,
  ``trending``) for known users, where only part of the page can come from the cache.

Each round decides the same requests with the cache on and off (alternating, so both see the same
machine state); the ratio on/off is the figure. ``python -m benchmarks.bench_prerender [--quick]``
prints Markdown lines for RESULTS.md.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

from benchmarks.bench_decide import PAGE, USER_AGENT, decide_body, percentile
from benchmarks.machine import describe
from benchmarks.population import build_engine
from loopwise.decide.prerender import PrerenderCache, PrerenderSettings
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine

LANDING = [{"slot": "hero"}, {"slot": "trending", "n": 4}]
COUNTRIES = ["GB", "US", "DE", "FR"]
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def landing_body(rng: random.Random, visitor: int) -> dict[str, Any]:
    return {
        "user": {"anonymous_id": f"new-{visitor}"},
        "context": {
            "page": {"url": "https://shop.test/"},
            "userAgent": rng.choice([USER_AGENT, PHONE]),
            "location": {"country": rng.choice(COUNTRIES)},
        },
        "slots": LANDING,
    }


def timed(engine: Engine, requests: list[DecideRequest]) -> list[float]:
    timings = []
    for request in requests:
        start = time.perf_counter()
        engine.decide(request)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def compare(engine: Engine, requests: list[DecideRequest], rounds: int) -> dict[str, Any]:
    """Cache on and off, alternating rounds over the same requests."""
    service = engine.services.decide
    on = PrerenderCache(lambda: PrerenderSettings(ttl_seconds=60), lambda: time.time())
    off = PrerenderCache(lambda: PrerenderSettings(enabled=False))
    timings: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(rounds):
        for name, cache in (("on", on), ("off", off)):
            service.prerender = cache
            timings[name] += timed(engine, requests)
    out: dict[str, Any] = {"hit_ratio": on.hit_ratio(), "entries": len(on)}
    for name, values in timings.items():
        values.sort()
        out[name] = {
            "p50": percentile(values, 0.5),
            "p99": percentile(values, 0.99),
            "mean": sum(values) / len(values),
        }
    out["ratio_mean"] = out["on"]["mean"] / out["off"]["mean"]
    out["ratio_p50"] = out["on"]["p50"] / out["off"]["p50"]
    return out


def run(profiles: int = 20_000, items: int = 5_000, requests: int = 2_000) -> dict[str, Any]:
    engine, ids = build_engine(profiles, items)
    rng = random.Random(5)
    landing = [DecideRequest.model_validate(landing_body(rng, v)) for v in range(requests)]
    home = [
        DecideRequest.model_validate({**decide_body(rng.choice(ids)), "slots": PAGE})
        for _ in range(requests)
    ]
    timed(engine, home[:200])  # warm the strategies' caches
    result = {
        "profiles": profiles,
        "items": items,
        "requests": requests,
        "landing": compare(engine, landing, rounds=3),
        "home": compare(engine, home, rounds=3),
    }
    engine.close()
    return result


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['profiles']} profiles, {result['items']} items, {result['requests']} requests "
        "per page and setting, 3 alternating rounds each; TTL 60 s.",
        "",
        "| page | cache | p50 ms | p99 ms | mean ms | hit ratio (slots) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    names = {"landing": "landing (hero + trending), new visitors", "home": "home (3 slots), known"}
    for page, label in names.items():
        found = result[page]
        for setting in ("off", "on"):
            row = found[setting]
            ratio = f"{found['hit_ratio']:.1%}" if setting == "on" else "-"
            lines.append(
                f"| {label} | {setting} | {row['p50']:.3f} | {row['p99']:.3f} | "
                f"{row['mean']:.3f} | {ratio} |"
            )
    lines.append("")
    for page, label in names.items():
        found = result[page]
        lines.append(
            f"- {label}: decide with the cache / without: **{found['ratio_mean']:.2f}** "
            f"(mean), {found['ratio_p50']:.2f} (p50)."
        )
    return lines


def main() -> None:
    quick = "--quick" in sys.argv
    result = run(5_000, 2_000, 500) if quick else run()
    print(f"Machine: {describe()}")
    print(f"Command: `.venv/bin/python -m benchmarks.bench_prerender{' --quick' if quick else ''}`")
    print()
    print("\n".join(markdown(result)))


if __name__ == "__main__":
    main()
