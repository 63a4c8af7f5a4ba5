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


def run(batches: int = 400, concurrency: int = 8) -> dict[str, Any]:
    bodies = make_batches(batches + 1)
    raw = raw_sqlite(bodies)
    http = http_ingest(bodies, concurrency)
    return {
        "http": http,
        "raw_sqlite": raw,
        "ratio_to_raw": http["events_per_s"] / raw["events_per_s"],
        "concurrency": concurrency,
    }


if __name__ == "__main__":
    print(run())
