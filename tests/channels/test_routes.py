"""``POST /v1/decide/batch`` and ``POST /v1/rerank`` on the real engine: streamed rows, the
summary, and bad input as 400 problems naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from loopwise.api.app import create_app
from loopwise.api.keys import KeyKind, KeyRing
from loopwise.clock import FixedClock
from loopwise.engine import Engine
from tests.channels.conftest import category, consent, view

SERVER, WRITE = "lw_server_channels", "lw_write_channels"
AUTH = {"Authorization": f"Bearer {SERVER}"}


@pytest.fixture()
def client(engine: Engine) -> Iterator[TestClient]:
    engine.services.keys = KeyRing.from_plain({KeyKind.SERVER: [SERVER], KeyKind.WRITE: [WRITE]})
    engine.keys = engine.services.keys
    with TestClient(create_app(engine)) as test_client:
        yield test_client


def lines(response: Any) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in response.content.splitlines() if line]


def test_a_campaign_streams_one_row_per_person_then_the_summary(
    client: TestClient, engine: Engine, clock: FixedClock
) -> None:
    consent(engine, "ann", marketing=True)
    view(engine, clock, "ann", category(engine, "running")[:3])
    response = client.post(
        "/v1/decide/batch",
        json={"slot": "email-hero", "users": ["ann", {"user_id": "bob"}], "campaign": "weekly"},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    rows = lines(response)
    assert [r.get("user_id") for r in rows[:2]] == ["ann", "bob"]
    assert rows[0]["slot"]["variant"]["id"] == "runners"
    assert rows[1]["reason"] == "no_consent"
    assert rows[2]["summary"]["decided"] == 1 and rows[2]["summary"]["campaign"] == "weekly"
    logged = client.get(f"/v1/decisions/{rows[0]['decision_id']}", headers=AUTH).json()
    assert logged["campaign"] == "weekly"


def test_a_segment_campaign_over_http(
    client: TestClient, engine: Engine, clock: FixedClock
) -> None:
    consent(engine, "runner", marketing=True)
    view(engine, clock, "runner", category(engine, "running")[:3])
    response = client.post(
        "/v1/decide/batch", json={"slot": "newsletter", "segment": "running_fans"}, headers=AUTH
    )
    rows = lines(response)
    assert [r["user_id"] for r in rows[:-1]] == ["runner"]
    assert len(rows[0]["slot"]["items"]) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slot": "nope", "users": ["a"]}, "slot"),
        ({"slot": "newsletter", "segment": "nope"}, "segment"),
        ({"slot": "newsletter", "users": [{"user_id": ""}]}, "users[0].user_id"),
        ({"slot": "newsletter", "users": [{"email": "x"}]}, "users[0].email"),
        ({"slot": "newsletter", "users": []}, "users"),
        ({"slot": "newsletter", "users": ["a"], "n": 0}, "n"),
        ({"slot": "newsletter", "users": ["a"], "campaign": "Not A Slug"}, "campaign"),
        ({"slot": "newsletter", "users": ["a"], "extra": 1}, "extra"),
    ],
)
def test_bad_campaign_requests_are_400_problems_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/decide/batch", json=body, headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field


def test_more_users_than_a_request_may_list_is_a_400(client: TestClient) -> None:
    body = {"slot": "newsletter", "users": [f"u{n}" for n in range(10_001)]}
    response = client.post("/v1/decide/batch", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["field"] == "users"


def test_no_audience_is_a_400(client: TestClient) -> None:
    response = client.post("/v1/decide/batch", json={"slot": "newsletter"}, headers=AUTH)
    assert response.status_code == 400
    assert "exactly one audience" in response.json()["detail"]


def test_the_write_key_may_not_run_a_campaign_or_rerank(client: TestClient) -> None:
    write = {"Authorization": f"Bearer {WRITE}"}
    body = {"slot": "newsletter", "users": ["a"]}
    assert client.post("/v1/decide/batch", json=body, headers=write).status_code == 403
    rerank = {"user": {"user_id": "a"}, "candidates": [{"id": "run-001", "score": 1}]}
    assert client.post("/v1/rerank", json=rerank, headers=write).status_code == 403


def test_rerank_over_http(client: TestClient, engine: Engine, clock: FixedClock) -> None:
    view(engine, clock, "runner", category(engine, "running")[:5])
    hiking = category(engine, "hiking")[:2]
    body = {
        "user": {"user_id": "runner"},
        "candidates": [
            {"id": hiking[0], "score": 2.0},
            {"id": "unknown-sku", "score": 1.9},
            {"id": category(engine, "running")[6], "score": 1.8},
        ],
    }
    response = client.post("/v1/rerank", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    result = response.json()
    assert [i["id"] for i in result["items"]][1] == "unknown-sku"
    assert result["decision_id"].startswith("d_")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": {"user_id": "a"}, "candidates": []}, "candidates"),
        ({"user": {}, "candidates": [{"id": "a", "score": 1}]}, "user"),
        ({"user": {"user_id": "a"}, "candidates": [{"id": "a"}]}, "candidates[0].score"),
        (
            {"user": {"user_id": "a"}, "candidates": [{"id": "a", "score": "1"}]},
            "candidates[0].score",
        ),
        (
            {
                "user": {"user_id": "a"},
                "candidates": [{"id": "a", "score": 1}, {"id": "a", "score": 2}],
            },
            "candidates[1].id",
        ),
    ],
)
def test_bad_rerank_requests_are_400_problems_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/rerank", json=body, headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field


def test_malformed_json_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/v1/rerank", content=b"{", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_the_openapi_schema_describes_both_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"DecideBatchRequest", "RerankRequest"} <= set(schema["components"]["schemas"])
    assert "/v1/decide/batch" in schema["paths"] and "/v1/rerank" in schema["paths"]


def test_why_explains_campaign_and_rerank_decisions(
    client: TestClient, engine: Engine, clock: FixedClock
) -> None:
    consent(engine, "ann", marketing=True, analytics=True)
    view(engine, clock, "ann", category(engine, "running")[:3])
    rows = lines(
        client.post("/v1/decide/batch", json={"slot": "newsletter", "users": ["ann"]}, headers=AUTH)
    )
    body = {"user": {"user_id": "ann"}, "candidates": [{"id": "run-001", "score": 1.0}]}
    reranked = client.post("/v1/rerank", json=body, headers=AUTH).json()
    for decision_id in (rows[0]["decision_id"], reranked["decision_id"]):
        why = client.get(f"/v1/decisions/{decision_id}/why", headers=AUTH)
        assert why.status_code == 200, why.text
        assert why.json()["slots"]
