"""Faults under load with real processes: a worker killed with SIGKILL, Redis flushed and
restarted, PostgreSQL gone and back. Acknowledged means kept, retries never double count."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from loopwise.engine import Engine
from tests.distributed.conftest import (
    PG_URL,
    REDIS_URL,
    Server,
    eventually,
    free_port,
    pg,
    running,
    schema_url,
    start_server,
)

# real processes start in ~20 s each on a busy 2-core machine
pytestmark = pytest.mark.timeout(600)

USERS = [f"load-{n}" for n in range(40)]
BATCH = 25


@pytest.fixture
def fresh_schema(servers_available: None) -> Iterator[str]:
    name = f"lw_fault_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


class Load:
    """Batches of Product Viewed events, each retried with the same message ids until some
    server acknowledges it (the way an SDK retries)."""

    def __init__(self, seed: int) -> None:
        self.sent: dict[str, str] = {}  # message id -> user, every event ever sent
        self.acked: set[str] = set()
        self.statuses: Counter[int] = Counter()
        self.connection_errors = 0
        self._seed = seed
        self._n = 0

    def batch(self) -> list[dict[str, Any]]:
        events = []
        for _ in range(BATCH):
            self._n += 1
            user = USERS[(self._n * 7 + self._seed) % len(USERS)]
            message_id = f"{self._seed}-{self._n}"
            self.sent[message_id] = user
            events.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": "Product Viewed",
                    "properties": {"item_id": f"sku-{self._n % 13}"},
                    "messageId": message_id,
                }
            )
        return events

    def send(self, servers: list[Server], batches: int, *, pause: float = 0.0) -> None:
        for index in range(batches):
            events = self.batch()
            attempt = 0
            while True:
                server = servers[(index + attempt) % len(servers)]
                if server.process.poll() is not None:  # dead: the SDK tries another host
                    attempt += 1
                    continue
                try:
                    response = server.request("POST", "/v1/batch", json={"batch": events})
                except httpx.HTTPError:
                    self.connection_errors += 1
                    attempt += 1
                    time.sleep(0.05)
                    continue
                self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    self.acked.update(e["messageId"] for e in events)
                    break
                attempt += 1
                time.sleep(0.05)
            if pause:
                time.sleep(pause)

    def expected(self) -> Counter[str]:
        return Counter(self.sent[m] for m in self.acked)


def stored_events(schema: str) -> dict[str, int]:
    with pg(schema) as conn:
        rows = conn.execute("SELECT message_id, count(*) FROM events GROUP BY 1").fetchall()
    return {row[0]: int(row[1]) for row in rows}


def check_profiles(load: Load, servers: list[Server]) -> None:
    expected = load.expected()
    for server in servers:
        for user, count in expected.items():
            profile = server.decide(user, wait="applied") and server.profile(user)
            assert profile is not None and profile["item_views"] == count, (user, server.port)


def replay_differs(tmp: Path, url: str) -> dict[str, Any]:
    engine, _ = Engine.open(tmp / "data", None, database_url=url, watch=False)
    try:
        return engine.replay()
    finally:
        engine.close()


def test_kill_9_of_a_worker_during_ingest_loses_nothing_and_counts_nothing_twice(
    fresh_schema: str, tmp_path: Path
) -> None:
    url = schema_url(fresh_schema)
    a = start_server(tmp_path, url, REDIS_URL, name="a")
    a.wait_ready()
    b = start_server(tmp_path, url, REDIS_URL, name="b")
    with running(a, b):
        loads = [Load(1), Load(2)]
        threads = [
            threading.Thread(target=loads[0].send, args=([a, b], 40)),
            threading.Thread(target=loads[1].send, args=([b, a], 40)),
        ]
        for thread in threads:
            thread.start()
        eventually(lambda: len(loads[0].acked) >= 10 * BATCH, timeout=120)
        a.kill()  # SIGKILL mid-load: transactions in flight are rolled back by PostgreSQL
        for thread in threads:
            thread.join(timeout=300)
        assert a.process.returncode == -signal.SIGKILL
        load = Load(0)
        for part in loads:
            load.sent.update(part.sent)
            load.acked |= part.acked
        assert len(load.acked) == len(load.sent) == 2 * 40 * BATCH  # every batch acknowledged
        stored = stored_events(fresh_schema)
        assert set(stored) == load.acked  # 0 acknowledged events lost
        assert set(stored.values()) == {1}  # 0 stored twice
        check_profiles(load, [b])  # 0 counted twice in any profile
    report = replay_differs(tmp_path, url)
    assert report["events"] == len(load.acked)
    assert report["differing"] == 0, report["differing_ids"]


def _redis_server(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError("redis-server did not start")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server to restart")
def test_redis_flushed_and_restarted_mid_load_loses_nothing(
    fresh_schema: str, tmp_path: Path
) -> None:
    port = free_port()  # a Redis of this test's own: restarting the shared one would hurt others
    redis_process = _redis_server(port)
    redis_url = f"redis://127.0.0.1:{port}/0"
    url = schema_url(fresh_schema)
    a = start_server(tmp_path, url, redis_url, name="a")
    a.wait_ready()
    b = start_server(tmp_path, url, redis_url, name="b")
    try:
        with running(a, b):
            load = Load(3)
            thread = threading.Thread(target=load.send, args=([a, b], 60), kwargs={"pause": 0.02})
            thread.start()
            eventually(lambda: len(load.acked) >= 10 * BATCH, timeout=120)
            subprocess.run(["redis-cli", "-p", str(port), "FLUSHALL"], check=True, timeout=10)
            eventually(lambda: len(load.acked) >= 20 * BATCH, timeout=120)
            redis_process.kill()  # restart: every connection and subscription is dropped
            redis_process.wait(timeout=10)
            time.sleep(1.0)
            redis_process = _redis_server(port)
            thread.join(timeout=300)
            assert not [s for s in load.statuses if s >= 500], load.statuses  # no 5xx at all
            assert len(load.acked) == len(load.sent)
            stored = stored_events(fresh_schema)
            assert set(stored) == load.acked and set(stored.values()) == {1}
            # after Redis is back both workers agree with PostgreSQL, without wait=applied too
            expected = load.expected()
            for server in (a, b):
                eventually(
                    lambda s=server: all(
                        (s.profile(u) or {}).get("item_views") == n for u, n in expected.items()
                    ),
                    timeout=5,
                    every=0.2,
                )
    finally:
        redis_process.kill()
        redis_process.wait(timeout=10)


class Proxy:
    """A TCP proxy to PostgreSQL that the test can cut (as a server crash or a network loss
    looks to Loopwise) and restore on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_postgres_unavailable_answers_503_with_retry_after_and_recovers(
    fresh_schema: str, tmp_path: Path
) -> None:
    parts = urlsplit(PG_URL)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    netloc = f"{parts.username + '@' if parts.username else ''}127.0.0.1:{proxy.port}"
    url = schema_url(fresh_schema, urlunsplit(parts._replace(netloc=netloc)))
    server = start_server(tmp_path, url, REDIS_URL, name="pg-cut")
    try:
        with running(server):
            acked: list[str] = []

            def send(message_id: str) -> httpx.Response:
                response = server.track("pat", "sku-1", message_id)
                if response.status_code == 200:
                    acked.append(message_id)
                return response

            assert send("before").status_code == 200
            proxy.cut()
            failed = send("during")
            assert failed.status_code == 503, failed.text
            assert failed.headers["content-type"].startswith("application/problem+json")
            assert failed.headers["retry-after"] == "1"
            assert failed.json()["type"].endswith("/storage-unavailable")
            proxy.start()

            def recovered() -> bool:
                return send(f"after-{uuid.uuid4().hex[:6]}").status_code == 200

            eventually(recovered, timeout=30, every=0.5)  # by itself: nobody restarted it
            assert send("during").status_code == 200  # the client's retry of the 503
            stored = stored_events(fresh_schema)
            assert set(acked) <= set(stored)  # never 200-then-lost
            assert stored["during"] == 1
    finally:
        proxy.cut()
