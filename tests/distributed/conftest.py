"""Real ``loopwise serve`` processes on one PostgreSQL + Redis.

PostgreSQL comes from ``LOOPWISE_TEST_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and Redis from ``LOOPWISE_TEST_REDIS_URL``
(default ``redis://127.0.0.1:6379/0``); every test module gets a schema of its own (dropped at
the end; the Redis channel and keys are named after the schema, so runs never meet). The tests
skip, saying which server is missing, when either is unreachable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from psycopg import sql

PG_URL = os.environ.get("LOOPWISE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LOOPWISE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
KEYS = {"write": "wk_scale_test", "server": "sk_scale_test", "admin": "ak_scale_test"}
START_TIMEOUT_S = 120.0


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def servers_available() -> None:
    if not reachable(PG_URL, 5432):
        pytest.skip(f"PostgreSQL is not reachable at {urlsplit(PG_URL).netloc}; start it to run")
    if not reachable(REDIS_URL, 6379):
        pytest.skip(f"Redis is not reachable at {urlsplit(REDIS_URL).netloc}; start it to run")


@pytest.fixture(scope="module")
def schema(servers_available: None) -> Iterator[str]:
    name = f"lw_scale_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def schema_url(schema: str, base: str = PG_URL) -> str:
    return f"{base}{'&' if '?' in base else '?'}schema={schema}"


def pg(schema: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(PG_URL, autocommit=True)
    conn.execute("SELECT set_config('search_path', %s, false)", [schema])
    return conn


@dataclass
class Server:
    """One ``loopwise serve`` process."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, key: str = "server", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {KEYS[key]}", **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def track(self, user: str, item: str, message_id: str | None = None) -> httpx.Response:
        return self.request(
            "POST",
            "/v1/track",
            json={
                "userId": user,
                "event": "Product Viewed",
                "properties": {"item_id": item},
                "messageId": message_id or uuid.uuid4().hex,
            },
        )

    def decide(self, user: str, **params: str) -> dict[str, Any]:
        response = self.request(
            "POST",
            "/v1/decide",
            params=params,
            json={"user": {"user_id": user}, "slots": [{"slot": "hero"}]},
        )
        assert response.status_code == 200, response.text
        return response.json()

    def profile(self, user: str) -> dict[str, Any] | None:
        response = self.request("GET", f"/v1/profiles/{user}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()["profile"]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if self.client.get("/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise AssertionError(f"serve did not start in time:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, nothing."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(
    tmp: Path,
    database_url: str,
    redis_url: str | None,
    *,
    workers: int = 1,
    name: str = "serve",
    port: int | None = None,
    extra_args: list[str] | None = None,
) -> Server:
    port = port or free_port()
    data_dir = tmp / "data"  # shared by the servers of one test: keys, models
    log = tmp / f"{name}-{port}.log"
    env = {
        **os.environ,
        "LOOPWISE_WRITE_KEY": KEYS["write"],
        "LOOPWISE_SERVER_KEY": KEYS["server"],
        "LOOPWISE_ADMIN_KEY": KEYS["admin"],
    }
    command = [
        sys.executable,
        "-m",
        "loopwise",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--database-url",
        database_url,
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    if redis_url:
        command += ["--redis-url", redis_url]
    command += extra_args or []
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = Server(port, process, log)
    return server


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[tuple[Server, ...]]:
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


def eventually(check: Any, timeout: float = 10.0, every: float = 0.01) -> float:
    """Seconds until ``check()`` is true (AssertionError when it never is)."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(every)
