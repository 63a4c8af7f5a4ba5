"""Experiment routes: auth, listing, results and 404 problems (on the fake engine)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, SERVER, WRITE, bearer
from tests.api.fake_engine import FakeEngine

RESULTS = {"experiment": "recs", "slot": "recs", "status": "running", "verdict": "no data"}


def test_list_and_results_need_a_server_or_admin_key(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.experiments["recs"] = RESULTS
    assert client.get("/v1/experiments").status_code == 401
    assert client.get("/v1/experiments", headers=bearer(WRITE)).status_code == 403
    for key in (SERVER, ADMIN):
        listed = client.get("/v1/experiments", headers=bearer(key))
        assert listed.status_code == 200
        assert listed.json() == {
            "experiments": [{"key": "recs", "slot": "recs", "status": "running"}]
        }
    body = client.get("/v1/experiments/recs/results", headers=bearer(SERVER)).json()
    assert body["verdict"] == "no data" and body["segment"] is None
    filtered = client.get(
        "/v1/experiments/recs/results", params={"segment": "mobile_users"}, headers=bearer(ADMIN)
    )
    assert filtered.json()["segment"] == "mobile_users"


def test_unknown_experiment_or_segment_is_a_404_problem(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.experiments["recs"] = RESULTS
    missing = client.get("/v1/experiments/nope/results", headers=bearer(SERVER))
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["field"] == "key"
    segment = client.get(
        "/v1/experiments/recs/results", params={"segment": "nobody"}, headers=bearer(SERVER)
    )
    assert segment.status_code == 404 and segment.json()["field"] == "segment"
