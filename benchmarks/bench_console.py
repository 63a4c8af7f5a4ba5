"""Console pages rendered server-side with real data: every page's time at 100,000 profiles and
1,000,000 events (issue 14 §3: each page ≤ 300 ms), measured against ``GET /healthz`` through
the same client in the same run (the ratio), plus the background count's time.

The data is the simulator's: a seeded population shops for ``days`` days and its messages go
through the engine's real ingest (profiles, segments, segment history, exposures of an experiment
on the ``recommended`` slot, decisions). The rest of the population is those shoppers' copies
under new ids, written straight to the stores in large batches (profile records, identity links,
their events, segment changes and exposures) — the real ingest path would take an hour here. The
engine is then reopened on the SQLite file, as a restarted server would be.

``python -m benchmarks.bench_console [--quick]`` prints Markdown lines (appended to RESULTS.md).
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import time
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from fastapi.testclient import TestClient

from benchmarks.machine import describe
from loopwise.api.app import create_app
from loopwise.clock import EventTimeClock
from loopwise.config import SAMPLE_WORKSPACE
from loopwise.engine import Engine
from loopwise.profiles import codec
from loopwise.profiles.identity import profile_id_for
from loopwise.sim.demo import EnginePolicy, InProcessClient, write_data_dir
from loopwise.sim.runner import SimConfig, Simulation
from loopwise.storage.records import ProfileRecord, SegmentChange
from loopwise.storage.sqlite import SqliteStorage
from loopwise.storage.stores import UnitOfWork

TARGET_MS = 300.0
BATCH = 20_000
PAGES = (
    "/ui",
    "/ui/segments",
    "/ui/segments/new",
    "/ui/segments/running_fans",
    "/ui/slots",
    "/ui/slots/hero",
    "/ui/experiments",
    "/ui/experiments/bench-recs",
    "/ui/models",
    "/ui/people?id={person}",
    "/ui/privacy",
    "/ui/history",
    "/ui/users",
)


def workspace_document(data_dir: Path, sim: Simulation, days: int) -> dict[str, Any]:
    import yaml

    write_data_dir(sim, _demo_config(days, sim.config.n_users), data_dir)
    document: dict[str, Any] = yaml.safe_load(SAMPLE_WORKSPACE.read_text())
    document["items"] = "items.jsonl"
    document["holdout"] = {"percent": 5}
    document["experiments"] = [
        {
            "key": "bench-recs",
            "slot": "recommended",
            "arms": [
                {"key": "control", "strategy": "popular"},
                {"key": "treatment", "strategy": "category_affinity"},
            ],
            "metrics": [{"key": "purchase", "kind": "conversion", "event": "Order Completed"}],
        }
    ]
    return document


def _demo_config(days: int, users: int) -> Any:
    from loopwise.sim.demo import DemoConfig

    return DemoConfig(days=days, users=users)


def seed_templates(data_dir: Path, users: int, days: int) -> tuple[int, float]:
    """The simulator's shoppers through the real ingest and decide; returns (events, seconds)."""
    import yaml

    began = time.perf_counter()
    sim = Simulation(SimConfig(seed=7, n_users=users, days=days))
    document = workspace_document(data_dir, sim, days)
    path = data_dir / "loopwise.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    engine, _ = Engine.open(data_dir, path, clock=EventTimeClock(), environ={}, watch=False)
    try:
        policy = EnginePolicy(InProcessClient(engine))
        sim.run(policy, keep_messages=False)
        events = engine.storage.events.count()
    finally:
        engine.close()
    return events, time.perf_counter() - began


