"""CLI commands beside a running server on the same data directory: the server picks up what
they change (as it does for keys), and a backup is a consistent copy taken while it runs."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson

from tests.e2e.conftest import SERVER_KEY, Server


def loopwise(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopwise", *args], capture_output=True, text=True, timeout=120
    )


def test_import_items_reaches_a_running_server(server: Server, tmp_path: Path) -> None:
    items = tmp_path / "new.jsonl"
    items.write_text(
        "\n".join(
            orjson.dumps(
                {"id": f"cli-{n}", "title": f"Imported {n}", "categories": ["new"]}
            ).decode()
            for n in range(2)
        )
    )
    with server.client(SERVER_KEY) as client:
        assert client.get("/v1/items/cli-0").status_code == 404
        done = loopwise("import", "items", str(items), "--data-dir", str(server.data_dir))
        assert done.returncode == 0, done.stderr
        assert "Imported 2 items" in done.stdout
        deadline = time.monotonic() + 5  # the server looks for changes about once a second
        while client.get("/v1/items/cli-1").status_code != 200:
            assert time.monotonic() < deadline, "the running server never saw the import"
            time.sleep(0.2)
        assert client.get("/v1/items/cli-0").json()["title"] == "Imported 0"


def test_backup_while_the_server_runs(server: Server, tmp_path: Path) -> None:
    with server.client(SERVER_KEY) as client:
        body = {"type": "track", "anonymousId": "backup-me", "event": "Seen"}
        assert client.post("/v1/track", json=body).status_code == 200
    target = tmp_path / "copy.db"
    done = loopwise("backup", str(target), "--data-dir", str(server.data_dir))
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(target)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] >= 1
    finally:
        conn.close()
    again = loopwise("backup", str(target), "--data-dir", str(server.data_dir))
    assert again.returncode == 2 and "exists" in again.stderr + again.stdout
