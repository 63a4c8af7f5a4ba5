"""Ingest throughput through ``POST /v1/batch`` (100-event batches, durable before the reply),
against raw SQLite inserts of the same rows in the same run (the ratio is the figure that travels
across machines).

A real ``loopwise serve`` process runs on a free port; a thread pool of HTTP clients sends batches
concurrently, so the server's group commit can amortise fsyncs as it would under real traffic.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

WRITE_KEY = "lw_write_bench"
SERVER_KEY = "lw_server_bench"
ADMIN_KEY = "lw_admin_bench"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``loopwise serve`` on a free port with the bench keys; returns the process and its URL."""
    port = _free_port()
    env = {
        **os.environ,
        "LOOPWISE_WRITE_KEY": WRITE_KEY,
        "LOOPWISE_SERVER_KEY": SERVER_KEY,
        "LOOPWISE_ADMIN_KEY": ADMIN_KEY,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loopwise",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def make_batches(count: int, size: int = 100, users: int = 5000) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    bodies = []
    for b in range(count):
        batch = [
            {
                "type": "track",
                "anonymousId": f"user-{(b * size + i) % users}",
                "event": "Product Viewed",
                "messageId": str(uuid.uuid4()),
                "timestamp": now,
                "properties": {"product_id": f"run-{(b + i) % 30 + 1:03d}"},
                "context": {"page": {"url": "https://shop.test/p"}},
            }
            for i in range(size)
        ]
        bodies.append(orjson.dumps({"batch": batch}))
    return bodies


def http_ingest(bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_server(Path(tmp) / "data")
        try:
            auth = (WRITE_KEY, "")
            with httpx.Client(base_url=url, auth=auth) as warm:
                warm.post(
                    "/v1/batch", content=bodies[0], headers={"Content-Type": "application/json"}
                )
            clients = [
                httpx.Client(base_url=url, auth=auth, timeout=60) for _ in range(concurrency)
            ]

            def send(index: int) -> int:
                response = clients[index % concurrency].post(
                    "/v1/batch", content=bodies[index], headers={"Content-Type": "application/json"}
                )
                return response.status_code

            start = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                statuses = list(pool.map(send, range(1, len(bodies))))
            elapsed = time.perf_counter() - start
            for client in clients:
                client.close()
        finally:
            stop_server(process)
    events = (len(bodies) - 1) * 100
    return {
        "events": events,
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        "non_200": sum(1 for s in statuses if s != 200),
    }


def raw_sqlite(bodies: list[bytes]) -> dict[str, Any]:
    """The same rows, one durable transaction per 100-event batch, no HTTP, no profiles."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, message_id TEXT UNIQUE, "
            "profile_id TEXT, record BLOB)"
        )
        start = time.perf_counter()
        for body in bodies[1:]:
            batch = orjson.loads(body)["batch"]
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR IGNORE INTO events (message_id, profile_id, record) VALUES (?, ?, ?)",
                [(m["messageId"], m["anonymousId"], orjson.dumps(m)) for m in batch],
            )
            db.execute("COMMIT")
        elapsed = time.perf_counter() - start
        db.close()
    events = (len(bodies) - 1) * 100
    return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed}


# where the writer thread's time goes: (label, cProfile's name for the function)
STAGES: tuple[tuple[str, str, str], ...] = (
    ("consent gate", "projection/ingest.py", "gate"),
    ("load the snapshot (identities, profiles, exposures)", "projection/projector.py", "load"),
    ("fold: the profile reducer", "profiles/reducer.py", "reduce"),
    ("fold: segment membership (attributes + conditions)", "workspace/compiled.py", "membership"),
    ("fold: the rest (identity, observations, effects)", "projection/fold.py", "fold"),
    ("write the effects (records encoded, SQL)", "projection/projector.py", "write"),
    ("publish to the views after commit", "projection/projector.py", "publish"),
    ("commit (fsync)", "sqlite/storage.py", "commit"),
)


def writer_profile(bodies: list[bytes], *, shares: bool = True) -> dict[str, Any]:
    """The same batches through the engine in process (8 threads parse and submit, as the HTTP
    handlers do): the writer thread's CPU per event (``time.thread_time``, no profiler), the
    parsing threads' CPU per event, then the same again under cProfile on the writer thread
    for the share of each stage (cProfile inflates code with many small calls)."""
    import cProfile
    import pstats
    import threading

    from loopwise.clock import system_clock
    from loopwise.engine import Engine
    from loopwise.events.normalize import parse_request
    from loopwise.storage import writer

    def measure(profiler: cProfile.Profile | None) -> tuple[float, float]:
        busy, parsing = [0.0], [0.0]
        lock = threading.Lock()
        original = writer.GroupCommitWriter._run_batch

        def timed(self: Any, session: Any, batch: Any) -> None:
            start = time.thread_time()
            if profiler is not None:
                profiler.enable()
            try:
                original(self, session, batch)
            finally:
                if profiler is not None:
                    profiler.disable()
                busy[0] += time.thread_time() - start

        with tempfile.TemporaryDirectory() as tmp:
            engine, _ = Engine.open(Path(tmp) / "data", watch=False)

            def one(index: int) -> None:
                start = time.thread_time()
                events = parse_request(
                    orjson.loads(bodies[index]), kind="batch", received_at=system_clock()
                )
                with lock:
                    parsing[0] += time.thread_time() - start
                engine.submit_ingest(events).result()

            one(0)
            writer.GroupCommitWriter._run_batch = timed  # type: ignore[method-assign]
            try:
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(one, range(1, len(bodies))))
            finally:
                writer.GroupCommitWriter._run_batch = original  # type: ignore[method-assign]
                engine.close()
        events = (len(bodies) - 1) * 100
        return busy[0] / events * 1e6, parsing[0] / events * 1e6

    writer_us, parse_us = measure(None)
    if not shares:
        return {"writer_us_per_event": writer_us, "parse_us_per_event": parse_us, "shares": {}}
    profiler = cProfile.Profile()
    measure(profiler)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, name), (_, _, tt, _, _) in stats.items()) or 1.0
    cumulative: dict[str, float] = {}
    for label, path, function in STAGES:
        cumulative[label] = sum(
            ct
            for (file, _, name), (_, _, _, ct, _) in stats.items()
            if name == function and file.endswith(path)
        )
    # the fold's own line excludes what the reducer and membership rows already count
    rest = "fold: the rest (identity, observations, effects)"
    cumulative[rest] -= (
        cumulative["fold: the profile reducer"]
        + cumulative["fold: segment membership (attributes + conditions)"]
    )
    return {
        "writer_us_per_event": writer_us,
        "parse_us_per_event": parse_us,
        "shares": {label: ct / total for label, ct in cumulative.items()},
    }


def run(batches: int = 400, concurrency: int = 8, profile_batches: int = 100) -> dict[str, Any]:
    bodies = make_batches(batches + 1)
    raw = raw_sqlite(bodies)
    http = http_ingest(bodies, concurrency)
    return {
        "http": http,
        "raw_sqlite": raw,
        "ratio_to_raw": http["events_per_s"] / raw["events_per_s"],
        "concurrency": concurrency,
        "profile": writer_profile(bodies[: profile_batches + 1]),
    }


if __name__ == "__main__":
    print(run())
