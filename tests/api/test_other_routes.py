"""Decide, profiles, items, admin and system routes: scopes, behaviour, metrics, OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopwise.api.app import MAX_BODY_BYTES, create_app
from loopwise.api.problems import PROBLEM_JSON
from loopwise.catalog.items import Item
from tests.api.conftest import ADMIN, KEYS, SERVER, WRITE, basic, bearer, new_engine, use_engine
from tests.api.fake_engine import FakeEngine

DECIDE = {"user": {"anonymous_id": "a1"}, "slots": [{"slot": "hero"}, {"slot": "recs", "n": 4}]}
ITEM = {"id": "i9", "title": "Trail shoe", "price": 120, "categories": ["running"]}


def stock(engine: FakeEngine) -> FakeEngine:
    engine.items = {i: Item(id=i, title=i.upper()) for i in ("i1", "i2", "i3")}
    engine.decisions["d1"] = {"decision_id": "d1", "profile_id": "p1", "outcomes": []}
    engine.profiles["u1"] = {"profile": {"id": "p1"}, "segments": [], "segment_history": []}
    engine.workspace["slots"] = [{"key": "hero", "kind": "block"}]
    engine.workspace["segments"] = [{"key": "vip", "name": "VIP", "condition": {}}]
    return engine


@pytest.fixture
def stocked(engine: FakeEngine) -> FakeEngine:
    return stock(engine)


# (method, path, json body, scope-holder kinds, success status)
SERVER_UP = {"server", "admin"}
ADMIN_ONLY = {"admin"}
ROUTES: list[tuple[str, str, Any, set[str], int]] = [
    ("POST", "/v1/decide", DECIDE, {"write", *SERVER_UP}, 200),  # write: public decide
    ("GET", "/v1/decisions/d1", None, SERVER_UP, 200),
    ("GET", "/v1/profiles/u1", None, SERVER_UP, 200),
    ("GET", "/v1/items", None, SERVER_UP, 200),
    ("GET", "/v1/items/i1", None, SERVER_UP, 200),
    ("PUT", "/v1/items", {"items": [ITEM]}, ADMIN_ONLY, 200),
    ("DELETE", "/v1/items/i1", None, ADMIN_ONLY, 204),
    ("DELETE", "/v1/items", {"ids": ["i1"]}, ADMIN_ONLY, 200),
    ("GET", "/v1/admin/workspace", None, ADMIN_ONLY, 200),
    ("PUT", "/v1/admin/workspace", {"slots": []}, ADMIN_ONLY, 200),
    ("PUT", "/v1/admin/slots/hero", {"kind": "block"}, ADMIN_ONLY, 200),
    ("DELETE", "/v1/admin/slots/hero", None, ADMIN_ONLY, 204),
    ("PUT", "/v1/admin/segments/vip", {"name": "VIP"}, ADMIN_ONLY, 200),
    ("DELETE", "/v1/admin/segments/vip", None, ADMIN_ONLY, 204),
    ("POST", "/v1/admin/replay", None, ADMIN_ONLY, 200),
]


@pytest.mark.parametrize(("method", "path", "body", "allowed", "ok"), ROUTES)
def test_every_route_by_key_kind(
    shared_client: TestClient, method: str, path: str, body: Any, allowed: set[str], ok: int
) -> None:
    for who, key in KEYS.items():
        use_engine(shared_client, stock(new_engine()))
        response = shared_client.request(method, path, json=body, headers=bearer(key))
        if who in allowed:
            expected = ok
        elif key is None or who == "wrong":
            expected = 401
        else:
            expected = 403
        assert response.status_code == expected, (who, response.text)
        if expected >= 400:
            assert response.headers["content-type"] == PROBLEM_JSON


def test_system_routes_need_no_key(shared_client: TestClient) -> None:
    for path in ("/healthz", "/metrics", "/openapi.json", "/docs"):
        assert shared_client.get(path).status_code == 200, path


def test_decide_happy_path(client: TestClient, engine: FakeEngine) -> None:
    headers = {
        **basic(SERVER),
        "User-Agent": "Mozilla/5.0 (iPhone)",
        "CF-IPCountry": "de",
        "Cookie": "session=s3cret",
    }
    response = client.post("/v1/decide", json=DECIDE, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["decision_id"] == "d_fake" and body["profile_id"] == "a1"
    assert [s["slot"] for s in body["slots"]] == ["hero", "recs"]
    assert body["slots"][0]["reasons"] == [{"kind": "fallback", "text": "fake engine", "ref": None}]
    request, forwarded = engine.decide_calls[0]
    assert request.slots[1].n == 4
    assert forwarded == {"user-agent": "Mozilla/5.0 (iPhone)", "cf-ipcountry": "de"}
    assert "loopwise_decisions_total 1.0" in client.get("/metrics").text


def test_missing_decision_and_profile_are_404_naming_the_id(client: TestClient) -> None:
    response = client.get("/v1/decisions/d_missing", headers=bearer(SERVER))
    assert response.status_code == 404 and "d_missing" in response.json()["detail"]
    response = client.get("/v1/profiles/jane", headers=bearer(SERVER))
    assert response.status_code == 404
    assert '"jane"' in response.json()["detail"] and response.json()["field"] == "identifier"


def test_profile_view_is_returned(client: TestClient, stocked: FakeEngine) -> None:
    response = client.get("/v1/profiles/u1", headers=bearer(SERVER))
    assert response.json() == stocked.profiles["u1"]


@pytest.mark.parametrize("wrap", [True, False])
def test_put_items_upserts_all(client: TestClient, engine: FakeEngine, wrap: bool) -> None:
    items = [ITEM, {"id": "i10", "title": "Sock", "tags": ["wool"]}]
    response = client.put(
        "/v1/items", json={"items": items} if wrap else items, headers=basic(ADMIN)
    )
    assert response.json() == {"upserted": 2}
    assert engine.items["i9"].price == 120.0 and engine.items["i10"].tags == ("wool",)


def test_one_bad_item_rejects_the_whole_upsert(client: TestClient, stocked: FakeEngine) -> None:
    before = dict(stocked.items)
    items = [ITEM, {"id": "ok"}, {"id": "bad", "price": -5}]
    response = client.put("/v1/items", json={"items": items}, headers=basic(ADMIN))
    assert response.status_code == 400
    assert response.json()["field"] == "items[2].price"
    assert stocked.items == before


def test_repeated_item_id_is_rejected(client: TestClient, engine: FakeEngine) -> None:
    response = client.put("/v1/items", json=[{"id": "x"}, {"id": "x"}], headers=basic(ADMIN))
    assert response.status_code == 400 and response.json()["field"] == "items[1].id"
    assert engine.items == {}


@pytest.mark.parametrize(("count", "field"), [(0, "items"), (10_001, "items")])
def test_item_count_bounds(client: TestClient, engine: FakeEngine, count: int, field: str) -> None:
    items = [{"id": f"i{n}"} for n in range(count)]
    response = client.put("/v1/items", json={"items": items}, headers=basic(ADMIN))
    assert response.status_code == 400 and response.json()["field"] == field
    assert engine.items == {}


def test_items_body_over_5_mb_is_refused(client: TestClient, engine: FakeEngine) -> None:
    items = [{"id": f"i{n}", "text": "x" * 1000} for n in range(MAX_BODY_BYTES // 1000 + 1)]
    response = client.put("/v1/items", json={"items": items}, headers=basic(ADMIN))
    assert response.status_code == 413
    assert response.json()["limit"] == MAX_BODY_BYTES and "5120 KB" in response.json()["detail"]
    assert engine.items == {}


def test_list_get_and_delete_items(client: TestClient, stocked: FakeEngine) -> None:
    page = client.get("/v1/items", params={"offset": 1, "limit": 1}, headers=bearer(SERVER))
    assert page.json() == {
        "items": [Item(id="i2", title="I2").to_record()],
        "total": 3,
        "offset": 1,
        "limit": 1,
    }
    assert client.get("/v1/items", params={"limit": 0}, headers=bearer(SERVER)).status_code == 400
    assert client.get("/v1/items/i3", headers=bearer(SERVER)).json()["title"] == "I3"
    assert client.delete("/v1/items/i3", headers=bearer(ADMIN)).status_code == 204
    missing = client.get("/v1/items/i3", headers=bearer(SERVER))
    assert missing.status_code == 404 and missing.json()["field"] == "item_id"
    assert client.delete("/v1/items/i3", headers=bearer(ADMIN)).status_code == 404
    bulk = client.request(
        "DELETE", "/v1/items", json={"ids": ["i1", "i2", "nope"]}, headers=bearer(ADMIN)
    )
    assert bulk.json() == {"deleted": 2}
    assert stocked.items == {}


def test_admin_workspace_round_trip(client: TestClient, stocked: FakeEngine) -> None:
    admin = bearer(ADMIN)
    assert client.get("/v1/admin/workspace", headers=admin).json() == stocked.workspace
    slot = client.put("/v1/admin/slots/banner", json={"kind": "block"}, headers=admin)
    assert slot.json() == {"kind": "block", "key": "banner"}
    bad = client.put("/v1/admin/slots/banner2", json={"kind": "wheel"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["field"] == "kind"
    keys = [s["key"] for s in stocked.workspace["slots"]]
    assert keys == ["hero", "banner"]
    gone = client.delete("/v1/admin/segments/nope", headers=admin)
    assert gone.status_code == 404 and gone.headers["content-type"] == PROBLEM_JSON
    invalid_key = client.put("/v1/admin/slots/has space", json={}, headers=admin)
    assert invalid_key.status_code == 400 and invalid_key.json()["field"] == "key"
    assert client.post("/v1/admin/replay", headers=admin).json()["differing"] == 0
    assert stocked.replays == 1


def test_healthz_reports_unhealthy_storage(client: TestClient, engine: FakeEngine) -> None:
    assert client.get("/healthz").json() == {
        "status": "ok",
        "backend": "fake",
        "checks": {"read": "ok", "write": "ok"},
    }
    engine.is_healthy = False
    response = client.get("/healthz")
    assert response.status_code == 503 and response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"] == "write" and "full" in response.json()["detail"]


def test_metrics_count_requests_by_route_template(client: TestClient, stocked: FakeEngine) -> None:
    client.get("/v1/profiles/u1", headers=bearer(SERVER))
    client.get("/v1/profiles/jane-doe", headers=bearer(SERVER))
    client.get("/no/such/path")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'loopwise_http_requests_total{method="GET",route="/v1/profiles/{identifier}",status="200"}'
        " 1.0" in text
    )
    assert 'route="/v1/profiles/{identifier}",status="404"} 1.0' in text
    assert 'route="unmatched",status="404"} 1.0' in text
    assert "jane-doe" not in text and "/no/such/path" not in text
    assert 'loopwise_http_request_duration_seconds_bucket{le="0.0005",route="/healthz"}' not in text
    assert 'le="0.0005",route="/v1/profiles/{identifier}"' in text


def test_each_app_has_its_own_registry(engine: FakeEngine) -> None:
    first, second = TestClient(create_app(engine)), TestClient(create_app(engine))
    first.get("/healthz")
    assert 'route="/healthz"' in first.get("/metrics").text
    assert 'route="/healthz"' not in second.get("/metrics").text


def test_openapi_documents_routes_problems_and_keys(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/decide", "/v1/batch", "/v1/items", "/v1/admin/workspace", "/healthz"):
        assert path in paths
    decide = paths["/v1/decide"]["post"]
    assert decide["summary"] and decide["tags"] == ["decide"]
    assert "422" not in decide["responses"]
    assert decide["responses"]["400"]["content"] == {
        PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert set(spec["components"]["securitySchemes"]) == {"basic", "bearer"}
    assert paths["/healthz"]["get"]["security"] == []


def test_write_key_cannot_reach_server_routes(client: TestClient) -> None:
    response = client.get("/v1/profiles/u1", headers=basic(WRITE))
    assert response.status_code == 403
    assert "server key" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [
        ("POST", "/v1/decide", 64 * 1024),
        ("PUT", "/v1/admin/workspace", 1024 * 1024),
        ("PUT", "/v1/admin/slots/hero", 1024 * 1024),
        ("GET", "/v1/profiles/u1", 64 * 1024),
    ],
)
def test_every_route_bounds_its_body_with_a_413_problem(
    client: TestClient, method: str, path: str, limit: int
) -> None:
    """(Ingest has its own 500 KB limit and answers 400, as Segment's API does.)"""
    body = b'{"pad": "' + b"x" * limit + b'"}'
    response = client.request(
        method, path, content=body, headers={**basic(ADMIN), "Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["limit"] == limit and response.json()["field"] == "body"
