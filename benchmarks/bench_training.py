"""Training time and per-user scoring time of the served models (``loopwise.models.serving``).

Run: ``PYTHONPATH=src python -m benchmarks.bench_models [--users 5000 --items 2000 ...]``.
Synthetic shop: users with a latent taste for one of 20 categories pick items mostly from it
(Zipf-skewed within the category); items have a title naming their category. Reports training
seconds and, per served model, the p50/p99 of one ``ModelStrategy.recommend`` call (fold-in of a
3-20 item history, cold items, top-n with ``argpartition``) in-process.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime

import numpy as np

from loopwise.catalog.items import Item
from loopwise.config import TrainingSettings
from loopwise.decide.item_stats import ItemStats
from loopwise.decide.strategies import StrategyContext
from loopwise.models.interactions import Interaction
from loopwise.models.serving import ModelBundle, ModelStrategy
from loopwise.models.training import train

CATEGORIES = 20
EVENTS = ("item_view", "item_view", "item_view", "click", "add_to_cart", "purchase")


def shop(
    users: int, items: int, interactions: int, seed: int = 0
) -> tuple[list[Interaction], dict[str, Item]]:
    rng = np.random.default_rng(seed)
    catalog = {
        f"i{i}": Item(
            id=f"i{i}",
            title=f"{['trail', 'road', 'yoga', 'swim', 'camp'][i % 5]} item "
            f"of category c{i % CATEGORIES} number {i}",
            categories=(f"c{i % CATEGORIES}",),
        )
        for i in range(items)
    }
    by_category = [np.arange(c, items, CATEGORIES) for c in range(CATEGORIES)]
    taste = rng.integers(0, CATEGORIES, users)
    per_user = max(1, interactions // users)
    out = []
    t0 = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    for u in range(users):
        pool = by_category[taste[u]]
        picks = np.minimum(rng.zipf(1.3, per_user) - 1, pool.size - 1)
        mixed = rng.random(per_user) < 0.15
        for k in range(per_user):
            item = int(rng.integers(0, items)) if mixed[k] else int(pool[picks[k]])
            event = EVENTS[int(rng.integers(0, len(EVENTS)))]
            out.append(Interaction(f"u{u}", f"i{item}", t0 + u * 10 + k, event))
    return out, catalog


def timed_recommend(
    bundle: ModelBundle,
    name: str,
    catalog: dict[str, Item],
    histories: list[dict[str, float]],
    n: int = 10,
) -> tuple[float, float]:
    strategy = ModelStrategy(name, bundle)
    stats = ItemStats()
    now = datetime(2026, 11, 23, tzinfo=UTC)
    times = []
    for history in histories:
        ctx = StrategyContext(
            profile={"affinity": {"items": history}},
            context={},
            segments=[],
            catalog=catalog,
            stats=stats,
            now=now,
        )
        start = time.perf_counter()
        strategy.recommend(ctx, 3 * n)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--models", default="hybrid")
    parser.add_argument("--holdout", action="store_true", help="also time the holdout evaluation")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    data, catalog = shop(args.users, args.items, args.interactions)
    settings = TrainingSettings(models=args.models.split(","))
    start = time.perf_counter()
    trained = train(data, catalog, settings, evaluate_holdout=args.holdout)
    seconds = time.perf_counter() - start
    meta = trained.metadata
    print(f"{len(data)} interactions, {args.users} users, {args.items} items, models {args.models}")
    print(
        f"train: {meta['training_seconds']:.2f} s fitting ({meta['fit_seconds']}), "
        f"{seconds:.2f} s in all{' with holdout' if args.holdout else ''}"
    )
    bundle = ModelBundle(trained, "bench")
    rng = random.Random(1)
    ids = list(catalog)
    histories = [
        {rng.choice(ids): float(rng.randint(1, 5)) for _ in range(rng.randint(3, 20))}
        for _ in range(args.requests)
    ]
    print("| model | p50 ms | p99 ms |\n| --- | --- | --- |")
    for name in trained.strategy_names:
        p50, p99 = timed_recommend(bundle, name, catalog, histories)
        print(f"| {name} | {p50:.3f} | {p99:.3f} |")


if __name__ == "__main__":
    main()
