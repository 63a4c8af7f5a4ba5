"""``POST /v1/admin/cluster`` and ``GET /v1/admin/clusters``: body rules, scopes, problems, and
the real engine behind them (a new cluster segment applies to the next decision)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopwise.api.app import create_app
from loopwise.api.keys import KeyKind, KeyRing
from loopwise.catalog.importer import read_items
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.engine import Engine
from loopwise.storage.memory import MemoryStorage
from tests.api.conftest import ADMIN, SERVER, bearer
from tests.api.fake_engine import FakeEngine
from tests.segments.population import ingest_groups


def test_cluster_passes_the_body_and_defaults(client: TestClient, engine: FakeEngine) -> None:
    assert client.get("/v1/admin/clusters", headers=bearer(ADMIN)).json()["published"] is False
    response = client.post("/v1/admin/cluster", headers=bearer(ADMIN))
    assert response.status_code == 200, response.text
    response = client.post(
        "/v1/admin/cluster", headers=bearer(ADMIN), json={"k_min": 3, "k_max": 5, "seed": 7}
    )
    assert response.status_code == 200 and response.json()["k"] == 3
    assert engine.cluster_calls == [(2, 8, 0), (3, 5, 7)]
    published = client.get("/v1/admin/clusters", headers=bearer(ADMIN)).json()
    assert published["published"] is True and published["clusters"][0]["key"] == "cluster_1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"k_min": 1}, "k_min"),
        ({"k_max": 21}, "k_max"),
        ({"k_min": "3"}, "k_min"),
        ({"seed": -1}, "seed"),
        ({"clusters": 4}, "clusters"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    client: TestClient, engine: FakeEngine, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/admin/cluster", headers=bearer(ADMIN), json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    assert engine.cluster_calls == []


def test_non_object_body_and_scope(client: TestClient, engine: FakeEngine) -> None:
    response = client.post("/v1/admin/cluster", headers=bearer(ADMIN), json=[1])
    assert response.status_code == 400
    assert client.post("/v1/admin/cluster", headers=bearer(SERVER)).status_code == 403
    assert client.get("/v1/admin/clusters", headers=bearer(SERVER)).status_code == 403
    assert client.post("/v1/admin/cluster").status_code == 401
    assert engine.cluster_calls == []


def test_too_few_profiles_is_a_409_problem(client: TestClient, engine: FakeEngine) -> None:
    engine.cluster_profiles = 5
    response = client.post("/v1/admin/cluster", headers=bearer(ADMIN))
    assert response.status_code == 409
    assert "at least 20" in response.json()["detail"]


T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture()
def real() -> Iterator[tuple[TestClient, Engine]]:
    workspace = load_workspace_file(SAMPLE_WORKSPACE)
    ring = KeyRing.from_plain({KeyKind.SERVER: [SERVER], KeyKind.ADMIN: [ADMIN]})
    clock = FixedClock(T0)
    engine = Engine(workspace, MemoryStorage(), keys=ring, clock=clock, seed=1)
    engine.put_items(list(read_items(SAMPLE_WORKSPACE.parent / str(workspace.items))))
    ingest_groups(engine, clock, per_group=8)
    clock.advance(60)
    with TestClient(create_app(engine)) as client:
        yield client, engine


def test_clusters_published_over_http_apply_to_the_next_decision(
    real: tuple[TestClient, Engine],
) -> None:
    client, _ = real
    decide = {"user": {"anonymous_id": "hiker-3"}, "slots": [{"slot": "hero"}]}
    before = client.post("/v1/decide", headers=bearer(SERVER), json=decide).json()
    assert not any(s.startswith("cluster_") for s in before["segments"])
    response = client.post(
        "/v1/admin/cluster", headers=bearer(ADMIN), json={"k_min": 2, "k_max": 5}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["k"] == 3 and report["profiles"] == 24
    hikers = next(c for c in report["clusters"] if c["name"].startswith("Lapsed"))
    after = client.post("/v1/decide", headers=bearer(SERVER), json=decide).json()
    assert hikers["key"] in after["segments"]
    profile = client.get("/v1/profiles/hiker-3", headers=bearer(SERVER)).json()
    assert profile["profile"]["cluster"] == hikers["key"]
    listed = client.get("/v1/admin/clusters", headers=bearer(ADMIN)).json()
    assert listed["published"] is True
    assert [c["key"] for c in listed["clusters"]] == [c["key"] for c in report["clusters"]]
