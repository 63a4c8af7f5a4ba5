"""A real ``loopwise serve`` process on a free port, with known keys, for HTTP end-to-end tests.

Backends: the modules in :data:`BOTH_BACKENDS` run twice, on SQLite (the default data directory)
and on PostgreSQL + Redis (``serve --database-url ... --redis-url ...``, one worker), each data
directory of a test on a schema of its own, dropped at the end of the module. PostgreSQL and Redis
come from ``LOOPWISE_TEST_DATABASE_URL`` / ``LOOPWISE_TEST_REDIS_URL`` (as in tests/distributed);
the PostgreSQL variant skips, naming the missing server, when either is unreachable.

SQLite only, and why: the browser, console and Node/third-party client modules (browser_sdk,
console, clients, third_party_clients, bots) test what the page or client does, which no backend
changes, and cost a browser or Node start each; damaged_data and clusters edit or read the SQLite
file itself; cli_beside_a_server runs CLI commands on the same data directory as the server;
schema_fuzz is long and exercises request parsing, which the backend does not reach.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

# modules (file names without .py) that run on SQLite and on PostgreSQL + Redis
BOTH_BACKENDS = frozenset(
    {
        "test_ingest_http",
        "test_bad_input",
        "test_write_key_security",
        "test_admin",
        "test_durability",
        "test_channels_http",
        "test_loop",
        "test_key_rotation",
        "test_server_limits",
        "test_log_privacy",
    }
)
WRITE_KEY = "lw_write_e2e"
SERVER_KEY = "lw_server_e2e"
ADMIN_KEY = "lw_admin_e2e"
IDENTITY_SECRET = "e2e-identity-secret"
CHROMIUM = Path("/usr/bin/chromium")
# the brief's flags: no GPU, no background downloads or updates (nothing leaves the machine)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, key: str | None = SERVER_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Backend:
    """The backend the current module's servers run on; PostgreSQL: a schema per data directory."""

    name: str = "sqlite"
    schemas: dict[Path, str] = field(default_factory=dict)

    def args(self, data_dir: Path) -> list[str]:
        """``serve`` options for ``data_dir`` (the same schema each time: restarts keep data)."""
        if self.name == "sqlite":
            return []
        from tests.distributed.conftest import REDIS_URL, schema_url

        key = data_dir.resolve()
        schema = self.schemas.setdefault(key, f"lw_e2e_{uuid.uuid4().hex[:10]}")
        return ["--database-url", schema_url(schema), "--redis-url", REDIS_URL]


_backend = Backend()


def backend_args(data_dir: Path) -> list[str]:
    """The current backend's ``serve`` options, for modules that start ``serve`` themselves."""
    return _backend.args(data_dir)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and metafunc.module.__name__.split(".")[-1] in (
        BOTH_BACKENDS
    ):
        metafunc.parametrize("backend", ["sqlite", "postgres"], indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which backend this module's servers use (module fixtures that start one depend on it)."""
    global _backend
    name = getattr(request, "param", "sqlite")
    if name == "postgres":
        from tests.distributed.conftest import PG_URL, REDIS_URL, reachable

        if not reachable(PG_URL, 5432):
            pytest.skip(f"PostgreSQL is not reachable at {urlsplit(PG_URL).netloc}; start it")
        if not reachable(REDIS_URL, 6379):
            pytest.skip(f"Redis is not reachable at {urlsplit(REDIS_URL).netloc}; start it")
    _backend = Backend(name)
    try:
        yield name
    finally:
        schemas, _backend = list(_backend.schemas.values()), Backend()
        if schemas:
            import psycopg
            from psycopg import sql

            from tests.distributed.conftest import PG_URL

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                    )


def start_server(
    data_dir: Path, *, workspace: Path | None = None, extra_args: Sequence[str] = ()
) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "LOOPWISE_WRITE_KEY": WRITE_KEY,
        "LOOPWISE_SERVER_KEY": SERVER_KEY,
        "LOOPWISE_ADMIN_KEY": ADMIN_KEY,
        "LOOPWISE_IDENTITY_SECRET": IDENTITY_SECRET,
    }
    args = [
        sys.executable,
        "-m",
        "loopwise",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    if workspace is not None:
        args += ["--workspace", str(workspace)]
    args += backend_args(data_dir)
    args += list(extra_args)
    log_path = data_dir.parent / f"server-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", data_dir, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not become healthy:\n{server.log()}")


def stop_server(server: Server, *, hard: bool = False) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGKILL if hard else signal.SIGINT)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    running = start_server(data_dir)
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser build)."""
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium (apt-get install)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts a real ``loopwise serve`` on a free port (``workspace=`` optional); stops it after."""
    started: list[Server] = []

    def start(workspace: Path | None = None) -> Server:
        running = start_server(tmp_path / f"data{len(started)}", workspace=workspace)
        started.append(running)
        return running

    yield start
    for running in started:
        stop_server(running)
