"""``kill -9`` of the server with 1,000 sends pending loses none and re-sends only those whose
acknowledgement was not committed: real processes (the server, and a receiver on 127.0.0.1
that checks signatures and fails every first attempt on purpose), counting every send."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopwise.config import SAMPLE_WORKSPACE
from tests.e2e.conftest import ADMIN_KEY, SERVER_KEY, start_server, stop_server
from tests.journeys.conftest import SECRET_ENV

SECRET = "kill9-secret-0123456789"
PEOPLE = 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _workspace(path: Path, url: str) -> Path:
    document = yaml.safe_load(SAMPLE_WORKSPACE.read_text())
    document["items"] = str(SAMPLE_WORKSPACE.parent / str(document["items"]))
    document["webhooks"] = {
        "endpoints": [
            {"key": "crm", "url": url, "secret_env": SECRET_ENV, "backoff_seconds": 0.2,
             "max_backoff_seconds": 1.0, "max_attempts": 30},
        ]
    }  # fmt: skip
    document["journeys"] = [
        {
            "key": "added",
            "trigger": {"event": "Product Added"},
            "steps": [{"id": "notify", "action": "webhook", "endpoint": "crm"}],
        }
    ]
    path.write_text(yaml.safe_dump(document), "utf-8")
    return path


def _log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _settled_log_length(path: Path) -> int:
    """The log's length once the receiver has logged every request that was in flight at the
    kill (it sleeps a few ms per request), so none of them counts as sent after the restart."""
    length, still_since = len(_log(path)), time.monotonic()
    while time.monotonic() - still_since < 0.5:
        time.sleep(0.05)
        now = len(_log(path))
        if now != length:
            length, still_since = now, time.monotonic()
    return length


def _delivered_in_db(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            str(r[0]) for r in conn.execute("SELECT key FROM outbox WHERE status = 'delivered'")
        }
    finally:
        conn.close()


@pytest.mark.timeout(600)  # real processes / days of simulation: slow on a busy machine
def test_kill_9_with_1000_sends_pending_loses_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    port = _free_port()
    log_path = tmp_path / "receiver.jsonl"
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tests.journeys.receiver", "--port", str(port), "--secret",
         SECRET, "--fail-first", "1", "--delay", "0.004", "--log", str(log_path)],
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    workspace = _workspace(tmp_path / "loopwise.yaml", f"http://127.0.0.1:{port}/hook")
    data = tmp_path / "data"
    server = start_server(data, workspace=workspace)
    try:
        run = uuid.uuid4().hex[:8]
        batch = [
            {"type": "track", "userId": f"p{i}", "event": "Product Added",
             "messageId": f"{run}-{i}", "properties": {"item_id": "sku-1"},
             "context": {"consent": {"categoryPreferences": {"marketing": True}}}}
            for i in range(PEOPLE)
        ]  # fmt: skip
        with server.client(SERVER_KEY) as client:
            assert client.post("/v1/batch", json={"batch": batch}).status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            acked = sum(1 for r in _log(log_path) if r["status"] == 200)
            if acked >= 250:
                break
            time.sleep(0.01)
        stop_server(server, hard=True)  # kill -9 mid-delivery
        at_kill = _settled_log_length(log_path)
        committed = _delivered_in_db(data / "loopwise.db")
        assert 0 < len(committed) < PEOPLE, "the kill should land while sends are pending"

        again = start_server(data, workspace=workspace)
        try:
            deadline = time.monotonic() + 120
            counts: dict[str, int] = {}
            with again.client(ADMIN_KEY) as client:
                while time.monotonic() < deadline:
                    counts = client.get("/v1/admin/outbox").json()["counts"]
                    if counts["delivered"] == PEOPLE:
                        break
                    time.sleep(0.1)
            assert counts["delivered"] == PEOPLE and counts["pending"] == 0, counts
            assert counts["dead"] == 0 and counts["dropped"] == 0
        finally:
            stop_server(again)
    finally:
        if server.process.poll() is None:
            stop_server(server)
        receiver.terminate()
        receiver.wait(timeout=10)
    logged = _log(log_path)
    # A send the kill cut off mid-body reaches the receiver truncated; only the kill does that.
    truncated = [i for i, r in enumerate(logged) if r.get("truncated")]
    assert all(i < at_kill for i in truncated), "only the kill cuts a request short"
    requests = [r for r in logged if not r.get("truncated")]
    at_kill -= len(truncated)
    assert all(r["signed"] for r in requests), "every whole request carries a valid signature"
    acked: dict[str, int] = {}
    for r in requests:
        if r["status"] == 200:
            acked[r["key"]] = acked.get(r["key"], 0) + 1
    assert len(acked) == PEOPLE, "no send is lost"
    after_restart = {r["key"] for r in requests[at_kill:] if r["status"] == 200}
    assert not (after_restart & committed), (
        "a send whose acknowledgement was committed is not resent"
    )
    repeats = {key for key, n in acked.items() if n > 1}
    before_kill = {r["key"] for r in requests[:at_kill] if r["status"] == 200}
    assert repeats <= before_kill - committed  # only the acks the kill cut off are sent again
    print(
        f"kill -9 with {PEOPLE} sends: {len(committed)} acknowledged and committed before the "
        f"kill, {len(repeats)} re-sent after it (same idempotency key), 0 lost"
    )
