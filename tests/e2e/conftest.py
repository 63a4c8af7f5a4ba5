"""A real ``loopwise serve`` process on a free port, with known keys, for HTTP end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
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
