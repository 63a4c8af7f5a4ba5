"""CORS from the live workspace: allowed origins get CORS headers on the browser routes only."""

from __future__ import annotations

from fastapi.testclient import TestClient

from loopwise.api.edge_settings import CorsSettings
from tests.api.conftest import WRITE, basic
from tests.api.fake_engine import FakeEngine

SHOP = "https://shop.example"
EVIL = "https://evil.example"
TRACK = {"type": "track", "event": "Product Viewed", "anonymousId": "a1", "messageId": "m1"}


def allow(engine: FakeEngine, *origins: str) -> None:
    engine.settings_cors = CorsSettings(allowed_origins=list(origins))


def preflight(client: TestClient, path: str, origin: str, method: str = "POST") -> object:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_preflight_from_an_allowed_origin(client: TestClient, engine: FakeEngine) -> None:
    allow(engine, SHOP)
    response = preflight(client, "/v1/batch", SHOP)
    assert response.status_code == 204  # type: ignore[attr-defined]
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["access-control-allow-origin"] == SHOP
    assert "POST" in headers["access-control-allow-methods"]
    assert "Authorization" in headers["access-control-allow-headers"]
    why = preflight(client, "/v1/decisions/d_1/why", SHOP, "GET")
    assert why.status_code == 204  # type: ignore[attr-defined]
    assert "GET" in why.headers["access-control-allow-methods"]  # type: ignore[attr-defined]


def test_disallowed_origin_or_route_gets_no_cors_headers(
    client: TestClient, engine: FakeEngine
) -> None:
    allow(engine, SHOP)
    for path, origin in [("/v1/batch", EVIL), ("/v1/admin/workspace", SHOP)]:
        response = preflight(client, path, origin)
        assert response.status_code == 403  # type: ignore[attr-defined]
        assert "access-control-allow-origin" not in response.headers  # type: ignore[attr-defined]
        assert response.json()["title"] == "Origin not allowed"  # type: ignore[attr-defined]
    response = client.post("/v1/track", json=TRACK, headers={**basic(WRITE), "Origin": EVIL})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_actual_request_from_an_allowed_origin(client: TestClient, engine: FakeEngine) -> None:
    allow(engine, SHOP)
    response = client.post("/v1/track", json=TRACK, headers={**basic(WRITE), "Origin": SHOP})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP
    assert "Origin" in response.headers["vary"]
    # problems carry CORS headers too, so the page can read them
    response = client.get("/v1/decisions/nope/why", headers={**basic(WRITE), "Origin": SHOP})
    assert response.status_code == 404
    assert response.headers["access-control-allow-origin"] == SHOP


def test_the_workspace_change_applies_at_once(client: TestClient, engine: FakeEngine) -> None:
    assert preflight(client, "/v1/batch", SHOP).status_code == 403  # type: ignore[attr-defined]
    allow(engine, "*")
    assert preflight(client, "/v1/batch", SHOP).status_code == 204  # type: ignore[attr-defined]


def test_origins_are_validated() -> None:
    import pytest
    from pydantic import ValidationError

    assert CorsSettings(allowed_origins=["https://Shop.example/"]).allowed_origins == [SHOP]
    for bad in ["shop.example", "https://shop.example/path", "ftp://x"]:
        with pytest.raises(ValidationError):
            CorsSettings(allowed_origins=[bad])
