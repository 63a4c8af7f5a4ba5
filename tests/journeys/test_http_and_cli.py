"""Journeys through a real server: /v1/journeys with per-step counts, the profile's journey
history, the export, the outbox, bad keys, and ``loopwise journeys list|show`` beside it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.config import SAMPLE_WORKSPACE
from tests.e2e.conftest import ADMIN_KEY, SERVER_KEY, WRITE_KEY, start_server, stop_server
from tests.journeys.conftest import SECRET_ENV
from tests.journeys.receiver import Receiver

SECRET = "http-secret-0123456789"


def workspace(path: Path, url: str) -> Path:
    document = yaml.safe_load(SAMPLE_WORKSPACE.read_text())
    document["items"] = str(SAMPLE_WORKSPACE.parent / str(document["items"]))
    document["webhooks"] = {"endpoints": [{"key": "crm", "url": url, "secret_env": SECRET_ENV,
                                           "backoff_seconds": 0.1}]}  # fmt: skip
    document["journeys"] = [
        {"key": "cart", "template": "cart_abandonment", "endpoint": "crm", "wait": "1s",
         "holdout_percent": 10},
    ]  # fmt: skip
    path.write_text(yaml.safe_dump(document), "utf-8")
    return path


@pytest.mark.timeout(600)  # real processes / days of simulation: slow on a busy machine
def test_journeys_over_http_and_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    receiver = Receiver(SECRET, fail_first=1).start()
    path = workspace(tmp_path / "loopwise.yaml", receiver.url)
    data = tmp_path / "data"
    server = start_server(data, workspace=path)
    users = [f"shopper-{uuid.uuid4().hex[:6]}-{i}" for i in range(20)]
    try:
        batch = [
            {"type": "track", "userId": u, "event": "Product Added", "messageId": f"{u}-add",
             "properties": {"item_id": "sku"},
             "context": {"consent": {"categoryPreferences": {"marketing": True}}}}
            for u in users
        ]  # fmt: skip
        with server.client(SERVER_KEY) as client:
            assert client.post("/v1/batch", json={"batch": batch}).status_code == 200
            deadline = time.monotonic() + 30
            journey: dict = {}
            while time.monotonic() < deadline:
                journey = client.get("/v1/journeys/cart").json()
                expected = len(users) - journey["holdout"]
                sent = journey["steps"][1]["sent"]
                if sent == expected and len(receiver.acknowledged) == expected:
                    break
                time.sleep(0.2)
            steps = {s["id"]: s for s in journey["steps"]}
            assert steps["wait"]["entered"] == len(users) - journey["holdout"]
            assert steps["reminder"]["sent"] == len(receiver.acknowledged) > 0
            assert steps["wait"]["waiting"] == 0
            assert journey["experiment"] == "journey-cart"
            listed = client.get("/v1/journeys").json()["journeys"]
            assert [j["key"] for j in listed] == ["cart"]
            profile = client.get(f"/v1/profiles/{users[0]}").json()
            assert profile["journeys"]["journeys"][0]["journey"] == "cart"
            missing = client.get("/v1/journeys/nope")
            assert missing.status_code == 404 and missing.json()["field"] == "key"
            assert client.get("/v1/admin/outbox").status_code == 403
            results = client.get("/v1/experiments/journey-cart/results")
            assert results.status_code == 200
        with server.client(WRITE_KEY) as client:
            assert client.get("/v1/journeys").status_code == 403
        with server.client(ADMIN_KEY) as client:
            outbox = client.get("/v1/admin/outbox", params={"status": "delivered"}).json()
            assert outbox["counts"]["delivered"] == len(receiver.acknowledged)
            bad = client.get("/v1/admin/outbox", params={"status": "nope"})
            assert bad.status_code in (400, 422) and "status" in bad.text
            export = client.get(f"/v1/profiles/{users[0]}/export").json()
            assert export["journeys"]["journeys"][0]["journey"] == "cart"
        runner = CliRunner()
        listed_cli = runner.invoke(app, ["journeys", "list", "--data-dir", str(data),
                                         "--workspace", str(path)])  # fmt: skip
        assert listed_cli.exit_code == 0, listed_cli.output
        assert "cart" in listed_cli.output
        shown = runner.invoke(app, ["journeys", "show", "cart", "--data-dir", str(data),
                                    "--workspace", str(path), "--json"])  # fmt: skip
        assert shown.exit_code == 0, shown.output
        assert '"reminder"' in shown.output
        unknown = runner.invoke(app, ["journeys", "show", "nope", "--data-dir", str(data),
                                      "--workspace", str(path)])  # fmt: skip
        assert unknown.exit_code == 2 and "No journey" in unknown.output
    finally:
        stop_server(server)
        receiver.stop()
    assert all(r["signed"] for r in receiver.requests)
