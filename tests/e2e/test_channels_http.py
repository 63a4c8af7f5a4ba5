"""The channels end to end over HTTP on a real server (SQLite): an email campaign decided for an
audience with consent and the frequency cap, its click attributed back; the same campaign from
the CLI beside the server; search results reranked; the cart cross-sell slot."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from loopwise.config import SAMPLE_WORKSPACE
from tests.channels.conftest import CHANNEL_SLOTS
from tests.e2e.conftest import SERVER_KEY, Server, backend_args, start_server, stop_server


@pytest.fixture(scope="module")
def channels_server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("channels")
    document = yaml.safe_load(SAMPLE_WORKSPACE.read_text())
    document["items"] = str(SAMPLE_WORKSPACE.parent / "items.jsonl")
    document["slots"] = [*document["slots"], *CHANNEL_SLOTS]
    document["experiments"] = []
    workspace = root / "loopwise.yaml"
    workspace.write_text(yaml.safe_dump(document))
    running = start_server(root / "data", workspace=workspace)
    running.workspace = workspace  # type: ignore[attr-defined]
    yield running
    stop_server(running)


def track(server: Server, user: str, event: str, **properties: Any) -> None:
    body = {
        "userId": user,
        "event": event,
        "properties": properties,
        "messageId": str(uuid.uuid4()),
    }
    with server.client(SERVER_KEY) as client:
        assert client.post("/v1/track", json=body).status_code == 200


def items(server: Server, name: str) -> list[str]:
    with server.client(SERVER_KEY) as client:
        listed = client.get("/v1/items", params={"limit": 1000}).json()["items"]
    return [i["id"] for i in listed if i["categories"] and i["categories"][0] == name]


def campaign(server: Server, **body: Any) -> list[dict[str, Any]]:
    with server.client(SERVER_KEY) as client:
        response = client.post("/v1/decide/batch", json=body)
    assert response.status_code == 200, response.text
    return [orjson.loads(line) for line in response.content.splitlines()]


def test_an_email_campaign_over_http(channels_server: Server) -> None:
    server = channels_server
    runner = f"runner-{uuid.uuid4().hex[:8]}"
    with server.client(SERVER_KEY) as client:
        put = client.put(
            f"/v1/consent/{runner}", json={"categories": {"marketing": True, "analytics": True}}
        )
        assert put.status_code == 200, put.text
    for item in items(server, "running")[:3]:
        track(server, runner, "Product Viewed", product_id=item)
    rows = campaign(server, slot="email-hero", users=[runner, "no-consent-user"])
    assert rows[0]["slot"]["variant"]["id"] == "runners"
    assert rows[1]["reason"] == "no_consent"
    assert rows[-1]["summary"]["decided"] == 1
    # the email's click comes back with the decision id and is attributed to it
    track(server, runner, "Email Link Clicked", decision_id=rows[0]["decision_id"])
    with server.client(SERVER_KEY) as client:
        logged = client.get(f"/v1/decisions/{rows[0]['decision_id']}").json()
    assert [o["kind"] for o in logged["outcomes"]] == ["click"]
    # the cap: one per person per slot per day by default
    again = campaign(server, slot="email-hero", users=[runner])
    assert again[0]["reason"] == "frequency_cap"


def test_the_cli_runs_a_campaign_beside_the_server(
    channels_server: Server, tmp_path: Path, backend: str
) -> None:
    server = channels_server
    # on PostgreSQL the CLI reaches the server's stores with --database-url, as an operator's would
    serve_args = backend_args(server.data_dir)
    database = serve_args[:2] if serve_args else []
    fan = f"fan-{uuid.uuid4().hex[:8]}"
    with server.client(SERVER_KEY) as client:
        client.put(f"/v1/consent/{fan}", json={"categories": {"marketing": True}})
    users = tmp_path / "users.txt"
    users.write_text(f"{fan}\nsomeone-else\n")
    out = tmp_path / "out.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loopwise",
            "decide-batch",
            "--slot",
            "newsletter",
            "--users",
            str(users),
            "--out",
            str(out),
            "--data-dir",
            str(server.data_dir),
            "--workspace",
            str(server.workspace),  # type: ignore[attr-defined]
            *database,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Decided 1 of 2 people" in done.stdout
    table = out.read_text().splitlines()
    assert table[0].startswith("user_id,profile_id,status")
    assert table[1].startswith(f"{fan},") and ",decided," in table[1]
    decision_id = table[1].split(",")[4]
    with server.client(SERVER_KEY) as client:  # the server reads the CLI's decision
        assert client.get(f"/v1/decisions/{decision_id}").json()["channel"] == "campaign"
    # the cap holds across processes: the server sees the CLI's decision
    assert campaign(server, slot="newsletter", users=[fan])[0]["reason"] == "frequency_cap"


def test_search_results_and_the_cart_cross_sell_over_http(channels_server: Server) -> None:
    server = channels_server
    shopper = f"shopper-{uuid.uuid4().hex[:8]}"
    running = items(server, "running")
    for item in running[:4]:
        track(server, shopper, "Product Viewed", product_id=item)
    hiking = items(server, "hiking")
    body = {
        "user": {"user_id": shopper},
        "candidates": [
            {"id": hiking[0], "score": 1.0},
            {"id": "gone-sku", "score": 0.95},
            {"id": running[5], "score": 0.9},
        ],
    }
    with server.client(SERVER_KEY) as client:
        reranked = client.post("/v1/rerank", json=body).json()
    assert [i["id"] for i in reranked["items"]][1] == "gone-sku"
    assert reranked["items"][0]["id"] == running[5]
    # cart cross-sells: never what is in the cart
    track(server, shopper, "Product Added", product_id=running[0])
    with server.client(SERVER_KEY) as client:
        decided = client.post(
            "/v1/decide",
            json={"user": {"user_id": shopper}, "slots": [{"slot": "cart-cross-sell"}]},
        )
    assert decided.status_code == 200, decided.text
    slot = decided.json()["slots"][0]
    assert slot["strategy"] == "complements"
    assert running[0] not in [i["id"] for i in slot["items"]]
    assert len(slot["items"]) == 4
