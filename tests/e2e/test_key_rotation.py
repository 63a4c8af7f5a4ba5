"""Key rotation against a running ``loopwise serve``: ``loopwise keys create`` -> old and new keys
both work -> ``loopwise keys revoke`` old -> old is 401, new still works. No restart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import (
    ADMIN_KEY,
    WRITE_KEY,
    Server,
    backend_args,
    free_port,
    stop_server,
)


def cli(*args: str, data_dir: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "loopwise", "keys", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOOPWISE_")},
    )
    return done.stdout


def start_with_file_server_keys(data_dir: Path) -> Server:
    """Like conftest.start_server, but server keys come from keys.json, not the environment."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWISE_")}
    env |= {"LOOPWISE_WRITE_KEY": WRITE_KEY, "LOOPWISE_ADMIN_KEY": ADMIN_KEY}
    args = [sys.executable, "-m", "loopwise", "serve", "--port", str(port)]
    log_path = data_dir.parent / f"server-{port}.log"
    process = subprocess.Popen(
        [*args, "--data-dir", str(data_dir), *backend_args(data_dir)],
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", data_dir, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(server.log())


def status(server: Server, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(server.url + "/v1/items?limit=1", headers=headers, timeout=10).status_code


def eventually(server: Server, key: str, expected: int) -> int:
    """The server re-reads keys.json at most once a second."""
    deadline = time.monotonic() + 5
    while (got := status(server, key)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


def test_rotate_a_server_key_without_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_with_file_server_keys(data_dir)
    try:
        old = cli("create", "--kind", "server", data_dir=data_dir).splitlines()[1]
        assert eventually(server, old, 200) == 200
        new = cli("create", "--kind", "server", data_dir=data_dir).splitlines()[1]
        assert eventually(server, new, 200) == 200
        assert status(server, old) == 200  # both work while clients move over
        listed = cli("list", data_dir=data_dir)
        assert old not in listed and new not in listed
        old_id = next(
            line.split()[1]
            for line in listed.splitlines()
            if line.startswith("server") and old.startswith(line.split()[2])
        )
        cli("revoke", old_id, data_dir=data_dir)
        assert eventually(server, old, 401) == 401
        assert status(server, new) == 200
    finally:
        stop_server(server)
    log = server.log()
    assert old not in log and new not in log
