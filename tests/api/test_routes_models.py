"""Model routes: train, list, roll back — scopes on the fake engine, behaviour on a real one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopwise.api.app import create_app
from loopwise.api.keys import KeyKind, KeyRing
from loopwise.catalog.importer import read_items
from loopwise.clock import FixedClock
from loopwise.config import load_workspace_file
from loopwise.engine import Engine
from loopwise.storage.memory import MemoryStorage
from tests.api.conftest import ADMIN, KEYS, SERVER, WRITE, bearer
from tests.api.fake_engine import FakeEngine
from tests.models.synthetic import SAMPLE_ITEMS, events_for, taste_messages, write_workspace

PROBLEM_JSON = "application/problem+json"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("method", "path", "ok"),
    [
        ("POST", "/v1/admin/train", 200),
        ("POST", "/v1/admin/train?wait=false", 202),
        ("GET", "/v1/admin/models", 200),
    ],
)
def test_model_routes_need_the_admin_key(
    client: TestClient, method: str, path: str, ok: int
) -> None:
    for who, key in KEYS.items():
        response = client.request(method, path, headers=bearer(key))
        expected = ok if who == "admin" else 401 if who in ("none", "wrong") else 403
        assert response.status_code == expected, (who, response.text)
        if expected >= 400:
            assert response.headers["content-type"] == PROBLEM_JSON


def test_rollback_route_validates_its_body(client: TestClient, engine: FakeEngine) -> None:
    admin = bearer(ADMIN)
    assert client.post("/v1/admin/models/rollback", headers=admin).status_code == 409
    client.post("/v1/admin/train", headers=admin)
    client.post("/v1/admin/train", headers=admin)
    response = client.post("/v1/admin/models/rollback", json={"version": 3}, headers=admin)
    assert response.status_code == 400 and response.json()["field"] == "version"
    # an empty name is no version: it rolled back to the previous one instead
    response = client.post("/v1/admin/models/rollback", json={"version": ""}, headers=admin)
    assert response.status_code == 400 and response.json()["field"] == "version"
    assert engine.rollbacks == []
    response = client.post("/v1/admin/models/rollback", json={"versions": "v1"}, headers=admin)
    assert response.status_code == 400 and response.json()["field"] == "versions"
    response = client.post("/v1/admin/models/rollback", json={"version": "v9"}, headers=admin)
    assert response.status_code == 404
    response = client.post("/v1/admin/models/rollback", json={"version": "v1"}, headers=admin)
    assert response.json() == {"current": "v1"}
    assert client.post("/v1/admin/models/rollback", headers=admin).json() == {"current": "v1"}


# -- a real engine -------------------------------------------------------------------------------


@pytest.fixture()
def real(tmp_path: Path) -> Iterator[tuple[Engine, TestClient]]:
    ring = KeyRing.from_plain(
        {KeyKind.WRITE: [WRITE], KeyKind.SERVER: [SERVER], KeyKind.ADMIN: [ADMIN]}
    )
    workspace = load_workspace_file(write_workspace(tmp_path))
    engine = Engine(
        workspace, MemoryStorage(), keys=ring, clock=FixedClock(T0), seed=1, data_dir=tmp_path
    )
    engine.put_items(list(read_items(SAMPLE_ITEMS)))
    with TestClient(create_app(engine)) as client:
        yield engine, client
    engine.close()


def decide(client: TestClient, user: str) -> dict[str, Any]:
    body = {"user": {"anonymous_id": user}, "slots": [{"slot": "recs", "n": 5}]}
    response = client.post("/v1/decide", json=body, headers=bearer(SERVER))
    assert response.status_code == 200, response.text
    slot: dict[str, Any] = response.json()["slots"][0]
    return slot


def test_too_little_data_is_a_409_problem_naming_the_threshold(
    real: tuple[Engine, TestClient],
) -> None:
    _, client = real
    response = client.post("/v1/admin/train", headers=bearer(ADMIN))
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["field"] == "training.min_interactions" and problem["min_interactions"] == 50
    assert "at least 50" in problem["detail"]
    assert client.get("/v1/admin/models", headers=bearer(ADMIN)).json()["current"] is None


def test_train_over_http_swaps_the_served_model_and_rolls_back(
    real: tuple[Engine, TestClient],
) -> None:
    engine, client = real
    admin = bearer(ADMIN)
    items = list(read_items(SAMPLE_ITEMS))
    engine.ingest(events_for(taste_messages(items, T0), T0))
    assert any("not trained yet" in r["text"] for r in decide(client, "user-0")["reasons"])

    first = client.post("/v1/admin/train", headers=admin)
    assert first.status_code == 200, first.text
    v1 = first.json()["version"]
    assert first.json()["metrics"]["models"]["hybrid"]["ndcg@10"] > 0
    slot = decide(client, "user-0")
    assert slot["ai_influenced"] is True
    assert any(r["kind"] == "model" and v1 in r["text"] for r in slot["reasons"])

    engine.ingest(events_for(taste_messages(items, T0, users=10, seed=99), T0))
    v2 = client.post("/v1/admin/train", headers=admin).json()["version"]
    assert v2 != v1
    reasons = decide(client, "user-0")["reasons"]
    assert any(v2 in r["text"] for r in reasons), (v1, v2, reasons)
    listing = client.get("/v1/admin/models", headers=admin).json()
    assert listing["current"] == v2 and [v["version"] for v in listing["versions"]] == [v2, v1]
    assert "hybrid" in listing["serving"] and listing["training"]["running"] is False

    rolled = client.post("/v1/admin/models/rollback", headers=admin)
    assert rolled.status_code == 200 and rolled.json()["current"] == v1
    assert any(v1 in r["text"] for r in decide(client, "user-0")["reasons"])
    again = client.post("/v1/admin/models/rollback", headers=admin)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM_JSON


def test_a_second_training_while_one_runs_is_a_409(real: tuple[Engine, TestClient]) -> None:
    engine, client = real
    engine.ingest(events_for(taste_messages(list(read_items(SAMPLE_ITEMS)), T0), T0))
    engine.models._lock.acquire()  # a training in progress
    try:
        response = client.post("/v1/admin/train", headers=bearer(ADMIN))
        assert response.status_code == 409
        assert "already running" in response.json()["detail"]
    finally:
        engine.models._lock.release()


def test_background_training_returns_202_and_finishes(real: tuple[Engine, TestClient]) -> None:
    engine, client = real
    engine.ingest(events_for(taste_messages(list(read_items(SAMPLE_ITEMS)), T0), T0))
    response = client.post("/v1/admin/train?wait=false", headers=bearer(ADMIN))
    assert response.status_code == 202 and response.json()["status"] == "running"
    with engine.models._lock:  # released when the background training finished
        pass
    listing = client.get("/v1/admin/models", headers=bearer(ADMIN)).json()
    assert listing["current"] is not None and listing["training"]["running"] is False
