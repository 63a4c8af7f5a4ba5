"""A 2xx means on disk: events survive a hard kill of the server."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import httpx

from tests.e2e.conftest import SERVER_KEY, WRITE_KEY, start_server, stop_server


def test_accepted_events_survive_kill_9(tmp_path: Path) -> None:
    headers = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
    server = start_server(tmp_path / "data")
    anon = f"anon-{uuid.uuid4()}"
    try:
        for i in range(20):
            batch = [
                {
                    "type": "track",
                    "anonymousId": anon,
                    "event": "Tick",
                    "messageId": f"{anon}-{i}-{j}",
                }
                for j in range(10)
            ]
            response = httpx.post(f"{server.url}/v1/batch", json={"batch": batch}, headers=headers)
            assert response.status_code == 200
    finally:
        stop_server(server, hard=True)
    again = start_server(tmp_path / "data")
    try:
        with again.client(SERVER_KEY) as client:
            profile = client.get(f"/v1/profiles/{anon}").json()["profile"]
        assert profile["events"] == 200
    finally:
        stop_server(again)
