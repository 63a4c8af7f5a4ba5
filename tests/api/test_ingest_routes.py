"""Segment's tracking API: keys, exact success reply, gzip, body key, limits, all-or-nothing."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from loopwise.api.problems import PROBLEM_JSON
from loopwise.events.limits import MAX_REQUEST_BYTES
from tests.api.conftest import ADMIN, KEYS, SERVER, WRITE, basic, bearer, new_engine, use_engine
from tests.api.fake_engine import FakeEngine

BODIES: dict[str, dict[str, Any]] = {
    "track": {"anonymousId": "a1", "event": "Product Viewed", "properties": {"product_id": "p"}},
    "identify": {"userId": "u1", "anonymousId": "a1", "traits": {"plan": "gold"}},
    "page": {"anonymousId": "a1", "name": "Home"},
    "screen": {"anonymousId": "a1", "name": "Cart"},
    "group": {"userId": "u1", "anonymousId": "a1", "groupId": "g1"},
    "alias": {"userId": "u1", "previousId": "a1"},
    "batch": {
        "batch": [
            {"type": "page", "anonymousId": "a1", "name": "Home"},
            {"type": "track", "anonymousId": "a1", "event": "Clicked"},
        ]
    },
}
EXPECTED_STATUS = {"none": 401, "wrong": 401, "write": 200, "server": 200, "admin": 200}


@pytest.mark.parametrize("kind", list(BODIES))
def test_every_ingest_route_by_key_kind(shared_client: TestClient, kind: str) -> None:
    for who, key in KEYS.items():
        engine = use_engine(shared_client, new_engine())
        headers = basic(key) if key else {}
        response = shared_client.post(f"/v1/{kind}", json=BODIES[kind], headers=headers)
        assert response.status_code == EXPECTED_STATUS[who], (who, response.text)
        if response.status_code == 200:
            assert response.content == b'{"success": true}'
            assert response.headers["content-type"] == "application/json"
            types = [e.type for e in engine.events]
            assert types == (["page", "track"] if kind == "batch" else [kind])
        else:
            assert response.headers["content-type"] == PROBLEM_JSON
            assert "Basic" in response.headers["www-authenticate"]
            assert engine.events == []


def test_bearer_and_extra_headers(client: TestClient, engine: FakeEngine) -> None:
    headers = {**bearer(SERVER), "AnonymousId": "ignored", "X-Whatever": "1"}
    response = client.post("/v1/track", json=BODIES["track"], headers=headers)
    assert response.status_code == 200
    assert engine.events[0].anonymous_id == "a1"


def test_write_key_in_body_with_gzip(client: TestClient, engine: FakeEngine) -> None:
    body = {"writeKey": WRITE, **BODIES["batch"]}
    response = client.post(
        "/v1/batch",
        content=gzip.compress(orjson.dumps(body)),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert len(engine.events) == 2


def test_wrong_write_key_in_body_is_401(client: TestClient, engine: FakeEngine) -> None:
    body = {"writeKey": "lw_write_guess", **BODIES["track"]}
    assert client.post("/v1/track", json=body).status_code == 401
    assert engine.events == []


def test_header_key_is_checked_before_the_body_is_read(client: TestClient) -> None:
    response = client.post(
        "/v1/track", content=b"{not json", headers={**basic("bad"), "Content-Type": "text/plain"}
    )
    assert response.status_code == 401


def test_send_beacon_text_plain_is_accepted(client: TestClient, engine: FakeEngine) -> None:
    body = orjson.dumps({"writeKey": WRITE, **BODIES["page"]})
    response = client.post(
        "/v1/page", content=body, headers={"Content-Type": "text/plain;charset=UTF-8"}
    )
    assert response.status_code == 200
    assert engine.events[0].name == "Home"


def test_non_json_content_type_is_415(client: TestClient, engine: FakeEngine) -> None:
    response = client.post(
        "/v1/track",
        content=b"<track/>",
        headers={**basic(WRITE), "Content-Type": "application/xml"},
    )
    assert response.status_code == 415
    assert response.json()["field"] == "Content-Type"
    assert engine.events == []


def test_a_real_form_body_is_a_400_naming_the_body(client: TestClient, engine: FakeEngine) -> None:
    """The form type is read as JSON (rudder-sdk-node's label); real form fields are not JSON."""
    response = client.post(
        "/v1/track",
        content=b"anonymousId=a",
        headers={**basic(WRITE), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "body"
    assert engine.events == []


def test_batch_with_one_bad_message_stores_nothing(client: TestClient, engine: FakeEngine) -> None:
    body = {"batch": [BODIES["batch"]["batch"][0], {"type": "track", "event": "No identity"}]}
    response = client.post("/v1/batch", json=body, headers=basic(WRITE))
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"].startswith("batch[1]")
    assert engine.batches == []


def test_oversize_declared_body_is_refused_naming_the_limit(
    client: TestClient, engine: FakeEngine
) -> None:
    big = {"anonymousId": "a", "event": "Big", "properties": {"blob": "x" * MAX_REQUEST_BYTES}}
    response = client.post("/v1/track", json=big, headers=basic(WRITE))
    assert response.status_code == 400
    problem = response.json()
    assert "500 KB" in problem["detail"]
    assert problem["limit"] == MAX_REQUEST_BYTES and problem["field"] == "body"
    assert engine.batches == []


def test_oversize_chunked_body_is_refused(client: TestClient, engine: FakeEngine) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"anonymousId": "a", "event": "e", "properties": {"blob": "'
        for _ in range(60):
            yield b"x" * 10_000
        yield b'"}}'

    response = client.post("/v1/track", content=chunks(), headers=basic(WRITE))
    assert response.status_code == 400
    assert response.json()["limit"] == MAX_REQUEST_BYTES
    assert engine.batches == []


def test_gzip_bomb_is_refused(client: TestClient, engine: FakeEngine) -> None:
    body = orjson.dumps({"anonymousId": "a", "event": "e", "properties": {"b": "x" * 2_000_000}})
    compressed = gzip.compress(body)
    assert len(compressed) < MAX_REQUEST_BYTES
    response = client.post(
        "/v1/track",
        content=compressed,
        headers={**basic(WRITE), "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 400
    assert engine.batches == []


def test_retries_count_as_duplicates_in_metrics(client: TestClient) -> None:
    message = {**BODIES["track"], "messageId": "m-1"}
    for _ in range(3):
        assert client.post("/v1/track", json=message, headers=basic(ADMIN)).status_code == 200
    text = client.get("/metrics").text
    assert "loopwise_events_accepted_total 1.0" in text
    assert "loopwise_events_duplicate_total 2.0" in text


def test_country_header_fills_location_for_browser_events_only(
    client: TestClient, engine: FakeEngine
) -> None:
    body = {
        "batch": [
            {"type": "track", "anonymousId": "a1", "event": "E"},
            {
                "type": "track",
                "anonymousId": "a1",
                "event": "E",
                "context": {"location": {"country": "FR"}},
            },
        ]
    }
    response = client.post("/v1/batch", json=body, headers={**basic(WRITE), "CF-IPCountry": "de"})
    assert response.status_code == 200
    assert [e.context["location"]["country"] for e in engine.events] == ["DE", "FR"]
    client.post("/v1/batch", json=body, headers={**bearer(SERVER), "CF-IPCountry": "de"})
    assert "location" not in engine.events[2].context  # a server's request says nothing of users


def test_ip_is_truncated_unless_the_workspace_keeps_it(
    client: TestClient, engine: FakeEngine
) -> None:
    message = {"anonymousId": "a", "event": "E", "context": {"ip": "203.0.113.77"}}
    assert client.post("/v1/track", json=message, headers=basic(WRITE)).status_code == 200
    engine.settings_truncate_ip = False
    assert client.post("/v1/track", json=message, headers=basic(WRITE)).status_code == 200
    assert [e.context["ip"] for e in engine.events] == ["203.0.113.0", "203.0.113.77"]
