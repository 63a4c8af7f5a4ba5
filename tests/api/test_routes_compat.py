"""Third-party client paths and headers: Segment analytics-next's short paths, RudderStack's
beacon and headers, rudder-sdk-node's gzipped form-labelled bodies, ``code``/``message``."""

from __future__ import annotations

import gzip
import json

import pytest
from fastapi.testclient import TestClient

from loopwise.api.edge_settings import CorsSettings
from tests.api.conftest import SERVER, WRITE, basic
from tests.api.fake_engine import FakeEngine

ORIGIN = "https://shop.example"


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        ("/v1/t", {"event": "Signed Up", "anonymousId": "a1"}, "track"),
        ("/v1/p", {"name": "Home", "anonymousId": "a1"}, "page"),
        ("/v1/i", {"userId": "u1", "anonymousId": "a1", "traits": {"plan": "pro"}}, "identify"),
        ("/v1/b", {"batch": [{"type": "track", "event": "E", "anonymousId": "a1"}]}, "track"),
    ],
)
def test_segment_short_paths_store_like_the_long_ones(
    client: TestClient, engine: FakeEngine, path: str, body: dict[str, object], kind: str
) -> None:
    # analytics-next sends text/plain with the write key in the body (no preflight)
    payload = json.dumps({**body, "writeKey": WRITE})
    response = client.post(path, content=payload, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    assert [event.type for event in engine.events] == [kind]


def test_segment_metrics_are_acknowledged_and_not_stored(
    client: TestClient, engine: FakeEngine
) -> None:
    body = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1}]}
    response = client.post(
        "/v1/m", content=json.dumps(body), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200
    assert engine.events == []
    assert "loopwise_client_metrics_total 1.0" in client.get("/metrics").text


def test_rudderstack_beacon_with_the_key_in_the_query(
    client: TestClient, engine: FakeEngine
) -> None:
    body = {"batch": [{"type": "track", "event": "Beacon", "anonymousId": "a1"}]}
    response = client.post(
        f"/beacon/v1/batch?writeKey={WRITE}",
        content=json.dumps(body),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 200, response.text
    assert [event.event for event in engine.events] == ["Beacon"]
    wrong = client.post("/beacon/v1/batch?writeKey=nope", content=json.dumps(body))
    assert wrong.status_code == 401
    assert len(engine.events) == 1


def test_rudder_sdk_node_gzip_labelled_as_a_form_is_read(
    client: TestClient, engine: FakeEngine
) -> None:
    body = {"batch": [{"type": "track", "event": "Node", "userId": "u1"}]}
    response = client.post(  # a server-side SDK: configured with the server key
        "/v1/batch",
        content=gzip.compress(json.dumps(body).encode()),
        headers={
            **basic(SERVER),
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status_code == 200, response.text
    assert [event.event for event in engine.events] == ["Node"]


@pytest.mark.parametrize(
    "requested",
    [
        "content-type, x-retry-count",  # analytics-next retrying
        "anonymousid, authorization, content-type, sentat",  # RudderStack
        "anonymousid, content-type, rsa-retry-attempt, rsa-retry-reason, sentat",
    ],
)
def test_preflight_allows_the_headers_analytics_clients_send(
    client: TestClient, engine: FakeEngine, requested: str
) -> None:
    engine.settings_cors = CorsSettings(allowed_origins=[ORIGIN])
    for path in ("/v1/batch", "/v1/t", "/beacon/v1/batch"):
        response = client.options(
            path,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": requested,
            },
        )
        assert response.status_code == 204
        allowed = {
            h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
        }
        assert {h.strip() for h in requested.split(",")} <= allowed


def test_preflight_leaves_out_unknown_headers(client: TestClient, engine: FakeEngine) -> None:
    engine.settings_cors = CorsSettings(allowed_origins=[ORIGIN])
    response = client.options(
        "/v1/batch",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-evil, content-type",
        },
    )
    assert "x-evil" not in response.headers["access-control-allow-headers"].lower()


def test_problems_carry_code_and_message_for_older_clients(client: TestClient) -> None:
    response = client.post("/v1/track", content=b"{", headers=basic(WRITE))
    problem = response.json()
    assert response.status_code == 400
    assert problem["code"] == "validation-failed"
    assert problem["message"] == problem["detail"]
    assert {"type", "title", "status", "detail"} <= set(problem)  # still RFC 9457


def test_segment_settings_point_analytics_next_at_this_server(client: TestClient) -> None:
    from tests.api.conftest import SERVER

    response = client.get(f"/v1/projects/{WRITE}/settings")
    assert response.status_code == 200
    segment = response.json()["integrations"]["Segment.io"]
    assert segment == {"apiKey": WRITE, "apiHost": "testserver/v1", "protocol": "http"}
    # only the public write key has settings: a server key is not leaked as a "source"
    assert client.get(f"/v1/projects/{SERVER}/settings").status_code == 404
    assert client.get("/v1/projects/nope/settings").status_code == 404


def test_rudderstack_source_config_is_an_enabled_source_without_destinations(
    client: TestClient,
) -> None:
    from tests.api.conftest import SERVER

    for response in (
        client.get(f"/sourceConfig/?p=npm&v=3.34.1&writeKey={WRITE}"),
        client.get("/sourceConfig", headers=basic(WRITE)),
    ):
        assert response.status_code == 200
        source = response.json()["source"]
        assert source["enabled"] is True and source["destinations"] == []
        assert source["writeKey"] == WRITE
    assert client.get(f"/sourceConfig?writeKey={SERVER}").status_code == 404
    assert client.get("/sourceConfig").status_code == 404
