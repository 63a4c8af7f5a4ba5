"""``/v1/consent/{user_id}`` over HTTP, on the real engine (in-memory storage)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from loopwise.api.app import create_app
from loopwise.api.keys import KeyKind, KeyRing
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.engine import Engine
from loopwise.storage.memory import MemoryStorage
from tests.api.conftest import ADMIN, SERVER, WRITE, bearer

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture()
def client() -> Iterator[TestClient]:
    ring = KeyRing.from_plain(
        {KeyKind.WRITE: [WRITE], KeyKind.SERVER: [SERVER], KeyKind.ADMIN: [ADMIN]}
    )
    engine = Engine(
        load_workspace_file(SAMPLE_WORKSPACE), MemoryStorage(), keys=ring, clock=FixedClock(T0)
    )
    with TestClient(create_app(engine)) as test_client:
        yield test_client


def test_put_then_get_consent(client: TestClient) -> None:
    response = client.put(
        "/v1/consent/u1",
        json={"categories": {"personalization": False}, "source": "banner"},
        headers=bearer(SERVER),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["categories"]["personalization"] is False
    assert body["explicit"]["personalization"] == {
        "granted": False,
        "at": "2026-11-02T09:00:00.000Z",
        "source": "banner",
    }
    read = client.get("/v1/consent/u1", headers=bearer(SERVER)).json()
    assert read == body
    assert read["defaulted"] == ["analytics", "pricing", "marketing"]
    assert read["policy_version"] and read["updated_at"] == "2026-11-02T09:00:00.000Z"


def test_get_uses_the_regional_default_for_a_country(client: TestClient) -> None:
    eu = client.get("/v1/consent/nobody?country=de", headers=bearer(SERVER)).json()
    assert eu["region"] == "EU" and not any(eu["categories"].values())
    us = client.get("/v1/consent/nobody?country=US", headers=bearer(SERVER)).json()
    assert us["region"] == "default" and us["categories"]["analytics"] is True
    bad = client.get("/v1/consent/nobody?country=Germany", headers=bearer(SERVER))
    assert bad.status_code == 400


def test_history_lists_every_change_with_its_hash_chain(client: TestClient) -> None:
    for granted in (True, False):
        client.put(
            "/v1/consent/u2",
            json={"categories": {"analytics": granted}},
            headers=bearer(SERVER),
        )
    response = client.get("/v1/consent/u2/history", headers=bearer(SERVER))
    assert response.status_code == 200
    records = response.json()["records"]
    assert [(r["before"], r["after"]) for r in records] == [
        ({}, {"analytics": True}),
        ({"analytics": True}, {"analytics": False}),
    ]
    assert records[1]["prev_hash"] == records[0]["hash"]
    # people are named by a salted pseudonym only, never by the id as given
    assert records[0]["user"] != "u2" and len(records[0]["user"]) == 64
    assert records[0]["source"] == "api"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"categories": {"ads": False}}, "categories.ads"),
        ({"categories": {"analytics": 1}}, "categories.analytics"),
        ({"categories": {}}, "categories"),
        ({"source": "banner"}, "categories"),
        ([1], "body"),
    ],
)
def test_bad_bodies_are_problems_naming_the_field(
    client: TestClient, body: object, field: str
) -> None:
    response = client.put("/v1/consent/u3", json=body, headers=bearer(SERVER))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"] == field and problem["detail"]
    # nothing half-applied
    assert client.get("/v1/consent/u3/history", headers=bearer(SERVER)).json()["records"] == []


def test_invalid_json_and_wrong_media_type(client: TestClient) -> None:
    broken = client.put(
        "/v1/consent/u4",
        content=b"{nope",
        headers={**bearer(SERVER), "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    xml = client.put(
        "/v1/consent/u4", content=b"<a/>", headers={**bearer(SERVER), "Content-Type": "text/xml"}
    )
    assert xml.status_code == 415


@pytest.mark.parametrize(
    ("key", "status"), [(None, 401), ("lw_wrong", 401), (WRITE, 403), (SERVER, 200), (ADMIN, 200)]
)
@pytest.mark.parametrize("method, path", [("GET", "/v1/consent/u5"),
                                          ("PUT", "/v1/consent/u5"),
                                          ("GET", "/v1/consent/u5/history")])  # fmt: skip
def test_consent_routes_need_a_server_key(
    client: TestClient, key: str | None, status: int, method: str, path: str
) -> None:
    body = {"categories": {"marketing": True}} if method == "PUT" else None
    response = client.request(method, path, json=body, headers=bearer(key))
    assert response.status_code == status
    if status >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


def test_the_routes_are_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"get", "put"} <= set(paths["/v1/consent/{user_id}"])
    assert "get" in paths["/v1/consent/{user_id}/history"]
