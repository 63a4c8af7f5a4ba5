"""Clusters through a real ``loopwise serve``: published over HTTP, applied to the next decision,
loaded again after a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.conftest import ADMIN_KEY, SERVER_KEY, WRITE_KEY, start_server, stop_server
from tests.segments.population import BUILDERS, GROUPS, item_records


def test_clusters_over_http_apply_now_and_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data)
    try:
        with first.client(ADMIN_KEY) as admin:
            assert admin.put("/v1/items", json={"items": item_records()}).status_code == 200
            assert admin.post("/v1/admin/cluster").status_code == 409  # no profiles yet
        now = datetime.now(UTC)
        batch = [
            message
            for group in GROUPS
            for n in range(8)
            for message in BUILDERS[group](None, f"{group}-{n}", now, n)
        ]
        with first.client(WRITE_KEY) as writer:
            response = writer.post("/v1/batch", json={"batch": batch})
            assert response.status_code == 200, response.text
        with first.client(ADMIN_KEY) as admin:
            response = admin.post("/v1/admin/cluster", json={"k_min": 2, "k_max": 5})
            assert response.status_code == 200, response.text
            report = response.json()
        assert report["k"] == 3 and report["profiles"] == 24
        runners = next(c for c in report["clusters"] if "running" in c["name"])
        decide = {"user": {"anonymous_id": "runner-5"}, "slots": [{"slot": "hero"}]}
        with first.client(SERVER_KEY) as client:
            assert runners["key"] in client.post("/v1/decide", json=decide).json()["segments"]
    finally:
        stop_server(first)
    second = start_server(data)
    try:
        with second.client(SERVER_KEY) as client:
            profile = client.get("/v1/profiles/runner-5").json()
        assert profile["profile"]["cluster"] == runners["key"]
        with second.client(ADMIN_KEY) as admin:
            listed = admin.get("/v1/admin/clusters").json()
        assert listed["published"] and listed["k"] == 3
    finally:
        stop_server(second)
