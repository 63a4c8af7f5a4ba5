"""Segment's HTTP Tracking API, against the real server."""

from __future__ import annotations

import base64
import gzip
import uuid

import httpx
import orjson

from tests.e2e.conftest import ADMIN_KEY, SERVER_KEY, WRITE_KEY, Server


def basic(key: str) -> dict[str, str]:
    token = base64.b64encode(f"{key}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_track_with_basic_auth_answers_exactly_success_true(server: Server) -> None:
    anon = f"anon-{uuid.uuid4()}"
    body = {"anonymousId": anon, "event": "Signed Up", "properties": {"plan": "pro"}}
    response = httpx.post(f"{server.url}/v1/track", json=body, headers=basic(WRITE_KEY))
    assert response.status_code == 200
    assert response.json() == {"success": True}
    with server.client(SERVER_KEY) as client:
        profile = client.get(f"/v1/profiles/{anon}").json()["profile"]
    assert profile["events"] == 1
    assert profile["events_7d"].get("Signed Up") == 1


def test_write_key_in_body_and_gzip_body(server: Server) -> None:
    anon = f"anon-{uuid.uuid4()}"
    body = {
        "writeKey": WRITE_KEY,
        "batch": [
            {"type": "page", "anonymousId": anon, "name": "Home", "messageId": str(uuid.uuid4())},
            {
                "type": "track",
                "anonymousId": anon,
                "event": "Product Viewed",
                "properties": {"product_id": "run-001"},
                "messageId": str(uuid.uuid4()),
            },
        ],
    }
    response = httpx.post(
        f"{server.url}/v1/batch",
        content=gzip.compress(orjson.dumps(body)),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    with server.client() as client:
        profile = client.get(f"/v1/profiles/{anon}").json()["profile"]
    assert profile["page_views"] == 1
    assert profile["recently_viewed"] == ["run-001"]


def test_retried_message_is_stored_once(server: Server) -> None:
    anon = f"anon-{uuid.uuid4()}"
    message = {"anonymousId": anon, "event": "Clicked", "messageId": f"m-{uuid.uuid4()}"}
    for _ in range(3):
        assert (
            httpx.post(f"{server.url}/v1/track", json=message, headers=basic(WRITE_KEY)).status_code
            == 200
        )
    with server.client() as client:
        profile = client.get(f"/v1/profiles/{anon}").json()["profile"]
    assert profile["events"] == 1


def test_bad_batch_is_rejected_whole_with_the_field_named(server: Server) -> None:
    anon = f"anon-{uuid.uuid4()}"
    body = {
        "batch": [
            {"type": "track", "anonymousId": anon, "event": "Fine"},
            {"type": "track", "event": "No identity"},
        ]
    }
    response = httpx.post(f"{server.url}/v1/batch", json=body, headers=basic(WRITE_KEY))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"].startswith("batch[1]")
    with server.client() as client:
        assert client.get(f"/v1/profiles/{anon}").status_code == 404


def test_limits_name_the_limit(server: Server) -> None:
    big = {"anonymousId": "a", "event": "Big", "properties": {"blob": "x" * 40_000}}
    response = httpx.post(f"{server.url}/v1/track", json=big, headers=basic(WRITE_KEY))
    assert response.status_code == 400
    assert "32" in response.json()["detail"]
    batch = {"batch": [{"type": "track", "anonymousId": "a", "event": "e"}] * 2501}
    response = httpx.post(f"{server.url}/v1/batch", json=batch, headers=basic(WRITE_KEY))
    assert response.status_code in (400, 413)
    assert response.headers["content-type"].startswith("application/problem+json")


def test_keys_and_scopes(server: Server) -> None:
    body = {"anonymousId": "a", "event": "e"}
    assert httpx.post(f"{server.url}/v1/track", json=body).status_code == 401
    assert (
        httpx.post(f"{server.url}/v1/track", json=body, headers=basic("wrong")).status_code == 401
    )
    # the write key's public decide: for its own anonymous id, never a userId without a token
    decide = {"user": {"user_id": "someone"}, "slots": [{"slot": "hero"}]}
    assert (
        httpx.post(f"{server.url}/v1/decide", json=decide, headers=basic(WRITE_KEY)).status_code
        == 403
    )
    assert httpx.get(f"{server.url}/v1/profiles/a", headers=basic(WRITE_KEY)).status_code == 403
    with server.client(SERVER_KEY) as client:
        assert client.post("/v1/decide", json=decide).status_code == 200
        assert client.get("/v1/admin/workspace").status_code == 403
    with server.client(ADMIN_KEY) as client:
        assert client.get("/v1/admin/workspace").status_code == 200


def test_health_metrics_and_openapi(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    metrics = httpx.get(f"{server.url}/metrics")
    assert metrics.status_code == 200
    assert "loopwise_http_requests_total" in metrics.text
    assert "loopwise_events_accepted_total" in metrics.text
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/decide" in spec["paths"] and "/v1/batch" in spec["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_events_without_analytics_consent_are_counted_as_anonymised(server: Server) -> None:
    def anonymised() -> float:
        with server.client(None) as client:
            text = client.get("/metrics").text
        line = next(
            x for x in text.splitlines() if x.startswith("loopwise_events_anonymised_total")
        )
        return float(line.split()[-1])

    before = anonymised()
    refuse = {
        "type": "track",
        "anonymousId": f"anon-{uuid.uuid4().hex}",
        "event": "Product Viewed",
        "properties": {"product_id": "run-001"},
        "context": {"consent": {"categoryPreferences": {"analytics": False}}},
    }
    with server.client(WRITE_KEY) as client:
        assert client.post("/v1/batch", json={"batch": [refuse, refuse]}).status_code == 200
    assert anonymised() == before + 2
