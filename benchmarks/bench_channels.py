"""Channels in process: decide-batch people per second, rerank p50/p99 for 100 candidates.

Population: :func:`benchmarks.population.build_engine` (real ingest of 2,000 users, cloned to
``profiles``), every profile then given a user id (campaigns address known people), on memory
storage, reopened by an engine whose workspace adds the channel slots of docs/channels.md and
grants ``marketing`` by default (the consent check still runs for every person). An ``item_knn``
model is trained on the population's events so rerank blends the model's score too.

- **decide-batch**: the whole population as a user audience, for a list slot (``newsletter``,
  3 items by ``category_affinity``) and a block slot with a segment rule (``email-hero``), and the
  population's ``buyer`` segment as a segment audience (every stored profile evaluated now).
  People per second = audience / the run's time, decisions logged in chunks (the rows of a chunk
  come out once its write committed). Then the same audience again: everyone is over the
  frequency cap (scan of the day's decision log + a skip per person).
- **rerank**: 100 candidates (random catalog items, random search scores, 5 unknown ids) for a
  random person, against the same run's 3-slot ``/v1/decide`` page as the reference.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.bench_decide import decide_body, percentile
from benchmarks.population import build_engine
from loopwise.channels.batch import DecideBatchRequest
from loopwise.channels.rerank import RerankRequest
from loopwise.config import SAMPLE_WORKSPACE, parse_workspace
from loopwise.decide.request import DecideRequest
from loopwise.engine import Engine
from loopwise.privacy.service import consent_keys
from loopwise.profiles import codec
from loopwise.profiles.identity import profile_id_for
from loopwise.storage import open_storage
from loopwise.storage.stores import Storage, UnitOfWork

SLOTS: list[dict[str, Any]] = [
    {"key": "newsletter", "kind": "list", "n": 3, "default_strategy": "category_affinity"},
    {
        "key": "email-hero",
        "kind": "block",
        "variants": [
            {"id": "generic", "content": {"headline": "New this week"}},
            {"id": "buyers", "content": {"headline": "Thanks for shopping with us"}},
        ],
        "rules": [{"id": "buyers", "segments": ["buyer"], "then": {"variant": "buyers"}}],
    },
]


def workspace_document() -> dict[str, Any]:
    document = yaml.safe_load(SAMPLE_WORKSPACE.read_text())
    document["slots"] = [*document["slots"], *SLOTS]
    document["privacy"] = {
        "defaults": {
            "default": dict.fromkeys(
                ("analytics", "personalization", "pricing", "marketing"), True
            ),
            "regions": {},
        }
    }
    document["training"] = {"models": ["item_knn"]}
    document["channels"] = {"rerank": {"model": "item_knn"}}
    return document


def known_population(
    profiles: int, items: int, data_dir: Path, storage: Storage | None = None
) -> tuple[Engine, list[str]]:
    """The benchmark population with a user id per profile, reopened with the channel slots
    (on memory storage unless ``storage`` is given)."""
    seeding, anons = build_engine(profiles, items, storage=storage)
    storage = seeding.storage
    users = [f"user-{n}" for n in range(len(anons))]
    records = []
    for anon, user in zip(anons, users, strict=True):
        profile = seeding.services.views.profiles.get(profile_id_for(anon))
        assert profile is not None
        known = profile.copy()
        known.user_id = user
        records.append(codec.encode(known))

    def install(uow: UnitOfWork) -> None:
        uow.profiles.upsert(records)
        uow.identities.link({user: r.id for user, r in zip(users, records, strict=True)})

    storage.write(install)
    workspace = parse_workspace(workspace_document())
    engine = Engine(workspace, storage, clock=seeding.clock, seed=1, data_dir=data_dir)
    views = engine.services.views
    for user in users:  # warm, as on a busy server
        pid = views.identities.resolve(user)
        if pid is not None:
            views.profiles.get(pid)
    return engine, users


def campaign(engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    run = engine.decide_batch(DecideBatchRequest.model_validate(body))
    rows = 0
    cpu = time.process_time()
    for _ in run.rows():
        rows += 1
    cpu = time.process_time() - cpu  # every thread's: the deciding one and the writer's
    summary = run.summary.to_dict()
    summary["rows"] = rows
    summary["people_per_s"] = rows / max(run.summary.seconds, 1e-9)
    summary["people_per_cpu_s"] = rows / max(cpu, 1e-9)
    return summary


def one_by_one(engine: Engine, users: list[str], slot: str) -> dict[str, Any]:
    """The reference: the same slot for the same people through ``/v1/decide``'s path, one
    request each (each decision its own write job)."""
    requests = [
        DecideRequest.model_validate({"user": {"user_id": u}, "slots": [{"slot": slot}]})
        for u in users
    ]
    start, cpu = time.perf_counter(), time.process_time()
    for request in requests:
        engine.decide(request)
    engine.services.decide.flush()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "audience": len(users),
        "decided": len(users),
        "skipped": {},
        "seconds": seconds,
        "people_per_s": len(users) / seconds,
        "people_per_cpu_s": len(users) / cpu,
    }


def rerank_requests(
    engine: Engine, users: list[str], count: int, rng: random.Random
) -> list[RerankRequest]:
    catalog = list(engine.services.catalog.items)
    out = []
    for _ in range(count):
        ids = rng.sample(catalog, 95) + [f"unknown-{rng.randrange(10**9)}" for _ in range(5)]
        rng.shuffle(ids)
        scores = sorted((rng.uniform(0, 20) for _ in ids), reverse=True)
        out.append(
            RerankRequest.model_validate(
                {
                    "user": {"user_id": rng.choice(users)},
                    "candidates": [{"id": i, "score": s} for i, s in zip(ids, scores, strict=True)],
                }
            )
        )
    return out


def timed(calls: list[Any], call: Any) -> dict[str, float]:
    """Wall and CPU milliseconds per call (CPU: this thread's, so a busy machine's waits for a
    core are left out)."""
    for request in calls[: min(100, len(calls))]:  # warm caches
        call(request)
    timings, cpu = [], []
    for request in calls:
        start, start_cpu = time.perf_counter(), time.thread_time()
        call(request)
        timings.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    timings.sort()
    cpu.sort()
    return {
        "p50_ms": percentile(timings, 0.5),
        "p99_ms": percentile(timings, 0.99),
        "mean_ms": sum(timings) / len(timings),
        "cpu_p50_ms": percentile(cpu, 0.5),
        "cpu_p99_ms": percentile(cpu, 0.99),
    }


#: decide-batch runs of :func:`in_workers`: name -> (slot, audience arguments)
WORKER_RUNS: dict[str, tuple[str, list[str]]] = {
    "newsletter": ("newsletter", ["--users", "users.txt"]),
    "email-hero": ("email-hero", ["--users", "users.txt"]),
    "segment": ("newsletter", ["--segment", "buyer"]),
}


def in_workers(profiles: int, items: int, tmp: Path) -> dict[str, Any]:
    """``loopwise decide-batch`` on a SQLite data directory holding the population, as a user
    runs it (a new process: engine start-up, reading the file, deciding, writing the output),
    with 1 worker and with 2: a user list for the list slot and for the block slot, and the
    ``buyer`` segment for the list slot. Every tenth person withdrew ``marketing`` (so the
    consent of everyone is looked up, and a tenth of the list is skipped). No frequency cap:
    the same people are decided six times."""
    data = tmp / "workers-data"
    engine, users = known_population(profiles, items, data, open_storage(None, data))
    document = workspace_document()
    document.pop("items", None)  # the catalog is in the store already
    document["channels"] = {"batch": {"frequency_cap": {"per_day": 0}}}
    engine.replace_workspace(document)  # live = the file: the commands start from it
    withdraw_marketing(engine, users[::10])
    engine.close()
    workspace = tmp / "workers.yaml"
    workspace.write_text(yaml.safe_dump(document))
    (tmp / "users.txt").write_text("\n".join(users) + "\n")
    out: dict[str, Any] = {"profiles": len(users), "cores": os.cpu_count()}
    for name, (slot, audience) in WORKER_RUNS.items():
        for workers in (1, 2):
            command = [
                sys.executable, "-m", "loopwise", "decide-batch", "--slot", slot, *audience,
                "--out", str(tmp / "rows.jsonl"), "--data-dir", str(data),
                "--workspace", str(workspace), "--workers", str(workers),
                "--campaign", "bench-workers",
            ]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=tmp)
            seconds = time.perf_counter() - start
            said = re.search(r"Decided (\d+) of (\d+) people .* in ([\d.]+) s", done.stdout)
            assert said is not None, done.stdout + done.stderr
            campaign_s = max(float(said[3]), 0.05)  # printed to a tenth of a second
            out[f"{name}_{workers}"] = {
                "decided": int(said[1]),
                "audience": int(said[2]),
                "campaign_s": campaign_s,
                "command_s": seconds,
                "people_per_s": int(said[2]) / campaign_s,
                "people_per_command_s": int(said[2]) / seconds,
            }
    return out


def withdraw_marketing(engine: Engine, users: list[str]) -> None:
    """``PUT /v1/consent/{user}`` with ``marketing: false`` for each (the privacy service's
    own recording, audit trail included), in one write job."""
    privacy, at, withdrawn = engine.services.privacy, engine.services.clock(), {"marketing": False}

    def job(uow: UnitOfWork) -> None:
        for user in users:
            keys = consent_keys(uow.identities, user)
            privacy.record_consent(uow, {}, keys, user, withdrawn, at, "api", always=True)

    engine.services.storage.write(job)


def run(profiles: int = 100_000, items: int = 10_000, requests: int = 2000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        engine, users = known_population(profiles, items, Path(tmp))
        engine.train_models(wait=True)
        setup = time.perf_counter() - start
        try:
            result: dict[str, Any] = {"profiles": len(users), "items": items, "setup_s": setup}
            audience = {"users": users, "campaign": "bench"}
            result["batch_list"] = campaign(engine, {"slot": "newsletter", **audience})
            result["batch_block"] = campaign(engine, {"slot": "email-hero", **audience})
            result["batch_capped"] = campaign(engine, {"slot": "newsletter", **audience})
            result["decide_one_slot"] = one_by_one(engine, users, "newsletter")
            uncapped = {"batch": {"frequency_cap": {"per_day": 0}}, "rerank": {"model": "item_knn"}}
            engine.replace_workspace({**workspace_document(), "channels": uncapped})
            result["batch_segment"] = campaign(
                engine, {"slot": "newsletter", "segment": "buyer", "campaign": "bench"}
            )
            rng = random.Random(3)
            reranks = rerank_requests(engine, users, requests, rng)
            result["rerank"] = timed(reranks, engine.rerank)
            result["rerank"]["model_reasons"] = sum(
                any("item_knn model" in r for i in engine.rerank(q)["items"] for r in i["reasons"])
                for q in reranks[:50]
            )
            pages = [
                DecideRequest.model_validate(decide_body(users[rng.randrange(len(users))]))
                for _ in range(requests)
            ]
            result["decide_reference"] = timed(pages, engine.decide)
            result["requests"] = requests
        finally:
            engine.close()
        result["workers"] = in_workers(profiles, items, Path(tmp))
        return result


def markdown(r: dict[str, Any]) -> list[str]:
    def batch_row(name: str, b: dict[str, Any]) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in b["skipped"].items()) or "none"
        return (
            f"| {name} | {b['audience']:,} | {b['decided']:,} | {skipped} | "
            f"{b['seconds']:.2f} | **{b['people_per_s']:,.0f}** | {b['people_per_cpu_s']:,.0f} |"
        )

    rr, ref = r["rerank"], r["decide_reference"]
    runs = ("batch_list", "batch_block", "batch_segment")
    lowest = min(r[k]["people_per_s"] for k in runs)
    lowest_cpu = min(r[k]["people_per_cpu_s"] for k in runs)
    return [
        "## channels, in-process: decide-batch people per second, rerank latency",
        "",
        f"{r['profiles']:,} known profiles (real ingest of 2,000 users, cloned), {r['items']:,} "
        "items, memory storage; `marketing` granted by the workspace's defaults (the consent",
        "check still runs per person); decisions logged in chunks of 500, each chunk's rows out",
        f"once its write committed. Setup (population + item_knn training): {r['setup_s']:.0f} s.",
        "",
        "| run | audience | decided | skipped | seconds | people/s | people per CPU-second |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        batch_row("users → `newsletter` (3 items, category_affinity)", r["batch_list"]),
        batch_row("users → `email-hero` (block, segment rule)", r["batch_block"]),
        batch_row("users → `newsletter` again (all over the cap)", r["batch_capped"]),
        batch_row("segment `buyer` → `newsletter` (every profile evaluated)", r["batch_segment"]),
        batch_row("reference: `/v1/decide` of `newsletter`, one person each", r["decide_one_slot"]),
        "",
        _goal(lowest >= 5000, "≥ 5,000 people per second in one process (wall clock)"),
        _goal(lowest_cpu >= 5000, "≥ 5,000 people per CPU-second in one process"),
        "People per CPU-second counts the process's CPU time (the deciding thread and the",
        "writer's): what one free core does, whatever else the machine runs. Each person gets",
        "the decision a single-slot decide gives them (the reference row: same slot, same",
        "people; tests/channels/test_batch_equivalence.py checks it is the same decision):",
        "profile attributes now, every segment condition, the rules, the strategy, experiment",
        "arms, logged in chunks instead of one write job each. Shared across the audience or",
        "skipped: profiles read from the store a chunk per query (not pushed through the",
        "profile view's hot tier, which would compress each profile it evicts), the cycle",
        "collector paused while a chunk is decided and, between chunks, walking only what was",
        "allocated since (what was alive is frozen until the campaign ends), each person's",
        "decide request built without validation, a segment audience's condition evaluated",
        "from the attributes it reads (the whole profile.* for members only), filters'",
        "accepted ids and the ranking split by category worked out once, no decision-log scan",
        "without a cap. What stands in the way of 5,000 per second on one core (0.2 ms a",
        "person), measured per person at 100k profiles: decoding the profile record",
        "(~0.053 ms), its attributes (~0.041 ms) and ~30 segment conditions (~0.021 ms) in",
        "Python (profiles/, segments/), the decider (~0.077 ms for the list slot, the",
        "strategy a third of it; ~0.018 ms for the block slot's pre-render key and hit), the",
        "decide service's own work (~0.03 ms: rng, ids, reply model, decision record), the",
        "log insert in the writer thread (~0.015 ms) and the row (~0.003-0.006 ms); with a",
        "cap, the scan of the day's decision log (every logged decision decoded: ~0.011 ms a",
        "person for the block run after the list run's 100k decisions).",
        "",
        *_workers_markdown(r["workers"]),
        f"Rerank of 100 candidates (95 known, 5 unknown; {r['requests']:,} requests, random "
        "people; item_knn model blended in: "
        f"{rr['model_reasons']} of 50 checked replies carry a model reason), against the same "
        "run's 3-slot decide page:",
        "",
        "| call | p50 ms | p99 ms | mean ms | CPU p50 ms | CPU p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| rerank, 100 candidates | {rr['p50_ms']:.3f} | {rr['p99_ms']:.3f} | "
        f"{rr['mean_ms']:.3f} | {rr['cpu_p50_ms']:.3f} | {rr['cpu_p99_ms']:.3f} |",
        f"| decide, 3-slot page (reference) | {ref['p50_ms']:.3f} | {ref['p99_ms']:.3f} | "
        f"{ref['mean_ms']:.3f} | {ref['cpu_p50_ms']:.3f} | {ref['cpu_p99_ms']:.3f} |",
        "",
        _goal(rr["p99_ms"] <= 5.0, "rerank p99 ≤ 5 ms for 100 candidates (wall clock)"),
        _goal(rr["cpu_p99_ms"] <= 5.0, "rerank CPU p99 ≤ 5 ms for 100 candidates"),
        "On a loaded machine the wall-clock p99 is the wait for a core (see the reference's);",
        "the CPU columns are the work. The reply is built as plain JSON (a hundred validated",
        "item models cost more than the ranking); the model's share is one fold-in over the",
        "catalog per request.",
        "",
    ]


def _workers_markdown(w: dict[str, Any]) -> list[str]:
    what = {
        "newsletter": "users → `newsletter` (list, 3 items)",
        "email-hero": "users → `email-hero` (block)",
        "segment": "segment `buyer` → `newsletter`",
    }
    rows = []
    for name in WORKER_RUNS:
        one = w[f"{name}_1"]
        for workers in (1, 2):
            b = w[f"{name}_{workers}"]
            rows.append(
                f"| {what[name]} | {workers} | {b['audience']:,} | {b['decided']:,} | "
                f"{b['campaign_s']:.1f} | **{b['people_per_s']:,.0f}** | {b['command_s']:.1f} | "
                f"{b['people_per_command_s']:,.0f} | {one['campaign_s'] / b['campaign_s']:.2f} |"
            )
    lowest = min(w[f"{name}_2"]["people_per_s"] for name in WORKER_RUNS)
    lowest_one = min(w[f"{name}_1"]["people_per_s"] for name in WORKER_RUNS)
    return [
        f"`loopwise decide-batch --workers N` on a SQLite data directory of the same "
        f"{w['profiles']:,} profiles ({w['cores']} cores), every tenth person having withdrawn",
        "`marketing` (so everyone's consent is looked up; a tenth of a user list is skipped); no",
        "frequency cap, so the same people are decided six times. Campaign seconds: what the",
        "command reports (with workers: from starting them to the merged output file, each",
        "worker's start-up of about a second included); command seconds: the whole process.",
        "",
        "| run | workers | audience | decided | campaign s | people/s | command s "
        "| people per command-s | speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        _goal(lowest >= 5000, "≥ 5,000 people per second with 2 workers, every run"),
        f"(lowest: {lowest:,.0f}/s; with 1 worker: {lowest_one:,.0f}/s). On SQLite each chunk's",
        "500 decisions go in 3 INSERT statements (a statement per row had the writer thread wait",
        "for the deciding thread to hand back the GIL once per row) and decision ids start with",
        "their millisecond (the log's id index grows at its end); a chunk's identities and",
        "consent are read in one query each. Workers scale with cores: each decides its own",
        "part of the audience, split by profile id.",
        "",
    ]


def _goal(met: bool, text: str) -> str:
    return f"Goal {text}: **{'met' if met else 'missed'}** in this run."


if __name__ == "__main__":
    print(run(profiles=5_000, items=2_000, requests=300))
