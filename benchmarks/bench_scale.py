"""PostgreSQL + Redis with several workers: ingest and decide throughput with 1 and 2 workers,
and freshness across workers (an event acknowledged by one worker, seen by the other).

Every mode runs a real ``loopwise serve`` on a free port: SQLite in one process (the reference,
same run), then ``--database-url postgresql://... --redis-url redis://...`` with ``--workers 1``
and ``--workers 2``, each in a PostgreSQL schema of its own (dropped afterwards). Ingest is
``POST /v1/batch`` with 100-event batches from 8 concurrent clients over many users; decide is
``POST /v1/decide`` (one slot) for those users from 8 concurrent clients. Freshness runs two
separate serve processes on the same schema: a track on one, then the other's profile read in a
tight loop until it shows the event.

The load generator is this Python process (httpx in threads) on the same 2 cores as the workers
and PostgreSQL and Redis: the figures are what one machine does with everything on it, and the
report gives the share of a core the generator itself used.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from psycopg import sql

from benchmarks.bench_ingest import ADMIN_KEY, SERVER_KEY, WRITE_KEY, _free_port, make_batches

PG_URL = os.environ.get("LOOPWISE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LOOPWISE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CONCURRENCY = 8
USERS = 5000


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "LOOPWISE_WRITE_KEY": WRITE_KEY,
        "LOOPWISE_SERVER_KEY": SERVER_KEY,
        "LOOPWISE_ADMIN_KEY": ADMIN_KEY,
    }


class Serve:
    def __init__(self, data_dir: Path, database_url: str | None, workers: int, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.workers = workers
        command = [sys.executable, "-m", "loopwise", "serve", "--port", str(self.port),
                   "--data-dir", str(data_dir), "--log-level", "info"]  # fmt: skip
        if database_url:
            command += ["--database-url", database_url, "--redis-url", REDIS_URL]
            command += ["--workers", str(workers)]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True
            )

    def wait(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.log.read_text()[-2000:]}")
            started = self.log.read_bytes().count(b"Application startup complete")
            if started >= self.workers:
                try:
                    if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        raise RuntimeError("serve did not start in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ingest(url: str, bodies: list[bytes]) -> dict[str, Any]:
    auth = (WRITE_KEY, "")
    headers = {"Content-Type": "application/json"}
    clients = [httpx.Client(base_url=url, auth=auth, timeout=120) for _ in range(CONCURRENCY)]
    clients[0].post("/v1/batch", content=bodies[0], headers=headers)  # warm

    def send(index: int) -> int:
        return (
            clients[index % CONCURRENCY]
            .post("/v1/batch", content=bodies[index], headers=headers)
            .status_code
        )

    cpu, start = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        statuses = list(pool.map(send, range(1, len(bodies))))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    for client in clients:
        client.close()
    events = (len(bodies) - 1) * 100
    return {
        "events_per_s": events / elapsed,
        "non_200": sum(1 for s in statuses if s != 200),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "generator_cores": cpu / elapsed,
    }


def decide(url: str, requests: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {SERVER_KEY}", "Content-Type": "application/json"}
    clients = [httpx.Client(base_url=url, headers=headers, timeout=60) for _ in range(CONCURRENCY)]
    bodies = [
        orjson.dumps(
            {"user": {"anonymous_id": f"user-{(n * 37) % USERS}"}, "slots": [{"slot": "hero"}]}
        )
        for n in range(requests)
    ]
    clients[0].post("/v1/decide", content=bodies[0])

    def send(index: int) -> tuple[int, float]:
        started = time.perf_counter()
        status = clients[index % CONCURRENCY].post("/v1/decide", content=bodies[index]).status_code
        return status, time.perf_counter() - started

    cpu, start = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(send, range(requests)))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    for client in clients:
        client.close()
    latencies = [seconds * 1000 for _, seconds in results]
    return {
        "decisions_per_s": requests / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": _percentile(latencies, 0.99),
        "non_200": sum(1 for status, _ in results if status != 200),
        "generator_cores": cpu / elapsed,
    }


def freshness(first: str, second: str, trials: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {SERVER_KEY}"}
    a = httpx.Client(base_url=first, headers=headers, timeout=30)
    b = httpx.Client(base_url=second, headers=headers, timeout=30)
    lags: list[float] = []
    try:
        for trial in range(trials):
            user = f"fresh-{trial}"
            a.post("/v1/track", json={"userId": user, "event": "Product Viewed",
                                      "properties": {"item_id": "sku-1"}})  # fmt: skip
            b.get(f"/v1/profiles/{user}")  # b caches the first state
            sent = a.post("/v1/track", json={"userId": user, "event": "Product Viewed",
                                             "properties": {"item_id": "sku-2"}})  # fmt: skip
            acked = time.perf_counter()
            assert sent.status_code == 200, sent.text
            while True:
                profile = b.get(f"/v1/profiles/{user}").json()["profile"]
                if profile["item_views"] == 2:
                    lags.append((time.perf_counter() - acked) * 1000)
                    break
                if time.perf_counter() - acked > 10:
                    raise RuntimeError("an event never reached the other worker")
    finally:
        a.close()
        b.close()
    return {
        "trials": trials,
        "p50_ms": statistics.median(lags),
        "p99_ms": _percentile(lags, 0.99),
        "max_ms": max(lags),
    }


def _schema_url(schema: str) -> str:
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"


def _drop(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def run(batches: int = 300, decides: int = 3000, trials: int = 200) -> dict[str, Any]:
    bodies = make_batches(batches + 1, users=USERS)
    rows: list[dict[str, Any]] = []
    result: dict[str, Any] = {
        "batches": batches,
        "decides": decides,
        "rows": rows,
        "load_average": os.getloadavg()[0],  # other work on the machine, at the start
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for label, workers, postgres in (
            ("SQLite, 1 process (reference)", 1, False),
            ("PostgreSQL + Redis, 1 worker", 1, True),
            ("PostgreSQL + Redis, 2 workers", 2, True),
        ):
            schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
            data = root / f"data-{len(rows)}"
            server = Serve(data, _schema_url(schema) if postgres else None, workers,
                           root / f"serve-{len(rows)}.log")  # fmt: skip
            try:
                server.wait()
                row = {"mode": label, "workers": workers}
                row["ingest"] = ingest(server.url, bodies)
                row["decide"] = decide(server.url, decides)
                rows.append(row)
            finally:
                server.stop()
                if postgres:
                    _drop(schema)
        schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
        first = Serve(root / "fresh", _schema_url(schema), 1, root / "fresh-a.log")
        try:
            first.wait()
            second = Serve(root / "fresh", _schema_url(schema), 1, root / "fresh-b.log")
            try:
                second.wait()
                result["freshness"] = freshness(first.url, second.url, trials)
            finally:
                second.stop()
        finally:
            first.stop()
            _drop(schema)
    return result


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "## PostgreSQL + Redis with 1 and 2 workers (`loopwise serve --workers N`)",
        "",
        f"Ingest: {result['batches']} batches of 100 events (`POST /v1/batch`, 8 concurrent "
        f"clients, 5,000 users); decide: {result['decides']:,} requests (`POST /v1/decide`, one "
        "slot, 8 concurrent clients, the same users). SQLite in one process is the reference in "
        "the same run. Everything — the workers, PostgreSQL, Redis and the load generator — "
        "shares this machine's 2 cores; *generator* is the share of a core the load generator "
        "itself used, which the workers did not have. Load average at the start: "
        f"{result.get('load_average', 0.0):.1f} (anything above 0 is other work sharing the "
        "cores).",
        "",
        "| mode | ingest events/s | generator | decide /s | decide p50 ms | decide p99 ms "
        "| generator | non-200 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        ingest_row, decide_row = row["ingest"], row["decide"]
        lines.append(
            f"| {row['mode']} | {ingest_row['events_per_s']:,.0f} | "
            f"{ingest_row['generator_cores']:.2f} | {decide_row['decisions_per_s']:,.0f} | "
            f"{decide_row['p50_ms']:.1f} | {decide_row['p99_ms']:.1f} | "
            f"{decide_row['generator_cores']:.2f} | "
            f"{ingest_row['non_200'] + decide_row['non_200']} |"
        )
    by_workers = {(row["workers"], "PostgreSQL" in row["mode"]): row for row in result["rows"]}
    one, two, sqlite = (
        by_workers.get((1, True)),
        by_workers.get((2, True)),
        by_workers.get((1, False)),
    )
    if one and two and sqlite:
        lines += [
            "",
            "2 workers / 1 worker: ingest "
            f"x{two['ingest']['events_per_s'] / one['ingest']['events_per_s']:.2f}, decide "
            f"x{two['decide']['decisions_per_s'] / one['decide']['decisions_per_s']:.2f}. "
            "PostgreSQL + Redis (1 worker) / SQLite: ingest "
            f"{one['ingest']['events_per_s'] / sqlite['ingest']['events_per_s']:.2f}, decide "
            f"{one['decide']['decisions_per_s'] / sqlite['decide']['decisions_per_s']:.2f}.",
        ]
    fresh = result.get("freshness")
    if fresh:
        lines += [
            "",
            f"Freshness across workers ({fresh['trials']} trials: acknowledged by worker A, "
            "then worker B's profile read in a loop until it shows the event, B having cached "
            f"the state before): p50 **{fresh['p50_ms']:.1f} ms**, p99 "
            f"**{fresh['p99_ms']:.1f} ms**, max {fresh['max_ms']:.1f} ms (bound in "
            "docs/scale.md: 1 s).",
        ]
    lines.append("")
    return lines


if __name__ == "__main__":
    print(run(batches=20, decides=200, trials=10))