def clone_population(storage: SqliteStorage, profiles: int, events: int) -> dict[str, Any]:
    """Copy the stored profiles under new ids until there are ``profiles`` of them and the log
    holds about ``events`` events; returns what was written."""
    began = time.perf_counter()
    templates = list(storage.profiles.iter())
    template_events = {r.id: [le.event for le in storage.events.iter(r.id)] for r in templates}
    history = {r.id: storage.segment_history.for_profile(r.id) for r in templates}
    exposures = {r.id: storage.exposures.for_profiles([r.id]) for r in templates}
    need = max(profiles - len(templates), 0)
    per_clone = max(1, (events - storage.events.count()) // max(need, 1))
    written = {"profiles": 0, "events": 0}
    pending: list[tuple[str, str, ProfileRecord]] = []

    def flush() -> None:
        def job(uow: UnitOfWork) -> None:
            uow.profiles.upsert([record for _, _, record in pending])
            uow.identities.link({anon: pid for anon, pid, _ in pending})
            batch, owners = [], []
            for anon, pid, _ in pending:
                template = pending_templates[pid]
                for n, event in enumerate(template_events[template][:per_clone]):
                    batch.append(
                        replace(event, message_id=f"{anon}-{n}", anonymous_id=anon, user_id=None)
                    )
                    owners.append(pid)
                for change in _changes(history[template]):
                    uow.segment_history.record(pid, *change)
                for exposure in exposures[template]:
                    uow.exposures.put(replace(exposure, profile_id=pid, decision_id=None))
            uow.events.append(batch, owners)
            written["events"] += len(batch)

        storage.write(job)
        written["profiles"] += len(pending)
        pending.clear()
        pending_templates.clear()

    pending_templates: dict[str, str] = {}
    for i in range(need):
        template = templates[i % len(templates)]
        profile = codec.decode(template)
        anon = f"bench-clone-{i}"
        profile.id = profile_id_for(anon)
        profile.anonymous_ids = [anon]
        profile.user_id = None
        pending.append((anon, profile.id, codec.encode(profile)))
        pending_templates[profile.id] = template.id
        if len(pending) * per_clone >= BATCH:
            flush()
    if pending:
        flush()
    written["seconds"] = round(time.perf_counter() - began, 1)
    return written


def _changes(changes: list[SegmentChange]) -> list[tuple[list[str], list[str], Any]]:
    """A template's segment history as ``record`` calls (entered, left, at), one per change."""
    return [
        ([c.segment], [], c.at) if c.change == "entered" else ([], [c.segment], c.at)
        for c in changes
    ]


def _signed_in(client: TestClient, engine: Engine) -> None:
    password = secrets.token_urlsafe(16)
    client.app.state.console.people.create("bench@example.com", "admin", password)  # type: ignore[attr-defined]
    page = client.get("/ui/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/ui/login",
        data={"login_csrf": token, "email": "bench@example.com", "password": password},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def _time(client: TestClient, path: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return times


def run(
    profiles: int = 100_000,
    events: int = 1_000_000,
    users: int = 2000,
    days: int = 14,
    rounds: int = 20,
) -> dict[str, Any]:
    with TemporaryDirectory(prefix="loopwise-bench-console-") as scratch:
        data_dir = Path(scratch)
        seeded_events, seed_seconds = seed_templates(data_dir, users, days)
        storage = SqliteStorage(data_dir / "loopwise.db")
        try:
            cloned = clone_population(storage, profiles, events)
            stored = {"profiles": storage.profiles.count(), "events": storage.events.count()}
        finally:
            storage.close()
        engine, _ = Engine.open(
            data_dir, data_dir / "loopwise.yaml", clock=EventTimeClock(), environ={}, watch=False
        )
        try:
            app = create_app(engine)
            console = app.state.console
            began = time.perf_counter()
            console.census.count_now()
            census_seconds = time.perf_counter() - began
            began = time.perf_counter()
            console.ledger.count_now()
            ledger_seconds = time.perf_counter() - began
            console._started = True  # the counts above stand in for the background's first round
            person = next(iter(engine.storage.identities.iter()))[0]
            with TestClient(app) as client:
                _signed_in(client, engine)
                health = _time(client, "/healthz", rounds)
                rows = []
                for template in PAGES:
                    path = template.format(person=person)
                    _time(client, path, 2)  # warm: templates compiled, caches filled
                    times = _time(client, path, rounds)
                    rows.append(
                        {
                            "page": template.replace("{person}", "<id>"),
                            "p50_ms": round(statistics.median(times), 1),
                            "p95_ms": round(sorted(times)[int(0.95 * (len(times) - 1))], 1),
                            "max_ms": round(max(times), 1),
                        }
                    )
        finally:
            engine.close()
    health_p50 = statistics.median(health)
    for row in rows:
        row["ratio_to_healthz"] = round(row["p50_ms"] / health_p50, 1)
    return {
        "stored": stored,
        "seeded_events": seeded_events,
        "seed_seconds": round(seed_seconds, 1),
        "cloned": cloned,
        "census_seconds": round(census_seconds, 1),
        "ledger_seconds": round(ledger_seconds, 1),
        "healthz_p50_ms": round(health_p50, 2),
        "rows": rows,
        "rounds": rounds,
    }


def markdown(result: dict[str, Any], command: str) -> list[str]:
    machine = describe()
    worst = max(row["max_ms"] for row in result["rows"])
    lines = [
        "## Console pages, server-side render (issue 14)",
        "",
        f"- date: {machine['date']}; machine: {machine['cpu']}, {machine['memory']}; "
        f"python {machine['python']}",
        f"- command: `{command}`",
        f"- data: {result['stored']['profiles']:,} profiles, {result['stored']['events']:,} events "
        f"(SQLite file): the simulator's shoppers through the real ingest and decide "
        f"({result['seeded_events']:,} events, {result['seed_seconds']} s), copied to the rest "
        f"({result['cloned']['profiles']:,} profiles, {result['cloned']['events']:,} events in "
        f"{result['cloned']['seconds']} s, written straight to the stores)",
        f"- background count (segment sizes, overlaps, sample, consent per region) over every "
        f"profile: {result['census_seconds']} s; ledger (audit chain, consent changes, last day's "
        f"decisions): {result['ledger_seconds']} s — both off the request path",
        f"- each page: {result['rounds']} GETs after 2 warm-ups, signed in as an admin, through "
        f"FastAPI's TestClient; reference `GET /healthz` p50 {result['healthz_p50_ms']} ms in the "
        "same run",
        "",
        "| page | p50 ms | p95 ms | max ms | p50 / healthz |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['page']} | {row['p50_ms']} | {row['p95_ms']} | {row['max_ms']} | "
            f"{row['ratio_to_healthz']} |"
        )
    verdict = "met" if worst <= TARGET_MS else "missed"
    lines += [
        "",
        f"Goal every page ≤ {TARGET_MS:g} ms: **{verdict}** (slowest request {worst} ms).",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 profiles / 100,000 events")
    args = parser.parse_args()
    if args.quick:
        result = run(profiles=10_000, events=100_000, users=500, days=7, rounds=5)
    else:
        result = run()
    command = "python -m benchmarks.bench_console" + (" --quick" if args.quick else "")
    print("\n".join(markdown(result, command)))


if __name__ == "__main__":
    main()
